//! What differs between the boards: `NAME`, the `entry` attribute, `init`, `send` (one line
//! of output), `exit`, and the fault and panic handlers. Exactly one board feature is on
//! (build.rs checks it).
//!
//! | board | output | the run ends |
//! |---|---|---|
//! | `mps2-an386` (QEMU) | semihosting | QEMU exits with the status |
//! | `netduinoplus2`, `microbit`, `hifive1` | the chip's UART | `done` or `error: …`, then the core sleeps |
//! | `nrf52840-dk`, `rp-pico`, `nucleo-f401re` | defmt over RTT (probe-rs) | `done`, or `error: …` and a panic |

#[cfg_attr(feature = "mps2-an386", path = "semihosting.rs")]
#[cfg_attr(feature = "netduinoplus2", path = "netduinoplus2.rs")]
#[cfg_attr(feature = "microbit", path = "microbit.rs")]
#[cfg_attr(feature = "hifive1", path = "hifive1.rs")]
#[cfg_attr(feature = "rtt", path = "rtt.rs")]
mod imp;
#[cfg(feature = "cortex-m-vectors")]
mod vectors;

pub use imp::{entry, exit, init, send, NAME};

/// Prints a panic as `error: panic at src/file.rs:12: message` (the message when it is a
/// plain string: formatting it would bring in `core::fmt`).
#[allow(dead_code)]
pub fn say_panic(info: &core::panic::PanicInfo) {
    let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
    let message = info.message().as_str().unwrap_or("(formatted message)");
    crate::say!("error: panic at ", file, ":", line, ": ", message);
}

/// Writes `line` and a newline to a UART through `put` (one byte at a time).
#[allow(dead_code)]
pub fn send_with(line: &[u8], put: impl Fn(u8)) {
    line.iter().copied().chain(Some(b'\n')).for_each(put);
}
