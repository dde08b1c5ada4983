//! Failures: a corrupt or compiled-out model is a load error, not a panic.

use flow_core::{Error, Feature, Model};
use flow_tests::firmware::{self, Embed, M4F};
use flow_tests::qemu::{self, MPS2_AN386};
use std::path::Path;

use crate::harness::*;
use crate::models::*;
use crate::results::*;

// --- failures -----------------------------------------------------------------------------------

/// Runs the firmware `elf` on the MPS2 AN386: it must print `load-error <expect>` and exit with
/// failure (`what` names the case). Returns what it printed.
fn load_error_run(elf: &Path, expect: &str, what: &str) -> Output {
    let run = qemu::run(MPS2_AN386, elf);
    let out = parse(&run.stdout);
    assert_eq!(
        out.load_error.as_deref(),
        Some(expect),
        "{what}: stdout:\n{}",
        run.stdout
    );
    assert_eq!(run.code, Some(1), "a load error must exit with failure");
    out
}

/// A corrupted copy of the tutorial model (one parameter byte flipped) embedded with
/// `FLOW_MODEL_UNCHECKED`: the firmware prints `load-error <the host's error>` and exits 1.
#[test]
fn corrupt_model_is_a_load_error_at_run_time() {
    let good = tutorial_model(TEST_SEED);
    let good_path = write_file("tutorial.nflw", &good);
    let mut bad = good.clone();
    let at = bad.len() - 400;
    bad[at] ^= 0x10;
    let host_err = Model::parse(&bad)
        .expect_err("the corrupt model does not parse")
        .to_string();
    assert!(host_err.contains("checksum mismatch"), "{host_err}");
    let bad_path = write_file("corrupt.nflw", &bad);
    let embed = Embed {
        model: good_path,
        unchecked: Some(bad_path),
        ..Embed::default()
    };
    // Built with `error-text`: the device prints flow-core's message.
    let elfs = build(
        M4F,
        &embed,
        "corrupt-m4f",
        &["flow-device-bench"],
        &["--features", "error-text"],
    );
    let out = load_error_run(&elfs[0], &host_err, "corrupt model");
    assert!(!out.done && out.results.is_empty());
}

/// A firmware built for the tutorial model has only the `coupling` layer kind: Pyro's
/// `Spline(2, 16)` embedded with `FLOW_MODEL_UNCHECKED` loads as flow-core's
/// `Error::Unsupported(Feature::Spline)` (`load-error …`, exit 1), not a panic.
#[test]
fn compiled_out_layer_kind_is_a_load_error_at_run_time() {
    let good_path = write_file("tutorial.nflw", &tutorial_model(TEST_SEED));
    let other = pyro_trained("a_spline_params.json", PYRO_A);
    assert!(
        Model::parse(&other).is_ok(),
        "the spline model itself is valid"
    );
    let other_path = write_file("compiled-out.nflw", &other);
    // The default build prints the error's code.
    let expect = device_code(&Error::Unsupported(Feature::Spline));
    assert_eq!(expect, "E10 2");
    let embed = Embed {
        model: good_path,
        unchecked: Some(other_path),
        ..Embed::default()
    };
    let elfs = build(M4F, &embed, "compiled-out-m4f", &["flow-device-bench"], &[]);
    load_error_run(&elfs[0], &expect, "compiled-out kind");
}

/// `FLOW_MODEL` naming a file that does not parse fails the build with flow-core's error.
#[test]
fn unparsable_model_fails_the_build() {
    let mut bad = tutorial_model(TEST_SEED);
    bad.truncate(bad.len() - 1);
    let err = Model::parse(&bad).err().unwrap().to_string();
    let path = write_file("truncated.nflw", &bad);
    let mut cmd = cargo(
        M4F,
        &Embed {
            model: path,
            ..Embed::default()
        },
    );
    cmd.args(["--bin", "flow-device-bench"]);
    let stderr = firmware::build(cmd, &[]).expect_err("the build of an unparsable model succeeded");
    assert!(
        stderr.contains(&err),
        "the build error does not name the model's error \"{err}\":\n{stderr}"
    );
}
