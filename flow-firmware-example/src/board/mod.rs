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

pub use imp::{entry, exit, init, send, NAME};

/// A line of output being written (`say!`): up to 256 bytes, the rest cut off.
pub struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    pub const fn new() -> Self {
        Self {
            buf: [0; 256],
            len: 0,
        }
    }

    /// The line's text.
    pub fn as_str(&self) -> &str {
        // Only whole `str`s are appended (`write_str`), so the bytes are UTF-8.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.len;
        let mut n = s.len().min(room);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Prints one line: `say!("log_prob {lp}")`.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut line = $crate::board::Line::new();
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!($($arg)*));
        $crate::board::send(line.as_str());
    }};
}

/// Writes `s` and a newline to a UART through `put` (one byte at a time).
#[allow(dead_code)]
pub fn send_with(s: &str, put: impl Fn(u8)) {
    s.bytes().chain(Some(b'\n')).for_each(put);
}
