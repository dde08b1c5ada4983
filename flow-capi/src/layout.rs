//! Sizes that the header states, shared by `build.rs` (which writes them into `flow.h`) and the
//! library (which checks at compile time that its types fit them).

/// Bytes of `flow_model` for pointers of `ptr` bytes and the layer capacity `layers`: the
/// parsed model, and the flow with room for `2 × layers` layers (a joint flow's two parts),
/// rounded up to 8. The library asserts at compile time that its state fits, on every target.
pub const fn model_size(ptr: usize, layers: usize) -> usize {
    // Measured with `size_of` on a 32-bit (thumbv7em) and a 64-bit (x86_64) target: the
    // model, the enum's tag and two chains' fixed parts, and per layer one `Layer` per part.
    let (base, layer) = if ptr == 4 {
        (BASE_32, LAYER_32)
    } else {
        (BASE_64, LAYER_64)
    };
    (base + 2 * layers * layer).div_ceil(8) * 8
}

// 2026-12-07, all layer kinds: `Layer` is 80 bytes (32-bit) and 144 (64-bit); the rest 128
// and 240 (format version 2's window and grouping in the model's metadata added 16 and 32).
// Fewer layer kinds make `Layer` smaller, so these bound every feature set.
const BASE_32: usize = 128;
const LAYER_32: usize = 80;
const BASE_64: usize = 240;
const LAYER_64: usize = 144;

/// Bytes of stack a call of `flow_log_prob` or `flow_sample` may use, for the capacities
/// hidden `h`, bins `k`, dimension `d` and context `c`: flow-core's scratch (`2H + 2K` floats),
/// the points' copies, and the frames of the layer code.
#[allow(dead_code)] // used by build.rs only
pub const fn stack_bound(h: usize, k: usize, d: usize, c: usize) -> usize {
    8 * (h + k) + 16 * (d + c) + 2048
}
