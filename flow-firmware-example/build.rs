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
//! - A windowed model (stream mode, `cfg(flow_kind = "window")`): `W` in `geometry.rs`, and
//!   `$OUT_DIR/readings.rs`, the stream to score: rows `FLOW_READINGS_ROWS` (default
//!   `1200..1500`) of the CSV `FLOW_READINGS` (default `../data/imu/imu_train.csv`), the
//!   model's columns, divided into recordings by the model's grouping.

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
    let kind = match (h.kind, model.window()) {
        (FlowKind::Joint, Some(_)) => "window",
        (FlowKind::Joint, None) => "joint",
        _ => "plain",
    };
    println!("cargo::rustc-check-cfg=cfg(flow_kind, values(\"plain\", \"joint\", \"window\"))");
    println!("cargo::rustc-cfg=flow_kind=\"{kind}\"");
    let mut geometry = format!(
        "/// The model's dimension.\npub const D: usize = {};\n\
         /// Its layers (of the larger part of a joint flow).\npub const L: usize = {};\n\
         /// Its widest hidden layer.\npub const H: usize = {hidden};\n\
         /// Its most spline bins.\npub const K: usize = {bins};\n",
        h.dim,
        l.max(1),
    );
    if let Some(w) = model.window() {
        geometry += &format!("/// Readings per window.\npub const W: usize = {w};\n");
        let readings = readings(&manifest, &model);
        fs::write(out.join("readings.rs"), readings).unwrap();
    }
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

/// The readings the stream mode scores, as Rust source: `RECORDINGS`, the rows
/// `FLOW_READINGS_ROWS` (`start..end`, data rows counted from 0 after the header) of the CSV
/// `FLOW_READINGS`, each row the model's columns in the model's order (without column names,
/// the first `d`), divided into recordings by the model's grouping (rows per recording counted
/// from the file's first row, or a change of the grouping column's text).
fn readings(manifest: &std::path::Path, model: &Model<'_>) -> String {
    use flow_core::model::Grouping;
    println!("cargo:rerun-if-env-changed=FLOW_READINGS");
    println!("cargo:rerun-if-env-changed=FLOW_READINGS_ROWS");
    let path = match env::var_os("FLOW_READINGS") {
        Some(p) if !p.is_empty() => manifest.join(p),
        _ => manifest.join("../data/imu/imu_train.csv"),
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let name = path.display();
    let rows = env::var("FLOW_READINGS_ROWS").unwrap_or_default();
    let rows = if rows.is_empty() { "1200..1500" } else { &rows };
    let range = rows
        .split_once("..")
        .and_then(|(a, b)| Some(a.trim().parse::<usize>().ok()?..b.trim().parse::<usize>().ok()?))
        .filter(|r| r.start < r.end)
        .unwrap_or_else(|| {
            fail(format!("FLOW_READINGS_ROWS {rows:?}: expected a range of rows `start..end`"))
        });
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| fail(format!("FLOW_READINGS {name}: {e}")));
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    let d = usize::from(model.header().dim) / 2;
    let find = |c: &str| {
        header.iter().position(|h| *h == c).unwrap_or_else(|| {
            fail(format!("FLOW_READINGS {name}: no column `{c}` (the header has {header:?})"))
        })
    };
    let names: Vec<&str> = model
        .metadata()
        .columns_str()
        .unwrap_or("")
        .split('\n')
        .filter(|c| !c.is_empty())
        .take(d)
        .collect();
    let columns: Vec<usize> = if names.len() == d {
        names.iter().map(|c| find(c)).collect()
    } else {
        (0..d).collect()
    };
    let group_column = match model.metadata().grouping {
        Grouping::Column(c) => Some(find(core::str::from_utf8(c).unwrap_or(""))),
        _ => None,
    };
    let grouping = model.metadata().grouping;
    // (recording number, its rows)
    let mut recordings: Vec<(usize, Vec<String>)> = Vec::new();
    let (mut group, mut last_key) = (0, None);
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        group = match (grouping, group_column) {
            (Grouping::RowsPerGroup(n), _) => i / (n as usize).max(1),
            (_, Some(c)) => {
                let key = fields.get(c).copied().unwrap_or("");
                let next = group + usize::from(last_key.is_some_and(|k| k != key));
                last_key = Some(key);
                next
            }
            _ => 0,
        };
        if !range.contains(&i) {
            continue;
        }
        let values: Vec<String> = columns
            .iter()
            .map(|&c| match fields.get(c).and_then(|v| v.parse::<f32>().ok()) {
                Some(v) if v.is_finite() => format!("{v:?}"),
                _ => fail(format!(
                    "FLOW_READINGS {name}: row {i}, column {}: not a finite number",
                    header.get(c).unwrap_or(&"?")
                )),
            })
            .collect();
        let row = format!("[{}]", values.join(", "));
        match recordings.last_mut() {
            Some((g, rows)) if *g == group => rows.push(row),
            _ => recordings.push((group, vec![row])),
        }
    }
    let n: usize = recordings.iter().map(|r| r.1.len()).sum();
    if n != range.len() {
        fail(format!(
            "FLOW_READINGS {name}: FLOW_READINGS_ROWS {rows} asks for {} rows, the file has {n} of them",
            range.len()
        ));
    }
    let body: Vec<String> = recordings
        .iter()
        .map(|r| format!("    &[\n        {},\n    ],\n", r.1.join(",\n        ")))
        .collect();
    format!(
        "/// The readings scored, by recording: rows {rows} of `{file}` (build.rs).\n\
         pub static RECORDINGS: &[&[[f32; {d}]]] = &[\n{}];\n",
        body.concat(),
        file = path
            .file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default(),
    )
}
