//! The example (flow-firmware-example) on its boards.

use crate::{shown, text, workload};
use flow_core::{Error, Flow, JointFlow, Model};
use flow_tests::elf::Elf;
use flow_tests::firmware::{example_dir, Board, ExampleBuild, M0, M4F};
use flow_tests::qemu;
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::models::*;
use crate::results::*;

// --- the example (flow-firmware-example) on its boards ---------------------------------------------

/// The example's readings, quantile and sample seed.
#[allow(dead_code)]
#[path = "../../../flow-firmware-example/src/inputs.rs"]
mod example_inputs;

/// Builds the example for `board` embedding `model` (and, if set, the bytes of `unchecked`
/// in its place), in the test's own target directory; the ELF copied to
/// `work_dir()/<label>/example.elf`, or cargo's stderr if the build fails.
fn example_build(
    board: Board,
    model: &Path,
    unchecked: Option<&Path>,
    label: &str,
) -> Result<PathBuf, String> {
    ExampleBuild {
        unchecked,
        ..ExampleBuild::new(board, model)
    }
    .build(&work_dir().join("example-target"), &work_dir().join(label))
}

/// A reading's result as the example prints it: `log_prob` (its bits) or the error's text, and
/// whether it was flagged. (The reading itself is printed to 6 digits, for a person.)
type Reading = (Result<u32, String>, bool);

/// The example's output, parsed (numbers as `f32` bits), or the host's.
#[derive(Debug, Default, PartialEq)]
struct ExampleOut {
    threshold: Option<u32>,
    readings: Vec<Reading>,
    flagged: Option<(usize, usize)>,
    samples: Vec<Vec<u32>>,
}

/// An `f32` printed in decimal (Rust's shortest round-trip form), as bits.
fn f32_bits(s: &str) -> u32 {
    s.parse::<f32>()
        .unwrap_or_else(|e| panic!("bad number {s:?}: {e}"))
        .to_bits()
}

/// `[a, b, …]` as bits, and the rest of the line.
fn f32_list(s: &str) -> (Vec<u32>, &str) {
    let s = s
        .strip_prefix('[')
        .unwrap_or_else(|| panic!("no list in {s:?}"));
    let (list, rest) = s
        .split_once(']')
        .unwrap_or_else(|| panic!("unclosed list {s:?}"));
    (list.split(", ").map(f32_bits).collect(), rest)
}

/// Parses the example's lines; `done` is checked by the caller.
fn example_parse(stdout: &str) -> ExampleOut {
    let mut o = ExampleOut::default();
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("threshold log_prob ") {
            o.threshold = Some(f32_bits(rest.split(' ').next().unwrap_or("")));
        } else if let Some(rest) = line.strip_prefix("reading ") {
            let (i, rest) = rest.split_once(' ').expect("reading index");
            assert_eq!(num::<usize>(i), o.readings.len(), "readings out of order");
            let (_, rest) = f32_list(rest);
            let flagged = rest.ends_with("  <- anomaly");
            let rest = rest.trim_end_matches("  <- anomaly");
            let lp = match rest.strip_prefix(" log_prob ") {
                Some(v) => Ok(f32_bits(v)),
                None => Err(rest.trim().to_string()),
            };
            o.readings.push((lp, flagged));
        } else if let Some(rest) = line.strip_prefix("flagged ") {
            let (n, m) = rest.split_once(" of ").expect("flagged n of m");
            o.flagged = Some((num(n), num(m)));
        } else if let Some(rest) = line.strip_prefix("sample ") {
            let (i, rest) = rest.split_once(' ').expect("sample index");
            assert_eq!(num::<usize>(i), o.samples.len(), "samples out of order");
            o.samples.push(f32_list(rest).0);
        }
    }
    o
}

/// A flow the example runs: plain or joint.
trait ExampleFlow<const D: usize> {
    fn log_prob(&self, x: &[f32; D]) -> Result<f32, Error>;
    fn sample(&self, rng: &mut rand_pcg::Pcg64) -> Result<[f32; D], Error>;
}

impl<const D: usize, const L: usize, const H: usize, const K: usize> ExampleFlow<D>
    for Flow<'_, D, L, H, K>
{
    fn log_prob(&self, x: &[f32; D]) -> Result<f32, Error> {
        Flow::log_prob(self, x)
    }
    fn sample(&self, rng: &mut rand_pcg::Pcg64) -> Result<[f32; D], Error> {
        Flow::sample(self, rng)
    }
}

impl<const D: usize, const L: usize, const H: usize, const K: usize> ExampleFlow<D>
    for JointFlow<'_, D, L, H, K>
{
    fn log_prob(&self, x: &[f32; D]) -> Result<f32, Error> {
        JointFlow::log_prob(self, x)
    }
    fn sample(&self, rng: &mut rand_pcg::Pcg64) -> Result<[f32; D], Error> {
        JointFlow::sample(self, rng)
    }
}

/// The host's numbers for the example's readings and samples: `log_prob` in raw units as
/// `Model::log_prob_raw` and `flow-train eval` compute it (the flow's `log_prob` of the
/// standardized reading, plus the scaler's log-determinant), the 1 % threshold shifted the same
/// way, and samples from `Pcg64::seed_from_u64(SAMPLE_SEED)` in raw units, as `flow-train
/// sample --seed` draws them.
fn example_host<const D: usize>(model: &Model<'_>, flow: &impl ExampleFlow<D>) -> ExampleOut {
    use example_inputs::{QUANTILE, READINGS, SAMPLES, SAMPLE_SEED};
    let shift = model.raw_log_det::<f32>();
    let threshold = model.threshold(QUANTILE).map(|t| t + shift);
    let mut o = ExampleOut {
        threshold: threshold.map(f32::to_bits),
        ..ExampleOut::default()
    };
    let mut n = 0;
    for r in &READINGS {
        let x: [f32; D] = workload::widen(r);
        let lp = flow.log_prob(&model.standardize(&x)).map(|v| v + shift);
        let flagged = match lp {
            Ok(v) => threshold.is_some_and(|t| v < t),
            Err(_) => true,
        };
        n += usize::from(flagged);
        let lp = lp
            .map(f32::to_bits)
            .map_err(|e| format!("not scored ({e})"));
        o.readings.push((lp, flagged));
    }
    o.flagged = Some((n, READINGS.len()));
    let mut rng = rand_pcg::Pcg64::seed_from_u64(SAMPLE_SEED);
    for _ in 0..SAMPLES {
        let x = model.unstandardize(&flow.sample(&mut rng).expect("the host samples"));
        o.samples.push(x.iter().map(|v| v.to_bits()).collect());
    }
    o
}

/// Builds the example for `board` with `model`, runs it, and compares every printed number
/// with the host's, bit for bit; reports the ELF's flash and static RAM.
fn example_case(board: Board, model_path: &Path, host: &ExampleOut, label: &str) {
    let elf = example_build(board, model_path, None, label)
        .unwrap_or_else(|e| panic!("building the example for {}:\n{e}", board.name));
    let run = qemu::run_example(board, &elf);
    assert!(
        run.code == Some(0) && run.stdout.lines().any(|l| l == "done"),
        "{label}: exit status {:?}\nstdout:\n{}\nstderr:\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    assert_eq!(
        run.stdout.lines().last(),
        Some("done"),
        "{label}: `done` is the last line"
    );
    let got = example_parse(&run.stdout);
    assert_eq!(
        got, *host,
        "{label}: the example's numbers differ from the host's\nstdout:\n{}",
        run.stdout
    );
    let e = Elf::read(&elf);
    let report = format!("example {label} ({}): {}\n", board.target, e.describe());
    print!("{report}");
    std::fs::write(work_dir().join(format!("report-{label}.txt")), &report).expect("write report");
}

/// The example's own model (the trained circles coupling) on every QEMU board.
fn example_default_model(board: Board) {
    let path = example_dir().join("models/circles_coupling.nflw");
    let bytes = std::fs::read(&path).expect("read the example's model");
    let model = Model::parse(&bytes).unwrap();
    let flow: Flow<2, 1, 20, 16> = model.flow().unwrap();
    let host = example_host(&model, &flow);
    // The readings must exercise the threshold: some flagged, not all.
    let (n, m) = host.flagged.unwrap();
    assert!(0 < n && n < m, "the readings flag {n} of {m}");
    example_case(board, &path, &host, &format!("example-{}", board.name));
}

#[test]
fn example_on_mps2_an386_matches_host() {
    example_default_model(Board::MPS2_AN386);
}

#[test]
fn example_on_netduinoplus2_uart_matches_host() {
    example_default_model(Board::NETDUINOPLUS2);
}

#[test]
fn example_on_microbit_uart_matches_host() {
    example_default_model(Board::MICROBIT);
}

#[test]
fn example_on_hifive1_uart_matches_host() {
    example_default_model(Board::HIFIVE1);
}

/// A joint flow (the kind `flow-train fit` writes by default): Pyro's trained
/// `spline(1) + conditional_spline(1)`, on the netduinoplus2's UART.
#[test]
fn example_joint_model_on_netduinoplus2_matches_host() {
    let bytes = pyro_trained("c_conditional_params.json", PYRO_C);
    let path = write_file("example-joint.nflw", &bytes);
    let model = Model::parse(&bytes).unwrap();
    let flow: JointFlow<2, 1, 10, 8> = model.joint_flow().unwrap();
    let host = example_host(&model, &flow);
    example_case(
        Board::NETDUINOPLUS2,
        &path,
        &host,
        "example-joint-netduinoplus2",
    );
}

/// The boards flashed with probe-rs (defmt over RTT): no hardware here, so they are built and
/// linked with the example's default model, and their flash and static RAM must fit the chip's
/// (`memory/<board>.x`). The Pico's image starts with its 256-byte second-stage boot loader.
#[test]
fn example_probe_rs_boards_build_link_and_fit() {
    let model = example_dir().join("models/circles_coupling.nflw");
    // (board, target, flash, RAM)
    let boards = [
        ("nrf52840-dk", M4F, 1024 * 1024, 256 * 1024),
        ("rp-pico", M0, 2048 * 1024, 256 * 1024),
        ("nucleo-f401re", M4F, 512 * 1024, 96 * 1024),
    ];
    let mut report = String::new();
    for (name, target, flash, ram) in boards {
        let board = Board { name, target };
        let elf = example_build(board, &model, None, &format!("example-{name}"))
            .unwrap_or_else(|e| panic!("building the example for {name}:\n{e}"));
        let e = Elf::read(&elf);
        assert!(
            e.symbols.iter().any(|s| s.0 == "_SEGGER_RTT"),
            "{name}: no RTT control block"
        );
        assert!(
            e.flash() <= flash && e.static_ram() < ram,
            "{name}: {}",
            e.describe()
        );
        if name == "rp-pico" {
            assert_eq!(e.size(".boot2"), 256, "{name}: the boot loader");
        }
        let _ = writeln!(report, "example {name} ({target}): {}", e.describe());
    }
    print!("{report}");
    std::fs::write(work_dir().join("report-example-probe-rs.txt"), &report).expect("write report");
}

/// A model that does not load fails the example's build with flow-core's error in words.
#[test]
fn example_build_fails_on_a_corrupt_model() {
    let mut bad = std::fs::read(example_dir().join("models/circles_coupling.nflw")).unwrap();
    let at = bad.len() - 400;
    bad[at] ^= 0x10;
    let err = Model::parse(&bad).expect_err("corrupt").to_string();
    let path = write_file("example-corrupt.nflw", &bad);
    let stderr = example_build(Board::NETDUINOPLUS2, &path, None, "example-corrupt-build")
        .expect_err("the build of a corrupt model succeeded");
    assert!(
        stderr.contains(&format!("{}: {err}", path.display())),
        "the build error does not name the model's error \"{err}\":\n{stderr}"
    );
}

/// A corrupt model embedded past the build's check (`FLOW_MODEL_UNCHECKED`) is an `error:` line
/// with flow-core's message and a failed run, over the UART and through semihosting.
#[test]
fn example_load_error_at_run_time_is_reported_in_words() {
    let good = example_dir().join("models/circles_coupling.nflw");
    let mut bad = std::fs::read(&good).unwrap();
    let at = bad.len() - 400;
    bad[at] ^= 0x10;
    let err = Model::parse(&bad).expect_err("corrupt").to_string();
    let bad_path = write_file("example-corrupt.nflw", &bad);
    for board in [Board::NETDUINOPLUS2, Board::MPS2_AN386] {
        let label = format!("example-load-error-{}", board.name);
        let elf = example_build(board, &good, Some(&bad_path), &label).unwrap();
        let run = qemu::run_example(board, &elf);
        assert_eq!(
            run.stdout.lines().last(),
            Some(format!("error: {err}").as_str()),
            "{label}: stdout:\n{}",
            run.stdout
        );
        assert_eq!(run.code, Some(1), "{label}: a load error must fail the run");
    }
}

/// The example's decimal printer (integer arithmetic only, no core float formatting).
#[allow(dead_code)]
#[path = "../../../flow-firmware-example/src/decimal.rs"]
mod example_decimal;

/// Every `f32` the example prints with 9 digits reads back as itself: edge cases and 2,000,000
/// random bit patterns (every exponent, subnormals); 6 digits are within 5·10⁻⁶ relative.
#[test]
fn example_decimals_read_back_as_the_same_f32() {
    use example_decimal::{Dec, List};
    let mut values = vec![
        0.0f32,
        -0.0,
        1.0,
        -2.118_403_4,
        0.1,
        1e-5,
        1.234_567_8e-5,
        99_999.99,
        999_999_940.0,
        f32::MAX,
        f32::MIN_POSITIVE,
        f32::from_bits(1),
        16_777_217.0,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ];
    let mut rng = Pcg32::seed_from_u64(0xDEC);
    values.extend((0..2_000_000).map(|_| f32::from_bits(rng.next_u32())));
    for v in values.into_iter().filter(|v| !v.is_nan()) {
        let s = shown(&Dec(v));
        let back: f32 = s
            .parse()
            .unwrap_or_else(|e| panic!("{v:e} printed as {s:?}: {e}"));
        assert_eq!(back.to_bits(), v.to_bits(), "{v:e} printed as {s}");
        if v.is_finite() && v != 0.0 {
            let short = shown(&List(&[v], 6));
            let back: f64 = short.trim_matches(['[', ']']).parse().unwrap();
            let rel = ((back - f64::from(v)) / f64::from(v)).abs();
            assert!(rel <= 5e-6, "{v:e} printed to 6 digits as {short}");
        }
    }
    assert_eq!(shown(&Dec(f32::NAN)), "NaN");
    assert_eq!(shown(&Dec(-2.5)), "-2.5");
    assert_eq!(shown(&Dec(-3530.6714)), "-3530.67139");
    assert_eq!(shown(&Dec(f32::EPSILON)), "1.1920929e-7");
    assert_eq!(shown(&Dec(0.000_123_456_79)), "0.00012345679");
    assert_eq!(shown(&List(&[0.7, 25.0], 6)), "[0.7, 25]");
    assert_eq!(shown(&Dec(1.0e9)), "1e9");
    assert_eq!(shown(&Dec(-123_456_790.0)), "-123456792");
    assert_eq!(shown(&Dec(f32::MAX)), "3.40282347e38");
    assert_eq!(shown(&Dec(f32::from_bits(1))), "1.40129846e-45");
    assert_eq!(shown(&List(&[], 6)), "[]");
    assert_eq!(shown(&0u32), "0");
    assert_eq!(shown(&u32::MAX), "4294967295");
    assert_eq!(shown(&text::Hex(0xdead_beef)), "0xdeadbeef");
    assert_eq!(shown(&text::Hex(0x0012_abcd)), "0x0012abcd");
}
