//! The firmware's runtime: fault handlers that end QEMU with a failure (the panic handler:
//! `panic.rs`), the SysTick
//! instruction counter and its calibration, the stack painter (the measuring: `stack.rs`), and
//! `memcpy`/`memclr`.
//!
//! With `out.rs` (the semihosting calls) and `stack.rs` (reads of the painted stack) the only
//! modules with `unsafe` or assembly (inline assembly, the naked stack painter,
//! `memcpy`/`memclr`);
//! flow-core itself forbids it.
//! Nothing here uses `core::fmt`.

use core::arch::asm;
use core::hint::black_box;
use core::ptr::addr_of;

use cortex_m::peripheral::SYST;
use cortex_m_rt::{exception, ExceptionFrame};
use cortex_m_semihosting::debug;

use crate::out::Line;

// --- ending the run ----------------------------------------------------------------------------

/// Ends the QEMU run with exit status 0 (semihosting `SYS_EXIT`, `ADP_Stopped_ApplicationExit`).
pub fn exit_success() -> ! {
    debug::exit(debug::EXIT_SUCCESS);
    // Only reached without a semihosting host (a real board without a debugger).
    loop {
        cortex_m::asm::wfi();
    }
}

/// Ends the QEMU run with a nonzero exit status. (Not inlined: one copy for the handlers
/// and the failure paths.)
#[inline(never)]
pub fn exit_failure() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Prints `hardfault pc=0x<8 hex digits> lr=0x<…>` (the `0x` in the literals: `hex8` only).
#[exception]
unsafe fn HardFault(ef: &ExceptionFrame) -> ! {
    use crate::errtext::Text;
    let mut l = Line::start("hardfault pc=0x");
    l.hex8(ef.pc());
    l.str(" lr=0x");
    l.hex8(ef.lr());
    l.send();
    exit_failure()
}

/// Prints the exception number (`irqn + 16`: 2–15 system exceptions, 16 and up interrupts;
/// no negative numbers, so no signed printing is linked).
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    Line::start("unexpected-exception")
        .num((irqn as u32).wrapping_add(16))
        .send();
    exit_failure()
}

// --- instruction counting ----------------------------------------------------------------------

/// SysTick, free-running from the core clock over its full 24-bit range.
///
/// QEMU does not implement the DWT cycle counter (CYCCNT reads 0). Under `-icount shift=0`
/// every instruction advances QEMU's virtual clock by exactly 1 ns, and SysTick counts that
/// clock at the machine's core frequency (25 MHz on mps2, so one tick per 40 instructions).
/// [`Calibration`] measures the ratio with a loop of known length instead of assuming it.
pub struct Ticker {
    _syst: SYST,
}

/// SysTick's reload value: the full 24 bits.
const RELOAD: u32 = 0x00FF_FFFF;
/// SysTick CSR: counter enabled.
const SYST_CSR_ENABLE: u32 = 1 << 0;
/// SysTick CSR: clocked by the core clock.
const SYST_CSR_CLKSOURCE: u32 = 1 << 2;

impl Ticker {
    /// Starts SysTick counting down from `RELOAD`, without its interrupt. Call once, first
    /// thing: the ticker is SysTick's only user.
    pub fn start() -> Self {
        // SAFETY: nothing else in the firmware touches SysTick (it takes no other peripheral).
        let syst = unsafe { cortex_m::Peripherals::steal() }.SYST;
        // SAFETY: plain register writes: the reload value, clearing the current value, and
        // CSR = core clock source | counter enabled, interrupt off (one write instead of three
        // read-modify-writes).
        unsafe {
            syst.rvr.write(RELOAD);
            syst.cvr.write(0);
            syst.csr.write(SYST_CSR_CLKSOURCE | SYST_CSR_ENABLE);
        }
        Self { _syst: syst }
    }

    /// Runs `f` and returns its result and the SysTick ticks it took. A measured span must stay
    /// below `2^24` ticks (671 M instructions at 25 MHz); one wrap is handled. Inlined, the
    /// SysTick reads in [`now`] and [`since`]: no copy of a timing wrapper per closure (flash).
    #[inline(always)]
    pub fn ticks<R>(&mut self, f: impl FnOnce() -> R) -> (R, u32) {
        let start = now();
        let r = black_box(f());
        (r, since(start))
    }
}

/// SysTick's current value.
#[inline(never)]
fn now() -> u32 {
    SYST::get_current()
}

/// Ticks from `start` (a [`now`]) to now.
#[inline(never)]
fn since(start: u32) -> u32 {
    start.wrapping_sub(now()) & RELOAD
}

/// `n` iterations of a two-instruction loop (`subs; bne`): exactly `2n` instructions.
#[inline(never)]
pub fn spin(n: u32) {
    if n == 0 {
        return;
    }
    // SAFETY: only touches r0 and the flags; no memory, no stack.
    unsafe {
        asm!(
            "2:",
            "subs r0, r0, #1",
            "bne 2b",
            inout("r0") n => _,
            options(nomem, nostack),
        );
    }
}

// The calibration, shared with the RISC-V runtime (`rt_riscv.rs`).
#[path = "calib.rs"]
mod calib;
pub use calib::Calibration;

// --- memcpy and memclr ------------------------------------------------------------------------

// `memcpy` and `memclr` for the compiler's copies and zeroing, replacing compiler-builtins'
// (weak) ones: 0.1 KB instead of 1 KB of flash. Word-aligned copies and clears (all the hot
// ones: parameters read from flash, the scratch of each call) move 16 bytes per `ldm`/`stm`
// pair, fewer instructions than compiler-builtins' loops; anything unaligned goes byte by byte.
// Thumb-1 only (low registers, flag-setting forms), so the same code serves ARMv6-M.
core::arch::global_asm!(
    ".syntax unified",
    ".section .text.flow_fw_memcpy,\"ax\",%progbits",
    ".p2align 1",
    ".global __aeabi_memcpy",
    ".global __aeabi_memcpy4",
    ".global __aeabi_memcpy8",
    ".global memcpy",
    ".type __aeabi_memcpy,%function",
    ".type __aeabi_memcpy4,%function",
    ".type __aeabi_memcpy8,%function",
    ".type memcpy,%function",
    ".thumb_func",
    "__aeabi_memcpy:",
    ".thumb_func",
    "__aeabi_memcpy4:",
    ".thumb_func",
    "__aeabi_memcpy8:",
    ".thumb_func",
    "memcpy:",
    // r0 dst, r1 src, r2 n; memcpy returns dst.
    "push {{r0, r4, r5, r6, lr}}",
    "mov r3, r0",
    "orrs r3, r1",
    "lsls r3, r3, #30",
    "bne 3f",
    "subs r2, #16",
    "blo 2f",
    "1:",
    "ldmia r1!, {{r3, r4, r5, r6}}",
    "stmia r0!, {{r3, r4, r5, r6}}",
    "subs r2, #16",
    "bhs 1b",
    "2:",
    "adds r2, #12",
    "blo 5f",
    "4:",
    "ldmia r1!, {{r3}}",
    "stmia r0!, {{r3}}",
    "subs r2, #4",
    "bhs 4b",
    "5:",
    "adds r2, #4",
    "3:",
    "cmp r2, #0",
    "beq 7f",
    "6:",
    "ldrb r3, [r1]",
    "strb r3, [r0]",
    "adds r1, #1",
    "adds r0, #1",
    "subs r2, #1",
    "bne 6b",
    "7:",
    "pop {{r0, r4, r5, r6, pc}}",
    ".size memcpy, . - memcpy",
    "",
    ".section .text.flow_fw_memclr,\"ax\",%progbits",
    ".p2align 1",
    ".global __aeabi_memclr",
    ".global __aeabi_memclr4",
    ".global __aeabi_memclr8",
    ".type __aeabi_memclr,%function",
    ".type __aeabi_memclr4,%function",
    ".type __aeabi_memclr8,%function",
    ".thumb_func",
    "__aeabi_memclr:",
    ".thumb_func",
    "__aeabi_memclr4:",
    ".thumb_func",
    "__aeabi_memclr8:",
    // r0 dst, r1 n.
    "push {{r4, r5, lr}}",
    "movs r2, #0",
    "lsls r3, r0, #30",
    "bne 3f",
    "movs r3, #0",
    "movs r4, #0",
    "movs r5, #0",
    "subs r1, #16",
    "blo 2f",
    "1:",
    "stmia r0!, {{r2, r3, r4, r5}}",
    "subs r1, #16",
    "bhs 1b",
    "2:",
    "adds r1, #12",
    "blo 5f",
    "4:",
    "stmia r0!, {{r2}}",
    "subs r1, #4",
    "bhs 4b",
    "5:",
    "adds r1, #4",
    "3:",
    "cmp r1, #0",
    "beq 7f",
    "6:",
    "strb r2, [r0]",
    "adds r0, #1",
    "subs r1, #1",
    "bne 6b",
    "7:",
    "pop {{r4, r5, pc}}",
    ".size __aeabi_memclr, . - __aeabi_memclr",
);

// --- stack painting ----------------------------------------------------------------------------

extern "C" {
    /// Top of the stack (initial SP), from cortex-m-rt's linker script.
    static _stack_start: u32;
    /// Lowest address of the stack region (end of .bss/.uninit), from the linker script.
    static _stack_end: u32;
}

/// The word the free stack is painted with.
pub const PAINT: u32 = 0xCCCC_CCCC;

pub(crate) fn stack_top() -> usize {
    // Only the address of the linker symbol is taken (safe for an extern static).
    addr_of!(_stack_start) as usize
}

pub(crate) fn stack_bottom() -> usize {
    addr_of!(_stack_end) as usize
}

/// Writes [`PAINT`] to every word from the bottom of the stack region up to the caller's stack
/// pointer. A naked function (no frame of its own, no stack use), so that one copy serves
/// every phase and paints right up to its caller's stack pointer. Low registers only (Thumb-1).
#[unsafe(naked)]
pub(crate) extern "C" fn paint() {
    // SAFETY: writes only below the caller's SP, memory no live frame uses (Arm has no red
    // zone and no interrupt is enabled); touches r0-r2 (caller-saved) and the flags.
    core::arch::naked_asm!(
        "ldr r0, ={bottom}",
        "ldr r1, ={pattern}",
        "mov r2, sp",
        "2:",
        "cmp r0, r2",
        "bhs 3f",
        "str r1, [r0]",
        "adds r0, r0, #4",
        "b 2b",
        "3:",
        "bx lr",
        ".ltorg",
        bottom = sym _stack_end,
        pattern = const PAINT,
    );
}

/// The current stack pointer.
#[inline(always)]
pub(crate) fn sp() -> usize {
    let sp: usize;
    // SAFETY: reads SP into a register.
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}
