//! The device cost model (`flow_train::cost`, what `inspect` prints) against the measurement
//! harness (`flow-device-bench`): the Cortex-M4F firmware built for a model file and run in
//! QEMU `mps2-an386` with `-icount shift=0`.
//!
//! * `cost_model_matches_the_harness`: the example models — the firmware's default
//!   `models/circles_coupling.nflw`, Pyro's trained tutorial flows (a) `Spline(2, 16)`, (b)
//!   `spline_coupling(2, 16)` and (c) the joint, a conditional flow, a 6-D coupling stack
//!   with the ActNorm affine, and an `exp` + affine flow — measured, and each of the model's
//!   three figures (`m4f_instructions`, `flash_bytes`, `ram_bytes`) within 10 % of the
//!   measured one.
//! * `measure_cost_table` (`--ignored`, a measurement run, not a check): measures the models
//!   of [`table_models`] — every layer kind, several `D`, `K`, hidden sizes — and writes the
//!   table the cost model's coefficients are fitted to (`scripts/fit-cost-model.py`,
//!   `docs/device-cost.md`) to `$COST_TABLE` (default `device-cost.tsv` in the test's
//!   temporary directory).
//!
//! What is measured (all by [`measure`], the only function that knows the harness):
//! `icount_per_log_prob` (instructions per `log_prob`, mean over the points inside the box),
//! flash as the ELF's `.vector_table + .text + .rodata + .data` of the firmware less that of
//! the harness's `template` binary (the same runtime without a flow), and RAM as
//! `flow_struct_bytes + stack_log_prob_bytes` (the flow and the stack below the caller of
//! `log_prob`). Each build compiles in exactly the model's layer kinds. `qemu-system-arm`
//! missing is a failure (`scripts/test-all.sh` installs it).

#[allow(dead_code)]
#[path = "../../flow-device-bench/src/geometry.rs"]
mod geometry;

use flow_core::model::ModelBuilder;
use flow_core::nn::dense_param_count;
use flow_core::{Model, Order, Spline, SplineShape};
use flow_tests::elf::Elf;
use flow_tests::models::{hypernet, params};
use flow_train::cost::DeviceCost;
use rand_core::SeedableRng;
use rand_pcg::Pcg32;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What the harness measured for one model.
#[derive(Clone, Copy, Debug)]
struct Measured {
    /// Instructions per `log_prob` inside the box.
    instructions: u64,
    /// Flash beyond the template's.
    flash: u64,
    /// The flow struct plus the stack of `log_prob`.
    ram: u64,
}

// --- the harness: the one place that builds and runs it --------------------------------------

/// Builds the harness for `model` (written to the work directory as `<label>.nflw`) for the
/// Cortex-M4F with exactly its layer kinds, runs it in QEMU `mps2-an386` with instruction
/// counting, and reads the figures.
fn measure(label: &str, model: &[u8]) -> Measured {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let harness = root.join("flow-device-bench");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cost-model");
    std::fs::create_dir_all(&work).expect("create the test's work directory");
    let path = work.join(format!("{label}.nflw"));
    // Rewritten only when it changes: an unchanged file keeps its mtime, and cargo its build.
    if std::fs::read(&path).ok().as_deref() != Some(model) {
        std::fs::write(&path, model).expect("write the model file");
    }
    let features = Model::parse(model)
        .and_then(|m| geometry::features(&m))
        .expect("a valid model")
        .join(",");
    let target = "thumbv7em-none-eabihf";
    let target_dir = work.join("target");
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&harness)
        .args(["build", "--release", "--target", target, "--bin"])
        .args(["flow-device-bench", "--bin", "template"])
        .args(["--no-default-features", "--features", &features])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("FLOW_MODEL", &path)
        .env_remove("FLOW_MODEL_UNCHECKED")
        .env_remove("FLOW_STREAM")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null())
        .output()
        .expect("run cargo to build the harness");
    assert!(
        out.status.success(),
        "building the harness for {label} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = |b: &str| target_dir.join(target).join("release").join(b);
    let run = Command::new("timeout")
        .args([
            "--kill-after=5",
            "120",
            "qemu-system-arm",
            "-machine",
            "mps2-an386",
        ])
        .args(["-cpu", "cortex-m4", "-nographic", "-semihosting-config"])
        .args(["enable=on,target=native", "-icount", "shift=0", "-kernel"])
        .arg(bin("flow-device-bench"))
        .stdin(Stdio::null())
        .output()
        .expect("run qemu-system-arm (scripts/test-all.sh installs it)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && stdout.lines().any(|l| l == "done"),
        "the harness for {label} failed ({}):\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    let metric = |name: &str| -> u64 {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{label}: no `{name}` line in:\n{stdout}"))
    };
    Measured {
        instructions: metric("icount_per_log_prob"),
        flash: Elf::read(&bin("flow-device-bench")).flash() - Elf::read(&bin("template")).flash(),
        ram: metric("flow_struct_bytes") + metric("stack_log_prob_bytes"),
    }
}

// --- the models --------------------------------------------------------------------------------

fn shape(bins: usize, bound: f32, order: Order) -> SplineShape {
    SplineShape::new(bins, bound, order).expect("a valid spline shape")
}

/// Appends a spline coupling with random parameters (splines well away from the identity).
fn coupling(
    b: &mut ModelBuilder,
    rng: &mut Pcg32,
    (split, upper, context): (usize, usize, usize),
    s: &SplineShape,
    hidden: &[usize],
) {
    let lower = params(rng, Spline::param_count(split, s), 2.0);
    let nn = hypernet(
        rng,
        split + context,
        hidden,
        upper * s.params_per_dim(),
        2.0,
    );
    b.coupling(split, upper, s, context, hidden, &lower, &nn);
}

fn cond_spline(
    b: &mut ModelBuilder,
    rng: &mut Pcg32,
    dim: usize,
    ctx: usize,
    s: &SplineShape,
    hidden: &[usize],
) {
    let nn = hypernet(rng, ctx, hidden, dim * s.params_per_dim(), 2.0);
    assert_eq!(
        nn.len(),
        dense_param_count(ctx, hidden, dim * s.params_per_dim())
    );
    b.conditional_spline(dim, s, ctx, hidden, &nn);
}

fn spline(b: &mut ModelBuilder, rng: &mut Pcg32, dim: usize, s: &SplineShape) {
    let p = params(rng, Spline::param_count(dim, s), 2.0);
    b.spline(dim, s, &p);
}

/// A learnable-affine-like layer: `loc` 0.1·j, `scale` 1.5 (standardizes the harness's points
/// into a wider box).
fn affine(b: &mut ModelBuilder, dim: usize) {
    let loc: Vec<f32> = (0..dim).map(|j| 0.1 * j as f32).collect();
    b.affine(&loc, &vec![1.5; dim]);
}

/// A 6-D stack: `couplings` couplings split 3 + 3, reversed between them, the affine on the
/// data side if `norm`.
fn stack6(
    rng: &mut Pcg32,
    couplings: usize,
    hidden: &[usize],
    s: &SplineShape,
    norm: bool,
) -> Vec<u8> {
    let mut b = ModelBuilder::plain(6);
    for i in 0..couplings {
        if i > 0 {
            b.permute(&[3, 4, 5, 0, 1, 2]);
        }
        coupling(&mut b, rng, (3, 3, 0), s, hidden);
    }
    if norm {
        affine(&mut b, 6);
    }
    b.encode().expect("encode")
}

/// The joint `p(x₁)·p(x₂ | x₁)` on `R²`: a spline and a conditional spline.
fn joint2(rng: &mut Pcg32, s: &SplineShape, hidden: &[usize]) -> Vec<u8> {
    let mut b = ModelBuilder::joint(2, 1);
    spline(&mut b, rng, 1, s);
    b.end_marginal();
    cond_spline(&mut b, rng, 1, 1, s, hidden);
    b.encode().expect("encode")
}

fn pyro_trained(file: &str, description: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pyro-trained")
        .join(file);
    let sd = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    flow_train::pyro::import(&sd, description).expect("import a Pyro-trained flow")
}

/// The example models of `cost_model_matches_the_harness`.
fn example_models() -> Vec<(&'static str, Vec<u8>)> {
    let mut rng = Pcg32::seed_from_u64(0xC057);
    let default_model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../flow-firmware-example/models/circles_coupling.nflw");
    let mut v = vec![
        (
            "circles_coupling",
            std::fs::read(&default_model)
                .unwrap_or_else(|e| panic!("{}: {e}", default_model.display())),
        ),
        (
            "pyro_a_spline",
            pyro_trained(
                "a_spline_params.json",
                r#"{"dim": 2, "layers": [{"type": "spline", "count_bins": 16}]}"#,
            ),
        ),
        (
            "pyro_b_coupling",
            pyro_trained(
                "b_spline_coupling_params.json",
                r#"{"dim": 2, "layers": [{"type": "spline_coupling", "count_bins": 16}]}"#,
            ),
        ),
        (
            "pyro_c_joint",
            pyro_trained(
                "c_conditional_params.json",
                r#"{"flow": "joint", "dim": 2, "context_dim": 1, "marginal_layers": 1,
                    "layers": [{"type": "spline", "prefix": "0.", "count_bins": 8},
                               {"type": "conditional_spline", "prefix": "1.", "count_bins": 8}]}"#,
            ),
        ),
    ];
    // A conditional flow: conditional spline, permutation, conditional coupling (D = C = 2).
    let mut b = ModelBuilder::conditional(2, 2);
    let s = shape(8, 3.0, Order::Linear);
    cond_spline(&mut b, &mut rng, 2, 2, &s, &[16, 16]);
    b.permute(&[1, 0]);
    coupling(&mut b, &mut rng, (1, 1, 2), &s, &[16, 16]);
    v.push(("conditional", b.encode().expect("encode")));
    // The 6-D automatic architecture's shape: 4 couplings [8, 8], K = 3 quadratic, ActNorm.
    let s = shape(3, 3.5, Order::Quadratic);
    v.push(("imu6_auto", stack6(&mut rng, 4, &[8, 8], &s, true)));
    // exp and affine (the latent side's exp, then an affine making the points positive).
    let mut b = ModelBuilder::plain(3);
    b.exp(3);
    b.affine(&[-10.0; 3], &[1.0; 3]);
    v.push(("exp_affine", b.encode().expect("encode")));
    v
}

/// The models the coefficients are fitted to: every layer kind, several `D`, `K`, hidden
/// sizes, both orders.
fn table_models() -> Vec<(String, Vec<u8>)> {
    use Order::{Linear, Quadratic};
    let mut rng = Pcg32::seed_from_u64(0x7AB1E);
    let mut v: Vec<(String, Vec<u8>)> = Vec::new();
    // Element-wise splines.
    for (d, k, order) in [
        (1, 8, Linear),
        (2, 16, Linear),
        (4, 8, Quadratic),
        (3, 32, Linear),
    ] {
        let mut b = ModelBuilder::plain(d);
        spline(&mut b, &mut rng, d, &shape(k, 3.0, order));
        v.push((
            format!("spline_d{d}_k{k}_{order:?}"),
            b.encode().expect("encode"),
        ));
    }
    // Affine, exp, permute.
    for d in [2, 6] {
        let mut b = ModelBuilder::plain(d);
        b.exp(d);
        b.affine(&vec![-10.0; d], &vec![1.0; d]);
        let rev: Vec<u8> = (0..d as u8).rev().collect();
        b.permute(&rev);
        affine(&mut b, d);
        v.push((
            format!("exp_affine_permute_d{d}"),
            b.encode().expect("encode"),
        ));
    }
    // Single couplings.
    for (d, split, k, order, hidden) in [
        (2, 1, 16, Linear, &[20, 20][..]),
        (2, 1, 8, Quadratic, &[8, 8][..]),
        (4, 2, 8, Linear, &[16, 16][..]),
        (3, 1, 4, Linear, &[12][..]),
        (2, 1, 32, Linear, &[32, 32][..]),
    ] {
        let mut b = ModelBuilder::plain(d);
        coupling(
            &mut b,
            &mut rng,
            (split, d - split, 0),
            &shape(k, 3.0, order),
            hidden,
        );
        v.push((
            format!("coupling_d{d}_s{split}_k{k}_{order:?}_h{hidden:?}"),
            b.encode().expect("encode"),
        ));
    }
    // 6-D stacks.
    for (c, h, k, order, norm) in [
        (2, 8, 3, Quadratic, false),
        (4, 8, 3, Quadratic, true),
        (3, 16, 6, Linear, true),
        (2, 24, 3, Quadratic, true),
    ] {
        let s = shape(k, 3.5, order);
        v.push((
            format!("stack6_c{c}_h{h}_k{k}_{order:?}_norm{norm}"),
            stack6(&mut rng, c, &[h, h], &s, norm),
        ));
    }
    // Joints on R².
    for (k, order, hidden) in [
        (8, Linear, &[8, 8][..]),
        (16, Linear, &[16, 16][..]),
        (32, Linear, &[32, 32][..]),
        (8, Quadratic, &[12][..]),
        (12, Linear, &[10, 10][..]),
    ] {
        v.push((
            format!("joint2_k{k}_{order:?}_h{hidden:?}"),
            joint2(&mut rng, &shape(k, 4.0, order), hidden),
        ));
    }
    // A joint on R³ (x₁ 1-D, x₂ 2-D: a conditional coupling) and conditional flows.
    let s = shape(8, 3.0, Linear);
    let mut b = ModelBuilder::joint(3, 1);
    spline(&mut b, &mut rng, 1, &s);
    b.end_marginal();
    cond_spline(&mut b, &mut rng, 2, 1, &s, &[12, 12]);
    coupling(&mut b, &mut rng, (1, 1, 1), &s, &[12, 12]);
    v.push(("joint3_k8".into(), b.encode().expect("encode")));
    let mut b = ModelBuilder::conditional(1, 3);
    cond_spline(&mut b, &mut rng, 1, 3, &shape(4, 3.0, Quadratic), &[8]);
    v.push(("conditional_d1_c3_k4".into(), b.encode().expect("encode")));
    let mut b = ModelBuilder::conditional(4, 2);
    let s6 = shape(6, 3.0, Linear);
    coupling(&mut b, &mut rng, (2, 2, 2), &s6, &[16, 16]);
    b.permute(&[2, 3, 0, 1]);
    coupling(&mut b, &mut rng, (2, 2, 2), &s6, &[16, 16]);
    v.push(("conditional_d4_c2_k6".into(), b.encode().expect("encode")));
    v
}

/// The cost model's figures for a model file.
fn predicted(bytes: &[u8]) -> DeviceCost {
    let m = Model::parse(bytes).expect("a valid model");
    DeviceCost::of_model(&m).expect("a model the cost model knows")
}

/// Within 10 %: the accuracy `inspect`'s figures promise (docs/device-cost.md has the errors).
const TOLERANCE: f64 = 0.10;

#[test]
fn cost_model_matches_the_harness() {
    let mut failures = Vec::new();
    for (label, bytes) in example_models() {
        let m = measure(label, &bytes);
        let p = predicted(&bytes);
        for (what, est, got) in [
            ("m4f_instructions", p.m4f_instructions, m.instructions),
            ("flash_bytes", p.flash_bytes, m.flash),
            ("ram_bytes", p.ram_bytes, m.ram),
        ] {
            let err = est as f64 / got as f64 - 1.0;
            eprintln!(
                "{label:<18} {what:<17} predicted {est:>7} measured {got:>7} ({:+.1} %)",
                100.0 * err
            );
            if err.abs() > TOLERANCE {
                failures.push(format!("{label}: {what} predicted {est}, measured {got}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "off by more than 10 %:\n{}",
        failures.join("\n")
    );
}

/// Measures [`table_models`] and the example models and writes the table the coefficients are
/// fitted to (a measurement run: `scripts/measure-device-cost.sh`).
#[test]
#[ignore = "a measurement run of a few minutes per model (scripts/measure-device-cost.sh)"]
fn measure_cost_table() {
    let out: PathBuf = std::env::var_os("COST_TABLE").map_or_else(
        || Path::new(env!("CARGO_TARGET_TMPDIR")).join("device-cost.tsv"),
        PathBuf::from,
    );
    let mut rows = String::from("label\tfeatures\tfile_bytes\tinstructions\tflash\tram\tpredicted_instructions\tpredicted_flash\tpredicted_ram\n");
    let models = example_models()
        .into_iter()
        .map(|(l, b)| (l.to_string(), b))
        .chain(table_models());
    for (label, bytes) in models {
        let m = measure(&label, &bytes);
        let model = Model::parse(&bytes).expect("a valid model");
        let p = predicted(&bytes);
        let f = flow_train::cost::Features::of_model(&model).expect("known layers");
        let row = format!(
            "{label}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            f.to_tsv(),
            model.file_size(),
            m.instructions,
            m.flash,
            m.ram,
            p.m4f_instructions,
            p.flash_bytes,
            p.ram_bytes
        );
        eprint!("{row}");
        rows.push_str(&row);
        std::fs::write(&out, &rows).expect("write the table");
    }
    eprintln!("wrote {}", out.display());
}
