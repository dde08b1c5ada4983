//! Instructions per tick of the runtime's [`Ticker`], measured with [`spin`], and the
//! metrics printed from it: shared by the Cortex-M runtime (`rt.rs`, SysTick) and the RISC-V
//! one (`rt_riscv.rs`, `minstret`).

use core::hint::black_box;

use super::{spin, Ticker};
use crate::out::{self, Line};

/// Loop lengths of the calibration; the first two give the ratio, the third checks it.
pub const CALIB_ITERS: [u32; 3] = [100_000, 4_100_000, 2_100_000];

/// The instructions the ratio is measured over: `2·(n₁ - n₀)`.
const CALIB_INSTR: u64 = 2 * (CALIB_ITERS[1] - CALIB_ITERS[0]) as u64;

/// Instructions per SysTick tick, measured with [`spin`]: [`CALIB_INSTR`] instructions took
/// this many ticks.
pub struct Calibration {
    ticks: u32,
}

impl Calibration {
    /// Measures the loop at each of `CALIB_ITERS`, printing `calib <iterations> <ticks>` for
    /// each as it is measured (outside the measured span), then `instr_per_tick_milli <n>`.
    pub fn measure(t: &mut Ticker) -> Self {
        let mut raw = [0u32; 3];
        for (r, &n) in raw.iter_mut().zip(&CALIB_ITERS) {
            *r = t.ticks(|| spin(black_box(n))).1;
            Line::start("calib").num(n).num(*r).send();
        }
        let c = Self {
            ticks: raw[1].saturating_sub(raw[0]).max(1),
        };
        // `CALIB_INSTR · 1000 / ticks`, rounded: the instructions of 1000 ticks.
        c.report(out::key!("instr_per_tick_milli"), 1000, 1);
        c
    }

    /// Prints the metric at `key` ([`out::key!`]) with the instructions per call of `calls`
    /// calls that took `ticks` ticks: the instructions rounded to nearest, divided by `calls`
    /// rounded down (at most `u32::MAX`). (Not inlined: one copy of the arithmetic for every
    /// measurement.)
    #[inline(never)]
    pub fn report(&self, key: out::Key, ticks: u32, calls: u32) {
        let d = u64::from(self.ticks);
        let instr = div(u64::from(ticks) * CALIB_INSTR + d / 2, d);
        out::metric_at(
            key,
            u32::try_from(div(instr, u64::from(calls))).unwrap_or(u32::MAX),
        );
    }
}

/// `n / d` (0 for `d = 0`) by shift and subtract: a few dozen bytes instead of
/// compiler-builtins' general 64-bit division (~0.9 KB), for the few divisions above.
#[inline(never)]
pub fn div(n: u64, d: u64) -> u64 {
    if d == 0 {
        return 0;
    }
    // Restoring division: the bits of `n` are shifted out at the top into `r` while the
    // quotient's bits are shifted in at the bottom of `q`.
    let (mut q, mut r) = (n, 0u64);
    for _ in 0..64 {
        r = (r << 1) | (q >> 63);
        q <<= 1;
        if r >= d {
            r -= d;
            q |= 1;
        }
    }
    q
}
