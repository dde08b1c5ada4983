//! The interrupt part of the Cortex-M vector table. The example enables no interrupt (its
//! UARTs are polled), so the table has one slot, bound to the default handler: cortex-m-rt
//! on its own would fill 240 slots (32 on the M0), 960 bytes of flash. When you add the
//! chip's crate (a PAC or HAL with its `rt` feature), it brings the chip's table and
//! handlers: delete this file and the `cortex-m-vectors` feature.

extern "C" {
    /// cortex-m-rt's handler of unexpected interrupts.
    fn DefaultHandler();
}

/// Placed by cortex-m-rt's link script after the 16 exception vectors.
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
static __INTERRUPTS: [unsafe extern "C" fn(); 1] = [DefaultHandler];
