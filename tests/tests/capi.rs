//! The C interface (flow-capi): the host C test and the C firmware under QEMU, both checked
//! against flow-core's own numbers, bit for bit.
//!
//! - `host_c_test_*`: builds `libflow_capi.a` for the host (`--profile capi`), compiles
//!   `flow-capi/tests/host_test.c` with the system `cc`, runs it on model files of every kind
//!   and compares every number it prints with flow-core's, and every status with the one
//!   expected.
//!   `host_c_test_log_prob_raw_equals_eval_per_row` compares its raw log-densities with
//!   `flow-train eval --per-row`.
//! - `c_firmware_matches_host_on_m4f` / `_m0`: builds the library for `thumbv7em-none-eabihf`
//!   / `thumbv6m-none-eabi` with the no-panic check (a panic path fails the link), writes the
//!   Rust firmware's model as a C header with `flow-train export-c`, builds
//!   `flow-firmware-c/` with `arm-none-eabi-gcc`, runs it on QEMU's mps2-an386 / microbit and
//!   compares its lines with the host's; checks its stack against the header's bound and
//!   prints its instruction counts, flash and RAM (flow-capi/README.md has the figures).

#[allow(dead_code)]
#[path = "../../flow-device-bench/src/workload.rs"]
mod workload;

use flow_core::model::ModelBuilder;
use flow_core::{ConditionalFlow, Flow, JointFlow, Model, Order, Spline, SplineShape};
use flow_tests::models::{hypernet, joint_layers, params};
use rand_core::SeedableRng;
use rand_pcg::{Pcg32, Pcg64};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use workload::{POINTS, RAW_POINTS};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn work_dir() -> PathBuf {
    let d = root().join("target").join("capi-test");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs `cmd`; panics with its output unless it succeeds; returns its stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Builds `libflow_capi.a` (`--profile capi`) for `target` with the capacities `caps`
/// (`FLOW_CAPI_MAX_*` variables) into its own target directory; returns the library and the
/// directory of the `flow.h` generated for it.
fn build_lib(target: &str, caps: &[(&str, &str)], features: &str, dir: &str) -> (PathBuf, PathBuf) {
    let target_dir = root().join("target").join(dir);
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root())
        .args([
            "build",
            "-q",
            "-p",
            "flow-capi",
            "--profile",
            "capi",
            "--target",
            target,
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    if !features.is_empty() {
        cmd.args(["--features", features]);
    }
    for v in [
        "FLOW_CAPI_MAX_DIM",
        "FLOW_CAPI_MAX_CONTEXT",
        "FLOW_CAPI_MAX_LAYERS",
        "FLOW_CAPI_MAX_HIDDEN",
        "FLOW_CAPI_MAX_BINS",
    ] {
        cmd.env_remove(v);
    }
    for (k, v) in caps {
        cmd.env(k, v);
    }
    run(&mut cmd);
    let out = target_dir.join(target).join("capi");
    // The header of this build: the newest `flow.h` of flow-capi's build-script outputs.
    let header = std::fs::read_dir(out.join("build"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("out"))
        .filter(|p| p.join("flow.h").exists())
        .max_by_key(|p| p.join("flow.h").metadata().and_then(|m| m.modified()).ok())
        .expect("flow.h generated");
    (out.join("libflow_capi.a"), header)
}

/// `flow-train` (its release build, run by Cargo from the repository) with the arguments
/// `args`; more may be added.
fn flow_train(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root())
        .args(["run", "-q", "--release", "-p", "flow-train", "--"])
        .args(args);
    cmd
}

/// `flow-train export-c` of `model` into `out` as `name`.
fn export_c(model: &Path, out: &Path, name: &str) {
    run(flow_train(&["-q", "export-c", "--model"])
        .arg(model)
        .arg("--out")
        .arg(out)
        .args(["--name", name]));
}

fn hex(v: f32) -> String {
    format!("{:08x}", v.to_bits())
}

/// Expected output lines: `tag idx` → the rest of the line.
type Lines = BTreeMap<String, String>;

/// The lines of a program's output, keyed by their first two words.
fn lines(stdout: &str) -> Lines {
    stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.splitn(3, ' ');
            let (a, b) = (w.next()?, w.next()?);
            Some((format!("{a} {b}"), w.next().unwrap_or("").to_string()))
        })
        .collect()
}

/// Every expected line is printed, with the same value.
fn compare(what: &str, got: &Lines, want: &Lines) {
    let mut bad = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            Some(g) if g == v => {}
            g => bad.push(format!("{k}: got {g:?}, want {v:?}")),
        }
    }
    assert!(
        bad.is_empty(),
        "{what}: {} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// A point's value `r` (an f32 result or an error) as a line's rest.
fn res<T: std::fmt::Display>(
    r: Result<Vec<f32>, flow_core::Error>,
    code: impl Fn(&flow_core::Error) -> T,
) -> String {
    match r {
        Ok(v) => v.iter().map(|&x| hex(x)).collect::<Vec<_>>().join(" "),
        Err(e) => format!("err {}", code(&e)),
    }
}

/// The status code flow-capi gives a flow-core error of a computation.
fn code(e: &flow_core::Error) -> u32 {
    match e {
        flow_core::Error::NonFiniteInput => 9,
        flow_core::Error::Numerical => 10,
        flow_core::Error::OutOfSupport => 17,
        other => panic!("unexpected error {other}"),
    }
}

// --- the host C test ----------------------------------------------------------------------------

const SEED: u64 = 0x5EED_F10E;
const TEST_SEED: u64 = 0xC0DE_CA11;

/// A model of one kind, with the flow-core computations the C test's output must equal.
trait Case {
    fn dim(&self) -> usize;
    fn context(&self) -> usize;
    fn log_prob(&self, x: &[f32], c: &[f32]) -> Result<f32, flow_core::Error>;
    fn sample(&self, rng: &mut Pcg64, c: &[f32]) -> Result<Vec<f32>, flow_core::Error>;
}

/// The [`Case`] of a flow type without a context (`Flow`, `JointFlow`): the trait's one
/// implementation for both, by name (a macro, as the two types share no trait to be generic over).
macro_rules! case_without_context {
    ($flow:ident) => {
        impl<const D: usize, const L: usize, const H: usize, const K: usize> Case
            for $flow<'_, D, L, H, K>
        {
            fn dim(&self) -> usize {
                D
            }
            fn context(&self) -> usize {
                0
            }
            fn log_prob(&self, x: &[f32], _: &[f32]) -> Result<f32, flow_core::Error> {
                $flow::log_prob(self, x.try_into().unwrap())
            }
            fn sample(&self, rng: &mut Pcg64, _: &[f32]) -> Result<Vec<f32>, flow_core::Error> {
                $flow::sample::<f32, _>(self, rng).map(|v| v.to_vec())
            }
        }
    };
}

case_without_context!(Flow);
case_without_context!(JointFlow);

impl<const D: usize, const C: usize, const L: usize, const H: usize, const K: usize> Case
    for ConditionalFlow<'_, D, C, L, H, K>
{
    fn dim(&self) -> usize {
        D
    }
    fn context(&self) -> usize {
        C
    }
    fn log_prob(&self, x: &[f32], c: &[f32]) -> Result<f32, flow_core::Error> {
        ConditionalFlow::log_prob(self, x.try_into().unwrap(), c.try_into().unwrap())
    }
    fn sample(&self, rng: &mut Pcg64, c: &[f32]) -> Result<Vec<f32>, flow_core::Error> {
        self.condition(c.try_into().unwrap())
            .sample(rng)
            .map(|v| v.to_vec())
    }
}

/// Rows `x | context` for a model of `d` dimensions and context `c`: a grid of values inside
/// and outside the spline box, and one far out.
fn rows(d: usize, c: usize) -> Vec<Vec<f32>> {
    let vals = [0.0f32, 0.5, -1.25, 2.9, -3.5, 7.0, 1.0e4];
    (0..24)
        .map(|i| {
            (0..d + c)
                .map(|j| {
                    vals[(i * 3 + j * 5 + i / 7) % vals.len()] * if j % 2 == 0 { 1.0 } else { -0.7 }
                })
                .collect()
        })
        .collect()
}

/// The lines the C test must print for `case` of the model `m` on `pts`.
fn expected(m: &Model<'_>, case: &dyn Case, pts: &[Vec<f32>]) -> Lines {
    let (d, c) = (case.dim(), case.context());
    let mut want = Lines::new();
    let standardize = |raw: &[f32]| -> Vec<f32> {
        raw.iter()
            .enumerate()
            .map(|(j, &r)| match m.scaler(j) {
                Some((mean, s)) => (r - mean) / s,
                None => r,
            })
            .collect()
    };
    let t10 = m.threshold(0.01);
    for (i, p) in pts.iter().enumerate() {
        let (x, ctx) = p.split_at(d);
        want.insert(
            format!("lp {i}"),
            res(case.log_prob(x, ctx).map(|v| vec![v]), code),
        );
        let raw = case
            .log_prob(&standardize(x), ctx)
            .map(|v| vec![v + m.raw_log_det::<f32>()]);
        want.insert(format!("lp_raw {i}"), res(raw, code));
        let flag = match (t10, case.log_prob(&standardize(x), ctx)) {
            (None, _) => "err 15".to_string(),
            (Some(t), Ok(lp)) => u32::from(lp < t).to_string(),
            (_, Err(e)) => format!("err {}", code(&e)),
        };
        want.insert(format!("flag {i}"), flag);
    }
    let ctx0 = &pts[0][d..d + c];
    // `flow_rng_seed` + `flow_sample` must give the Rust examples' and `flow-train sample`'s
    // draws: `Pcg64::seed_from_u64` and flow-core's `sample`, bit for bit.
    let mut rng = Pcg64::seed_from_u64(TEST_SEED);
    let samples: Vec<_> = (0..8).map(|_| case.sample(&mut rng, ctx0)).collect();
    for (i, s) in samples.iter().enumerate() {
        want.insert(format!("sample {i}"), res(s.clone(), code));
        let raw = s.clone().map(|v| {
            v.iter()
                .enumerate()
                .map(|(j, &x)| m.scaler(j).map_or(x, |(mean, s)| mean + s * x))
                .collect()
        });
        want.insert(format!("sample_raw {i}"), res(raw, code));
    }
    for q in [1u32, 10, 50, 500] {
        want.insert(
            format!("threshold {q}"),
            match m.threshold(q as f32 / 1000.0) {
                Some(t) => hex(t),
                None => "err 15".into(),
            },
        );
    }
    for (k, v) in [
        ("null_model", 1),
        ("null_x", 1),
        ("null_out", 1),
        ("null_rng", 1),
        ("null_threshold_out", 1),
        ("null_flag_out", 1),
        ("null_init_model", 1),
        ("null_init_bytes", 1),
        ("reload", 0),
        ("nan_input", 9),
        ("inf_input", 9),
        ("not_initialized", 14),
        ("not_initialized_dim", 0),
        ("truncated_header", 5),
        ("truncated", 4),
        ("bit_flipped", 4),
        ("bad_magic", 2),
        ("misaligned", 13),
        ("null_tables", 1),
        ("reload_after_failures", 0),
        ("bad_tables", 16),
    ] {
        want.insert(format!("status {k}"), v.to_string());
    }
    if c > 0 {
        want.insert("status null_context".into(), "1".into());
    } else {
        want.insert("status context_without_model_context".into(), "12".into());
    }
    want.insert(
        "status_text model".into(),
        "checksum mismatch (corrupted file)".into(),
    );
    want.insert("status_text_unknown unknown".into(), "status".into());
    want
}

/// The host library and the compiled C test, built once for all the tests that run it (in
/// parallel).
fn host_test_binary() -> PathBuf {
    static EXE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    EXE.get_or_init(build_host_test).clone()
}

fn build_host_test() -> PathBuf {
    let (lib, include) = build_lib(&host_target(), &[], "", "capi-host");
    let exe = work_dir().join("host_test");
    run(Command::new("cc")
        .args([
            "-std=c99",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
        ])
        .arg("-I")
        .arg(&include)
        .arg(root().join("flow-capi/tests/host_test.c"))
        .arg(&lib)
        .args(["-lm", "-lpthread", "-ldl", "-o"])
        .arg(&exe));
    exe
}

fn host_target() -> String {
    let v = run(Command::new("rustc").arg("-vV"));
    v.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_string()
}

/// Runs the C test on `bytes` with the points of its geometry and checks its output.
fn check_host(exe: &Path, label: &str, bytes: &[u8], case: &dyn Case, m: &Model<'_>) {
    let pts = rows(case.dim(), case.context());
    let dir = work_dir();
    let (mp, pp) = (
        dir.join(format!("{label}.nflw")),
        dir.join(format!("{label}.f32")),
    );
    std::fs::write(&mp, bytes).unwrap();
    let flat: Vec<u8> = pts.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&pp, flat).unwrap();
    let out = run(Command::new(exe)
        .arg(&mp)
        .arg(&pp)
        .arg(TEST_SEED.to_string()));
    let got = lines(&out);
    let want = expected(m, case, &pts);
    compare(label, &got, &want);
    println!("{label}: {} lines equal flow-core's", want.len());
}

fn conditional_bytes() -> Vec<u8> {
    let mut rng = Pcg32::seed_from_u64(SEED);
    let lin = SplineShape::new(8, 3.0, Order::Linear).unwrap();
    let quad = SplineShape::new(8, 2.5, Order::Quadratic).unwrap();
    let cs = hypernet(&mut rng, 3, &[12], 2 * lin.params_per_dim(), 2.0);
    let lower = params(&mut rng, Spline::param_count(1, &quad), 1.5);
    let nn = hypernet(&mut rng, 1 + 3, &[10, 10], quad.params_per_dim(), 2.0);
    let mut b = ModelBuilder::conditional(2, 3);
    b.conditional_spline(2, &lin, 3, &[12], &cs)
        .permute(&[1, 0])
        .coupling(1, 1, &quad, 3, &[10, 10], &lower, &nn)
        .scaler(&[1.0, -1.0], &[2.0, 0.5])
        .thresholds(&[(0.01, -5.0), (0.05, -3.5)]);
    b.encode().unwrap()
}

/// [`joint_layers`] with a scaler.
fn joint_bytes() -> Vec<u8> {
    let mut b = joint_layers(&mut Pcg32::seed_from_u64(SEED ^ 1));
    b.scaler(&[0.0, 10.0, -5.0], &[1.0, 4.0, 0.25]);
    b.encode().unwrap()
}

/// A plain flow with an `Exp` layer (log_prob `-inf` outside its support), no scaler, no
/// thresholds.
fn exp_bytes() -> Vec<u8> {
    let mut rng = Pcg32::seed_from_u64(SEED ^ 2);
    let l5 = SplineShape::new(5, 3.0, Order::Linear).unwrap();
    let sp = params(&mut rng, Spline::param_count(2, &l5), 1.5);
    let mut b = ModelBuilder::plain(2);
    b.spline(2, &l5, &sp)
        .affine(&[0.5, -0.5], &[1.5, 0.5])
        .exp(2);
    b.encode().unwrap()
}

#[test]
fn host_c_test_every_kind_matches_flow_core() {
    let exe = host_test_binary();
    // The trained circles model of the Rust firmware (a coupling, scaler, thresholds).
    let bytes =
        std::fs::read(root().join("flow-firmware-example/models/circles_coupling.nflw")).unwrap();
    let m = Model::parse(&bytes).unwrap();
    let f: Flow<2, 1, 20, 16> = m.flow().unwrap();
    check_host(&exe, "plain_coupling", &bytes, &f, &m);

    let bytes = exp_bytes();
    let m = Model::parse(&bytes).unwrap();
    let f: Flow<2, 3, 0, 5> = m.flow().unwrap();
    check_host(&exe, "plain_exp", &bytes, &f, &m);

    let bytes = conditional_bytes();
    let m = Model::parse(&bytes).unwrap();
    let f: ConditionalFlow<2, 3, 3, 12, 8> = m.conditional_flow().unwrap();
    check_host(&exe, "conditional", &bytes, &f, &m);

    let bytes = joint_bytes();
    let m = Model::parse(&bytes).unwrap();
    let f: JointFlow<3, 3, 10, 8> = m.joint_flow().unwrap();
    check_host(&exe, "joint", &bytes, &f, &m);
}

/// `flow_log_prob_raw` of the C test equals `flow-train eval --per-row`, bit for bit, on 500
/// rows of the circles test data (raw units) under the trained circles model.
#[test]
fn host_c_test_log_prob_raw_equals_eval_per_row() {
    let exe = host_test_binary();
    let dir = work_dir().join("eval");
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(root().join("data/circles_test_raw.csv")).unwrap();
    let csv: Vec<&str> = text.lines().take(501).collect();
    let data = dir.join("rows.csv");
    std::fs::write(&data, csv.join("\n") + "\n").unwrap();
    // The rows as eval reads them: each field parsed as f64, then rounded to f32.
    let rows: Vec<u8> = csv[1..]
        .iter()
        .flat_map(|l| l.split(','))
        .flat_map(|f| (f.parse::<f64>().unwrap() as f32).to_le_bytes())
        .collect();
    let points = dir.join("rows.f32");
    std::fs::write(&points, rows).unwrap();
    let model = root().join("flow-firmware-example/models/circles_coupling.nflw");
    let per_row = dir.join("per_row.csv");
    run(flow_train(&["-q", "eval", "--model"])
        .arg(&model)
        .arg("--data")
        .arg(&data)
        .arg("--per-row")
        .arg(&per_row));
    let eval: Vec<String> = std::fs::read_to_string(&per_row)
        .unwrap()
        .lines()
        .skip(1)
        .map(|v| hex(v.parse::<f32>().unwrap()))
        .collect();
    assert_eq!(eval.len(), 500);
    let got = lines(&run(Command::new(&exe).arg(&model).arg(&points).arg("1")));
    for (i, want) in eval.iter().enumerate() {
        assert_eq!(got.get(&format!("lp_raw {i}")), Some(want), "row {i}");
    }
    println!("500 rows: flow_log_prob_raw equals eval --per-row");
}

/// A program compiled with a header of other capacities than its library's sees the
/// mismatch (`FLOW_HEADER_MATCHES_LIBRARY`) before using a `flow_model`.
#[test]
fn host_c_test_detects_a_header_of_another_build() {
    let (lib, _) = build_lib(
        &host_target(),
        &[("FLOW_CAPI_MAX_LAYERS", "2")],
        "",
        "capi-host-l2",
    );
    let exe = work_dir().join("host_test_mismatch");
    run(Command::new("cc")
        .args(["-std=c99", "-O2", "-I"])
        .arg(root().join("flow-capi/include"))
        .arg(root().join("flow-capi/tests/host_test.c"))
        .arg(&lib)
        .args(["-lm", "-lpthread", "-ldl", "-o"])
        .arg(&exe));
    let model = root().join("flow-firmware-example/models/circles_coupling.nflw");
    let out = Command::new(&exe)
        .arg(&model)
        .arg(&model)
        .arg("1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // A flow_model of FLOW_MAX_LAYERS 2 in the library, of 8 in the header.
    assert!(
        !out.status.success() && stdout.starts_with("header-mismatch "),
        "{stdout}"
    );
}

/// Models beyond the default capacities, or with an unknown kind of content, load as their
/// status.
#[test]
fn host_c_test_capacity_exceeded_is_a_status() {
    let exe = host_test_binary();
    let dir = work_dir();
    let pts = dir.join("empty.f32");
    std::fs::write(&pts, []).unwrap();
    let l4 = SplineShape::new(4, 3.0, Order::Linear).unwrap();
    // Dimension 9 > FLOW_MAX_DIM 8; 40 bins > FLOW_MAX_BINS 32; 9 layers > FLOW_MAX_LAYERS 8.
    let wide = {
        let mut b = ModelBuilder::plain(9);
        b.spline(9, &l4, &vec![0.1; Spline::param_count(9, &l4)]);
        b.encode().unwrap()
    };
    let bins = {
        let l40 = SplineShape::new(40, 3.0, Order::Linear).unwrap();
        let mut b = ModelBuilder::plain(1);
        b.spline(1, &l40, &vec![0.1; Spline::param_count(1, &l40)]);
        b.encode().unwrap()
    };
    let layers = {
        let mut b = ModelBuilder::plain(1);
        for _ in 0..9 {
            b.affine(&[0.0], &[1.0]);
        }
        b.encode().unwrap()
    };
    for (label, bytes) in [("wide", wide), ("bins", bins), ("layers", layers)] {
        let p = dir.join(format!("{label}.nflw"));
        std::fs::write(&p, &bytes).unwrap();
        let out = run(Command::new(&exe).arg(&p).arg(&pts).arg("1"));
        assert!(out.starts_with("init 8 "), "{label}: {out}");
    }
}

// --- the C firmware ------------------------------------------------------------------------------

/// The metric `key` of the firmware's output (a line `key value`).
fn metric(got: &Lines, key: &str) -> u64 {
    got.keys()
        .find_map(|k| k.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("the firmware printed no {key}"))
}

/// A QEMU machine the C firmware runs on, and how it is built for it.
struct Machine {
    /// The Rust target of the library.
    target: &'static str,
    /// `arm-none-eabi-gcc`'s CPU flags.
    cpu_flags: &'static str,
    /// `-machine` and, if any, `-cpu` of QEMU.
    qemu: &'static [&'static str],
}

const M4F: Machine = Machine {
    target: "thumbv7em-none-eabihf",
    cpu_flags: "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16",
    qemu: &["-machine", "mps2-an386", "-cpu", "cortex-m4"],
};

const M0: Machine = Machine {
    target: "thumbv6m-none-eabi",
    cpu_flags: "-mcpu=cortex-m0 -mthumb -mfloat-abi=soft",
    qemu: &["-machine", "microbit"],
};

#[test]
fn c_firmware_matches_host_on_m4f() {
    check_c_firmware(&M4F);
}

#[test]
fn c_firmware_matches_host_on_m0() {
    check_c_firmware(&M0);
}

/// Builds the C firmware for `machine` (the library with the no-panic check), runs it under
/// QEMU and compares its output with the host's.
fn check_c_firmware(machine: &Machine) {
    for tool in ["arm-none-eabi-gcc", "qemu-system-arm"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is missing: scripts/test-all.sh installs it"
        );
    }
    let model_path = root().join("flow-firmware-example/models/circles_coupling.nflw");
    let bytes = std::fs::read(&model_path).unwrap();
    let m = Model::parse(&bytes).unwrap();
    let flow: Flow<2, 1, 20, 16> = m.flow().unwrap();
    // The capacities of this model, as the Rust firmware is compiled for exactly its geometry.
    let caps = [
        ("FLOW_CAPI_MAX_DIM", "2"),
        ("FLOW_CAPI_MAX_CONTEXT", "0"),
        ("FLOW_CAPI_MAX_LAYERS", "1"),
        ("FLOW_CAPI_MAX_HIDDEN", "20"),
        ("FLOW_CAPI_MAX_BINS", "16"),
    ];
    let (lib, include) = build_lib(machine.target, &caps, "panic-check", "capi-fw");
    let dir = work_dir().join(format!("firmware-{}", machine.target));
    std::fs::create_dir_all(&dir).unwrap();
    let model_h = dir.join("circles.h");
    export_c(&model_path, &model_h, "circles");
    // The link fails if a panic path survives (the library's panic handler calls a function
    // that does not exist).
    run(Command::new("make")
        .current_dir(root().join("flow-firmware-c"))
        .arg(format!("LIB={}", lib.display()))
        .arg(format!("INCLUDE={}", include.display()))
        .arg(format!("MODEL_H={}", model_h.display()))
        .arg("MODEL_NAME=circles")
        .arg(format!("OUT={}", dir.display()))
        .arg(format!("CPU={}", machine.cpu_flags))
        .arg("-B"));
    let elf = dir.join("firmware.elf");
    let out = run(Command::new("timeout")
        .args([
            "120",
            "qemu-system-arm",
            "-machine",
            "mps2-an386",
            "-cpu",
            "cortex-m4",
            "-nographic",
        ])
        .args([
            "-semihosting-config",
            "enable=on,target=native",
            "-icount",
            "shift=0",
            "-kernel",
        ])
        .arg(&elf));
    assert!(out.lines().any(|l| l == "done"), "no `done`:\n{out}");
    let got = lines(&out);

    // The host's numbers: the harness's points (the Rust firmware's), seed and quantiles.
    let mut want = Lines::new();
    for (i, p) in POINTS.iter().enumerate() {
        want.insert(
            format!("lp {i}"),
            res(flow.log_prob(p).map(|v| vec![v]), code),
        );
    }
    let t10 = m
        .threshold(0.01)
        .expect("the model stores the 1 % threshold");
    for (i, p) in RAW_POINTS.iter().enumerate() {
        want.insert(
            format!("lp_raw {i}"),
            res(m.log_prob_raw(&flow, p).map(|v| vec![v]), code),
        );
        let lp = flow.log_prob(&m.standardize(p)).unwrap();
        want.insert(format!("flag {i}"), u32::from(lp < t10).to_string());
    }
    // As the Rust example draws: `Pcg64::seed_from_u64`, flow-core's `sample`, unstandardize.
    let mut rng = Pcg64::seed_from_u64(SEED);
    for i in 0..16 {
        let s: [f32; 2] = flow.sample(&mut rng).unwrap();
        want.insert(format!("sample {i}"), res(Ok(s.to_vec()), code));
        want.insert(
            format!("sample_raw {i}"),
            res(Ok(m.unstandardize(&s).to_vec()), code),
        );
    }
    for q in [1u32, 10, 50] {
        want.insert(
            format!("threshold {q}"),
            hex(m.threshold(q as f32 / 1000.0).unwrap()),
        );
    }
    for (k, v) in [
        ("null_model", 1),
        ("null_x", 1),
        ("null_out", 1),
        ("not_initialized", 14),
        ("bad_magic", 2),
        ("truncated", 4),
        ("misaligned", 13),
        ("nan_input", 9),
        ("no_threshold", 15),
    ] {
        want.insert(format!("status {k}"), v.to_string());
    }
    want.insert("geometry 0".into(), "2 0".into());
    let what = format!("C firmware on {}", machine.qemu[1]);
    compare(&what, &got, &want);
    println!("{what}: {} lines equal the host's", want.len());

    // The stack bound the header states holds on the device.
    let header = std::fs::read_to_string(include.join("flow.h")).unwrap();
    let bound: u64 = header
        .lines()
        .find_map(|l| l.strip_prefix("#define FLOW_STACK_BYTES "))
        .unwrap()
        .parse()
        .unwrap();
    for k in [
        "stack_load_bytes",
        "stack_log_prob_bytes",
        "stack_sample_bytes",
    ] {
        let v = metric(&got, k);
        println!("{k} {v}");
        assert!(v <= bound, "{k} = {v} exceeds FLOW_STACK_BYTES = {bound}");
    }
    for k in [
        "icount_per_log_prob",
        "icount_per_log_prob_all",
        "icount_per_sample",
        "icount_load",
        "flow_model_bytes",
    ] {
        println!("{k} {}", metric(&got, k));
    }
    let size = run(Command::new("arm-none-eabi-size").arg("-A").arg(&elf));
    println!("{size}");
}

// --- the no-panic link check on every device target ----------------------------------------------

/// The functions `flow.h` declares (the name before each `(` of a declaration line).
fn header_functions(header: &str) -> Vec<String> {
    header
        .lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with('#') && !l.starts_with('/'))
        .filter_map(|l| {
            let name = l.split('(').next()?.split([' ', '*']).next_back()?;
            (name.starts_with("flow_") && l.contains('(')).then(|| name.to_string())
        })
        .collect()
}

/// For each device target, the library with the default capacities, every layer kind and the
/// no-panic check, linked by rust-lld with every function of `flow.h` kept: the link fails
/// if a panic path of any of them survives. (The C firmware's links check the same for its
/// capacities on thumbv7em and thumbv6m; this covers riscv32imac too, for which the test
/// machine has no C toolchain.)
#[test]
fn no_panic_path_in_any_function_on_every_device_target() {
    let sysroot = run(Command::new("rustc").args(["--print", "sysroot"]));
    let lld = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host_target())
        .join("bin/rust-lld");
    let functions = header_functions(include_str!("../../flow-capi/include/flow.h"));
    // (`-u` of a name that does not exist is no error: the list is checked.)
    assert_eq!(
        functions,
        [
            "flow_status_str",
            "flow_model_size",
            "flow_model_init",
            "flow_model_set_tables",
            "flow_dim",
            "flow_context_dim",
            "flow_model_kind",
            "flow_log_prob",
            "flow_log_prob_raw",
            "flow_rng_seed",
            "flow_sample",
            "flow_sample_raw",
            "flow_threshold",
            "flow_is_anomaly",
        ]
    );
    for target in [
        "thumbv7em-none-eabihf",
        "thumbv6m-none-eabi",
        "riscv32imac-unknown-none-elf",
    ] {
        let (lib, _) = build_lib(target, &[], "panic-check", "capi-nopanic");
        let mut cmd = Command::new(&lld);
        cmd.args(["-flavor", "gnu", "--gc-sections", "-e", "flow_log_prob"]);
        for f in &functions {
            cmd.args(["-u", f]);
        }
        cmd.arg(&lib)
            .arg("-o")
            .arg(work_dir().join(format!("nopanic-{target}.elf")));
        run(&mut cmd);
        println!("{target}: no panic path in {} functions", functions.len());
    }
}

// --- export-c ------------------------------------------------------------------------------------

/// `flow-train export-c` with `args`: its exit success and stderr.
fn export_c_result(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = flow_train(&["export-c"]).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A name that is not a C identifier, and a corrupted model file, are errors in words; no
/// header is written.
#[test]
fn export_c_rejects_bad_input_in_words() {
    let dir = work_dir().join("export-c");
    std::fs::create_dir_all(&dir).unwrap();
    let model = root().join("flow-firmware-example/models/circles_coupling.nflw");
    let out = dir.join("bad.h");
    let _ = std::fs::remove_file(&out);
    let (ok, err) = export_c_result(&[
        "--model".as_ref(),
        model.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
        "--name".as_ref(),
        "9lives".as_ref(),
    ]);
    assert!(
        !ok && err.contains("\"9lives\" is not a C identifier"),
        "{err}"
    );
    assert!(!out.exists());

    let mut bytes = std::fs::read(&model).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let bad = dir.join("flipped.nflw");
    std::fs::write(&bad, bytes).unwrap();
    let (ok, err) = export_c_result(&[
        "--model".as_ref(),
        bad.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(
        !ok && err.contains("flipped.nflw: invalid model file: checksum mismatch"),
        "{err}"
    );
    assert!(!err.contains("Checksum {"), "Debug text in {err}");
    assert!(!out.exists());
}
