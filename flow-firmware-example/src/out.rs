//! Line output through semihosting without `core::fmt`: decimal and hex by hand, each piece of
//! a line written as it is made (one `SYS_WRITE` per piece; no line buffer to clear and copy).
//!
//! `core::fmt` (the formatter, integer `Display`, padding) costs 2–3 KB of flash; these few
//! functions are a few hundred bytes and do all the firmware prints.

use crate::errtext::{self, Text};
use core::sync::atomic::{AtomicUsize, Ordering};
use cortex_m_semihosting::{nr, syscall};

/// The semihosting handle of the host's stdout, plus one (0: not opened yet).
static STDOUT: AtomicUsize = AtomicUsize::new(0);

/// Writes `bytes` to the host's stdout (nothing without a semihosting host).
fn host_write(bytes: &[u8]) {
    let mut fd = STDOUT.load(Ordering::Relaxed);
    if fd == 0 {
        let name = b":tt\0";
        // SAFETY: SYS_OPEN reads the NUL-terminated name; the length excludes the NUL.
        let r = unsafe { syscall!(OPEN, name.as_ptr(), nr::open::W_TRUNC, name.len() - 1) };
        if r as isize == -1 {
            return;
        }
        fd = r + 1;
        STDOUT.store(fd, Ordering::Relaxed);
    }
    // SAFETY: SYS_WRITE reads `len` bytes at `ptr`. It returns the number of bytes *not*
    // written; QEMU writes everything or fails, so a partial write is not retried.
    unsafe { syscall!(WRITE, fd - 1, bytes.as_ptr(), bytes.len()) };
}

/// A line being written; [`send`](Self::send) ends it with its newline.
pub struct Line;

impl Line {
    /// A line starting with `s`.
    #[inline(always)]
    pub fn start(s: &str) -> Self {
        let mut l = Self;
        l.str(s);
        l
    }

    #[inline(never)]
    fn bytes(&mut self, b: &[u8]) {
        host_write(b);
    }

    /// Appends a space and `s`.
    #[inline(never)]
    pub fn word(&mut self, s: &str) -> &mut Self {
        self.bytes(b" ");
        self.bytes(s.as_bytes());
        self
    }

    /// Appends a space and `v` in decimal.
    #[inline(never)]
    pub fn num(&mut self, v: u32) -> &mut Self {
        self.bytes(b" ");
        self.dec(v);
        self
    }

    /// Appends a space and the bits of `v` as 8 hex digits.
    #[inline(never)]
    pub fn bits(&mut self, v: f32) -> &mut Self {
        self.bytes(b" ");
        self.hex8(v.to_bits());
        self
    }

    /// Appends a space and `e`: its code (`E<n> …`, see `errtext.rs`), or with the feature
    /// `error-text` flow-core's message.
    pub fn err(&mut self, e: &flow_core::Error) -> &mut Self {
        self.bytes(b" ");
        #[cfg(feature = "error-text")]
        errtext::error(self, e);
        #[cfg(not(feature = "error-text"))]
        errtext::code(self, e);
        self
    }

    /// Appends `v` as 8 lowercase hex digits.
    pub fn hex8(&mut self, v: u32) {
        let mut d = [0u8; 8];
        for (i, c) in d.iter_mut().enumerate() {
            let n = (v >> (28 - 4 * i)) & 0xF;
            *c = if n < 10 {
                b'0' + n as u8
            } else {
                b'a' + n as u8 - 10
            };
        }
        self.bytes(&d);
    }

    /// Ends the line.
    #[inline(never)]
    pub fn send(&mut self) {
        self.bytes(b"\n");
    }
}

impl Text for Line {
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn dec(&mut self, mut v: u32) {
        // u32::MAX has 10 digits; filled from the end.
        let mut d = [0u8; 10];
        let mut start = 0;
        for (n, slot) in d.iter_mut().enumerate().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                start = n;
                break;
            }
        }
        self.bytes(d.get(start..).unwrap_or(&[]));
    }

    fn hex(&mut self, v: u32) {
        self.bytes(b"0x");
        self.hex8(v);
    }
}

/// Prints `<name> <value>`: `metric!("name", value)`. The name must occur in the binary's
/// `crate::METRIC_NAMES` (a compile-time error otherwise); the call passes its place there
/// ([`metric_key`]), one small constant instead of a pointer and a length.
macro_rules! metric {
    ($name:literal, $v:expr $(,)?) => {
        $crate::out::metric_at(
            {
                const KEY: u16 = $crate::out::metric_key($name);
                KEY
            },
            $v,
        )
    };
}
pub(crate) use metric;

/// Where `name` occurs in `crate::METRIC_NAMES`: `offset << 5 | length`. Evaluated at compile
/// time; a name may overlap others there (only its bytes matter).
pub const fn metric_key(name: &str) -> u16 {
    let (names, name) = (crate::METRIC_NAMES.as_bytes(), name.as_bytes());
    assert!(name.len() < 32 && names.len() < 1 << 11);
    let mut at = 0;
    while at + name.len() <= names.len() {
        let mut j = 0;
        while j < name.len() && names[at + j] == name[j] {
            j += 1;
        }
        if j == name.len() {
            return ((at << 5) | name.len()) as u16;
        }
        at += 1;
    }
    panic!("metric name missing from METRIC_NAMES")
}

/// Prints `<name> <v>` for the name at `key` ([`metric_key`]).
#[inline(never)]
pub fn metric_at(key: u16, v: u32) {
    let at = usize::from(key >> 5);
    let name = crate::METRIC_NAMES
        .as_bytes()
        .get(at..at + usize::from(key & 31))
        .unwrap_or(&[]);
    let mut l = Line;
    l.bytes(name);
    l.num(v).send();
}

/// Prints `s`.
#[inline(never)]
pub fn say(s: &str) {
    Line::start(s).send();
}
