//! The firmware's runtime on RISC-V (QEMU `sifive_e`, the HiFive1's FE310), in place of the
//! Cortex-M `rt.rs`: the same interface (ending the run, the instruction counter and its
//! calibration, stack painting) for the flow firmware `src/main.rs`.
//!
//! - Output goes to UART0 (`out.rs`); there is no semihosting, so QEMU does not exit by
//!   itself: the host test ends the run at `done`, or at a `load-error`, `trap` or `panic`
//!   line.
//! - [`Ticker`] reads `minstret`, the retired-instruction counter: under QEMU's
//!   `-icount shift=0` it counts instructions (without `-icount`, QEMU returns host time).
//!   The calibration ([`Calibration`]) measures the ratio all the same (1.000 here).
//! - Stack painting as on Cortex-M (`stack.rs` measures), over riscv-rt's stack region
//!   (`_estack` to `_stack_start`).
//!
//! The compiler's own `memcpy`/`memset` (compiler-builtins) are used; the one-slot vector
//! table is Cortex-M only.

use core::arch::asm;
use core::hint::black_box;
use core::ptr::addr_of;

use crate::out::Line;

// --- ending the run ----------------------------------------------------------------------------

/// Waits for the host to end the run (after `done`).
pub fn exit_success() -> ! {
    loop {
        riscv::asm::wfi();
    }
}

/// Waits for the host to end the run; the line printed before (`load-error`, `trap`, `panic`)
/// is the failure.
#[inline(never)]
pub fn exit_failure() -> ! {
    loop {
        riscv::asm::wfi();
    }
}

/// Prints `trap mcause=0x<8 hex digits> pc=0x<…>` (an illegal instruction, a bad access, a
/// stray `ebreak`) and stops.
#[export_name = "ExceptionHandler"]
fn exception_handler(_: &riscv_rt::TrapFrame) -> ! {
    use crate::errtext::Text;
    let mut l = Line::start("trap mcause=0x");
    l.hex8(riscv::register::mcause::read().bits() as u32);
    l.str(" pc=0x");
    l.hex8(riscv::register::mepc::read() as u32);
    l.send();
    exit_failure()
}

// --- instruction counting ----------------------------------------------------------------------

/// The retired-instruction counter `minstret` (low 32 bits).
pub struct Ticker;

impl Ticker {
    /// The counter runs from reset; nothing to start.
    pub fn start() -> Self {
        Self
    }

    /// Runs `f` and returns its result and the instructions it took (spans below `2^32`).
    #[inline(always)]
    pub fn ticks<R>(&mut self, f: impl FnOnce() -> R) -> (R, u32) {
        let start = now();
        let r = black_box(f());
        (r, now().wrapping_sub(start))
    }
}

/// `minstret`'s low 32 bits.
#[inline(never)]
fn now() -> u32 {
    let v: u32;
    // SAFETY: reads a CSR that machine mode may read.
    unsafe { asm!("csrr {}, minstret", out(reg) v, options(nomem, nostack)) };
    v
}

/// `n` iterations of a two-instruction loop (`addi; bnez`): exactly `2n` instructions.
#[inline(never)]
pub fn spin(n: u32) {
    if n == 0 {
        return;
    }
    // SAFETY: only touches the register holding `n`.
    unsafe {
        asm!(
            "2:",
            "addi {0}, {0}, -1",
            "bnez {0}, 2b",
            inout(reg) n => _,
            options(nomem, nostack),
        );
    }
}

// The calibration, shared with the Cortex-M runtime.
#[path = "calib.rs"]
mod calib;
pub use calib::Calibration;

// --- stack painting ----------------------------------------------------------------------------

extern "C" {
    /// Top of the stack (initial SP), from riscv-rt's linker script.
    static _stack_start: u32;
    /// Lowest address of the stack region, from riscv-rt's linker script.
    static _estack: u32;
}

/// The word the free stack is painted with.
pub const PAINT: u32 = 0xCCCC_CCCC;

pub(crate) fn stack_top() -> usize {
    addr_of!(_stack_start) as usize
}

pub(crate) fn stack_bottom() -> usize {
    addr_of!(_estack) as usize
}

/// Writes [`PAINT`] to every word from the bottom of the stack region up to the caller's stack
/// pointer; a naked function, no frame of its own.
#[unsafe(naked)]
pub(crate) extern "C" fn paint() {
    // SAFETY: writes only below the caller's SP, memory no live frame uses (no interrupt is
    // enabled); touches t0-t2 (caller-saved).
    core::arch::naked_asm!(
        "la t0, {bottom}",
        "li t1, {pattern}",
        "mv t2, sp",
        "2:",
        "bgeu t0, t2, 3f",
        "sw t1, 0(t0)",
        "addi t0, t0, 4",
        "j 2b",
        "3:",
        "ret",
        bottom = sym _estack,
        pattern = const PAINT as i32,
    );
}

/// The current stack pointer.
#[inline(always)]
pub(crate) fn sp() -> usize {
    let sp: usize;
    // SAFETY: reads SP into a register.
    unsafe { asm!("mv {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}
