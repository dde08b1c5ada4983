//! Shared helpers for the cross-crate tests.
pub mod elf;
pub mod firmware;
pub mod models;
pub mod qemu;

// The harness's own `geometry.rs` (its documentation is its own), compiled here for the device
// tests: the geometry a firmware is compiled for, and the layer-kind features its build passes.
#[path = "../../flow-device-bench/src/geometry.rs"]
pub mod geometry;
