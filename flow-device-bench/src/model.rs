//! The model seam: the embedded model file and the flow type compiled for it.
//!
//! `build.rs` parses the model file (`FLOW_MODEL`, default: the example's `models/circles_coupling.nflw`) on the host
//! and generates the constants included below — kind, `D`, `C`, `SPLIT` and the capacities
//! `L`, `H`, `K` — so [`FlowT`] is exactly the model's flow type with the smallest scratch.
//! At run time [`load`] validates the embedded bytes with [`Model::parse`] (magic, version,
//! CRC, every layer and parameter) and builds the flow; nothing is copied out of flash.

use flow_core::{Error, Model};

include!(concat!(env!("OUT_DIR"), "/geometry.rs"));

/// Bytes at a 4-byte aligned address: the model file's parameter section starts 4-byte
/// aligned from the file's start, so flow-core reads the parameters as `f32` in place.
#[repr(C, align(4))]
pub struct Aligned<B: ?Sized>(pub B);

/// The model file, embedded at build time (`FLOW_MODEL`, or `FLOW_MODEL_UNCHECKED`).
pub static FILE: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("FLOW_MODEL_FILE")));

/// The knot tables of the model's fixed-parameter splines (`$OUT_DIR/tables.bin`, written by
/// `build.rs` with flow-core), little-endian `f32` followed by their seal for the model file,
/// read in place from flash: the firmware hands them to the loaded flow's
/// `set_sealed_tables`, which checks the seal and that every table is well formed. (Called on the
/// flow where it lives, after `load`: inside `load` the call would make `load`'s frame,
/// which sits under `Model::parse`'s deepest calls, about 90 bytes larger.)
pub static TABLES: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/tables.bin")));

/// The rows of `FLOW_STREAM`, little-endian `f32`, `D + C` per row.
#[cfg(flow_stream_file)]
pub static STREAM_FILE: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("FLOW_STREAM_FILE")));

/// The flow of the embedded model.
#[cfg(flow_kind = "plain")]
pub type FlowT = flow_core::Flow<'static, D, L, H, K>;
/// The flow of the embedded model.
#[cfg(flow_kind = "conditional")]
pub type FlowT = flow_core::ConditionalFlow<'static, D, C, L, H, K>;
/// The flow of the embedded model.
#[cfg(flow_kind = "joint")]
pub type FlowT = flow_core::JointFlow<'static, D, L, H, K>;

/// `plain`, `conditional` or `joint`.
pub const KIND_NAME: &str = match KIND {
    flow_core::model::FlowKind::Plain => "plain",
    flow_core::model::FlowKind::Conditional => "conditional",
    flow_core::model::FlowKind::Joint => "joint",
};

/// Validates the model file and builds its flow into `out` (left as it was on an error).
/// Written into the caller's place rather than returned: a returned pair would need a place of
/// its own in the caller's frame (or in the frame of a timing loop, above `load`'s deepest
/// calls) and a copy into where it is kept.
#[inline(never)]
pub fn load(bytes: &'static [u8], out: &mut Option<(Model<'static>, FlowT)>) -> Result<(), Error> {
    // The model used where `parse` left it (a `?` would move it out of the `Result` first,
    // then again into `out`: about 130 bytes of copying code).
    let parsed = Model::parse(bytes);
    let model = match &parsed {
        Ok(m) => m,
        Err(e) => return Err(*e),
    };
    #[cfg(flow_kind = "plain")]
    let flow = model.flow::<D, L, H, K>()?;
    #[cfg(flow_kind = "conditional")]
    let flow = model.conditional_flow::<D, C, L, H, K>()?;
    #[cfg(flow_kind = "joint")]
    let flow = model.joint_flow::<D, L, H, K>()?;
    *out = Some((*model, flow));
    Ok(())
}
