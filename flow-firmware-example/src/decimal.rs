//! `f32` in decimal with 9 significant digits (`Dec`), enough to read back the same `f32`, with
//! integer arithmetic only: no core float formatting (Grisu and Dragon4: about 12 KB of
//! flash), no `f64` (software arithmetic on these cores: about 3 KB).
//!
//! The value `m·2^e` is held as a 64-bit integer times a power of two, multiplied or divided
//! by 10 until its integer part has 9 digits, and rounded. Each step truncates below 2⁻⁵⁸ of
//! the value, and an `f32` takes at most 54 steps: the printed decimal is within
//! `5·10⁻⁹ + 10⁻¹⁵` of the value relative, well inside half an `f32` ulp (at least
//! `2⁻²⁵ ≈ 3·10⁻⁸` relative), so parsing it gives the same `f32` back. The host test checks
//! this on 2,000,000 values.

use crate::text::{Line, Show};

/// An `f32` printed as `-2.11840343`, `0.000123456789` or `1.5e-7` (trailing zeros dropped).
pub struct Dec(pub f32);

/// Significant digits that read back as the same `f32`.
pub const EXACT: usize = 9;

impl Show for Dec {
    fn show(&self, line: &mut Line) {
        write_dec(line, self.0, EXACT);
    }
}

/// A list of `f32` printed as `[0.5, -1.25]`, each to the given significant digits (`EXACT`
/// to read back the same `f32`s).
pub struct List<'a>(pub &'a [f32], pub usize);

impl Show for List<'_> {
    fn show(&self, line: &mut Line) {
        line.put(b"[");
        for (i, &v) in self.0.iter().enumerate() {
            if i > 0 {
                line.put(b", ");
            }
            write_dec(line, v, self.1);
        }
        line.put(b"]");
    }
}

/// The mantissa is kept in `[2⁵⁹, 2⁶⁰)`: room to multiply it by 10 in a `u64`.
const TOP: u64 = 1 << 59;

/// `v = m·2^e` with `m` brought back into `[TOP, 2·TOP)`.
#[inline(never)]
fn normalize(mut m: u64, mut e: i32) -> (u64, i32) {
    while m >= 2 * TOP {
        m >>= 1;
        e += 1;
    }
    while m < TOP {
        m <<= 1;
        e -= 1;
    }
    (m, e)
}

/// The integer part of `m·2^e` (saturated).
fn int_part(m: u64, e: i32) -> u64 {
    match e {
        0.. => u64::MAX,
        -63..=-1 => m >> -e,
        _ => 0,
    }
}

/// `m / 10`, by 16 bits at a time in `u32` (a `u64` division would bring in a routine of
/// about 0.9 KB).
fn div10(m: u64) -> u64 {
    let (mut q, mut r) = (0, 0);
    for shift in [48, 32, 16, 0] {
        let part = r << 16 | (m >> shift) as u32 & 0xFFFF;
        q = q << 16 | u64::from(part / 10);
        r = part % 10;
    }
    q
}

/// `v` rounded to `k` significant digits (`1..=9`).
fn write_dec(line: &mut Line, v: f32, k: usize) {
    if v.is_nan() {
        return line.put(b"NaN");
    }
    if v.is_sign_negative() {
        line.put(b"-");
    }
    let bits = v.to_bits() & 0x7FFF_FFFF;
    if bits == 0x7F80_0000 {
        return line.put(b"inf");
    }
    if bits == 0 {
        return line.put(b"0");
    }
    // |v| = m·2^e exactly (a subnormal has a zero exponent field and no implicit bit).
    let (m, e) = match bits >> 23 {
        0 => (bits, -149),
        b => (bits & 0x7F_FFFF | 0x80_0000, b as i32 - 150),
    };
    let (mut m, mut e) = normalize(u64::from(m), e);
    // Scaled by 10^-p so that its integer part has k digits: m·2^e ∈ [10^(k-1), 10^k).
    let hi = 10u32.pow(k as u32);
    let mut p: i32 = 0;
    while int_part(m, e) >= u64::from(hi) {
        // Divided at the top of the u64 for precision: (m·2⁴ / 10)·2^(e-4).
        (m, e) = normalize(div10(m << 4), e - 4);
        p += 1;
    }
    while int_part(m, e) < u64::from(hi / 10) {
        (m, e) = normalize(m * 10, e);
        p -= 1;
    }
    // Rounded to the nearest integer (the value is below 2^30 and the mantissa at least 2^59: -e ≥ 30).
    let mut d = (((m >> (-e - 1)) + 1) >> 1) as u32; // at most 10^9
    if d >= hi {
        d /= 10;
        p += 1;
    }
    // The k digits, first to last (b'0' past them), of which the first n are significant.
    let mut digits = [b'0'; EXACT];
    for i in (0..k).rev() {
        if let Some(slot) = digits.get_mut(i) {
            *slot = b'0' + (d % 10) as u8;
        }
        d /= 10;
    }
    let n = digits.iter().rposition(|&c| c != b'0').map_or(1, |i| i + 1) as i32;
    // The exponent of the first digit; from -5 to 8 printed as is, otherwise as `d.ddde-7`.
    let p = p + k as i32 - 1;
    let (first, exp) = if (-5..=8).contains(&p) {
        (p, None)
    } else {
        (0, Some(p))
    };
    // Each decimal place from the highest printed (at least the units) to the lowest.
    for place in ((first - n + 1).min(0)..=first.max(0)).rev() {
        if place == -1 {
            line.put(b".");
        }
        let i = usize::try_from(first - place).ok();
        line.put(&[*i.and_then(|i| digits.get(i)).unwrap_or(&b'0')]);
    }
    if let Some(p) = exp {
        line.put(b"e");
        if p < 0 {
            line.put(b"-");
        }
        p.unsigned_abs().show(line);
    }
}
