//! The measurement and parity harness (`flow-device-bench`) under QEMU agrees with flow-core on
//! the host bit for bit, for model files of every kind.
//!
//! The firmware embeds a model file (`FLOW_MODEL`) and is compiled for its geometry (its
//! `build.rs` parses it). For each build, the host parses the same file, builds the same flow
//! type and runs the same workload (`workload.rs` of the firmware is compiled into this test):
//! every `log_prob`, sample, raw-unit value, threshold and anomaly flag the device prints is
//! compared with the host's, 0 ULP, a mismatch naming the input and both values.
//!
//! | build | model | target, machines |
//! |---|---|---|
//! | tutorial | `spline_coupling(2, 16)`, hidden [20, 20], scaler, thresholds | `thumbv7em-none-eabihf` on `mps2-an386` (M4F), `thumbv7m-none-eabi` on `lm3s6965evb` and `mps2-an385` (M3), `thumbv6m-none-eabi` on `microbit` (M0), `riscv32imac-unknown-none-elf` and `riscv32imc-unknown-none-elf` on `sifive_e` (RISC-V, UART output) |
//! | conditional | conditional spline + permute + conditional coupling, `D = C = 2` | M4F |
//! | joint | `p(x₁)·p(x₂ \| x₁)` on `R³` | M0 |
//! | imu6 | plain 6-D (two couplings, a permutation), stream from a `FLOW_STREAM` file | M4F |
//! | corrupt | the tutorial model's geometry, a corrupted copy embedded (`FLOW_MODEL_UNCHECKED`), feature `error-text` | M4F: `load-error <flow-core's message>`, exit 1 |
//! | compiled-out | the tutorial model's geometry and layer kinds, Pyro's `Spline(2, 16)` embedded (`FLOW_MODEL_UNCHECKED`) | M4F: `load-error E10 2` (`Unsupported(Spline)`), exit 1 |
//!
//! Every build passes `--no-default-features --features …` with exactly the layer kinds (and
//! spline order) of its `FLOW_MODEL` (`geometry::features`), so each firmware compiles in
//! only what its model uses.
//!
//! Also: a model that does not parse fails the build; a HardFault exits nonzero; the no-panic
//! check (`src/bin/panic_check.rs`) links for M4F and M0; the firmware's error texts equal
//! flow-core's `Display`; the checked-in default `models/circles_coupling.nflw` (trained by
//! `flow-train fit`) runs with the host's numbers.
//!
//! The M4F's tutorial run also checks the harness's budget: flash ≤ 24 KB, ≤ 12,000
//! instructions per `log_prob`.
//!
//! **The example** (`flow-firmware-example`, the tests named `example_*`): built for its four
//! QEMU boards — `mps2-an386` (semihosting), `netduinoplus2`, `microbit` and `hifive1` (their
//! UARTs, QEMU without semihosting) — and run through its own runner `qemu-run.sh`, its decimal
//! `log_prob`s, threshold, flags and samples equal flow-core's on the host bit for bit (the
//! decimals read back as the same `f32`); a corrupt model fails its build with the loader's
//! message, and embedded unchecked it prints `error: <message>` and fails the run; the three
//! probe-rs boards build, link and fit their chips.
//!
//! Each run prints its measurements (instructions per load, `log_prob` and sample; flash, RAM,
//! stack; the template's apart) and writes them to `report-<label>.txt` in the test's temporary
//! directory. QEMU missing (`qemu-system-arm`, `qemu-system-riscv32`) is a failure, not a skip:
//! `scripts/test-all.sh` installs it.

#[allow(dead_code)]
#[path = "../../../flow-device-bench/src/errtext.rs"]
mod errtext;
#[allow(dead_code)]
#[path = "../../../flow-device-bench/src/workload.rs"]
mod workload;

/// The example's line writer (what `say!` prints, flow-core's errors in words); `decimal.rs`
/// uses it as `crate::text`.
#[allow(dead_code, unused_macros)]
#[path = "../../../flow-firmware-example/src/text.rs"]
mod text;

use flow_core::model::FlowKind;
use flow_core::{Flow, Model};
use flow_tests::firmware::{M0, M3, M4F, RV32IMAC, RV32IMC};
use flow_tests::geometry::{self, Geometry};
use flow_tests::qemu::{Machine, LM3S6965EVB, MICROBIT, MPS2_AN385, MPS2_AN386, SIFIVE_E};

/// What the example prints for `item`.
fn shown<T: text::Show + ?Sized>(item: &T) -> String {
    let mut line = text::Line::new();
    item.show(&mut line);
    String::from_utf8(line.as_bytes().to_vec()).expect("the example prints UTF-8")
}

mod checks;
mod default_model;
mod error_texts;
mod example;
mod failures;
mod harness;
mod models;
mod no_panic;
mod results;

use checks::*;
use models::*;
use results::*;

/// The harness's budget on the M4F (Cortex-M4F, `-icount shift=0`): the tutorial coupling in at
/// most 24 KB of flash and 12,000 instructions per `log_prob`.
const M4F_BUDGET: (u64, u64) = (24 * 1024, 12_000);

#[test]
fn cortex_m4f_mps2_an386_matches_host() {
    check(Case {
        budget: Some(M4F_BUDGET),
        ..tutorial_case("tutorial-m4f", M4F, &[MPS2_AN386])
    });
}

#[test]
fn cortex_m3_soft_float_matches_host() {
    check(tutorial_case("tutorial-m3", M3, &[LM3S6965EVB, MPS2_AN385]));
}

/// RISC-V without an FPU (soft float), on the HiFive1's FE310 in QEMU: the same numbers.
#[test]
fn riscv32imac_sifive_e_matches_host() {
    check(Case {
        with_template: false,
        ..tutorial_case("tutorial-rv32imac", RV32IMAC, &[SIFIVE_E])
    });
}

/// The same code for `riscv32imc` (no atomics), on the same machine.
#[test]
fn riscv32imc_sifive_e_matches_host() {
    check(Case {
        with_template: false,
        ..tutorial_case("tutorial-rv32imc", RV32IMC, &[SIFIVE_E])
    });
}

#[test]
fn cortex_m0_microbit_matches_host() {
    check(tutorial_case("tutorial-m0", M0, &[MICROBIT]));
}

#[test]
fn conditional_model_matches_host_on_m4f() {
    let bytes = conditional_model(TEST_SEED);
    check(model_case(
        ("conditional-m4f", M4F, &[MPS2_AN386]),
        ("conditional.nflw", &bytes),
        "conditional 2 2 0 3 12 8",
        Model::conditional_flow::<2, 2, 3, 12, 8>,
    ));
}

#[test]
fn joint_model_matches_host_on_m0() {
    let bytes = joint_model(TEST_SEED);
    let case = model_case(
        ("joint-m0", M0, &[MICROBIT]),
        ("joint.nflw", &bytes),
        "joint 3 0 1 3 10 8",
        Model::joint_flow::<3, 3, 10, 8>,
    );
    // No 1 % threshold stored: the lowest one is used.
    assert_eq!(
        case.host.threshold,
        Some(Some((0.05f32.to_bits(), (-6.0f32).to_bits())))
    );
    check(case);
}

/// Pyro's (a) `Spline(2, 16)` on a core with FPU and on one without.
fn pyro_spline_case(label: &str, target: &str, machines: &[Machine]) {
    let bytes = pyro_trained("a_spline_params.json", PYRO_A);
    check(model_case(
        (label, target, machines),
        (&format!("{label}.nflw"), &bytes),
        "plain 2 0 0 1 0 16",
        Model::flow::<2, 1, 0, 16>,
    ));
}

#[test]
fn pyro_trained_spline_matches_host_on_m4f() {
    pyro_spline_case("pyro-a-m4f", M4F, &[MPS2_AN386]);
}

#[test]
fn pyro_trained_spline_matches_host_on_m0() {
    pyro_spline_case("pyro-a-m0", M0, &[MICROBIT]);
}

#[test]
fn pyro_trained_joint_matches_host_on_m4f() {
    let bytes = pyro_trained("c_conditional_params.json", PYRO_C);
    check(model_case(
        ("pyro-c-m4f", M4F, &[MPS2_AN386]),
        ("pyro_c_m4f.nflw", &bytes),
        "joint 2 0 1 1 10 8",
        Model::joint_flow::<2, 1, 10, 8>,
    ));
}

#[test]
fn pyro_trained_coupling_matches_host_on_m4f() {
    let bytes = pyro_trained(
        "b_spline_coupling_params.json",
        r#"{"dim": 2, "layers": [{"type": "spline_coupling", "count_bins": 16}]}"#,
    );
    check(model_case(
        ("pyro-b-m4f", M4F, &[MPS2_AN386]),
        ("pyro_b.nflw", &bytes),
        "plain 2 0 0 1 20 16",
        Model::flow::<2, 1, 20, 16>,
    ));
}

#[test]
fn pyro_trained_joint_matches_host_on_m0() {
    let bytes = pyro_trained("c_conditional_params.json", PYRO_C);
    check(model_case(
        ("pyro-c-m0", M0, &[MICROBIT]),
        ("pyro_c.nflw", &bytes),
        "joint 2 0 1 1 10 8",
        Model::joint_flow::<2, 1, 10, 8>,
    ));
}

/// The streaming anomaly detector with a 6-D model and a `FLOW_STREAM` file of sensor rows.
#[test]
fn imu_model_with_stream_file_matches_host_on_m4f() {
    let bytes = imu_model(TEST_SEED);
    let path = write_file("imu6.nflw", &bytes);
    let model = Model::parse(&bytes).unwrap();
    let g = Geometry::of(&model).unwrap();
    assert_eq!(
        (g.kind, g.dim, g.layers, g.hidden, g.bins),
        (FlowKind::Plain, 6, 3, 24, 8)
    );
    let flow: Flow<6, 3, 24, 8> = model.flow().unwrap();
    let stream = imu_stream(&flow, &model);
    let stream_path = write_file("imu6-stream.f32", &stream);
    let host = host_results::<6, 0, _>(&model, &flow, Some(&stream));
    let (n, m) = host.flagged.unwrap();
    assert!(n >= 2 && n < m && m == 62, "the stream flags {n} of {m}");
    let mut case = Case::new("imu6-m4f", M4F, &[MPS2_AN386], path, g, bytes.len(), host);
    case.embed.stream = Some(stream_path);
    check(case);
}
