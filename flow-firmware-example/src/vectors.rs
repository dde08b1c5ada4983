//! The device-specific part of the vector table: 32 interrupt slots, all `DefaultHandler`.
//!
//! cortex-m-rt's generic table has 240 slots on ARMv7-M (960 bytes of flash); this firmware
//! enables no interrupt, so 32 (the ARMv6-M maximum) are plenty. cortex-m-rt's `device`
//! feature makes it take this table instead, and `build.rs` writes the (empty) `device.x`
//! that feature's linker script includes. A board's peripheral access crate would provide
//! its own table instead. An interrupt that did fire would end the run through
//! `DefaultHandler` (`unexpected-exception <irqn>`, exit status 1).

extern "C" {
    fn DefaultHandler();
}

/// The interrupt vectors, after the 16 exception vectors.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
pub static __INTERRUPTS: [unsafe extern "C" fn(); 32] = [DefaultHandler; 32];
