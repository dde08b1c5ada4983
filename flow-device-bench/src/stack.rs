//! Peak stack use by painting, on every target: the runtime (`rt.rs` on Cortex-M, `rt_riscv.rs`
//! on RISC-V) gives the stack region, the stack pointer and the naked painter; the measuring is
//! the same on both.

use core::hint::black_box;

use crate::rt::{paint, sp, stack_bottom, stack_top, PAINT};

/// The lowest stack address written since the last paint (the stack top if none).
fn lowest_used() -> usize {
    let (mut p, top) = (stack_bottom(), stack_top());
    // SAFETY: reads aligned words of the stack region, which is RAM.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    p
}

/// Peak stack use by painting: the whole program's, and that of single phases.
pub struct StackMeter {
    peak: usize,
}

impl StackMeter {
    /// Paints the free stack; call first thing in `main`.
    #[inline(always)]
    pub fn start() -> Self {
        paint();
        Self { peak: 0 }
    }

    #[inline(never)]
    fn update(&mut self) -> usize {
        let low = lowest_used();
        self.peak = self.peak.max(stack_top() - low);
        low
    }

    /// Runs `f` on freshly painted stack; returns its result and the bytes it used below the
    /// stack pointer it was called at.
    #[inline(always)]
    pub fn phase<R>(&mut self, f: impl FnOnce() -> R) -> (R, usize) {
        self.update();
        paint();
        let at = sp();
        let r = black_box(f());
        let low = self.update();
        (r, at.saturating_sub(low))
    }

    /// Peak bytes of stack used since start (from the stack top, so including the start-up
    /// code's and `main`'s frames). `stack_bottom` reached means the stack overflowed.
    pub fn peak(&mut self) -> usize {
        self.update();
        self.peak
    }

    /// Bytes of stack in use at the caller (start-up code and the caller's frames).
    #[inline(always)]
    pub fn depth(&self) -> usize {
        stack_top() - sp()
    }

    /// Size of the stack region (RAM above .data/.bss).
    pub fn capacity(&self) -> usize {
        stack_top() - stack_bottom()
    }
}
