//! Checks the embedded model at build time and compiles the example for it.
//!
//! - The board (exactly one board feature) picks `memory/<board>.x`, copied to `OUT_DIR` as
//!   `memory.x` for the linker script.
//! - `FLOW_MODEL` names the model file (relative to this crate; default
//!   `models/circles_coupling.nflw`). It is parsed here with flow-core: a file that does not
//!   load fails the build with flow-core's error in words, and so does a model whose layer
//!   kinds this build leaves out (naming the features to add).
//! - `$OUT_DIR/geometry.rs`: the model's kind and the sizes its flow type needs (`D`, `L`,
//!   `H`, `K`); `$OUT_DIR/tables.bin`: the knot tables of its fixed splines with their seal
//!   (`flow_core::flow::write_tables`, `table_seal`), handed to the flow at run time.

use flow_core::model::{FlowKind, LayerRecord};
use flow_core::{Model, Order};
use std::path::PathBuf;
use std::{env, fs, process::exit};

const BOARDS: [&str; 7] = [
    "mps2-an386",
    "netduinoplus2",
    "microbit",
    "hifive1",
    "nrf52840-dk",
    "rp-pico",
    "nucleo-f401re",
];

fn fail(msg: String) -> ! {
    eprintln!("error: {msg}");
    exit(1)
}

fn feature(f: &str) -> bool {
    let var = format!("CARGO_FEATURE_{}", f.to_uppercase().replace('-', "_"));
    env::var_os(var).is_some()
}

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap());

    // --- the board and its memory layout ---
    let boards: Vec<&str> = BOARDS.iter().copied().filter(|b| feature(b)).collect();
    let [board] = boards[..] else {
        fail(format!(
            "choose one board with `--features <board>` (one of {}); `cargo <board>` or \
             scripts/run-firmware.sh do it for you (got {boards:?})",
            BOARDS.join(", ")
        ))
    };
    let memory = manifest.join("memory").join(format!("{board}.x"));
    fs::copy(&memory, out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory");
    // The runtime's link script (cortex-m-rt's includes `memory.x`, riscv-rt's needs it
    // first), and defmt's for the RTT boards.
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("riscv32") {
        println!("cargo:rustc-link-arg=-Tmemory.x");
    }
    println!("cargo:rustc-link-arg=-Tlink.x");
    // cortex-m-rt's link script includes `device.x`, where a chip's crate names its interrupt
    // handlers; the example's one-slot interrupt table (src/board/vectors.rs) names none.
    if feature("cortex-m-vectors") {
        fs::write(out.join("device.x"), "/* no interrupt handlers: src/board/vectors.rs */\n")
            .expect("write device.x");
    }
    if feature("rtt") {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }

    // --- the model, checked here ---
    println!("cargo:rerun-if-env-changed=FLOW_MODEL");
    let path = match env::var_os("FLOW_MODEL") {
        Some(p) if !p.is_empty() => manifest.join(p),
        _ => manifest.join("models/circles_coupling.nflw"),
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let name = path.display();
    let bytes = fs::read(&path).unwrap_or_else(|e| fail(format!("FLOW_MODEL {name}: {e}")));
    let model = Model::parse(&bytes).unwrap_or_else(|e| fail(format!("FLOW_MODEL {name}: {e}")));
    let h = model.header();
    if h.kind == FlowKind::Conditional {
        fail(format!(
            "FLOW_MODEL {name} is a conditional flow: the example scores plain and joint \
             flows (flow-device-bench runs conditional ones)"
        ));
    }
    let (mut hidden, mut bins, mut missing) = (0, 2, Vec::new());
    for r in model.records() {
        let r = r.unwrap_or_else(|e| fail(format!("FLOW_MODEL {name}: {e}")));
        let (kind, spline) = match r {
            LayerRecord::Affine { .. } => ("affine", None),
            LayerRecord::Exp { .. } => ("exp", None),
            LayerRecord::Spline { spline, .. } => ("spline", Some(spline)),
            LayerRecord::Coupling { spline, .. } => ("coupling", Some(spline)),
            LayerRecord::Permute { .. } => ("permute", None),
            LayerRecord::ConditionalSpline { spline, .. } => ("conditional-spline", Some(spline)),
        };
        let quadratic = spline.is_some_and(|s| s.order == Order::Quadratic);
        for f in [Some(kind), quadratic.then_some("quadratic")]
            .into_iter()
            .flatten()
        {
            if !feature(f) && !missing.contains(&f) {
                missing.push(f);
            }
        }
    }
    if !missing.is_empty() {
        fail(format!(
            "FLOW_MODEL {name} has layer kinds this build leaves out: add `--features {}`",
            missing.join(",")
        ));
    }
    let layers: Vec<_> = model.layers().collect::<Result<_, _>>().unwrap();
    for l in &layers {
        hidden = hidden.max(l.max_hidden());
        bins = bins.max(l.bins());
    }
    let (n, marginal) = (usize::from(h.layers), usize::from(h.marginal_layers));
    let l = match h.kind {
        FlowKind::Joint => marginal.max(n - marginal),
        _ => n,
    };
    let kind = if h.kind == FlowKind::Joint {
        "joint"
    } else {
        "plain"
    };
    println!("cargo::rustc-check-cfg=cfg(flow_kind, values(\"plain\", \"joint\"))");
    println!("cargo::rustc-cfg=flow_kind=\"{kind}\"");
    let geometry = format!(
        "/// The model's dimension.\npub const D: usize = {};\n\
         /// Its layers (of the larger part of a joint flow).\npub const L: usize = {};\n\
         /// Its widest hidden layer.\npub const H: usize = {hidden};\n\
         /// Its most spline bins.\npub const K: usize = {bins};\n",
        h.dim,
        l.max(1),
    );
    fs::write(out.join("geometry.rs"), geometry).unwrap();

    // --- the knot tables of the fixed splines, sealed for this model file ---
    let len: usize = layers.iter().map(flow_core::Layer::table_len).sum();
    let mut tables = vec![0u8; 4 * len];
    let (mut xs, mut ys) = (vec![0f32; bins], vec![0f32; bins]);
    flow_core::flow::write_tables(&layers, &mut tables, &mut xs, &mut ys)
        .unwrap_or_else(|| fail(format!("FLOW_MODEL {name}: its knot tables do not compute")));
    let seal = flow_core::flow::table_seal(model.checksum(), &tables);
    tables.extend_from_slice(&seal.to_le_bytes());
    fs::write(out.join("tables.bin"), tables).unwrap();
    // `FLOW_MODEL_UNCHECKED`: embed this file as it is instead (the tables and sizes still
    // come from `FLOW_MODEL`); for testing the run-time load error.
    println!("cargo:rerun-if-env-changed=FLOW_MODEL_UNCHECKED");
    let embedded = match env::var_os("FLOW_MODEL_UNCHECKED") {
        Some(p) if !p.is_empty() => {
            println!("cargo::warning=embedding FLOW_MODEL_UNCHECKED as it is");
            manifest.join(p)
        }
        _ => path.clone(),
    };
    println!("cargo:rerun-if-changed={}", embedded.display());
    let embedded = embedded
        .canonicalize()
        .unwrap_or_else(|e| fail(format!("{}: {e}", embedded.display())));
    println!("cargo:rustc-env=FLOW_MODEL_FILE={}", embedded.display());
}
