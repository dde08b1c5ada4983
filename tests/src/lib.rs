//! Shared helpers for the cross-crate tests.
pub mod elf;
pub mod models;
