//! End-to-end runs of the `flow-train` binary: fit → inspect → eval → sample → plot on
//! built-in data, the smartwatch IMU file's defaults on new recordings, a conditional model
//! with groups and anomalies, Pyro imports reproducing Pyro's recorded log-densities, and the
//! failure paths (bad CSV, import errors, a diverging run, invalid model files), which must
//! exit non-zero, name the problem and write nothing.
//!
//! These are integration tests of the flow-train package so that Cargo builds the binary and
//! hands its path over in `CARGO_BIN_EXE_flow-train`. Pyro's trained files are read from the
//! repository's `tests/pyro-trained`, the circles test set and the smartwatch IMU file from
//! its `data/`.

#[path = "../common/mod.rs"]
mod common;

use common::*;

mod budget;
mod conventions;
mod defaults;
mod errors;
mod helpers;
mod import;
mod workflow;

#[test]
fn help_on_every_command() {
    for cmd in ["fit", "eval", "sample", "inspect", "plot", "import-pyro"] {
        let out = ok(&[cmd, "--help"]);
        assert!(out.contains("Usage: flow-train"), "{cmd}: {out}");
    }
    assert!(ok(&["fit", "--help"]).contains("--context-columns"));
}
