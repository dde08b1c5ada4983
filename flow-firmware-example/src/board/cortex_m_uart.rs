//! What the Cortex-M boards with a UART share: the end of a run, the fault and panic
//! handlers (they print `error: …` on the UART and stop).

use cortex_m_rt::{exception, ExceptionFrame};

/// Stops: the last line printed (`done` or `error: …`) says how the run went.
pub fn exit(_ok: bool) -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    crate::say!("error: hard fault at pc ", crate::text::Hex(ef.pc()));
    exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::board::say_panic(info);
    exit(false)
}
