//! QEMU `mps2-an386` (Cortex-M4F): output through semihosting, which a debugger (here QEMU)
//! must serve; on a real board without one it would stop the core. For tests only.

pub use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hio};

#[path = "cortex_m_faults.rs"]
mod faults;

pub const NAME: &str = "mps2-an386 (QEMU, semihosting)";

pub fn init() {}

pub fn send(line: &[u8]) {
    if let Ok(mut out) = hio::hstdout() {
        let _ = out.write_all(line);
        let _ = out.write_all(b"\n");
    }
}

/// Ends QEMU with exit status 0 or 1.
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}
