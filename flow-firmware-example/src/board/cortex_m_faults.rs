//! The fault and panic handlers of the Cortex-M boards that print their own errors
//! (semihosting and the UART boards): `error: …`, then the board's `exit(false)`.

use cortex_m_rt::{exception, ExceptionFrame};

#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    crate::say!("error: hard fault at pc ", crate::text::Hex(ef.pc()));
    super::exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::board::say_panic(info);
    super::exit(false)
}
