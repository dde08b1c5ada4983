//! Picks the memory layout for the target, and compiles the firmware for the model it embeds.
//!
//! - `memory.x`: `memory/microbit.x` (256K flash, 16K RAM) for `thumbv6m-none-eabi`,
//!   `memory/sifive_e.x` (flash at 0x2040_0000, 16K RAM) for `riscv32*`, else
//!   `memory/cortex-m-64k.x` (256K flash, 64K RAM: lm3s6965evb, mps2-an385/an386), copied to
//!   `OUT_DIR` so that the linker's `INCLUDE memory.x` finds the right one; and an empty
//!   `device.x` for cortex-m-rt's `device` feature (the interrupt table is `src/vectors.rs`).
//! - `FLOW_MODEL`: the model file to embed (relative paths are relative to this crate), default
//!   `../flow-firmware-example/models/circles_coupling.nflw` (the example's model). It is parsed here with flow-core: a file that does not parse fails
//!   the build with flow-core's error. Its geometry (`src/geometry.rs`: kind, `D`, `C`, `d₁`,
//!   and the capacities `L`, `H`, `K`) goes to `$OUT_DIR/geometry.rs` and the kind to
//!   `cfg(flow_kind = "plain" | "conditional" | "joint")`, so the firmware is compiled for
//!   exactly this model.
//!   The layer kinds compiled in (this crate's features `affine`, `exp`, `spline`,
//!   `coupling`, `permute`, `conditional-spline`, and `quadratic` for that spline order,
//!   passed on to flow-core; default `coupling`, the default model's) must include the model's, else the build fails naming the features
//!   to add.
//!   A windowed model (`Model::window`) also gets `WINDOW` there and `cfg(flow_window)`: the
//!   firmware then runs the windowed workload too (`src/windows.rs`).
//! - `FLOW_MODEL_UNCHECKED`: embed this file's bytes instead, as they are, without parsing
//!   them; the geometry still comes from `FLOW_MODEL`. For testing the firmware's run-time
//!   load error (a corrupted copy of `FLOW_MODEL`), or a model known to share its geometry.
//! - `FLOW_STREAM`: a binary file of little-endian `f32` rows of `D` values (`D + C` for a
//!   conditional flow: `x`, then the context), in the model's raw units, to score as the
//!   anomaly stream instead of the built-in one; sets `cfg(flow_stream_file)`.
//!
//! - `$OUT_DIR/tables.bin`: the knot tables of the embedded model's fixed-parameter splines
//!   (element-wise splines, couplings' lower splines), computed here with flow-core
//!   (`flow_core::flow::write_tables`), followed by their seal for the model file
//!   (`flow_core::flow::table_seal`), and embedded in flash next to the model; the firmware
//!   hands them to the loaded flow's `set_sealed_tables`, which checks the seal and that every
//!   table is well formed.
//!
//! The absolute paths of the embedded files are passed to the compiler as `FLOW_MODEL_FILE` and
//! `FLOW_STREAM_FILE` for `include_bytes!`. A change of any variable or file rebuilds.

#[path = "src/geometry.rs"]
mod geometry;

use std::path::{Path, PathBuf};
use std::process::exit;
use std::{env, fs};

/// Fails the build with `msg` (cargo shows the build script's stderr).
fn fail(msg: String) -> ! {
    eprintln!("error: {msg}");
    exit(1)
}

/// The file named by the variable `var` (relative to the crate), or `default`.
fn path_var(manifest: &Path, var: &str, default: Option<&str>) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed={var}");
    let p = match env::var_os(var) {
        Some(p) if !p.is_empty() => manifest.join(PathBuf::from(p)),
        _ => manifest.join(default?),
    };
    let p = p
        .canonicalize()
        .unwrap_or_else(|e| fail(format!("{var}: {}: {e}", p.display())));
    println!("cargo:rerun-if-changed={}", p.display());
    Some(p)
}

fn read(var: &str, p: &Path) -> Vec<u8> {
    fs::read(p).unwrap_or_else(|e| fail(format!("{var}: {}: {e}", p.display())))
}

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let target = env::var("TARGET").unwrap_or_default();

    // --- memory layout ---
    let memory = if target.starts_with("thumbv6m") {
        "memory/microbit.x"
    } else if target.starts_with("riscv32") {
        "memory/sifive_e.x"
    } else {
        "memory/cortex-m-64k.x"
    };
    fs::copy(manifest.join(memory), out.join("memory.x")).expect("copy memory.x");
    // cortex-m-rt's `device` feature includes `device.x`; src/vectors.rs needs no entries.
    fs::write(
        out.join("device.x"),
        "/* src/vectors.rs: all interrupts are DefaultHandler */\n",
    )
    .expect("write device.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory");

    // --- the model and the geometry compiled for it ---
    println!(
        "cargo::rustc-check-cfg=cfg(flow_kind, values(\"plain\", \"conditional\", \"joint\"))"
    );
    println!("cargo::rustc-check-cfg=cfg(flow_stream_file)");
    println!("cargo::rustc-check-cfg=cfg(flow_window)");
    let model_path = path_var(
        &manifest,
        "FLOW_MODEL",
        Some("../flow-firmware-example/models/circles_coupling.nflw"),
    )
    .expect("FLOW_MODEL has a default");
    let bytes = read("FLOW_MODEL", &model_path);
    let model = flow_core::Model::parse(&bytes)
        .unwrap_or_else(|e| fail(format!("FLOW_MODEL {}: {e}", model_path.display())));
    let geometry = geometry::Geometry::of(&model)
        .unwrap_or_else(|e| fail(format!("FLOW_MODEL {}: {e}", model_path.display())));
    // The layer kinds compiled in (this crate's features, passed on to flow-core) must cover
    // the model's; without one the firmware could only print `load-error`.
    let needed = geometry::features(&model)
        .unwrap_or_else(|e| fail(format!("FLOW_MODEL {}: {e}", model_path.display())));
    let enabled = |f: &str| {
        env::var_os(format!(
            "CARGO_FEATURE_{}",
            f.to_uppercase().replace('-', "_")
        ))
        .is_some()
    };
    let missing: Vec<&str> = needed.iter().copied().filter(|f| !enabled(f)).collect();
    if !missing.is_empty() {
        fail(format!(
            "FLOW_MODEL {} has layer kinds this build leaves out: build with `--features {}` \
             (exactly the model's: `--no-default-features --features {}`; every kind: \
             `--features all-layers`)",
            model_path.display(),
            missing.join(","),
            needed.join(","),
        ));
    }
    let mut source = geometry.rust_source();
    // A windowed model: its window, and the windowed workload (`src/windows.rs`).
    if let Some(w) = model.window() {
        source += &format!(
            "/// Readings per window of a windowed model.\npub const WINDOW: usize = {w};\n"
        );
        println!("cargo::rustc-cfg=flow_window");
    }
    fs::write(out.join("geometry.rs"), source).expect("write geometry.rs");
    println!("cargo::rustc-cfg=flow_kind=\"{}\"", geometry.kind_name());

    let embedded = match path_var(&manifest, "FLOW_MODEL_UNCHECKED", None) {
        Some(p) => {
            println!(
                "cargo::warning=embedding FLOW_MODEL_UNCHECKED {} as is (geometry from {})",
                p.display(),
                model_path.display()
            );
            p
        }
        None => model_path,
    };
    println!("cargo:rustc-env=FLOW_MODEL_FILE={}", embedded.display());

    // --- the knot tables of the embedded model's fixed-parameter splines ---
    // Computed by flow-core's own f32 code (libm, as on the device) and sealed for the model
    // file (its CRC): the firmware hands them to `set_sealed_tables`, which checks the seal and
    // that every table is well formed. An embedded file that does not parse gets none (its
    // load fails before they are looked at).
    let embedded_bytes = read("FLOW_MODEL", &embedded);
    let tables = flow_core::Model::parse(&embedded_bytes)
        .ok()
        .and_then(|m| {
            let layers = m.layers().collect::<Result<Vec<_>, _>>().ok()?;
            let n: usize = layers.iter().map(flow_core::Layer::table_len).sum();
            let mut out = vec![0u8; 4 * n];
            let (mut xs, mut ys) = (vec![0f32; geometry.bins], vec![0f32; geometry.bins]);
            flow_core::flow::write_tables(&layers, &mut out, &mut xs, &mut ys)?;
            let seal = flow_core::flow::table_seal(m.checksum(), &out);
            out.extend_from_slice(&seal.to_le_bytes());
            Some(out)
        })
        .unwrap_or_default();
    fs::write(out.join("tables.bin"), tables).expect("write tables.bin");

    // --- the anomaly stream ---
    if let Some(p) = path_var(&manifest, "FLOW_STREAM", None) {
        let n = read("FLOW_STREAM", &p).len();
        let row = 4 * geometry.stream_row();
        if n == 0 || !n.is_multiple_of(row) {
            fail(format!(
                "FLOW_STREAM {}: {n} bytes is not a whole number of rows of {} f32 ({row} bytes)",
                p.display(),
                geometry.stream_row()
            ));
        }
        println!("cargo::rustc-cfg=flow_stream_file");
        println!("cargo:rustc-env=FLOW_STREAM_FILE={}", p.display());
    }
}
