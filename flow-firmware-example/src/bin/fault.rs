//! Checks the fault path: executes an undefined instruction, which escalates to HardFault; the
//! handler prints `hardfault pc=…` and ends QEMU with a nonzero exit status instead of hanging.

#![no_std]
#![no_main]

#[allow(dead_code)]
#[path = "../rt.rs"]
mod rt;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;

#[entry]
fn main() -> ! {
    hprintln!("fault: executing udf");
    // SAFETY: deliberately faults; the HardFault handler ends the run.
    unsafe { core::arch::asm!("udf #0") };
    hprintln!("fault: still running");
    rt::exit_success()
}
