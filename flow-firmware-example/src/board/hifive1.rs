//! SiFive HiFive1 (FE310, RV32IMAC): UART0 on GPIO 16/17 (the USB serial port) at 115200
//! baud from the 16 MHz reset clock. Runs in QEMU (`qemu-system-riscv32 -machine sifive_e
//! -serial stdio`).

use core::ptr::{read_volatile, write_volatile};
pub use riscv_rt::entry;

pub const NAME: &str = "hifive1 (FE310, UART0)";

const GPIO_IOF_EN: *mut u32 = 0x1001_2038 as _;
const GPIO_IOF_SEL: *mut u32 = 0x1001_203C as _;
const UART0_TXDATA: *mut u32 = 0x1001_3000 as _;
const UART0_TXCTRL: *mut u32 = 0x1001_3008 as _;
const UART0_DIV: *mut u32 = 0x1001_3018 as _;

pub fn init() {
    // SAFETY: writes of the chip's documented GPIO and UART registers; nothing else uses them.
    unsafe {
        // GPIO 16 and 17 to their IOF0 function (UART0 RX/TX).
        write_volatile(GPIO_IOF_SEL, read_volatile(GPIO_IOF_SEL) & !(0b11 << 16));
        write_volatile(GPIO_IOF_EN, read_volatile(GPIO_IOF_EN) | 0b11 << 16);
        write_volatile(UART0_DIV, 16_000_000 / 115_200 - 1);
        write_volatile(UART0_TXCTRL, 1); // txen
    }
}

#[inline(never)] // (one copy, not one per line printed)
pub fn send(line: &[u8]) {
    super::send_with(line, |b| {
        // SAFETY: as in `init`; waits while the FIFO is full (txdata bit 31), then writes.
        unsafe {
            while read_volatile(UART0_TXDATA) & 1 << 31 != 0 {}
            write_volatile(UART0_TXDATA, u32::from(b));
        }
    });
}

/// Stops: the last line printed (`done` or `error: …`) says how the run went.
pub fn exit(_ok: bool) -> ! {
    loop {
        riscv::asm::wfi();
    }
}

/// A trap (an illegal instruction, a bad address, a stray `ebreak`): printed, then stop.
#[export_name = "ExceptionHandler"]
fn exception_handler(_: &riscv_rt::TrapFrame) -> ! {
    let cause = riscv::register::mcause::read().bits();
    let pc = riscv::register::mepc::read();
    crate::say!("error: trap, mcause ", cause, ", pc ", crate::text::Hex(pc as u32));
    exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::board::say_panic(info);
    exit(false)
}
