//! Picks the memory layout for the target and the model blob to embed.
//!
//! - `memory.x`: `memory/microbit.x` (256K flash, 16K RAM) for `thumbv6m-none-eabi`, else
//!   `memory/cortex-m-64k.x` (256K flash, 64K RAM: lm3s6965evb, mps2-an385/an386), copied to
//!   `OUT_DIR` so that the linker's `INCLUDE memory.x` finds the right one.
//! - `FLOW_MODEL_BLOB`: path of the model blob to embed (relative paths are relative to this
//!   crate), default `models/default.bin`. Its absolute path is passed to the compiler as
//!   `FLOW_MODEL_BLOB` for `include_bytes!`; a change of the variable or of the file's contents
//!   rebuilds the firmware.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let target = env::var("TARGET").unwrap_or_default();

    // --- memory layout ---
    let memory = if target.starts_with("thumbv6m") {
        "memory/microbit.x"
    } else {
        "memory/cortex-m-64k.x"
    };
    fs::copy(manifest.join(memory), out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory");

    // --- model blob ---
    println!("cargo:rerun-if-env-changed=FLOW_MODEL_BLOB");
    let blob = match env::var_os("FLOW_MODEL_BLOB") {
        Some(p) if !p.is_empty() => manifest.join(PathBuf::from(p)),
        _ => manifest.join("models/default.bin"),
    };
    let blob = blob
        .canonicalize()
        .unwrap_or_else(|e| panic!("FLOW_MODEL_BLOB {}: {e}", blob.display()));
    println!("cargo:rerun-if-changed={}", blob.display());
    println!("cargo:rustc-env=FLOW_MODEL_BLOB={}", blob.display());
}
