//! Line output through semihosting without `core::fmt`: decimal and hex by hand, each piece of
//! a line written as it is made (one `SYS_WRITE` per piece; no line buffer to clear and copy).
//!
//! `core::fmt` (the formatter, integer `Display`, padding) costs 2–3 KB of flash; these few
//! functions are a few hundred bytes and do all the firmware prints.

use crate::errtext::{self, Text};
#[cfg(target_arch = "arm")]
use core::sync::atomic::{AtomicUsize, Ordering};
#[cfg(target_arch = "arm")]
use cortex_m_semihosting::{nr, syscall};

/// The semihosting handle of the host's stdout, plus one (0: not opened yet).
#[cfg(target_arch = "arm")]
static STDOUT: AtomicUsize = AtomicUsize::new(0);

/// RISC-V (`sifive_e`): UART0's `txdata` and `txctrl` registers.
#[cfg(target_arch = "riscv32")]
const UART0_TXDATA: *mut u32 = 0x1001_3000 as _;
#[cfg(target_arch = "riscv32")]
const UART0_TXCTRL: *mut u32 = 0x1001_3008 as _;

/// Writes `bytes` to UART0 (enabling its transmitter first): each byte when the FIFO has room
/// (`txdata` bit 31 clear).
#[cfg(target_arch = "riscv32")]
fn host_write(bytes: &[u8]) {
    // SAFETY: writes and reads of the UART's documented registers; nothing else uses them.
    unsafe {
        core::ptr::write_volatile(UART0_TXCTRL, 1);
        for &b in bytes {
            while core::ptr::read_volatile(UART0_TXDATA) & 1 << 31 != 0 {}
            core::ptr::write_volatile(UART0_TXDATA, u32::from(b));
        }
    }
}

/// Writes `bytes` to the host's stdout (nothing without a semihosting host).
#[cfg(target_arch = "arm")]
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
        let mut start = d.len();
        for slot in d.iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
            start -= 1;
            if v == 0 {
                break;
            }
        }
        // SAFETY: `start` counts down from `d.len()` once per digit written, at most
        // `d.len()` times, so `start..` is in bounds (a checked slice costs a few instructions
        // per number).
        self.bytes(unsafe { d.get_unchecked(start..) });
    }

    fn hex(&mut self, v: u32) {
        self.bytes(b"0x");
        self.hex8(v);
    }
}

/// Prints `<name> <value>`: `metric!("name", value)`. The name, less an `icount_` or
/// `stack_` prefix and a `_bytes` suffix, must occur in the binary's `crate::METRIC_NAMES` (a
/// compile-time error otherwise); the call passes its place there and the affixes ([`key!`]),
/// one small constant instead of a pointer and a length.
macro_rules! metric {
    ($name:literal, $v:expr $(,)?) => {
        $crate::out::metric_at($crate::out::key!($name), $v)
    };
}
pub(crate) use metric;

/// The key of the metric `name` ([`metric_key`]), a constant.
macro_rules! key {
    ($name:literal) => {{
        const KEY: $crate::out::Key = $crate::out::metric_key($name);
        KEY
    }};
}
pub(crate) use key;

/// The affixes of metric names that `METRIC_NAMES` leaves out: the prefixes `icount_` (key
/// bits 0–1 = 1) and `stack_` (2) and the suffix `_bytes` (key bit 2). Prefix `p` is the
/// `8 - p` bytes at `7 (p - 1)`.
const AFFIXES: &str = "icount_stack__bytes";
const SUFFIX_AT: usize = 13;

/// A metric name ([`metric_key`]): `offset << 8 | length << 3 | suffix << 2 | prefix`. Made
/// only by `metric_key`, so its piece of `METRIC_NAMES` is always in bounds.
#[derive(Clone, Copy)]
pub struct Key(u16);

/// `name` without `affix` at its start (`end` false) or end, if it has it.
const fn strip(name: &[u8], affix: (usize, usize), end: bool) -> Option<&[u8]> {
    let a = AFFIXES.as_bytes().split_at(affix.0).1.split_at(affix.1).0;
    if name.len() < a.len() {
        return None;
    }
    let at = if end { name.len() - a.len() } else { 0 };
    let mut j = 0;
    while j < a.len() {
        if name[at + j] != a[j] {
            return None;
        }
        j += 1;
    }
    Some(if end {
        name.split_at(at).0
    } else {
        name.split_at(a.len()).1
    })
}

/// The key of the metric `name`: where the rest of it, less a prefix and the suffix of
/// `AFFIXES`, occurs in `crate::METRIC_NAMES`, and which affixes it has. Evaluated at compile
/// time; a rest may overlap others there (only its bytes matter).
pub const fn metric_key(name: &str) -> Key {
    let (names, mut name) = (crate::METRIC_NAMES.as_bytes(), name.as_bytes());
    let mut affixes = 0;
    let mut p = 1;
    while p <= 2 {
        if let Some(rest) = strip(name, (7 * (p - 1), 8 - p), false) {
            name = rest;
            affixes = p;
            break;
        }
        p += 1;
    }
    if let Some(rest) = strip(name, (SUFFIX_AT, AFFIXES.len() - SUFFIX_AT), true) {
        name = rest;
        affixes |= 4;
    }
    assert!(name.len() < 32 && names.len() < 1 << 8);
    let mut at = 0;
    while at + name.len() <= names.len() {
        let mut j = 0;
        while j < name.len() && names[at + j] == name[j] {
            j += 1;
        }
        if j == name.len() {
            return Key(((at << 8) | (name.len() << 3) | affixes) as u16);
        }
        at += 1;
    }
    panic!("metric name missing from METRIC_NAMES")
}

/// Prints `<name> <v>` for the name of `key`.
#[inline(never)]
pub fn metric_at(key: Key, v: u32) {
    let key = usize::from(key.0);
    let (affixes, names) = (AFFIXES.as_bytes(), crate::METRIC_NAMES.as_bytes());
    let mut l = Line;
    let p = key & 3;
    // SAFETY: every `Key` is made by `metric_key`, whose prefix (1 or 2) and piece of
    // `METRIC_NAMES` are in bounds.
    unsafe {
        if p != 0 {
            let (start, end) = if p == 1 { (0, 7) } else { (7, 13) };
            l.bytes(affixes.get_unchecked(start..end));
        }
        let at = key >> 8;
        l.bytes(names.get_unchecked(at..at + (key >> 3 & 31)));
    }
    if key & 4 != 0 {
        l.bytes(affixes.split_at(SUFFIX_AT).1);
    }
    l.num(v).send();
}

/// Prints `s`.
#[inline(never)]
pub fn say(s: &str) {
    Line::start(s).send();
}
