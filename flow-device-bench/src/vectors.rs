//! The device-specific part of the vector table: one interrupt slot, `DefaultHandler`.
//!
//! cortex-m-rt's generic table has 240 slots on ARMv7-M (960 bytes of flash). This firmware
//! enables no interrupt in the NVIC, so none can be taken and the table needs no slot at all;
//! cortex-m-rt's linker script asks for at least one. Its `device` feature makes it take this
//! table instead, and `build.rs` writes the (empty) `device.x` that feature's linker script
//! includes. A board's peripheral access crate would provide its own table instead (with a
//! slot for every interrupt line, as soon as the firmware enables any).

extern "C" {
    fn DefaultHandler();
}

/// The interrupt vectors, after the 16 exception vectors.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
pub static __INTERRUPTS: [unsafe extern "C" fn(); 1] = [DefaultHandler; 1];
