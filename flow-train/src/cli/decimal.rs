//! A fast path for the cells of a CSV file: a plain decimal (`-0.26315060470284957`) to the
//! `f32` the reader has always made of it, `s.parse::<f64>()` rounded to `f32` — the same
//! bits, in a fraction of the time, or `None` (the caller then parses as before).
//!
//! The cell's digits, at most 19 of them, make an integer `w` that fits a `u64`, and at most
//! 22 of them follow the point, so the cell's value is `w / 10^e` with `10^e` exact in `f64`.
//! `w as f64 / 10^e` is `f64` arithmetic with two roundings of relative error `2⁻⁵³` each,
//! so within 2 units in the last place (ulps) of the value; the value's correctly rounded
//! `f64` (what `parse` gives) is within half an ulp of it, so the two `f64`s are within 2.5
//! ulps of each other. Rounding to
//! `f32` gives them the same `f32` unless an `f32` rounding boundary — a midpoint between two
//! `f32`s, which has the bit pattern `1` followed by 28 zeros in the 29 low bits of an `f64`
//! of the same binade — lies between them; so whenever the quotient's low 29 bits are within
//! 16 of that pattern, the fast path gives up. Everything else (exponents, `inf`, `nan`, more
//! digits, blanks, a stray character) is left to `parse` as well.

/// `s.parse::<f64>().map(|v| v as f32)` for a plain decimal `s` (an optional sign, digits,
/// an optional point and digits), the same bits; `None` for anything else and for the rare
/// value whose rounding needs `parse` (see the module docs).
#[inline]
pub(super) fn decimal_f32(s: &str) -> Option<f32> {
    let b = s.as_bytes();
    let (neg, body) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let (int, frac) = match body.iter().position(|&c| c == b'.') {
        Some(p) => (&body[..p], &body[p + 1..]),
        None => (body, &[][..]),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    // Leading zeros are not significant (nor those after the point while the integer part
    // is zero).
    let zeros = |d: &[u8]| d.iter().take_while(|&&c| c == b'0').count();
    let int = &int[zeros(int)..];
    let significant = int.len()
        + if int.is_empty() {
            frac.len() - zeros(frac)
        } else {
            frac.len()
        };
    if significant > 19 || frac.len() > 22 {
        return None;
    }
    // At most 19 significant digits: `w < 10¹⁹ < 2⁶⁴`.
    let w = digits(digits(0, int)?, frac)?;
    let q = w as f64 / POW10[frac.len()];
    let low = q.to_bits() & ((1 << 29) - 1);
    if low.abs_diff(1 << 28) <= 16 {
        return None;
    }
    let v = q as f32;
    Some(if neg { -v } else { v })
}

/// `w` followed by the decimal digits `d` (`None` if one is not a digit); the caller keeps
/// the result below `2⁶⁴`.
#[inline(always)]
fn digits(mut w: u64, d: &[u8]) -> Option<u64> {
    let mut eights = d.chunks_exact(8);
    for e in eights.by_ref() {
        w = w * 100_000_000 + eight(e.try_into().ok()?)?;
    }
    for &c in eights.remainder() {
        let v = c.wrapping_sub(b'0');
        if v > 9 {
            return None;
        }
        w = w * 10 + u64::from(v);
    }
    Some(w)
}

/// The eight decimal digits `d` as a number (`None` if one is not a digit), all at once: the
/// bytes as one little-endian `u64`, each byte tested, then pairs, quads and the two halves
/// combined by three multiplications.
#[inline(always)]
fn eight(d: [u8; 8]) -> Option<u64> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let v = u64::from_le_bytes(d).wrapping_sub(0x3030_3030_3030_3030);
    // A byte below `0` wraps (and may borrow from the next, which then fails too); one above
    // `9` reaches the high bit when 0x76 is added; neither carries into a byte that passes.
    if (v | v.wrapping_add(0x7676_7676_7676_7676)) & HIGH != 0 {
        return None;
    }
    let v = (v.wrapping_mul(10) + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v.wrapping_mul(100) + (v >> 16)) & 0x0000_ffff_0000_ffff;
    Some((v.wrapping_mul(10_000) + (v >> 32)) & 0xffff_ffff)
}

/// `10^0 … 10^22`, each exact in `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// What the reader made of a cell before: `parse::<f64>()` rounded to `f32`.
    fn by_parse(s: &str) -> Option<f32> {
        s.parse::<f64>().ok().map(|v| v as f32)
    }

    fn check(s: &str) -> bool {
        match decimal_f32(s) {
            Some(v) => {
                let want = by_parse(s).expect("the fast path took a cell parse refuses");
                assert_eq!(v.to_bits(), want.to_bits(), "`{s}`");
                true
            }
            None => false,
        }
    }

    struct Xs(u64);
    impl Xs {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// Random decimals of 1 to 22 digits on either side of the point (signs, leading and
    /// trailing zeros): every one the fast path takes is `parse`'s value bit for bit, and it
    /// takes nearly all of those with at most 19 significant digits.
    #[test]
    fn random_decimals_are_parsed_as_parse_does() {
        let mut r = Xs(0x2545_f491_4f6c_dd1d);
        let (mut taken, mut eligible) = (0u32, 0u32);
        for _ in 0..1_000_000 {
            let int_digits = r.next() % 8;
            let frac_digits = r.next() % 23;
            let mut s = String::new();
            match r.next() % 3 {
                0 => s.push('-'),
                1 if r.next().is_multiple_of(8) => s.push('+'),
                _ => {}
            }
            for i in 0..int_digits {
                let d = if i == 0 && r.next().is_multiple_of(2) {
                    0
                } else {
                    r.next() % 10
                };
                s.push(char::from(b'0' + d as u8));
            }
            if frac_digits > 0 || int_digits == 0 {
                s.push('.');
                for _ in 0..frac_digits.max(1) {
                    s.push(char::from(b'0' + (r.next() % 10) as u8));
                }
            }
            let significant = s
                .bytes()
                .filter(u8::is_ascii_digit)
                .skip_while(|&c| c == b'0')
                .count();
            let ok = check(&s);
            if significant <= 19 {
                eligible += 1;
                taken += u32::from(ok);
            }
        }
        assert!(
            taken as f64 > 0.999 * eligible as f64,
            "{taken} of {eligible}"
        );
    }

    /// Decimals at and beside the midpoints between neighbouring `f32`s (17 significant
    /// digits, the last one stepped by -2..=2, the third- and fourth-last by ±1): the cases where
    /// rounding twice could differ.
    #[test]
    fn midpoints_between_f32s_are_left_to_parse_or_parsed_alike() {
        let mut r = Xs(0x9e37_79b9_7f4a_7c15);
        let mut taken = 0u32;
        for _ in 0..200_000 {
            // f32s from about 3e-5 to 8e6, where 17 digits need at most 22 after the point.
            let bits = 0x3800_0000 + (r.next() as u32) % 0x1300_0000;
            let a = f32::from_bits(bits);
            let mid = (f64::from(a) + f64::from(f32::from_bits(bits + 1))) / 2.0;
            let decimals = (16 - mid.log10().floor() as i64).clamp(0, 22) as usize;
            let s = format!("{mid:.decimals$}");
            // The last digit moves the value by 0.05 to 0.5 f64 ulps; the fourth-last, 50 to 500.
            for (place, step) in [
                (0, -2),
                (0, -1),
                (0, 0),
                (0, 1),
                (0, 2),
                (2, -1),
                (2, 1),
                (3, -1),
                (3, 1),
            ] {
                if let Some(t) = nudge(&s, place, step) {
                    taken += u32::from(check(&t));
                }
            }
        }
        // The cells 50 ulps or more from each midpoint, nearly all of them, are taken.
        assert!(taken > 350_000, "{taken}");
    }

    /// `s` with its digit `place` places before the last moved by `step` (`None` when that
    /// carries or is not a digit).
    fn nudge(s: &str, place: usize, step: i64) -> Option<String> {
        let mut b = s.as_bytes().to_vec();
        let at = b.len().checked_sub(1 + place)?;
        let last = b.get_mut(at).filter(|c| c.is_ascii_digit())?;
        let d = i64::from(*last - b'0') + step;
        if !(0..=9).contains(&d) {
            return None;
        }
        *last = b'0' + d as u8;
        String::from_utf8(b).ok()
    }

    /// `eight` reads what a digit-by-digit loop reads, and refuses a non-digit anywhere.
    #[test]
    fn eight_digits_at_once() {
        let mut r = Xs(0x1234_5678_9abc_def1);
        for _ in 0..200_000 {
            let mut d = [0u8; 8];
            for c in &mut d {
                *c = b'0' + (r.next() % 10) as u8;
            }
            let want = d.iter().fold(0u64, |w, &c| w * 10 + u64::from(c - b'0'));
            assert_eq!(eight(d), Some(want), "{d:?}");
            let at = (r.next() % 8) as usize;
            d[at] = (r.next() % 256) as u8;
            assert_eq!(eight(d).is_some(), d[at].is_ascii_digit(), "{d:?}");
        }
    }

    /// Cells that are not plain decimals, or too long, are left to `parse`.
    #[test]
    fn other_cells_are_left_to_parse() {
        for s in [
            "",
            "-",
            "+",
            ".",
            "-.",
            "1e3",
            "1E-3",
            "inf",
            "-inf",
            "nan",
            "NaN",
            "1.2.3",
            " 1",
            "1 ",
            "0x10",
            "1_000",
            "12345678901234567890",
            "0.00000000000000000000001",
        ] {
            assert_eq!(decimal_f32(s), None, "`{s}`");
        }
        for s in [
            "0",
            "-0",
            "-0.0",
            ".5",
            "5.",
            "+7",
            "0.26315060470284957",
            "-1.6869953599996446",
        ] {
            assert!(check(s), "`{s}` not taken");
        }
        assert_eq!(
            decimal_f32("-0").map(f32::to_bits),
            Some((-0.0f32).to_bits())
        );
    }
}
