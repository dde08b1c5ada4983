//! The firmware template with a trivial workload: the same runtime, calibration and printing as
//! the flow firmware (`src/main.rs`) but no flow, so that the template's own flash, RAM and stack
//! can be told apart from the flow's.

#![no_std]
#![no_main]

#[allow(dead_code)]
#[path = "../errtext.rs"]
mod errtext;
#[allow(dead_code)]
#[path = "../out.rs"]
mod out;
#[path = "../panic.rs"]
mod panic;
#[allow(dead_code)]
#[path = "../rt.rs"]
mod rt;
#[allow(dead_code)]
#[path = "../stack.rs"]
mod stack;
#[path = "../vectors.rs"]
mod vectors;

use core::hint::black_box;

use cortex_m_rt::entry;

use out::{key, metric, say, Line};
use rt::{Calibration, Ticker};
use stack::StackMeter;

/// The names of the `metric!` lines less their `icount_`/`stack_` prefix and `_bytes`
/// suffix (`out::metric_key`).
const METRIC_NAMES: &str = concat!("instr_per_tick_milli", "trivial", "capacity", "peak");

#[entry]
fn main() -> ! {
    template();
    say("done");
    rt::exit_success()
}

/// Everything `main` does before `done`, in a function that returns, as in `src/main.rs`.
fn template() {
    let mut stack = StackMeter::start();
    let mut ticker = Ticker::start();
    let calib = Calibration::measure(&mut ticker);

    // The trivial workload: one multiply-add, printed like a log_prob.
    let (v, t) = ticker.ticks(|| black_box(1.5f32) * black_box(-2.0f32) + black_box(0.25f32));
    Line::start("lp").num(0).bits(v).send();
    calib.report(key!("icount_trivial"), t, 1);
    let (_, used) = stack.phase(|| black_box(black_box(3.0f32) * 2.0));
    metric!("stack_trivial_bytes", used as u32);
    metric!("stack_capacity_bytes", stack.capacity() as u32);
    metric!("stack_peak_bytes", stack.peak() as u32);
}
