//! Fuzzes `import-pyro`'s parsers: the input is a Pyro state dict (JSON), a NUL byte, and the
//! flow's description (JSON); without a NUL byte the whole input is tried as each in turn
//! against the other from the seed. Whatever imports must be a model file flow-core loads;
//! everything else a typed error with a message. Nothing may panic, hang or allocate without
//! bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A valid pair to pair a lone input with: Pyro's element-wise spline, K = 2.
const SD: &str = r#"{"unnormalized_widths": {"shape": [1, 2], "values": [0.1, -0.2]},
 "unnormalized_heights": {"shape": [1, 2], "values": [0.3, 0.0]},
 "unnormalized_derivatives": {"shape": [1, 1], "values": [0.5]},
 "unnormalized_lambdas": {"shape": [1, 2], "values": [0.2, -0.1]}}"#;
const DESC: &str = r#"{"dim": 1, "layers": [{"type": "spline", "count_bins": 2}]}"#;

fn check(sd: &str, desc: &str) {
    match flow_train::pyro::import(sd, desc) {
        Ok(bytes) => {
            flow_core::Model::parse(&bytes).expect("an imported model must load");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.split_once('\0') {
        Some((sd, desc)) => check(sd, desc),
        None => {
            check(text, DESC);
            check(SD, text);
        }
    }
});
