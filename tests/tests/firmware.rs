//! The Cortex-M firmware (`flow-firmware-example`) under QEMU agrees with flow-core on the host
//! bit for bit.
//!
//! For each target the firmware is built once with a seeded random model blob
//! (`FLOW_MODEL_BLOB`), run under `qemu-system-arm` (always through `timeout`), and every
//! `log_prob` of the embedded points, every sample and every anomaly flag it prints is
//! compared with the same computation on the host: same blob, same loader (`model.rs` and
//! `workload.rs` of the firmware are compiled into this test), same points, same RNG seed, 0 ULP.
//!
//! | target                  | machine       | core                 |
//! |-------------------------|---------------|----------------------|
//! | `thumbv7em-none-eabihf` | `mps2-an386`  | Cortex-M4F, hard f32 |
//! | `thumbv7m-none-eabi`    | `lm3s6965evb` | Cortex-M3, soft float|
//! | `thumbv6m-none-eabi`    | `microbit`    | Cortex-M0, soft float|
//!
//! Also: a truncated blob and a blob with a NaN parameter make the firmware print
//! `load-error …` and exit nonzero; a HardFault exits nonzero too; the checked-in default blob
//! is this file's generator at `DEFAULT_SEED` (`FLOW_BLESS=1` rewrites it).
//!
//! Each run prints its measurements (instructions per `log_prob`, flash, RAM, stack) and writes
//! them to `report-<target>.txt` in the test's temporary directory. `qemu-system-arm` missing
//! is a failure, not a skip: `scripts/test-all.sh` installs it.

#[allow(dead_code)]
#[path = "../../flow-firmware-example/src/model.rs"]
mod model;
#[allow(dead_code)]
#[path = "../../flow-firmware-example/src/workload.rs"]
mod workload;

use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Seed of the checked-in `models/default.bin`.
const DEFAULT_SEED: u64 = 20_240_601;
/// Seed of the blob the comparison tests embed.
const TEST_SEED: u64 = 0xF10F_C0DE;
/// Wall-clock limit of one QEMU run, in seconds (a run takes well under one).
const QEMU_TIMEOUT_S: &str = "120";

// --- the model blob ----------------------------------------------------------------------------

/// `n` uniforms in `[-a, a)` from 24-bit draws.
fn uniforms(rng: &mut Pcg32, n: usize, a: f32) -> impl Iterator<Item = f32> + '_ {
    (0..n).map(move |_| {
        let u = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
        (2.0 * u - 1.0) * a
    })
}

/// A random parameter blob for `spline_coupling(2, count_bins=16)` with moderate values:
/// lower-spline parameters in `[-1.5, 1.5)`, hypernetwork weights and biases of each layer in
/// `±1.5/sqrt(fan_in)` (1.5 × torch's default `Linear` init), so that the hypernetwork's
/// outputs vary over the box and the splines are far from the identity, yet stay finite.
fn make_blob(seed: u64) -> Vec<u8> {
    let mut rng = Pcg32::seed_from_u64(seed);
    let mut vals: Vec<f32> = uniforms(&mut rng, model::LOWER_PARAMS, 1.5).collect();
    let sizes = [1, model::HIDDEN[0], model::HIDDEN[1], model::LOWER_PARAMS];
    for w in sizes.windows(2) {
        let (fan_in, fan_out) = (w[0], w[1]);
        let a = 1.5 / (fan_in as f32).sqrt();
        vals.extend(uniforms(&mut rng, fan_in * fan_out + fan_out, a));
    }
    assert_eq!(vals.len(), model::TOTAL_PARAMS);
    vals.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../flow-firmware-example")
}

fn work_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("firmware");
    std::fs::create_dir_all(&d).expect("create the test's work directory");
    d
}

/// Writes `bytes` to `work_dir()/name` unless the file already holds them (an unchanged file
/// keeps its mtime, so cargo does not rebuild the firmware for it).
fn write_blob(name: &str, bytes: &[u8]) -> PathBuf {
    let p = work_dir().join(name);
    if std::fs::read(&p).ok().as_deref() != Some(bytes) {
        std::fs::write(&p, bytes).expect("write blob");
    }
    p
}

/// The host's flow for `blob`, built by the firmware's own `model::load`.
fn host_flow(blob: &[u8]) -> Result<model::Model, flow_core::Error> {
    model::load(Box::leak(blob.to_vec().into_boxed_slice()))
}

// --- building and running the firmware -----------------------------------------------------

/// The firmware binaries of one build, copied out of cargo's target directory.
#[derive(Clone)]
struct Build {
    flow: PathBuf,
    template: PathBuf,
    fault: PathBuf,
}

/// Builds all binaries of the firmware for `target` embedding `blob`, and copies them to
/// `work_dir()/<label>/`; once per label and test run. Builds are serialized: they share the
/// firmware's target directory, and a concurrent build with another blob would overwrite the
/// binaries.
fn build(target: &str, blob: &Path, label: &str) -> Build {
    static BUILDS: Mutex<BTreeMap<String, Build>> = Mutex::new(BTreeMap::new());
    let mut builds = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = builds.get(label) {
        return b.clone();
    }
    let dir = firmware_dir();
    let target_dir = dir.join("target");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // Not `--locked`: the firmware's Cargo.lock gains flow-core's new dependencies by itself.
    let out = Command::new(cargo)
        .current_dir(&dir)
        .args(["build", "--release", "--bins", "--target", target])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("FLOW_MODEL_BLOB", blob)
        // The firmware's link flags come from its .cargo/config.toml, which RUSTFLAGS would
        // replace; the host's target directory and target must not leak in either.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null())
        .output()
        .expect("run cargo to build the firmware");
    assert!(
        out.status.success(),
        "building the firmware for {target} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dest = work_dir().join(label);
    std::fs::create_dir_all(&dest).expect("create build output dir");
    let copy = |bin: &str| {
        let from = target_dir.join(target).join("release").join(bin);
        let to = dest.join(format!("{bin}.elf"));
        std::fs::copy(&from, &to)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
        to
    };
    let b = Build {
        flow: copy("flow-firmware-example"),
        template: copy("template"),
        fault: copy("fault"),
    };
    builds.insert(label.to_string(), b.clone());
    b
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

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `elf` on `machine` under `timeout`, with instruction counting (`-icount shift=0`).
fn qemu(machine: Machine, elf: &Path) -> Run {
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

// --- parsing the firmware's output ----------------------------------------------------------

/// A value as printed: `f32` bits, or the Display of a flow-core error.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Bits(u32),
    Err(String),
}

impl Val {
    fn of(r: Result<f32, flow_core::Error>) -> Self {
        match r {
            Ok(v) => Val::Bits(v.to_bits()),
            Err(e) => Val::Err(e.to_string()),
        }
    }
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::Bits(b) => write!(f, "{:e} (0x{b:08x})", f32::from_bits(*b)),
            Val::Err(e) => write!(f, "error \"{e}\""),
        }
    }
}

#[derive(Default, Debug)]
struct Output {
    lp: BTreeMap<usize, Val>,
    samples: BTreeMap<usize, Result<[u32; 2], String>>,
    flags: Vec<(usize, Val)>,
    flagged: Option<usize>,
    calib: Vec<(u64, u64)>,
    metrics: BTreeMap<String, u64>,
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

/// `"err <message>"` or a hex `f32`.
fn val(rest: &[&str]) -> Val {
    match rest {
        ["err", msg @ ..] => Val::Err(msg.join(" ")),
        [bits] => Val::Bits(hex(bits)),
        _ => panic!("bad value {rest:?}"),
    }
}

fn parse(stdout: &str) -> Output {
    let mut o = Output::default();
    for line in stdout.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["lp", i, rest @ ..] => {
                o.lp.insert(num(i), val(rest));
            }
            ["sample", i, "err", msg @ ..] => {
                o.samples.insert(num(i), Err(msg.join(" ")));
            }
            ["sample", i, a, b] => {
                o.samples.insert(num(i), Ok([hex(a), hex(b)]));
            }
            ["flag", i, rest @ ..] => o.flags.push((num(i), val(rest))),
            ["flagged", n] => o.flagged = Some(num(n)),
            ["calib", n, t] => o.calib.push((num(n), num(t))),
            ["load-error", ..] => {
                o.load_error = Some(line["load-error ".len().min(line.len())..].to_string())
            }
            ["done"] => o.done = true,
            [key, v]
                if key.starts_with("icount")
                    || key.starts_with("stack")
                    || key.starts_with("flow_") =>
            {
                o.metrics.insert(key.to_string(), num(v));
            }
            [key, v] if *key == "instr_per_tick_milli" => {
                o.metrics.insert(key.to_string(), num(v));
            }
            _ => {}
        }
    }
    o
}

// --- ELF section sizes ----------------------------------------------------------------------

/// Section name → size, from the section headers of a 32-bit little-endian ELF.
fn elf_sections(path: &Path) -> BTreeMap<String, u64> {
    let b = std::fs::read(path).expect("read ELF");
    assert!(
        b.len() > 52 && &b[..4] == b"\x7fELF" && b[4] == 1 && b[5] == 1,
        "{} is not a 32-bit little-endian ELF",
        path.display()
    );
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize;
    let (shoff, shentsize, shnum, shstrndx) =
        (u32_at(0x20), u16_at(0x2E), u16_at(0x30), u16_at(0x32));
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u32_at(header(shstrndx) + 0x10);
    let mut out = BTreeMap::new();
    for i in 0..shnum {
        let h = header(i);
        let name_off = strtab + u32_at(h);
        let end = b[name_off..].iter().position(|&c| c == 0).unwrap_or(0);
        let name = String::from_utf8_lossy(&b[name_off..name_off + end]).into_owned();
        out.insert(name, u32_at(h + 0x14) as u64);
    }
    out
}

/// Flash (`.vector_table + .text + .rodata + .data`) and static RAM (`.data + .bss + .uninit`).
struct Footprint {
    sections: BTreeMap<String, u64>,
}

impl Footprint {
    fn of(elf: &Path) -> Self {
        Self {
            sections: elf_sections(elf),
        }
    }
    fn get(&self, s: &str) -> u64 {
        self.sections.get(s).copied().unwrap_or(0)
    }
    fn flash(&self) -> u64 {
        [".vector_table", ".text", ".rodata", ".data"]
            .iter()
            .map(|s| self.get(s))
            .sum()
    }
    fn ram(&self) -> u64 {
        [".data", ".bss", ".uninit"]
            .iter()
            .map(|s| self.get(s))
            .sum()
    }
    fn describe(&self) -> String {
        format!(
            "flash {} B (.vector_table {} + .text {} + .rodata {} + .data {}), static RAM {} B \
             (.data {} + .bss {} + .uninit {})",
            self.flash(),
            self.get(".vector_table"),
            self.get(".text"),
            self.get(".rodata"),
            self.get(".data"),
            self.ram(),
            self.get(".data"),
            self.get(".bss"),
            self.get(".uninit"),
        )
    }
}

// --- the comparison ---------------------------------------------------------------------------

/// Everything the host computes for the firmware's workload.
struct Expected {
    lp: Vec<Val>,
    samples: Vec<Result<[u32; 2], String>>,
    flags: Vec<(usize, Val)>,
}

fn expected(flow: &model::Model) -> Expected {
    let lp = workload::POINTS
        .iter()
        .map(|p| Val::of(flow.log_prob(p)))
        .collect();
    let mut rng = workload::sample_rng();
    let samples = (0..workload::N_SAMPLES)
        .map(|_| match flow.sample::<f32, _>(&mut rng) {
            Ok(x) => Ok([x[0].to_bits(), x[1].to_bits()]),
            Err(e) => Err(e.to_string()),
        })
        .collect();
    let mut stream = workload::Stream::new();
    let mut flags = Vec::new();
    let mut i = 0;
    while let Some(point) = stream.next_point(flow) {
        match point.and_then(|x| flow.log_prob(&x)) {
            Ok(lp) if workload::is_anomalous(lp) => flags.push((i, Val::Bits(lp.to_bits()))),
            Ok(_) => {}
            Err(e) => flags.push((i, Val::Err(e.to_string()))),
        }
        i += 1;
    }
    Expected { lp, samples, flags }
}

/// ULP distance of two finite `f32` of the same sign (for messages only).
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

fn mismatches(machine: &str, out: &Output, exp: &Expected) -> Vec<String> {
    let mut bad = Vec::new();
    for (i, (p, host)) in workload::POINTS.iter().zip(&exp.lp).enumerate() {
        match out.lp.get(&i) {
            None => bad.push(format!(
                "{machine}: log_prob of point {i} {p:?} not printed"
            )),
            Some(dev) if dev != host => {
                let d = match (dev, host) {
                    (Val::Bits(a), Val::Bits(b)) => format!(" ({} ULP)", ulps(*a, *b)),
                    _ => String::new(),
                };
                bad.push(format!(
                    "{machine}: log_prob of point {i} {p:?}: device {dev}, host {host}{d}"
                ));
            }
            Some(_) => {}
        }
    }
    if out.lp.len() != exp.lp.len() {
        bad.push(format!(
            "{machine}: {} log_prob lines, expected {}",
            out.lp.len(),
            exp.lp.len()
        ));
    }
    for (i, host) in exp.samples.iter().enumerate() {
        let show = |s: &Result<[u32; 2], String>| match s {
            Ok([a, b]) => format!(
                "({:e}, {:e}) (0x{a:08x}, 0x{b:08x})",
                f32::from_bits(*a),
                f32::from_bits(*b)
            ),
            Err(e) => format!("error \"{e}\""),
        };
        match out.samples.get(&i) {
            None => bad.push(format!("{machine}: sample {i} not printed")),
            Some(dev) if dev != host => bad.push(format!(
                "{machine}: sample {i}: device {}, host {}",
                show(dev),
                show(host)
            )),
            Some(_) => {}
        }
    }
    if out.samples.len() != exp.samples.len() {
        bad.push(format!(
            "{machine}: {} sample lines, expected {}",
            out.samples.len(),
            exp.samples.len()
        ));
    }
    if out.flags != exp.flags {
        bad.push(format!(
            "{machine}: anomaly flags differ:\n  device {:?}\n  host   {:?}",
            out.flags, exp.flags
        ));
    }
    if out.flagged != Some(exp.flags.len()) {
        bad.push(format!(
            "{machine}: flagged {:?}, host flags {}",
            out.flagged,
            exp.flags.len()
        ));
    }
    bad
}

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

/// Builds for `target`, runs the flow firmware and the template on each machine, compares with
/// the host, and reports the measurements.
fn check_target(target: &str, machines: &[Machine]) {
    let blob = make_blob(TEST_SEED);
    let path = write_blob("model-test.bin", &blob);
    let flow = host_flow(&blob).expect("the test blob loads on the host");
    let exp = expected(&flow);
    // The blob must exercise the flow: finite log_probs that differ, some points flagged.
    let finite: Vec<f32> = exp
        .lp
        .iter()
        .filter_map(|v| match v {
            Val::Bits(b) => Some(f32::from_bits(*b)).filter(|x| x.is_finite()),
            Val::Err(_) => None,
        })
        .collect();
    assert!(
        finite.len() >= workload::INSIDE_POINTS && finite.windows(2).any(|w| w[0] != w[1]),
        "the test blob gives trivial log_probs: {:?}",
        exp.lp
    );

    let b = build(target, &path, target);
    let fp = Footprint::of(&b.flow);
    let tfp = Footprint::of(&b.template);
    let mut report = String::new();
    let mut bad = Vec::new();
    for &m in machines {
        let label = format!("{target} on {}", m.name);
        let run = qemu(m, &b.flow);
        let out = parse(&run.stdout);
        assert!(
            out.load_error.is_none(),
            "{label}: load error {:?}",
            out.load_error
        );
        assert!(
            run.code == Some(0) && out.done,
            "{label}: exit status {:?}, done printed: {}\nstdout:\n{}\nstderr:\n{}",
            run.code,
            out.done,
            run.stdout,
            run.stderr
        );
        bad.extend(mismatches(&label, &out, &exp));
        check_calibration(&label, &out.calib);

        let trun = qemu(m, &b.template);
        let tout = parse(&trun.stdout);
        assert!(
            trun.code == Some(0) && tout.done,
            "{label}: template exit status {:?}\n{}",
            trun.code,
            trun.stdout
        );
        check_calibration(&format!("{label} (template)"), &tout.calib);

        let lp_instr = metric(&label, &out, "icount_per_log_prob");
        let peak = metric(&label, &out, "stack_peak_bytes");
        let cap = metric(&label, &out, "stack_capacity_bytes");
        let tpeak = metric(&label, &tout, "stack_peak_bytes");
        assert!(
            (100..50_000_000).contains(&lp_instr),
            "{label}: implausible icount_per_log_prob {lp_instr}"
        );
        assert!(
            peak < cap,
            "{label}: the stack overflowed ({peak} of {cap} B)"
        );
        let _ = writeln!(
            report,
            "{label}: {} instructions per log_prob (inside the box; {} over all points), {} per \
             sample; instructions per SysTick tick {:.3}\n  stack: peak {peak} B (template {tpeak} \
             B, flow +{} B) = main {} B (Flow struct {} B) + deepest call; log_prob call {} B, \
             sample call {} B; stack region {cap} B",
            lp_instr,
            metric(&label, &out, "icount_per_log_prob_all"),
            metric(&label, &out, "icount_per_sample"),
            metric(&label, &out, "instr_per_tick_milli") as f64 / 1000.0,
            peak.saturating_sub(tpeak),
            metric(&label, &out, "stack_main_bytes"),
            metric(&label, &out, "flow_struct_bytes"),
            metric(&label, &out, "stack_log_prob_bytes"),
            metric(&label, &out, "stack_sample_bytes"),
        );
    }
    let _ = writeln!(
        report,
        "{target}: firmware {}\n  template {}\n  flow part: flash +{} B, static RAM +{} B",
        fp.describe(),
        tfp.describe(),
        fp.flash() as i64 - tfp.flash() as i64,
        fp.ram() as i64 - tfp.ram() as i64,
    );
    print!("{report}");
    std::fs::write(work_dir().join(format!("report-{target}.txt")), &report).expect("write report");
    assert!(
        bad.is_empty(),
        "device and host differ ({} mismatches):\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn cortex_m4f_mps2_an386_matches_host() {
    check_target("thumbv7em-none-eabihf", &[MPS2_AN386]);
}

#[test]
fn cortex_m3_soft_float_matches_host() {
    check_target("thumbv7m-none-eabi", &[LM3S6965EVB, MPS2_AN385]);
}

#[test]
fn cortex_m0_microbit_matches_host() {
    check_target("thumbv6m-none-eabi", &[MICROBIT]);
}

// --- failures end the run ------------------------------------------------------------------

/// A corrupted blob: the firmware prints `load-error <the host's error>` and exits with 1.
fn check_load_error(target: &str, machine: Machine, name: &str, blob: &[u8]) {
    let host_err = host_flow(blob)
        .err()
        .unwrap_or_else(|| panic!("the {name} blob loads on the host"))
        .to_string();
    let path = write_blob(&format!("{name}.bin"), blob);
    let b = build(target, &path, &format!("{target}-{name}"));
    let run = qemu(machine, &b.flow);
    let out = parse(&run.stdout);
    assert_eq!(
        out.load_error.as_deref(),
        Some(host_err.as_str()),
        "{name} blob on {}: stdout:\n{}",
        machine.name,
        run.stdout
    );
    assert_eq!(
        run.code,
        Some(1),
        "{name} blob on {}: the firmware must exit with failure",
        machine.name
    );
    assert!(!out.done && out.lp.is_empty());
}

#[test]
fn truncated_blob_is_a_load_error() {
    let mut blob = make_blob(TEST_SEED);
    blob.truncate(blob.len() - 4);
    check_load_error("thumbv7em-none-eabihf", MPS2_AN386, "truncated", &blob);
}

#[test]
fn nan_parameter_is_a_load_error() {
    let mut blob = make_blob(TEST_SEED);
    // A hypernetwork weight.
    let at = 4 * (model::LOWER_PARAMS + 30);
    blob[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    check_load_error("thumbv6m-none-eabi", MICROBIT, "nan", &blob);
}

#[test]
fn hardfault_exits_with_failure() {
    let path = write_blob("model-test.bin", &make_blob(TEST_SEED));
    let b = build("thumbv7em-none-eabihf", &path, "thumbv7em-none-eabihf");
    let run = qemu(MPS2_AN386, &b.fault);
    assert!(
        run.stdout.contains("hardfault pc="),
        "no hardfault line:\n{}",
        run.stdout
    );
    assert_eq!(run.code, Some(1), "a HardFault must exit with failure");
}

// --- the checked-in default blob ------------------------------------------------------------

#[test]
fn default_blob_is_the_generated_one() {
    let path = firmware_dir().join("models/default.bin");
    let want = make_blob(DEFAULT_SEED);
    if std::env::var_os("FLOW_BLESS").is_some() {
        std::fs::write(&path, &want).expect("write models/default.bin");
    }
    let have = std::fs::read(&path).expect("read models/default.bin");
    assert!(
        have == want,
        "models/default.bin is not make_blob({DEFAULT_SEED}); rerun with FLOW_BLESS=1"
    );
    host_flow(&have).expect("the default blob loads");
}
