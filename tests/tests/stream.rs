//! Windows on the device: the example firmware's stream mode (a windowed model) under QEMU
//! prints, for every reading, the log-density of the window that ends with it, bit for bit the
//! host's `WindowScorer` over the same readings and model file; and the harness measures on
//! the Cortex-M4F what a new reading costs.
//!
//! Two models: `models/imu_window8.nflw` (trained by `flow-train fit --window 8`, checked in
//! with the example) and one of the same planned architecture with random parameters
//! (`flow_tests::models::imu_window8`), its thresholds the quantiles of its own windows on
//! `data/imu/imu_train.csv`. QEMU missing is a failure, not a skip (`scripts/test-all.sh`
//! installs it). Builds and runs go to this test's own temporary directory, through the
//! device tests' shared fixtures (`flow_tests::firmware`, `flow_tests::qemu`).

#[path = "../../flow-device-bench/src/windows.rs"]
mod windows;

use flow_core::stream::WindowScorer;
use flow_core::{JointFlow, Model};
use flow_tests::elf::Elf;
use flow_tests::firmware::{self, root, Board, Embed, ExampleBuild, M4F};
use flow_tests::qemu::{self, MPS2_AN386};
use rand_core::SeedableRng;
use rand_pcg::Pcg32;
use std::path::{Path, PathBuf};

/// The flow type of both models (capacities: `D = 12`, 9 layers, hidden 16, 4 bins).
type Flow<'a> = JointFlow<'a, 12, 9, 16, 4>;
/// Readings per window.
const W: usize = 8;
/// Rows per recording in `data/imu/imu_train.csv`.
const ROWS_PER_RECORDING: usize = 100;
/// The rows the example scores by default (`FLOW_READINGS_ROWS` in its build.rs): two
/// recordings of walking, one of standing.
const EXAMPLE_ROWS: std::ops::Range<usize> = 1200..1500;

/// The test's own directory for its model and readings files, builds and runs.
fn work_dir() -> PathBuf {
    firmware::work_dir(env!("CARGO_TARGET_TMPDIR"), "stream")
}

/// Writes `bytes` to `work_dir()/name` unless it holds them already (an unchanged file keeps
/// its mtime: no rebuild).
fn write_file(name: &str, bytes: &[u8]) -> PathBuf {
    firmware::write_file(&work_dir(), name, bytes)
}

// --- the readings and the models ------------------------------------------------------------

/// The rows of `data/imu/imu_train.csv` (6 values each, parsed as the example's build.rs
/// parses them: Rust's `f32` parsing).
fn imu_rows() -> Vec<[f32; 6]> {
    let text = std::fs::read_to_string(root().join("data/imu/imu_train.csv"))
        .expect("read data/imu/imu_train.csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z"),
        "the columns of imu_train.csv"
    );
    lines
        .map(|l| {
            let v: Vec<f32> = l.split(',').map(|v| v.trim().parse().unwrap()).collect();
            v.try_into().expect("6 values a row")
        })
        .collect()
}

/// Rows `rows` of `imu_train.csv` by recording (100 rows each, counted from the file's start).
fn recordings(rows: std::ops::Range<usize>) -> Vec<Vec<[f32; 6]>> {
    let all = imu_rows();
    let mut out: Vec<Vec<[f32; 6]>> = Vec::new();
    for i in rows {
        if i % ROWS_PER_RECORDING == 0 || out.is_empty() {
            out.push(Vec::new());
        }
        out.last_mut().unwrap().push(all[i]);
    }
    out
}

/// Window log-densities of every recording (`None` for readings without a full window), as
/// the device computes them.
fn scores(model: &Model<'_>, recs: &[Vec<[f32; 6]>]) -> Vec<Vec<Option<f32>>> {
    let flow: Flow = model.joint_flow().expect("the flow type holds the model");
    let mut s = WindowScorer::<12, { W - 1 }>::new(model).expect("a windowed model");
    recs.iter()
        .map(|r| {
            s.reset();
            r.iter().map(|x| s.push(&flow, x).unwrap()).collect()
        })
        .collect()
}

/// The random windowed model of the planned architecture, with the 0.1 %, 1 % and 5 %
/// quantiles of its window log-densities over the whole training file as thresholds; its
/// recordings divided by the text of `group_column` instead of every 100 rows, if given.
fn random_model(group_column: Option<&str>) -> Vec<u8> {
    let mut b = flow_tests::models::imu_window8(&mut Pcg32::seed_from_u64(0x57EA_F10E));
    if let Some(c) = group_column {
        b.window(W, None, Some(c));
    }
    // The data's scaler, as the trainer computes it (mean and standard deviation, ddof 0),
    // for both readings of a pair.
    let rows = imu_rows();
    let n = rows.len() as f64;
    let mean: Vec<f64> = (0..6)
        .map(|j| rows.iter().map(|r| r[j] as f64).sum::<f64>() / n)
        .collect();
    let sd: Vec<f32> = (0..6)
        .map(|j| {
            let v = rows
                .iter()
                .map(|r| (r[j] as f64 - mean[j]).powi(2))
                .sum::<f64>()
                / n;
            v.sqrt() as f32
        })
        .collect();
    let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    b.scaler(
        &[&mean[..], &mean[..]].concat(),
        &[&sd[..], &sd[..]].concat(),
    );
    let bytes = b.encode().unwrap();
    let model = Model::parse(&bytes).unwrap();
    let mut lps: Vec<f32> = scores(&model, &recordings(0..2800))
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    lps.sort_by(f32::total_cmp);
    let at = |q: f32| lps[(q * lps.len() as f32) as usize];
    b.thresholds(&[(0.001, at(0.001)), (0.01, at(0.01)), (0.05, at(0.05))]);
    b.encode().unwrap()
}

/// The checked-in trained model.
fn trained_model() -> (PathBuf, Vec<u8>) {
    let p = root().join("flow-firmware-example/models/imu_window8.nflw");
    let bytes = std::fs::read(&p).expect("read flow-firmware-example/models/imu_window8.nflw");
    (p, bytes)
}

/// `data/imu/imu_train.csv` up to row `rows.end`, with every 23rd reading of `rows` pushed far
/// off (a spike of +15 on one axis, as a knock on the sensor would give), and those rows by
/// recording: a stream whose windows the threshold must catch.
fn spiked_csv(rows: std::ops::Range<usize>) -> (Vec<u8>, Vec<Vec<[f32; 6]>>) {
    spiked_csv_with(rows, false)
}

/// [`spiked_csv`], with a first column `recording` (the recording's number in
/// `data/imu/imu_train_rows.csv`) if `with_recording`.
fn spiked_csv_with(
    rows: std::ops::Range<usize>,
    with_recording: bool,
) -> (Vec<u8>, Vec<Vec<[f32; 6]>>) {
    let mut all = imu_rows();
    all.truncate(rows.end);
    for (k, x) in all[rows.clone()].iter_mut().enumerate() {
        if k % 23 == 22 {
            x[k % 6] += 15.0;
        }
    }
    let ids: Vec<String> = std::fs::read_to_string(root().join("data/imu/imu_train_rows.csv"))
        .expect("read data/imu/imu_train_rows.csv")
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(1)
                .expect("row,recording_id,class,t")
                .to_string()
        })
        .collect();
    let mut text = String::from(if with_recording { "recording," } else { "" });
    text += "acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n";
    for (i, x) in all.iter().enumerate() {
        if with_recording {
            text += &ids[i];
            text.push(',');
        }
        let v: Vec<String> = x.iter().map(|v| format!("{v:?}")).collect();
        text += &v.join(",");
        text.push('\n');
    }
    let mut recs: Vec<Vec<[f32; 6]>> = Vec::new();
    for i in rows {
        if i % ROWS_PER_RECORDING == 0 || recs.is_empty() {
            recs.push(Vec::new());
        }
        recs.last_mut().unwrap().push(all[i]);
    }
    (text.into_bytes(), recs)
}

// --- building and running -------------------------------------------------------------------

/// The example for the mps2-an386 (Cortex-M4F) embedding `model` (its layer kinds added to
/// the default features), scoring the readings of `readings` (`FLOW_READINGS`, rows
/// `FLOW_READINGS_ROWS`) or, with `None`, its default ones; its ELF.
fn example_build(model: &Path, readings: Option<(&Path, &str)>, label: &str) -> PathBuf {
    let features = firmware::features(model).expect("the model's layer kinds");
    ExampleBuild {
        readings,
        features: &features,
        ..ExampleBuild::new(Board::MPS2_AN386, model)
    }
    .build(&work_dir().join("example-target"), &work_dir().join(label))
    .unwrap_or_else(|stderr| panic!("building {label} failed:\n{stderr}"))
}

/// Runs the example's ELF with its own runner (`qemu-run.sh mps2-an386`); its output.
fn example_run(elf: &Path) -> String {
    let run = qemu::run_example(Board::MPS2_AN386, elf);
    assert!(
        run.code == Some(0) && run.stdout.lines().last() == Some("done"),
        "the example's run failed (status {:?}):\n{}\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    run.stdout
}

// --- the example's stream mode ----------------------------------------------------------------

/// A reading as the example prints it: the reading (6 digits), the window's log-density (its
/// bits) or `None` while the window is not full, and the flag.
#[derive(Debug, PartialEq)]
struct Scored {
    reading: Vec<f32>,
    window: Option<u32>,
    flagged: bool,
}

/// The example's stream-mode output, parsed.
#[derive(Debug, Default)]
struct StreamOut {
    threshold: Option<u32>,
    /// Readings by recording.
    recordings: Vec<Vec<Scored>>,
    flagged: Option<(usize, usize)>,
}

fn bits(s: &str) -> u32 {
    s.parse::<f32>()
        .unwrap_or_else(|e| panic!("bad number {s:?}: {e}"))
        .to_bits()
}

fn parse_example(stdout: &str) -> StreamOut {
    let mut o = StreamOut::default();
    let mut i = 0;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("threshold window_log_prob ") {
            o.threshold = Some(bits(rest.split(' ').next().unwrap()));
        } else if let Some(rest) = line.strip_prefix("recording ") {
            let (r, n) = rest.split_once(": ").expect("recording r: n readings");
            assert_eq!(r.parse::<usize>().unwrap(), o.recordings.len(), "{line}");
            assert!(n.ends_with(" readings"), "{line}");
            o.recordings.push(Vec::new());
        } else if let Some(rest) = line.strip_prefix("reading ") {
            let (idx, rest) = rest.split_once(" [").expect("reading i [...]");
            assert_eq!(
                idx.parse::<usize>().unwrap(),
                i,
                "readings out of order: {line}"
            );
            i += 1;
            let (list, rest) = rest.split_once("] ").expect("a reading's list");
            let reading = list.split(", ").map(|v| v.parse().unwrap()).collect();
            let flagged = rest.ends_with("  <- anomaly");
            let rest = rest.trim_end_matches("  <- anomaly");
            let window = match rest.strip_prefix("window_log_prob ") {
                Some(v) => Some(bits(v)),
                None if rest == "window not full" => None,
                None => panic!("unexpected reading line {line:?}"),
            };
            o.recordings
                .last_mut()
                .expect("a reading before any recording")
                .push(Scored {
                    reading,
                    window,
                    flagged,
                });
        } else if let Some(rest) = line.strip_prefix("flagged ") {
            let (n, m) = rest
                .strip_suffix(" windows")
                .and_then(|r| r.split_once(" of "))
                .expect("flagged n of m windows");
            o.flagged = Some((n.parse().unwrap(), m.parse().unwrap()));
        }
    }
    o
}

/// Builds the example with `model` and `readings`, runs it, and compares every window it
/// prints with the host's `WindowScorer` over `recs` (the same readings), bit for bit; and the
/// threshold, the flags and the count. Returns the flagged and scored windows.
fn example_case(
    model_path: &Path,
    readings: Option<(&Path, &str)>,
    recs: &[Vec<[f32; 6]>],
    label: &str,
) -> (usize, usize) {
    let bytes = std::fs::read(model_path).unwrap();
    let model = Model::parse(&bytes).unwrap();
    assert_eq!(model.window(), Some(W));
    let elf = example_build(model_path, readings, label);
    let stdout = example_run(&elf);
    let got = parse_example(&stdout);
    // A windowed model's thresholds are window log-densities in raw units, used as stored.
    let threshold = model.threshold(0.01);
    assert_eq!(
        got.threshold,
        threshold.map(f32::to_bits),
        "{label}: the threshold"
    );
    let want = scores(&model, recs);
    assert_eq!(
        got.recordings.iter().map(Vec::len).collect::<Vec<_>>(),
        recs.iter().map(Vec::len).collect::<Vec<_>>(),
        "{label}: readings per recording\n{stdout}"
    );
    let (mut flagged, mut scored, mut bad) = (0, 0, Vec::new());
    for (r, (got, (xs, want))) in got
        .recordings
        .iter()
        .zip(recs.iter().zip(&want))
        .enumerate()
    {
        for (t, (g, (x, w))) in got.iter().zip(xs.iter().zip(want)).enumerate() {
            // Readings are printed to 6 significant digits: a relative error of at most 5e-6.
            for (p, v) in g.reading.iter().zip(x) {
                assert!(
                    (p - v).abs() <= 5e-6 * v.abs(),
                    "{label}: recording {r} reading {t}: printed {p}, the file's {v}"
                );
            }
            let flag = w.is_some_and(|v| threshold.is_some_and(|th| v < th));
            scored += usize::from(w.is_some());
            flagged += usize::from(flag);
            let want = Scored {
                reading: g.reading.clone(),
                window: w.map(f32::to_bits),
                flagged: flag,
            };
            if *g != want {
                bad.push(format!(
                    "recording {r} reading {t}: device {:?} ({:?}), host {:?} ({:?})",
                    g.window.map(f32::from_bits),
                    g,
                    w,
                    want
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{label}: {} readings differ from the host's:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert_eq!(got.flagged, Some((flagged, scored)), "{label}: the count");
    let e = Elf::read(&elf);
    println!(
        "example {label} (mps2-an386): {scored} windows, {flagged} flagged; flash {} B, \
         static RAM {} B",
        e.flash(),
        e.static_ram()
    );
    (flagged, scored)
}

/// The random model of the planned architecture, on a stream of the training file's readings
/// with spikes (`FLOW_READINGS`, `FLOW_READINGS_ROWS`): the second half of a recording, a
/// whole one and the start of a third (a stream need not start at a recording's first row).
#[test]
fn example_stream_mode_matches_host_random_model() {
    let model = write_file("random_window8.nflw", &random_model(None));
    let rows = 850..1060;
    let (csv, recs) = spiked_csv(rows.clone());
    assert_eq!(recs.iter().map(Vec::len).collect::<Vec<_>>(), [50, 100, 60]);
    let csv = write_file("spiked.csv", &csv);
    let arg = format!("{}..{}", rows.start, rows.end);
    let (flagged, scored) = example_case(&model, Some((&csv, &arg)), &recs, "example-random");
    assert_eq!(scored, rows.len() - 3 * (W - 1));
    // The threshold must matter: some windows flagged, not all.
    assert!(
        0 < flagged && flagged < scored,
        "the spiked stream flags {flagged} of {scored} windows"
    );
}

/// Recordings told apart by a column (`fit --group-column`): the same model but for its
/// grouping, on the same readings in a CSV with the recording's number as its first column.
#[test]
fn example_stream_mode_groups_by_column() {
    let model = write_file(
        "random_window8_column.nflw",
        &random_model(Some("recording")),
    );
    let rows = 850..1060;
    let (csv, recs) = spiked_csv_with(rows.clone(), true);
    let csv = write_file("spiked_recording.csv", &csv);
    let arg = format!("{}..{}", rows.start, rows.end);
    let (_, scored) = example_case(&model, Some((&csv, &arg)), &recs, "example-column");
    assert_eq!(scored, rows.len() - 3 * (W - 1));
}

/// The checked-in trained model on the example's default readings (rows 1200..1500 of the
/// training file: two recordings of walking, one of standing), as `scripts/run-firmware.sh
/// mps2-an386 flow-firmware-example/models/imu_window8.nflw` runs it.
#[test]
fn example_stream_mode_matches_host_trained_model() {
    let (path, _) = trained_model();
    let recs = recordings(EXAMPLE_ROWS);
    assert_eq!(recs.iter().map(Vec::len).collect::<Vec<_>>(), [100; 3]);
    let (flagged, scored) = example_case(&path, None, &recs, "example-trained");
    assert_eq!(scored, EXAMPLE_ROWS.len() - 3 * (W - 1));
    // The rows are chosen so that the model's threshold matters: some windows flagged (the
    // stored quantile is of the validation windows), not all.
    assert!(
        0 < flagged && flagged < scored,
        "the default readings flag {flagged} of {scored} windows"
    );
}

// --- the harness: what a new reading costs on the M4F ----------------------------------------

/// The harness for the M4F embedding `model`, with exactly its layer kinds; its ELF.
fn harness_build(model: &Path, label: &str) -> PathBuf {
    let embed = Embed {
        model: model.to_path_buf(),
        ..Embed::default()
    };
    let elfs = firmware::build_harness(
        M4F,
        &embed,
        &["flow-device-bench"],
        &[],
        &work_dir().join("harness-target"),
        &work_dir().join(label),
    )
    .unwrap_or_else(|stderr| panic!("building {label} failed:\n{stderr}"));
    elfs[0].clone()
}

/// Runs the harness on QEMU's mps2-an386 (Cortex-M4F) with `-icount shift=0`, as
/// `scripts/run-bench.sh m4f` does; its output.
fn harness_run(elf: &Path) -> String {
    let run = qemu::run(MPS2_AN386, elf);
    assert!(
        run.code == Some(0) && run.stdout.lines().last() == Some("done"),
        "the harness's run failed (status {:?}):\n{}",
        run.code,
        run.stdout
    );
    run.stdout
}

/// The value of the harness's `name <v>` line.
fn metric(stdout: &str, name: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no `{name}` line in the harness's output:\n{stdout}"))
}

/// The SysTick calibration's three loops give ticks linear in the loop length (the third
/// predicted from the first two within 2 ticks): the instruction counts can be trusted.
fn check_calibration(stdout: &str) {
    let calib: Vec<(f64, f64)> = stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("calib ")?.split(' ');
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect();
    let [(n0, t0), (n1, t1), (n2, t2)] = calib[..] else {
        panic!("expected 3 calib lines:\n{stdout}")
    };
    assert!(t1 > t0 && n1 > n0, "SysTick does not count: {calib:?}");
    let predicted = t0 + (n2 - n0) * (t1 - t0) / (n1 - n0);
    assert!(
        (predicted - t2).abs() <= 2.0,
        "calibration not linear: {calib:?}"
    );
}

/// The M4F's targets for a windowed model of `W = 8` (issue 17): instructions per new reading,
/// RAM (static + the stack's high-water mark), flash (the harness's ELF with the model).
const MAX_INSTRUCTIONS_PER_READING: u64 = 100_000;
const MAX_RAM_BYTES: u64 = 8 * 1024;
const MAX_FLASH_BYTES: u64 = 64 * 1024;

/// Runs the harness with `model` on the M4F: every window it prints equals the host's
/// (`windows.rs` on the host, same model file), bit for bit; returns its output and ELF.
fn harness_case(model_path: &Path, label: &str) -> (String, Elf) {
    let bytes = std::fs::read(model_path).unwrap();
    let model = Model::parse(&bytes).unwrap();
    let elf = harness_build(model_path, label);
    let stdout = harness_run(&elf);
    check_calibration(&stdout);
    let flow: Flow = model.joint_flow().unwrap();
    let mut scorer = WindowScorer::<12, { W - 1 }>::new(&model).unwrap();
    let mut want = Vec::new();
    windows::score(&mut scorer, &flow, |t, r| {
        want.push(match r.expect("the host scores every reading") {
            Some(lp) => format!("window {t} {:08x}", lp.to_bits()),
            None => format!("window {t} none"),
        })
    });
    let got: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("window "))
        .collect();
    assert_eq!(
        got, want,
        "{label}: the device's windows differ from the host's"
    );
    assert_eq!(
        want.iter().filter(|l| !l.ends_with("none")).count(),
        windows::READINGS.len() - (W - 1)
    );
    (stdout, Elf::read(&elf))
}

/// Checks the M4F figures of the harness's run against the targets and prints them.
fn check_targets(label: &str, stdout: &str, elf: &Elf) {
    let per_reading = metric(stdout, "icount_per_reading");
    let peak = metric(stdout, "stack_peak_bytes");
    let ram = elf.static_ram() + peak;
    let flash = elf.flash();
    println!(
        "{label} on mps2-an386 (M4F), {} parameters, model {} B: {per_reading} instructions \
         per new reading (log_prob of a pair {}), RAM {ram} B (static {} + stack peak {peak}; \
         a push {} B of stack, the scorer {} B, the flow {} B), flash {flash} B",
        metric(stdout, "model_params"),
        metric(stdout, "model_file_bytes"),
        metric(stdout, "icount_per_log_prob"),
        elf.static_ram(),
        metric(stdout, "stack_push_bytes"),
        metric(stdout, "scorer_bytes"),
        metric(stdout, "flow_struct_bytes"),
    );
    assert!(
        per_reading <= MAX_INSTRUCTIONS_PER_READING,
        "{label}: {per_reading} instructions per new reading (at most \
         {MAX_INSTRUCTIONS_PER_READING})"
    );
    assert!(
        ram <= MAX_RAM_BYTES,
        "{label}: RAM {ram} B (at most {MAX_RAM_BYTES})"
    );
    assert!(
        flash <= MAX_FLASH_BYTES,
        "{label}: flash {flash} B (at most {MAX_FLASH_BYTES})"
    );
}

/// The harness's readings are rows 800..824 of the training file.
#[test]
fn harness_readings_are_the_training_files() {
    let rows = imu_rows();
    for (t, r) in windows::READINGS.iter().enumerate() {
        assert_eq!(
            r.map(f32::to_bits),
            rows[800 + t].map(f32::to_bits),
            "reading {t}"
        );
    }
}

/// The random model of the planned architecture on the M4F: bit parity of its windows, and
/// the targets.
#[test]
fn harness_random_model_on_m4f() {
    let model = write_file("random_window8.nflw", &random_model(None));
    let (stdout, elf) = harness_case(&model, "harness-random");
    check_targets("the random model", &stdout, &elf);
}

/// The checked-in trained model on the M4F: bit parity of its windows, and the targets (the
/// figures of `docs/device.md`).
#[test]
fn harness_trained_model_on_m4f() {
    let (path, _) = trained_model();
    let (stdout, elf) = harness_case(&path, "harness-trained");
    check_targets("the trained model", &stdout, &elf);
}
