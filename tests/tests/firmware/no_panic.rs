//! The link-time no-panic check.

use flow_tests::firmware::{Embed, M0, M4F};

use crate::harness::*;
use crate::models::*;

// --- the link-time no-panic check ----------------------------------------------------------------

/// Builds `src/bin/panic_check.rs` for `target` with the tutorial model: the link fails if a
/// panic path of flow-core's `Model::parse`, flow building or `log_prob` survives optimization.
fn check_no_panic(target: &str, features: &str) {
    let path = write_file("tutorial.nflw", &tutorial_model(TEST_SEED));
    let embed = Embed {
        model: path,
        ..Embed::default()
    };
    build(
        target,
        &embed,
        &format!("panic-check-{target}-{features}"),
        &["panic_check"],
        &["--features", features],
    );
}

// The link of `panic_check` fails if any panic path survives in flow-core's load + log_prob
// (its panic handler calls an undefined symbol). To find one when it does: link with
// `--unresolved-symbols=ignore-all` and look for callers of `core::panicking::*` with
// `llvm-objdump -d -l`.
#[test]
fn no_panic_path_in_load_and_log_prob_m4f() {
    check_no_panic(M4F, "panic-check");
}

#[test]
fn no_panic_path_in_load_and_log_prob_m0() {
    check_no_panic(M0, "panic-check");
}

/// With every layer kind and the quadratic order compiled in, the loader reaches every
/// kind's constructor (the tutorial model's geometry still bounds the flow).
#[test]
fn no_panic_path_with_every_layer_kind_m4f() {
    check_no_panic(M4F, "panic-check,all-layers");
}
