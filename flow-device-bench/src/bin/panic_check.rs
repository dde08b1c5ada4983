//! Link-time proof that flow-core's load and `log_prob` path cannot panic (the approach of the
//! `no-panic` and `panic-never` crates).
//!
//! This binary runs only `Model::parse` on the embedded model file, builds its flow (the type
//! `src/model.rs` compiles for it) and evaluates `log_prob` of a point read with
//! `read_volatile`, storing the result with `write_volatile`. The file's address and length are
//! read with `read_volatile` too, so the optimizer knows nothing about the bytes or the point.
//! The panic handler calls a function that does not exist: if any call to it — any panic path
//! of flow-core, its dependencies (postcard, serde, crc, heapless, libm) or `core` reachable
//! from this code — survives optimization, the link fails with that function's name as the
//! error. A successful link proves that no input (file bytes or point) can make this path
//! panic, for this model's geometry (`D`, `C`, `L`, `H`, `K`, kind), target and profile.
//!
//! Built only with `--features panic-check` (`cargo build --release --features panic-check
//! --bin panic_check`); the host test builds it for `thumbv7em-none-eabihf` and
//! `thumbv6m-none-eabi`. It is never run.

#![no_std]
#![no_main]

#[allow(dead_code)]
#[path = "../model.rs"]
mod model;
#[path = "../vectors.rs"]
mod vectors;
#[allow(dead_code)]
#[path = "../workload.rs"]
mod workload;

use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use cortex_m_rt::entry;
use workload::Density;

/// The point `log_prob` is evaluated at, and its context (conditional flows).
static mut INPUT: ([f32; model::D], [f32; model::C]) = ([0.5; model::D], [0.25; model::C]);
/// The result, so the computation is not dropped.
static mut OUTPUT: f32 = 0.0;
/// The model file as a slice, read back volatile so that its contents are unknown.
static mut FILE: &[u8] = &model::FILE.0;
/// The knot tables, likewise.
static mut TABLES: &[u8] = &model::TABLES.0;

#[entry]
fn main() -> ! {
    // SAFETY: single-threaded, no interrupts; plain reads and writes of the statics.
    let (bytes, tables, input) = unsafe {
        (
            read_volatile(addr_of!(FILE)),
            read_volatile(addr_of!(TABLES)),
            read_volatile(addr_of!(INPUT)),
        )
    };
    let mut loaded = None;
    let lp = match (model::load(bytes, &mut loaded), &mut loaded) {
        (Ok(()), Some((model, flow))) => match flow.set_sealed_tables(tables, model.checksum()) {
            Ok(()) => flow.score(&input.0, &input.1).unwrap_or(f32::NAN),
            Err(_) => f32::INFINITY,
        },
        _ => f32::INFINITY,
    };
    // SAFETY: as above.
    unsafe { write_volatile(addr_of_mut!(OUTPUT), lp) };
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    extern "Rust" {
        /// Deliberately undefined: a surviving call fails the link with this name.
        #[link_name = "\n\nERROR[panic_check]: a panic path of flow-core's load or log_prob survived optimization (see src/bin/panic_check.rs)\n\n"]
        fn flow_core_panic_path_reachable() -> !;
    }
    // SAFETY: never defined, so never called: the link fails instead.
    unsafe { flow_core_panic_path_reachable() }
}
