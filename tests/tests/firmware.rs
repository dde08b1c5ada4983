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
#[path = "../../flow-device-bench/src/errtext.rs"]
mod errtext;
#[allow(dead_code)]
#[path = "../../flow-device-bench/src/geometry.rs"]
mod geometry;
#[allow(dead_code)]
#[path = "../../flow-device-bench/src/workload.rs"]
mod workload;

use flow_core::model::{FlowKind, ModelBuilder};
use flow_core::{
    Capacity, ConditionalFlow, Error, Feature, Flow, FormatError, JointFlow, LayerError, Model,
    Order, Spline, SplineShape,
};
use flow_tests::elf::Elf;
use flow_tests::models::{hypernet, joint_layers, params};
use geometry::Geometry;
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use workload::Density;

/// Seed of the tutorial model the comparison tests embed.
const TEST_SEED: u64 = 0xF10F_C0DE;
/// Wall-clock limit of one QEMU run, in seconds (a run takes a few seconds at most).
const QEMU_TIMEOUT_S: &str = "120";

// --- the model files -------------------------------------------------------------------------

/// `n` uniforms in `[-a, a)` from 24-bit draws.
fn uniforms(rng: &mut Pcg32, n: usize, a: f32) -> impl Iterator<Item = f32> + '_ {
    (0..n).map(move |_| {
        let u = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
        (2.0 * u - 1.0) * a
    })
}

/// Empirical `(quantile, log_prob)` thresholds of a flow from its own samples, as the trainer
/// stores them (there from validation data).
fn thresholds(mut lps: Vec<f32>) -> Vec<(f32, f32)> {
    lps.retain(|v| v.is_finite());
    lps.sort_by(f32::total_cmp);
    [0.001f32, 0.01, 0.05]
        .iter()
        .map(|&q| (q, lps[((q * lps.len() as f32) as usize).min(lps.len() - 1)]))
        .collect()
}

/// Pyro's tutorial `spline_coupling(2, count_bins=16)` (linear, bound 3, hidden [20, 20]) with
/// moderate random parameters: lower spline in `[-1.5, 1.5)`, hypernetwork layers in
/// `±1.5/sqrt(fan_in)` (1.5 × torch's default init), so that the splines are far from the
/// identity yet finite. With a scaler and the 0.1 %, 1 % and 5 % log-density quantiles of 4000
/// of its own samples as thresholds.
fn tutorial_model(seed: u64) -> Vec<u8> {
    let shape = SplineShape::new(16, 3.0, Order::Linear).unwrap();
    let mut rng = Pcg32::seed_from_u64(seed);
    let lower: Vec<f32> = uniforms(&mut rng, Spline::param_count(1, &shape), 1.5).collect();
    let mut nn = Vec::new();
    let sizes = [1, 20, 20, shape.params_per_dim()];
    for w in sizes.windows(2) {
        let a = 1.5 / (w[0] as f32).sqrt();
        nn.extend(uniforms(&mut rng, w[0] * w[1] + w[1], a));
    }
    let mut b = ModelBuilder::plain(2);
    b.coupling(1, 1, &shape, 0, &[20, 20], &lower, &nn)
        .columns(&["accel_x", "accel_y"])
        .scaler(&[0.25, -0.5], &[0.8, 1.6]);
    let bytes = b.encode().unwrap();
    let model = Model::parse(&bytes).unwrap();
    let flow: Flow<2, 1, 20, 16> = model.flow().unwrap();
    let mut rng = Pcg32::seed_from_u64(seed ^ 0x7157);
    let lps = (0..4000)
        .map(|_| {
            flow.log_prob(&flow.sample::<f32, _>(&mut rng).unwrap())
                .unwrap()
        })
        .collect();
    b.thresholds(&thresholds(lps));
    b.encode().unwrap()
}

/// A conditional flow on `R²` with a 2-value context: a conditional spline (linear, 8 bins,
/// hidden [12]), a permutation and a conditional coupling (quadratic, 8 bins, hidden
/// [10, 10]); scaler and thresholds (from samples at the workload's contexts).
fn conditional_model(seed: u64) -> Vec<u8> {
    let mut rng = Pcg32::seed_from_u64(seed);
    let lin = SplineShape::new(8, 3.0, Order::Linear).unwrap();
    let quad = SplineShape::new(8, 2.5, Order::Quadratic).unwrap();
    let cs = hypernet(&mut rng, 2, &[12], 2 * lin.params_per_dim(), 2.0);
    let lower = params(&mut rng, Spline::param_count(1, &quad), 1.5);
    let nn = hypernet(&mut rng, 1 + 2, &[10, 10], quad.params_per_dim(), 2.0);
    let mut b = ModelBuilder::conditional(2, 2);
    b.conditional_spline(2, &lin, 2, &[12], &cs)
        .permute(&[1, 0])
        .coupling(1, 1, &quad, 2, &[10, 10], &lower, &nn)
        .columns(&["x", "y", "temp", "load"])
        .scaler(&[1.0, -1.0], &[2.0, 0.5]);
    let bytes = b.encode().unwrap();
    let model = Model::parse(&bytes).unwrap();
    let flow: ConditionalFlow<2, 2, 3, 12, 8> = model.conditional_flow().unwrap();
    let mut rng = Pcg32::seed_from_u64(seed ^ 0x7157);
    let lps = (0..4000)
        .map(|i| {
            let c: [f32; 2] = workload::widen(&workload::CONTEXTS[i % workload::CONTEXTS.len()]);
            let x = flow.condition(&c).sample(&mut rng).unwrap();
            flow.log_prob(&x, &c).unwrap()
        })
        .collect();
    b.thresholds(&thresholds(lps));
    b.encode().unwrap()
}

/// [`joint_layers`] with columns, a scaler, and thresholds without the 1 % quantile (the
/// firmware then uses the lowest).
fn joint_model(seed: u64) -> Vec<u8> {
    let mut b = joint_layers(&mut Pcg32::seed_from_u64(seed));
    b.columns(&["a", "b", "c"])
        .scaler(&[0.0, 10.0, -5.0], &[1.0, 4.0, 0.25])
        .thresholds(&[(0.05, -6.0), (0.2, -4.5)]);
    b.encode().unwrap()
}

/// A 6-D plain flow shaped like the IMU anomaly detector to come (accelerometer and gyroscope,
/// 3 axes each): two couplings (3 | 3, linear, 8 bins, hidden [24]) around a permutation, a
/// scaler in sensor units, and thresholds from 4000 of its own samples.
fn imu_model(seed: u64) -> Vec<u8> {
    let mut rng = Pcg32::seed_from_u64(seed);
    let l8 = SplineShape::new(8, 3.0, Order::Linear).unwrap();
    let mut b = ModelBuilder::plain(6);
    for k in 0..2 {
        let lower = params(&mut rng, Spline::param_count(3, &l8), 1.5);
        let nn = hypernet(&mut rng, 3, &[24], 3 * l8.params_per_dim(), 2.0);
        b.coupling(3, 3, &l8, 0, &[24], &lower, &nn);
        if k == 0 {
            b.permute(&[3, 4, 5, 0, 1, 2]);
        }
    }
    b.columns(&["ax", "ay", "az", "gx", "gy", "gz"]).scaler(
        &[0.0, 0.0, 9.81, 0.0, 0.0, 0.0],
        &[0.5, 0.5, 0.5, 0.2, 0.2, 0.2],
    );
    let bytes = b.encode().unwrap();
    let model = Model::parse(&bytes).unwrap();
    let flow: Flow<6, 3, 24, 8> = model.flow().unwrap();
    let mut rng = Pcg32::seed_from_u64(seed ^ 0x7157);
    let lps = (0..4000)
        .map(|_| {
            flow.log_prob(&flow.sample::<f32, _>(&mut rng).unwrap())
                .unwrap()
        })
        .collect();
    b.thresholds(&thresholds(lps));
    b.encode().unwrap()
}

/// A `FLOW_STREAM` file for the IMU model: 60 rows in sensor units (samples of the flow, every
/// 8th with a spike on one axis), plus a row with a NaN and one with an infinity.
fn imu_stream(flow: &Flow<6, 3, 24, 8>, model: &Model<'_>) -> Vec<u8> {
    let mut rng = Pcg32::seed_from_u64(0x57EA);
    let mut rows: Vec<[f32; 6]> = (0..60)
        .map(|i| {
            let mut x: [f32; 6] = flow.sample(&mut rng).unwrap();
            if i % 8 == 7 {
                x[i % 6] += 7.0;
            }
            model.unstandardize(&x)
        })
        .collect();
    rows.insert(9, [0.1, 0.2, f32::NAN, 0.0, 0.0, 0.0]);
    rows.insert(30, [0.0, 0.0, 9.8, f32::INFINITY, 0.0, 0.0]);
    rows.iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect()
}

/// The harness crate.
fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../flow-device-bench")
}

/// The example crate, whose default model the harness embeds too.
fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../flow-firmware-example")
}

fn work_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("firmware");
    std::fs::create_dir_all(&d).expect("create the test's work directory");
    d
}

/// Writes `bytes` to `work_dir()/name` unless the file already holds them (an unchanged file
/// keeps its mtime, so cargo does not rebuild the firmware for it).
fn write_file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = work_dir().join(name);
    if std::fs::read(&p).ok().as_deref() != Some(bytes) {
        std::fs::write(&p, bytes).expect("write a model or stream file");
    }
    p
}

// --- building and running the firmware -----------------------------------------------------

/// What a firmware build embeds.
#[derive(Clone, Default)]
struct Embed {
    /// `FLOW_MODEL`.
    model: PathBuf,
    /// `FLOW_MODEL_UNCHECKED`.
    unchecked: Option<PathBuf>,
    /// `FLOW_STREAM`.
    stream: Option<PathBuf>,
}

/// The firmware's cargo command for `target` with `embed`'s variables, in the test's own
/// target directory (`<target dir>/tmp/firmware/target`, so parallel runs with different
/// target directories do not meet).
fn cargo(target: &str, embed: &Embed) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(firmware_dir())
        .args(["build", "--release", "--target", target])
        .arg("--target-dir")
        .arg(work_dir().join("target"))
        .env("FLOW_MODEL", &embed.model)
        // The firmware's link flags come from its .cargo/config.toml, which RUSTFLAGS would
        // replace; the host's target directory and target must not leak in either.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null());
    // Exactly the layer kinds the model needs (a model that does not parse fails in build.rs).
    if let Ok(bytes) = std::fs::read(&embed.model) {
        if let Ok(features) = Model::parse(&bytes).and_then(|m| geometry::features(&m)) {
            cmd.args(["--no-default-features", "--features", &features.join(",")]);
        }
    }
    for (var, v) in [
        ("FLOW_MODEL_UNCHECKED", &embed.unchecked),
        ("FLOW_STREAM", &embed.stream),
    ] {
        match v {
            Some(p) => cmd.env(var, p),
            None => cmd.env_remove(var),
        };
    }
    cmd
}

/// Builds are serialized: they share the firmware's target directory, and a concurrent build
/// with another model would overwrite the binaries. Each label is built once per test run.
static BUILDS: Mutex<BTreeMap<String, Vec<PathBuf>>> = Mutex::new(BTreeMap::new());

/// Builds `bins` of the firmware for `target` embedding `embed` (extra cargo arguments
/// `extra`), and copies them to `work_dir()/<label>/<bin>.elf`; once per label and test run.
fn build(target: &str, embed: &Embed, label: &str, bins: &[&str], extra: &[&str]) -> Vec<PathBuf> {
    let mut builds = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = builds.get(label) {
        return b.clone();
    }
    let mut cmd = cargo(target, embed);
    for b in bins {
        cmd.args(["--bin", b]);
    }
    let out = cmd
        .args(extra)
        .output()
        .expect("run cargo to build the firmware");
    assert!(
        out.status.success(),
        "building the firmware ({label}) for {target} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dest = work_dir().join(label);
    std::fs::create_dir_all(&dest).expect("create build output dir");
    let elfs: Vec<PathBuf> = bins
        .iter()
        .map(|bin| {
            let from = work_dir()
                .join("target")
                .join(target)
                .join("release")
                .join(bin);
            let to = dest.join(format!("{bin}.elf"));
            std::fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
            to
        })
        .collect();
    builds.insert(label.to_string(), elfs.clone());
    elfs
}

fn require_qemu() {
    let ok = Command::new("qemu-system-arm")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "qemu-system-arm is not installed or does not run; the firmware tests need it \
         (scripts/test-all.sh installs it: apt-get install qemu-system-arm)"
    );
}

/// A QEMU machine to run a target's firmware on.
#[derive(Clone, Copy)]
struct Machine {
    name: &'static str,
    cpu: Option<&'static str>,
}

const MPS2_AN386: Machine = Machine {
    name: "mps2-an386",
    cpu: Some("cortex-m4"),
};
const LM3S6965EVB: Machine = Machine {
    name: "lm3s6965evb",
    cpu: None,
};
const MPS2_AN385: Machine = Machine {
    name: "mps2-an385",
    cpu: None,
};
const MICROBIT: Machine = Machine {
    name: "microbit",
    cpu: None,
};
/// The HiFive1's FE310 (RISC-V): the harness prints on UART0 (`qemu_uart`).
const SIFIVE_E: Machine = Machine {
    name: "sifive_e",
    cpu: None,
};

const M4F: &str = "thumbv7em-none-eabihf";
const M3: &str = "thumbv7m-none-eabi";
const M0: &str = "thumbv6m-none-eabi";
const RV32IMAC: &str = "riscv32imac-unknown-none-elf";
const RV32IMC: &str = "riscv32imc-unknown-none-elf";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `elf` on `machine` under `timeout`, with instruction counting (`-icount shift=0`).
fn qemu(machine: Machine, elf: &Path) -> Run {
    if machine.name == SIFIVE_E.name {
        return qemu_uart(machine, elf);
    }
    require_qemu();
    let mut cmd = Command::new("timeout");
    cmd.args([
        "--kill-after=5",
        QEMU_TIMEOUT_S,
        "qemu-system-arm",
        "-machine",
        machine.name,
    ]);
    if let Some(cpu) = machine.cpu {
        cmd.args(["-cpu", cpu]);
    }
    cmd.args([
        "-nographic",
        "-semihosting-config",
        "enable=on,target=native",
        "-icount",
        "shift=0",
        "-kernel",
    ])
    .arg(elf);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run timeout qemu-system-arm");
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_ne!(
        run.code,
        Some(124),
        "QEMU ({}) timed out after {QEMU_TIMEOUT_S} s on {}; output:\n{}",
        machine.name,
        elf.display(),
        run.stdout
    );
    run
}

/// Runs the RISC-V harness `elf` on `machine` (`qemu-system-riscv32`, `-icount shift=0`, no
/// semihosting) and reads its UART: QEMU does not exit by itself, so the run is ended at `done`
/// (status 0) or a `load-error`, `trap` or `panic` line (status 1); QEMU stopping before
/// either gives its own status (124 on the timeout, a failure).
fn qemu_uart(machine: Machine, elf: &Path) -> Run {
    use std::io::BufRead;
    let ok = Command::new("qemu-system-riscv32")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "qemu-system-riscv32 is not installed; scripts/test-all.sh installs it (qemu-system-misc)"
    );
    let mut child = Command::new("timeout")
        .args(["--kill-after=5", QEMU_TIMEOUT_S, "qemu-system-riscv32"])
        .args([
            "-machine",
            machine.name,
            "-display",
            "none",
            "-monitor",
            "none",
        ])
        .args(["-serial", "stdio", "-icount", "shift=0", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run timeout qemu-system-riscv32");
    let lines = std::io::BufReader::new(child.stdout.take().expect("QEMU's stdout")).lines();
    let (mut stdout, mut code) = (String::new(), None);
    for line in lines {
        let line = line.expect("read QEMU's output");
        stdout.push_str(&line);
        stdout.push('\n');
        match line.split_whitespace().next() {
            Some("done") => code = Some(0),
            Some("load-error" | "trap" | "panic") => code = Some(1),
            _ => continue,
        }
        break;
    }
    if code.is_some() {
        // SIGTERM to `timeout`, which passes it on to QEMU.
        let _ = Command::new("kill").arg(child.id().to_string()).status();
    }
    let status = child.wait().expect("wait for QEMU");
    let code = code.or(status.code());
    assert_ne!(
        code,
        Some(124),
        "QEMU ({}) timed out after {QEMU_TIMEOUT_S} s on {}; output:\n{stdout}",
        machine.name,
        elf.display()
    );
    Run {
        code,
        stdout,
        stderr: String::new(),
    }
}

// --- results: the host's, and the device's as printed ----------------------------------------

/// A result as printed: `f32` bits, or the text of a flow-core error.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Bits(Vec<u32>),
    Err(String),
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Bits(b) => {
                let v: Vec<String> = b
                    .iter()
                    .map(|b| format!("{:e} (0x{b:08x})", f32::from_bits(*b)))
                    .collect();
                write!(f, "[{}]", v.join(", "))
            }
            Val::Err(e) => write!(f, "error \"{e}\""),
        }
    }
}

/// How the firmware prints `e` (built without its feature `error-text`): `E<n> …`.
fn device_code(e: &Error) -> String {
    let mut s = String::new();
    errtext::code(&mut s, e);
    s
}

/// `tag` and indices of a result line.
type Key = (String, Vec<usize>);

/// The host's results, from the same `workload::run` as the device's.
#[derive(Default)]
struct Host {
    results: BTreeMap<Key, (Vec<f32>, Vec<f32>, Val)>,
    threshold: Option<Option<(u32, u32)>>,
    flagged: Option<(usize, usize)>,
}

impl workload::Report for Host {
    fn result(
        &mut self,
        tag: &'static str,
        idx: &[usize],
        input: [&[f32]; 2],
        out: Result<&[f32], &Error>,
    ) {
        let val = match out {
            Ok(v) => Val::Bits(v.iter().map(|x| x.to_bits()).collect()),
            Err(e) => Val::Err(device_code(e)),
        };
        let key = (tag.to_string(), idx.to_vec());
        let old = self
            .results
            .insert(key, (input[0].to_vec(), input[1].to_vec(), val));
        assert!(old.is_none(), "duplicate result {tag} {idx:?}");
    }

    fn threshold(&mut self, t: Option<(f32, f32)>) {
        self.threshold = Some(t.map(|(q, lp)| (q.to_bits(), lp.to_bits())));
    }

    fn flagged(&mut self, n: usize, m: usize) {
        self.flagged = Some((n, m));
    }
}

/// The device's output, parsed.
#[derive(Default, Debug)]
struct Output {
    results: BTreeMap<Key, Val>,
    threshold: Option<Option<(u32, u32)>>,
    flagged: Option<(usize, usize)>,
    calib: Vec<(u64, u64)>,
    metrics: BTreeMap<String, u64>,
    geometry: Option<String>,
    load_error: Option<String>,
    done: bool,
}

fn hex(s: &str) -> u32 {
    u32::from_str_radix(s, 16).unwrap_or_else(|e| panic!("bad hex {s:?}: {e}"))
}

fn num<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse()
        .unwrap_or_else(|e| panic!("bad number {s:?}: {e:?}"))
}

/// How many indices a result line of `tag` has (0: not a result line).
fn indices(tag: &str) -> usize {
    match tag {
        "lp" | "lp_raw" | "sample" | "sample_raw" | "flag" => 1,
        "clp" | "csample" => 2,
        _ => 0,
    }
}

fn parse(stdout: &str) -> Output {
    let mut o = Output::default();
    for line in stdout.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(&tag) = w.first() else { continue };
        let n = indices(tag);
        if n > 0 && w.len() > n {
            let idx = w[1..=n].iter().map(|s| num(s)).collect();
            let val = match &w[n + 1..] {
                ["err", msg @ ..] => Val::Err(msg.join(" ")),
                bits => Val::Bits(bits.iter().map(|b| hex(b)).collect()),
            };
            let old = o.results.insert((tag.to_string(), idx), val);
            assert!(old.is_none(), "device printed twice: {line}");
            continue;
        }
        match w.as_slice() {
            ["threshold", "none"] => o.threshold = Some(None),
            ["threshold", q, lp] => o.threshold = Some(Some((hex(q), hex(lp)))),
            ["flagged", n, "of", m] => o.flagged = Some((num(n), num(m))),
            ["calib", n, t] => o.calib.push((num(n), num(t))),
            ["geometry", ..] => o.geometry = Some(w[1..].join(" ")),
            ["load-error", ..] => {
                o.load_error = Some(line["load-error ".len().min(line.len())..].to_string())
            }
            ["done"] => o.done = true,
            [key, v] if v.parse::<u64>().is_ok() => {
                o.metrics.insert(key.to_string(), num(v));
            }
            _ => {}
        }
    }
    o
}

/// ULP distance of two finite `f32` (for messages only).
fn ulps(a: u32, b: u32) -> u64 {
    let key = |x: u32| {
        if x & 0x8000_0000 != 0 {
            -((x & 0x7FFF_FFFF) as i64)
        } else {
            x as i64
        }
    };
    (key(a) - key(b)).unsigned_abs()
}

/// Every difference between the device's results and the host's, one message each.
fn mismatches(machine: &str, out: &Output, host: &Host) -> Vec<String> {
    let mut bad = Vec::new();
    for ((tag, idx), (x, c, want)) in &host.results {
        let what = |x: &[f32], c: &[f32]| {
            let mut s = String::new();
            if !x.is_empty() {
                let _ = write!(s, " at x = {x:?}");
            }
            if !c.is_empty() {
                let _ = write!(s, " context {c:?}");
            }
            s
        };
        match out.results.get(&(tag.clone(), idx.clone())) {
            None => bad.push(format!(
                "{machine}: `{tag} {idx:?}`{} not printed (host {want})",
                what(x, c)
            )),
            Some(got) if got != want => {
                let d = match (got, want) {
                    (Val::Bits(a), Val::Bits(b)) if a.len() == b.len() => {
                        let u: Vec<u64> = a.iter().zip(b).map(|(a, b)| ulps(*a, *b)).collect();
                        format!(" ({u:?} ULP)")
                    }
                    _ => String::new(),
                };
                bad.push(format!(
                    "{machine}: `{tag} {idx:?}`{}: device {got}, host {want}{d}",
                    what(x, c)
                ));
            }
            Some(_) => {}
        }
    }
    for (tag, idx) in out.results.keys() {
        if !host.results.contains_key(&(tag.clone(), idx.clone())) {
            bad.push(format!(
                "{machine}: device printed `{tag} {idx:?}`, the host has no such result"
            ));
        }
    }
    if out.threshold != host.threshold {
        bad.push(format!(
            "{machine}: threshold: device {:?}, host {:?}",
            out.threshold, host.threshold
        ));
    }
    if out.flagged != host.flagged {
        bad.push(format!(
            "{machine}: flagged (n, of m): device {:?}, host {:?}",
            out.flagged, host.flagged
        ));
    }
    bad
}

/// Runs the workload on the host for `flow` with the stream the firmware uses.
fn host_results<const D: usize, const C: usize, F: Density<D, C>>(
    model: &Model<'_>,
    flow: &F,
    stream: Option<&[u8]>,
) -> Host {
    let mut h = Host::default();
    match stream {
        Some(bytes) => workload::run::<D, C, _, _>(
            model,
            flow,
            workload::FileStream::<D, C>::new(bytes),
            &mut h,
        ),
        None => workload::run::<D, C, _, _>(
            model,
            flow,
            workload::SampledStream::new(model, flow),
            &mut h,
        ),
    }
    h
}

// --- the checks --------------------------------------------------------------------------------

/// The three calibration loops must give ticks linear in the loop length: the third is
/// predicted from the first two within 2 ticks.
fn check_calibration(machine: &str, calib: &[(u64, u64)]) {
    let [(n0, t0), (n1, t1), (n2, t2)] = calib else {
        panic!("{machine}: expected 3 calib lines, got {calib:?}");
    };
    assert!(
        t1 > t0 && n1 > n0,
        "{machine}: SysTick does not count: {calib:?}"
    );
    let predicted =
        *t0 as f64 + (*n2 as f64 - *n0 as f64) * (*t1 - *t0) as f64 / (*n1 - *n0) as f64;
    assert!(
        (predicted - *t2 as f64).abs() <= 2.0,
        "{machine}: calibration not linear: {calib:?} (predicted {predicted} ticks for {n2})"
    );
}

fn metric(machine: &str, o: &Output, key: &str) -> u64 {
    *o.metrics
        .get(key)
        .unwrap_or_else(|| panic!("{machine}: no `{key}` line"))
}

/// The geometry line the firmware prints for `g`.
fn geometry_line(g: &Geometry) -> String {
    format!(
        "{} {} {} {} {} {} {}",
        g.kind_name(),
        g.dim,
        g.context,
        g.split,
        g.layers,
        g.hidden,
        g.bins
    )
}

/// One firmware build to compare: its model, what it embeds, and the host's results.
struct Case<'a> {
    label: &'a str,
    target: &'a str,
    machines: &'a [Machine],
    embed: Embed,
    geometry: Geometry,
    model_bytes: u64,
    host: Host,
    /// Also build and run the template and the fault binary.
    with_template: bool,
    /// The harness's budget, checked when set: at most this many bytes of flash and
    /// instructions per `log_prob` (inside the box).
    budget: Option<(u64, u64)>,
}

impl<'a> Case<'a> {
    /// The model file at `model` (whose bytes are `model_bytes` long) embedded alone, no
    /// template run.
    fn new(
        label: &'a str,
        target: &'a str,
        machines: &'a [Machine],
        model: PathBuf,
        geometry: Geometry,
        model_bytes: usize,
        host: Host,
    ) -> Self {
        Case {
            label,
            target,
            machines,
            embed: Embed {
                model,
                ..Embed::default()
            },
            geometry,
            model_bytes: model_bytes as u64,
            host,
            with_template: false,
            budget: None,
        }
    }
}

/// Builds the case's firmware, runs it on each machine, compares everything with the host and
/// reports the measurements.
fn check(case: Case<'_>) {
    let label = case.label;
    let bins: &[&str] = if case.with_template {
        &["flow-device-bench", "template", "fault"]
    } else {
        &["flow-device-bench"]
    };
    let elfs = build(case.target, &case.embed, label, bins, &[]);
    let elf = Elf::read(&elfs[0]);
    let mut report = String::new();
    let mut bad = Vec::new();
    for &m in case.machines {
        let name = format!("{label} ({}) on {}", case.target, m.name);
        let run = qemu(m, &elfs[0]);
        let out = parse(&run.stdout);
        assert!(
            out.load_error.is_none(),
            "{name}: load error {:?}",
            out.load_error
        );
        assert!(
            run.code == Some(0) && out.done,
            "{name}: exit status {:?}, done printed: {}\nstdout:\n{}\nstderr:\n{}",
            run.code,
            out.done,
            run.stdout,
            run.stderr
        );
        assert_eq!(
            out.geometry.as_deref(),
            Some(geometry_line(&case.geometry).as_str()),
            "{name}: the firmware was not compiled for the model's geometry"
        );
        assert_eq!(metric(&name, &out, "model_file_bytes"), case.model_bytes);
        bad.extend(mismatches(&name, &out, &case.host));
        check_calibration(&name, &out.calib);

        let lp_instr = metric(&name, &out, "icount_per_log_prob");
        if let Some((flash, instr)) = case.budget {
            assert!(
                elf.flash() <= flash && lp_instr <= instr,
                "{name}: over the harness's budget: flash {} B (at most {flash}), {lp_instr} \
                 instructions per log_prob (at most {instr})",
                elf.flash()
            );
        }
        let peak = metric(&name, &out, "stack_peak_bytes");
        let cap = metric(&name, &out, "stack_capacity_bytes");
        assert!(
            (100..50_000_000).contains(&lp_instr),
            "{name}: implausible icount_per_log_prob {lp_instr}"
        );
        assert!(
            peak < cap,
            "{name}: the stack overflowed ({peak} of {cap} B)"
        );
        let _ = writeln!(
            report,
            "{name}: model {} B, {} params; geometry {}\n  instructions: load {} (Model::parse \
             {}), log_prob {} (inside the box; {} over all points), sample {}; per SysTick tick \
             {:.3}\n  stack: load {} B, log_prob call {} B, sample call {} B, main {} B (flow \
             struct {} B); peak {peak} B of {cap} B\n  RAM: static {} B + stack peak {peak} B = \
             {} B",
            metric(&name, &out, "model_file_bytes"),
            metric(&name, &out, "model_params"),
            geometry_line(&case.geometry),
            metric(&name, &out, "icount_load"),
            metric(&name, &out, "icount_parse"),
            lp_instr,
            metric(&name, &out, "icount_per_log_prob_all"),
            metric(&name, &out, "icount_per_sample"),
            metric(&name, &out, "instr_per_tick_milli") as f64 / 1000.0,
            metric(&name, &out, "stack_load_bytes"),
            metric(&name, &out, "stack_log_prob_bytes"),
            metric(&name, &out, "stack_sample_bytes"),
            metric(&name, &out, "stack_main_bytes"),
            metric(&name, &out, "flow_struct_bytes"),
            elf.static_ram(),
            elf.static_ram() + peak,
        );
        if case.with_template {
            let trun = qemu(m, &elfs[1]);
            let tout = parse(&trun.stdout);
            assert!(
                trun.code == Some(0) && tout.done,
                "{name}: template exit status {:?}\n{}",
                trun.code,
                trun.stdout
            );
            check_calibration(&format!("{name} (template)"), &tout.calib);
            let tpeak = metric(&name, &tout, "stack_peak_bytes");
            let _ = writeln!(
                report,
                "  template: stack peak {tpeak} B; flow's stack +{} B",
                peak.saturating_sub(tpeak)
            );
        }
    }
    let _ = writeln!(
        report,
        "{label} ({}): firmware {}",
        case.target,
        elf.describe()
    );
    let by = elf.breakdown(case.model_bytes);
    let mut parts: Vec<String> = by.iter().map(|(k, v)| format!("{k} {v}")).collect();
    parts.push(format!(
        "no symbol (unnamed constants, alignment) {}",
        elf.flash() as i64 - by.values().sum::<u64>() as i64
    ));
    let _ = writeln!(report, "  by symbol: {}", parts.join(", "));
    if case.with_template {
        let t = Elf::read(&elfs[1]);
        let _ = writeln!(
            report,
            "  template {}\n  flow part: flash +{} B, static RAM +{} B",
            t.describe(),
            elf.flash() as i64 - t.flash() as i64,
            elf.static_ram() as i64 - t.static_ram() as i64,
        );
        let run = qemu(case.machines[0], &elfs[2]);
        assert!(
            run.stdout.contains("hardfault pc="),
            "{label}: no hardfault line:\n{}",
            run.stdout
        );
        assert_eq!(
            run.code,
            Some(1),
            "{label}: a HardFault must exit with failure"
        );
    }
    print!("{report}");
    std::fs::write(work_dir().join(format!("report-{label}.txt")), &report).expect("write report");
    assert!(
        bad.is_empty(),
        "device and host differ ({} mismatches):\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// The tutorial model at `TEST_SEED` in the work directory, its flow type, and its checks.
fn tutorial_case<'a>(label: &'a str, target: &'a str, machines: &'a [Machine]) -> Case<'a> {
    let bytes = tutorial_model(TEST_SEED);
    let path = write_file("tutorial.nflw", &bytes);
    let model = Model::parse(&bytes).expect("the tutorial model parses");
    let g = Geometry::of(&model).unwrap();
    assert_eq!(
        g,
        Geometry {
            kind: FlowKind::Plain,
            dim: 2,
            context: 0,
            split: 0,
            layers: 1,
            hidden: 20,
            bins: 16
        }
    );
    let flow: Flow<2, 1, 20, 16> = model.flow().unwrap();
    let host = host_results::<2, 0, _>(&model, &flow, None);
    // The model must exercise the flow: finite log_probs that differ, some points flagged,
    // not all.
    let lps: Vec<f32> = host
        .results
        .iter()
        .filter(|(k, _)| k.0 == "lp")
        .filter_map(|(_, (_, _, v))| match v {
            Val::Bits(b) => Some(f32::from_bits(b[0])).filter(|x| x.is_finite()),
            Val::Err(_) => None,
        })
        .collect();
    assert!(
        lps.len() >= workload::INSIDE_POINTS && lps.windows(2).any(|w| w[0] != w[1]),
        "the test model gives trivial log_probs: {lps:?}"
    );
    let (n, m) = host.flagged.unwrap();
    assert!(0 < n && n < m, "the stream flags {n} of {m}");
    Case {
        with_template: true,
        ..Case::new(label, target, machines, path, g, bytes.len(), host)
    }
}

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
    let path = write_file("conditional.nflw", &bytes);
    let model = Model::parse(&bytes).unwrap();
    let g = Geometry::of(&model).unwrap();
    assert_eq!(
        (g.kind, g.dim, g.context, g.layers, g.hidden, g.bins),
        (FlowKind::Conditional, 2, 2, 3, 12, 8)
    );
    let flow: ConditionalFlow<2, 2, 3, 12, 8> = model.conditional_flow().unwrap();
    let host = host_results::<2, 2, _>(&model, &flow, None);
    check(Case::new(
        "conditional-m4f",
        M4F,
        &[MPS2_AN386],
        path,
        g,
        bytes.len(),
        host,
    ));
}

#[test]
fn joint_model_matches_host_on_m0() {
    let bytes = joint_model(TEST_SEED);
    let path = write_file("joint.nflw", &bytes);
    let model = Model::parse(&bytes).unwrap();
    let g = Geometry::of(&model).unwrap();
    assert_eq!(
        (g.kind, g.dim, g.split, g.layers, g.hidden, g.bins),
        (FlowKind::Joint, 3, 1, 3, 10, 8)
    );
    let flow: JointFlow<3, 3, 10, 8> = model.joint_flow().unwrap();
    let host = host_results::<3, 0, _>(&model, &flow, None);
    // No 1 % threshold stored: the lowest one is used.
    assert_eq!(
        host.threshold,
        Some(Some((0.05f32.to_bits(), (-6.0f32).to_bits())))
    );
    check(Case::new(
        "joint-m0",
        M0,
        &[MICROBIT],
        path,
        g,
        bytes.len(),
        host,
    ));
}

/// Pyro's own trained tutorial flows, imported from their state dicts, run on the device with
/// the host's numbers: (b) `spline_coupling(2, 16)` on the M4F and (c) the joint
/// `spline(1) + conditional_spline(1)` on the M0.
fn pyro_trained(file: &str, description: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/pyro-trained")
        .join(file);
    let sd = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    flow_train::pyro::import(&sd, description).unwrap()
}

const PYRO_A: &str = r#"{"dim": 2, "layers": [{"type": "spline", "count_bins": 16}]}"#;
const PYRO_C: &str = r#"{"flow": "joint", "dim": 2, "context_dim": 1, "marginal_layers": 1,
    "layers": [{"type": "spline", "prefix": "0.", "count_bins": 8},
               {"type": "conditional_spline", "prefix": "1.", "count_bins": 8}]}"#;

/// Pyro's (a) `Spline(2, 16)` on a core with FPU and on one without.
fn pyro_spline_case(label: &str, target: &str, machines: &[Machine]) {
    let bytes = pyro_trained("a_spline_params.json", PYRO_A);
    let path = write_file(&format!("{label}.nflw"), &bytes);
    let model = Model::parse(&bytes).unwrap();
    let g = Geometry::of(&model).unwrap();
    assert_eq!(
        (g.kind, g.dim, g.layers, g.hidden, g.bins),
        (FlowKind::Plain, 2, 1, 0, 16)
    );
    let flow: Flow<2, 1, 0, 16> = model.flow().unwrap();
    let host = host_results::<2, 0, _>(&model, &flow, None);
    check(Case::new(
        label,
        target,
        machines,
        path,
        g,
        bytes.len(),
        host,
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
    let path = write_file("pyro_c_m4f.nflw", &bytes);
    let model = Model::parse(&bytes).unwrap();
    let g = Geometry::of(&model).unwrap();
    let flow: JointFlow<2, 1, 10, 8> = model.joint_flow().unwrap();
    let host = host_results::<2, 0, _>(&model, &flow, None);
    check(Case::new(
        "pyro-c-m4f",
        M4F,
        &[MPS2_AN386],
        path,
        g,
        bytes.len(),
        host,
    ));
}

#[test]
fn pyro_trained_coupling_matches_host_on_m4f() {
    let bytes = pyro_trained(
        "b_spline_coupling_params.json",
        r#"{"dim": 2, "layers": [{"type": "spline_coupling", "count_bins": 16}]}"#,
    );
    let path = write_file("pyro_b.nflw", &bytes);
    let model = Model::parse(&bytes).unwrap();
    let g = Geometry::of(&model).unwrap();
    assert_eq!(
        (g.kind, g.dim, g.layers, g.hidden, g.bins),
        (FlowKind::Plain, 2, 1, 20, 16)
    );
    let flow: Flow<2, 1, 20, 16> = model.flow().unwrap();
    let host = host_results::<2, 0, _>(&model, &flow, None);
    check(Case::new(
        "pyro-b-m4f",
        M4F,
        &[MPS2_AN386],
        path,
        g,
        bytes.len(),
        host,
    ));
}

#[test]
fn pyro_trained_joint_matches_host_on_m0() {
    let bytes = pyro_trained("c_conditional_params.json", PYRO_C);
    let path = write_file("pyro_c.nflw", &bytes);
    let model = Model::parse(&bytes).unwrap();
    let g = Geometry::of(&model).unwrap();
    assert_eq!(
        (g.kind, g.dim, g.split, g.layers, g.hidden, g.bins),
        (FlowKind::Joint, 2, 1, 1, 10, 8)
    );
    let flow: JointFlow<2, 1, 10, 8> = model.joint_flow().unwrap();
    let host = host_results::<2, 0, _>(&model, &flow, None);
    check(Case::new(
        "pyro-c-m0",
        M0,
        &[MICROBIT],
        path,
        g,
        bytes.len(),
        host,
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

// --- failures -----------------------------------------------------------------------------------

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
    let run = qemu(MPS2_AN386, &elfs[0]);
    let out = parse(&run.stdout);
    assert_eq!(
        out.load_error.as_deref(),
        Some(host_err.as_str()),
        "corrupt model: stdout:\n{}",
        run.stdout
    );
    assert_eq!(run.code, Some(1), "a load error must exit with failure");
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
    let run = qemu(MPS2_AN386, &elfs[0]);
    let out = parse(&run.stdout);
    assert_eq!(
        out.load_error.as_deref(),
        Some(expect.as_str()),
        "compiled-out kind: stdout:\n{}",
        run.stdout
    );
    assert_eq!(run.code, Some(1), "a load error must exit with failure");
}

/// `FLOW_MODEL` naming a file that does not parse fails the build with flow-core's error.
#[test]
fn unparsable_model_fails_the_build() {
    let mut bad = tutorial_model(TEST_SEED);
    bad.truncate(bad.len() - 1);
    let err = Model::parse(&bad).err().unwrap().to_string();
    let path = write_file("truncated.nflw", &bad);
    let _serial = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let out = cargo(
        M4F,
        &Embed {
            model: path,
            ..Embed::default()
        },
    )
    .args(["--bin", "flow-device-bench"])
    .output()
    .expect("run cargo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the build succeeded:\n{stderr}");
    assert!(
        stderr.contains(&err),
        "the build error does not name the model's error \"{err}\":\n{stderr}"
    );
}

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

// --- the firmware's error texts --------------------------------------------------------------------

impl errtext::Text for String {
    fn str(&mut self, s: &str) {
        self.push_str(s);
    }
    fn dec(&mut self, v: u32) {
        let _ = write!(self, "{v}");
    }
    fn hex(&mut self, v: u32) {
        let _ = write!(self, "{v:#010x}");
    }
}

#[test]
fn error_texts_equal_flow_core_display() {
    let kinds = [FlowKind::Plain, FlowKind::Conditional, FlowKind::Joint];
    let mut errors = vec![
        Error::NonFiniteInput,
        Error::Numerical,
        Error::OutOfSupport,
        Error::DimensionMismatch {
            expected: 2,
            found: 17,
        },
        Error::ParameterCount {
            expected: 1846,
            found: 0,
        },
        Error::NonFiniteParameter,
    ];
    for what in [
        Capacity::Layers,
        Capacity::Hidden,
        Capacity::Bins,
        Capacity::HiddenLayers,
    ] {
        errors.push(Error::Capacity {
            what,
            needed: 64,
            limit: 20,
        });
    }
    for l in [
        LayerError::Bins,
        LayerError::Bound,
        LayerError::Split,
        LayerError::Permutation,
        LayerError::Scale,
        LayerError::ZeroDim,
        LayerError::HypernetShape,
        LayerError::Context,
        LayerError::Tables,
    ] {
        errors.push(Error::InvalidLayer(l));
    }
    for f in [
        Feature::Affine,
        Feature::Exp,
        Feature::Spline,
        Feature::Coupling,
        Feature::Permute,
        Feature::ConditionalSpline,
        Feature::Quadratic,
    ] {
        errors.push(Error::Unsupported(f));
    }
    let mut formats = vec![
        FormatError::Truncated,
        FormatError::Magic,
        FormatError::Version {
            found: 65535,
            supported: 1,
        },
        FormatError::Checksum {
            stored: 0x0012_abcd,
            computed: 0xffff_0000,
        },
        FormatError::Malformed,
        FormatError::TrailingBytes,
        FormatError::LayerCount,
        FormatError::Metadata,
        FormatError::BufferTooSmall,
    ];
    for expected in kinds {
        for found in kinds {
            formats.push(FormatError::Kind { expected, found });
        }
    }
    errors.extend(formats.into_iter().map(Error::Format));
    let mut codes = BTreeMap::new();
    for e in errors {
        let mut s = String::new();
        errtext::error(&mut s, &e);
        assert_eq!(s, e.to_string(), "{e:?}");
        // The example's own copy of the texts (flow-firmware-example/src/text.rs).
        assert_eq!(shown(&e), s, "the example's text of {e:?}");
        // The codes tell every error apart, and are what the table in errtext.rs says.
        let c = device_code(&e);
        assert!(!c.starts_with("E0"), "{e:?} has no code");
        if let Some(other) = codes.insert(c.clone(), e) {
            panic!("{e:?} and {other:?} have the same code {c}");
        }
    }
    assert_eq!(
        device_code(&Error::Format(FormatError::Checksum {
            stored: 1,
            computed: 2
        })),
        "E9 3 1 2"
    );
    assert_eq!(
        device_code(&Error::Capacity {
            what: Capacity::Bins,
            needed: 64,
            limit: 16
        }),
        "E5 2 64 16"
    );
}

// --- the checked-in default model ------------------------------------------------------------------

/// The firmware's default model is a trained one: Pyro's tutorial architecture fitted on circles
/// by `flow-train fit` (the command is in flow-device-bench/README.md), with its scaler and
/// anomaly thresholds. It runs on the M4F with the host's numbers and flags the stream's
/// shifted points.
#[test]
fn default_model_is_the_trained_circles_model() {
    let path = example_dir().join("models/circles_coupling.nflw");
    let bytes = std::fs::read(&path).expect("read models/circles_coupling.nflw");
    let model = Model::parse(&bytes).expect("the default model parses");
    let g = Geometry::of(&model).unwrap();
    assert_eq!(geometry_line(&g), "plain 2 0 0 1 20 16");
    assert!(
        model.scaler(1).is_some(),
        "the trained model stores its scaler"
    );
    assert!(
        model.threshold(0.01).is_some(),
        "and its 1 % anomaly threshold"
    );
    let flow: Flow<2, 1, 20, 16> = model.flow().unwrap();
    let host = host_results::<2, 0, _>(&model, &flow, None);
    let (n, m) = host.flagged.unwrap();
    assert!(0 < n && n < m, "the stream flags {n} of {m}");
    check(Case::new(
        "trained-circles-m4f",
        M4F,
        &[MPS2_AN386],
        path,
        g,
        bytes.len(),
        host,
    ));
}

// --- the example (flow-firmware-example) on its boards ---------------------------------------------

/// The example's readings, quantile and sample seed.
#[allow(dead_code)]
#[path = "../../flow-firmware-example/src/inputs.rs"]
mod example_inputs;

/// A board of the example that runs in QEMU (through the example's `qemu-run.sh`).
#[derive(Clone, Copy)]
struct Board {
    /// Its feature and `boards/<name>.toml`.
    name: &'static str,
    target: &'static str,
}

const EX_MPS2_AN386: Board = Board {
    name: "mps2-an386",
    target: M4F,
};
const EX_NETDUINOPLUS2: Board = Board {
    name: "netduinoplus2",
    target: M4F,
};
const EX_MICROBIT: Board = Board {
    name: "microbit",
    target: M0,
};
const EX_HIFIVE1: Board = Board {
    name: "hifive1",
    target: RV32IMAC,
};

/// The example's builds, serialized like the harness's (they share a target directory).
static EXAMPLE_BUILDS: Mutex<()> = Mutex::new(());

/// Builds the example for `board` embedding `model` (and, if set, the bytes of `unchecked`
/// in its place), in the test's own target directory; the ELF copied to
/// `work_dir()/<label>/example.elf`, or cargo's stderr if the build fails.
fn example_build(
    board: Board,
    model: &Path,
    unchecked: Option<&Path>,
    label: &str,
) -> Result<PathBuf, String> {
    let _serial = EXAMPLE_BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let target_dir = work_dir().join("example-target");
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(example_dir())
        .args(["build", "--release", "--features", board.name, "--config"])
        .arg(format!("boards/{}.toml", board.name))
        .arg("--target-dir")
        .arg(&target_dir)
        .env("FLOW_MODEL", model)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null());
    match unchecked {
        Some(p) => cmd.env("FLOW_MODEL_UNCHECKED", p),
        None => cmd.env_remove("FLOW_MODEL_UNCHECKED"),
    };
    let out = cmd.output().expect("run cargo to build the example");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let from = target_dir
        .join(board.target)
        .join("release/flow-firmware-example");
    let dest = work_dir().join(label);
    std::fs::create_dir_all(&dest).expect("create build output dir");
    let to = dest.join("example.elf");
    std::fs::copy(&from, &to)
        .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    Ok(to)
}

/// Runs the example's ELF on `board` with the example's own runner, `qemu-run.sh` (QEMU without
/// semihosting on the UART boards; the run ends at `done` or an `error` line).
fn example_run(board: Board, elf: &Path) -> Run {
    let qemu = if board.target == RV32IMAC {
        "qemu-system-riscv32"
    } else {
        "qemu-system-arm"
    };
    let ok = Command::new(qemu)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{qemu} is not installed; scripts/test-all.sh installs it (qemu-system-arm, \
         qemu-system-misc)"
    );
    let out = Command::new(example_dir().join("qemu-run.sh"))
        .arg(board.name)
        .arg(elf)
        .env("QEMU_TIMEOUT", QEMU_TIMEOUT_S)
        .stdin(Stdio::null())
        .output()
        .expect("run qemu-run.sh");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
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
    let run = example_run(board, &elf);
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
    example_default_model(EX_MPS2_AN386);
}

#[test]
fn example_on_netduinoplus2_uart_matches_host() {
    example_default_model(EX_NETDUINOPLUS2);
}

#[test]
fn example_on_microbit_uart_matches_host() {
    example_default_model(EX_MICROBIT);
}

#[test]
fn example_on_hifive1_uart_matches_host() {
    example_default_model(EX_HIFIVE1);
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
        EX_NETDUINOPLUS2,
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
    let stderr = example_build(EX_NETDUINOPLUS2, &path, None, "example-corrupt-build")
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
    for board in [EX_NETDUINOPLUS2, EX_MPS2_AN386] {
        let label = format!("example-load-error-{}", board.name);
        let elf = example_build(board, &good, Some(&bad_path), &label).unwrap();
        let run = example_run(board, &elf);
        assert_eq!(
            run.stdout.lines().last(),
            Some(format!("error: {err}").as_str()),
            "{label}: stdout:\n{}",
            run.stdout
        );
        assert_eq!(run.code, Some(1), "{label}: a load error must fail the run");
    }
}

/// The example's line writer (what `say!` prints, flow-core's errors in words); `decimal.rs`
/// uses it as `crate::text`.
#[allow(dead_code, unused_macros)]
#[path = "../../flow-firmware-example/src/text.rs"]
mod text;

/// The example's decimal printer (integer arithmetic only, no core float formatting).
#[allow(dead_code)]
#[path = "../../flow-firmware-example/src/decimal.rs"]
mod example_decimal;

/// What the example prints for `item`.
fn shown<T: text::Show + ?Sized>(item: &T) -> String {
    let mut line = text::Line::new();
    item.show(&mut line);
    String::from_utf8(line.as_bytes().to_vec()).expect("the example prints UTF-8")
}

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
