//! Checks the fault path: executes an undefined instruction, which escalates to HardFault; the
//! handler prints `hardfault pc=…` and ends QEMU with a nonzero exit status instead of hanging.

#![no_std]
#![no_main]

#[allow(dead_code)]
#[path = "../errtext.rs"]
mod errtext;
// (`metric!` is not used here.)
#[allow(dead_code, unused_macros, unused_imports)]
#[path = "../out.rs"]
mod out;
// (The calibration is not used here.)
#[path = "../panic.rs"]
mod panic;
#[allow(dead_code, unused_imports)]
#[path = "../rt.rs"]
mod rt;
#[path = "../vectors.rs"]
mod vectors;

use cortex_m_rt::entry;

/// The names of the `metric!` lines (`out::metric_key`): only the runtime's, unused here.
const METRIC_NAMES: &str = "instr_per_tick_milli";

#[entry]
fn main() -> ! {
    out::say("fault: executing udf");
    // SAFETY: deliberately faults; the HardFault handler ends the run.
    unsafe { core::arch::asm!("udf #0") };
    out::say("fault: still running");
    rt::exit_success()
}
