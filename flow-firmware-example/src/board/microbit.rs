//! BBC micro:bit v1 (nRF51822, Cortex-M0): UART0 on P0.24 (the USB serial port) at 115200
//! baud. Runs in QEMU (`-machine microbit -serial stdio`).

use core::ptr::{read_volatile, write_volatile};
pub use cortex_m_rt::entry;

#[path = "cortex_m_uart.rs"]
mod common;
pub use common::exit;

pub const NAME: &str = "microbit (nRF51822, UART0)";

const UART0: usize = 0x4000_2000;
const STARTTX: *mut u32 = (UART0 + 0x008) as _;
const EVENTS_TXDRDY: *mut u32 = (UART0 + 0x11C) as _;
const ENABLE: *mut u32 = (UART0 + 0x500) as _;
const PSELTXD: *mut u32 = (UART0 + 0x50C) as _;
const TXD: *mut u32 = (UART0 + 0x51C) as _;
const BAUDRATE: *mut u32 = (UART0 + 0x524) as _;

pub fn init() {
    // SAFETY: writes of the chip's documented UART registers; nothing else uses them.
    unsafe {
        write_volatile(PSELTXD, 24);
        write_volatile(BAUDRATE, 0x01D7_E000); // 115200 baud
        write_volatile(ENABLE, 4);
        write_volatile(STARTTX, 1);
    }
}

#[inline(never)] // (one copy, not one per line printed)
pub fn send(line: &[u8]) {
    super::send_with(line, |b| {
        // SAFETY: as in `init`; writes a byte, waits until it is sent.
        unsafe {
            write_volatile(EVENTS_TXDRDY, 0);
            write_volatile(TXD, u32::from(b));
            while read_volatile(EVENTS_TXDRDY) == 0 {}
        }
    });
}
