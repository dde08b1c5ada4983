//! `f32` in decimal with 9 significant digits (`Dec`), enough to read back the same `f32`, without
//! core's float formatting (Grisu and Dragon4: about 12 KB of flash).
//!
//! The value is scaled to `m ∈ [10⁸, 10⁹)` in `f64` (relative error below 10⁻¹⁴ after the
//! at most 54 steps an `f32` needs) and rounded to 9 digits: the printed decimal is within
//! `5·10⁻⁹` of the value relative, well inside half an `f32` ulp (at least `2⁻²⁵ ≈ 3·10⁻⁸`
//! relative), so parsing it gives the same `f32` back. The host test checks this on every
//! number printed.

use core::fmt::{self, Display, Formatter, Write};

/// An `f32` printed as `-2.11840343`, `0.000123456789` or `1.5e-7` (trailing zeros dropped).
pub struct Dec(pub f32);

/// Significant digits that read back as the same `f32`.
pub const EXACT: usize = 9;

impl Display for Dec {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_dec(f, self.0, EXACT)
    }
}

/// `v` rounded to `k` significant digits (`1..=9`).
fn write_dec(f: &mut Formatter<'_>, v: f32, k: usize) -> fmt::Result {
    if v.is_nan() {
        return f.write_str("NaN");
    }
    if v.is_sign_negative() {
        f.write_char('-')?;
    }
    let mut m = f64::from(v).abs();
    if m == f64::INFINITY {
        return f.write_str("inf");
    }
    if m == 0.0 {
        return f.write_char('0');
    }
    // m · 10^e = |v|, m ∈ [10^(k-1), 10^k).
    let hi = 10u32.pow(k as u32);
    let mut e: i32 = 0;
    while m >= f64::from(hi) {
        m /= 10.0;
        e += 1;
    }
    while m < f64::from(hi / 10) {
        m *= 10.0;
        e -= 1;
    }
    let mut d = (m + 0.5) as u32;
    if d >= hi {
        d /= 10;
        e += 1;
    }
    let mut digits = [0u8; EXACT];
    let digits = &mut digits[..k];
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (d % 10) as u8;
        d /= 10;
    }
    let n = k - digits.iter().rev().take_while(|&&c| c == b'0').count();
    let digits = &digits[..n];
    // Written byte by byte: a `str` slice would link core's slicing panic and its text.
    let put = |f: &mut Formatter<'_>, b: &[u8]| b.iter().try_for_each(|&c| f.write_char(c.into()));
    // The exponent of the first digit.
    let p = e + k as i32 - 1;
    match p {
        0..=8 => {
            let int = (p as usize + 1).min(n);
            put(f, &digits[..int])?;
            for _ in n..=p as usize {
                f.write_char('0')?;
            }
            if int < n {
                f.write_char('.')?;
                put(f, &digits[int..])?;
            }
            Ok(())
        }
        -5..=-1 => {
            f.write_str("0.")?;
            for _ in 0..-p - 1 {
                f.write_char('0')?;
            }
            put(f, digits)
        }
        _ => {
            put(f, &digits[..1])?;
            if n > 1 {
                f.write_char('.')?;
                put(f, &digits[1..])?;
            }
            write!(f, "e{p}")
        }
    }
}

/// A list of `f32` printed as `[0.5, -1.25]`, each to the given significant digits (`EXACT`
/// to read back the same `f32`s).
pub struct List<'a>(pub &'a [f32], pub usize);

impl Display for List<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('[')?;
        for (i, &v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_dec(f, v, self.1)?;
        }
        f.write_char(']')
    }
}
