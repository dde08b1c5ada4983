//! Boards flashed and read with probe-rs: output as defmt over RTT (`probe-rs run` streams it
//! while the board runs; no semihosting, so the board runs without a debugger too). A load
//! error is logged, then panics (panic-probe: probe-rs stops with a failure).

pub use cortex_m_rt::entry;
use defmt_rtt as _;
use panic_probe as _;

#[cfg(feature = "nrf52840-dk")]
pub const NAME: &str = "nrf52840-dk (nRF52840, defmt over RTT)";
#[cfg(feature = "rp-pico")]
pub const NAME: &str = "rp-pico (RP2040, defmt over RTT)";
#[cfg(feature = "nucleo-f401re")]
pub const NAME: &str = "nucleo-f401re (STM32F401RE, defmt over RTT)";

/// The RP2040's second-stage bootloader (the first 256 bytes of flash), for the Pico's
/// W25Q080 flash chip.
#[cfg(feature = "rp-pico")]
#[link_section = ".boot2"]
#[used]
pub static BOOT2: [u8; 256] = rp2040_boot2::BOOT_LOADER_W25Q080;

pub fn init() {}

pub fn send(line: &[u8]) {
    defmt::println!("{=[u8]:a}", line);
}

/// `defmt::panic!`: its message is logged, then a hard fault stops the core (probe-rs stops
/// with a failure). A core panic does the same through panic-probe, without its message.
#[defmt::panic_handler]
fn defmt_panic() -> ! {
    panic_probe::hard_fault()
}

/// After `done` the core sleeps; after an error it panics (probe-rs stops with a failure).
pub fn exit(ok: bool) -> ! {
    if !ok {
        defmt::panic!("the model did not load");
    }
    loop {
        cortex_m::asm::wfi();
    }
}
