//! Netduino Plus 2 (STM32F405, Cortex-M4F): USART1 on PA9 at 115200 baud from the 16 MHz HSI
//! clock. Runs in QEMU (`-machine netduinoplus2 -serial stdio`).

use core::ptr::{read_volatile, write_volatile};
pub use cortex_m_rt::entry;

#[path = "cortex_m_uart.rs"]
mod common;
pub use common::exit;

pub const NAME: &str = "netduinoplus2 (STM32F405, USART1)";

const RCC_AHB1ENR: *mut u32 = 0x4002_3830 as _;
const RCC_APB2ENR: *mut u32 = 0x4002_3844 as _;
const GPIOA_MODER: *mut u32 = 0x4002_0000 as _;
const GPIOA_AFRH: *mut u32 = 0x4002_0024 as _;
const USART1_SR: *mut u32 = 0x4001_1000 as _;
const USART1_DR: *mut u32 = 0x4001_1004 as _;
const USART1_BRR: *mut u32 = 0x4001_1008 as _;
const USART1_CR1: *mut u32 = 0x4001_100C as _;

/// Clocks GPIOA and USART1, puts PA9 on alternate function 7 (USART1_TX), and enables the
/// transmitter.
pub fn init() {
    // SAFETY: writes of the chip's documented registers; nothing else uses them.
    unsafe {
        write_volatile(RCC_AHB1ENR, read_volatile(RCC_AHB1ENR) | 1);
        write_volatile(RCC_APB2ENR, read_volatile(RCC_APB2ENR) | 1 << 4);
        let moder = read_volatile(GPIOA_MODER) & !(0b11 << 18);
        write_volatile(GPIOA_MODER, moder | 0b10 << 18);
        let afrh = read_volatile(GPIOA_AFRH) & !(0xF << 4);
        write_volatile(GPIOA_AFRH, afrh | 7 << 4);
        // 16 MHz / (16 · 115200) = 8.6875: mantissa 8, fraction 11.
        write_volatile(USART1_BRR, 8 << 4 | 11);
        // UE | TE.
        write_volatile(USART1_CR1, 1 << 13 | 1 << 3);
    }
}

#[inline(never)] // (one copy, not one per line printed)
pub fn send(line: &[u8]) {
    super::send_with(line, |b| {
        // SAFETY: as in `init`; waits for TXE (SR bit 7), then writes the data register.
        unsafe {
            while read_volatile(USART1_SR) & 1 << 7 == 0 {}
            write_volatile(USART1_DR, u32::from(b));
        }
    });
}
