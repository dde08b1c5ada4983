//! The loader's decoder against postcard + serde, the file's writer: the same value and the
//! same rest, or the same error, on encoded parts, on every truncation and bit flip of them,
//! on random bytes and on hand-made edge cases.

extern crate std;
use super::decode::{take, Wire};
use super::format::{Preamble, Tail};
use super::*;
use crate::error::Error;
use crate::spline::Order;
use core::fmt;
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;
use serde::{Deserialize, Serialize};
use std::format;
use std::vec::Vec;

/// The loader's former decoder: postcard, with its errors mapped as the loader maps them.
fn reference<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<(T, &'a [u8]), Error> {
    postcard::take_from_bytes(b).map_err(|e| {
        Error::Format(match e {
            postcard::Error::DeserializeUnexpectedEnd => FormatError::Truncated,
            _ => FormatError::Malformed,
        })
    })
}

/// Compares the two decoders on `b` (through `Debug`, so that NaN bounds compare equal).
fn agree<'a, T: Wire<'a> + Deserialize<'a> + fmt::Debug>(b: &'a [u8]) -> bool {
    let ours = take::<T>(b);
    let theirs = reference::<T>(b);
    assert_eq!(
        format!("{ours:?}"),
        format!("{theirs:?}"),
        "{} on {b:02x?}",
        core::any::type_name::<T>()
    );
    ours.is_ok()
}

/// Every part type on `b`; how many decoded.
fn agree_all(b: &[u8]) -> usize {
    [
        agree::<Preamble>(b),
        agree::<Header>(b),
        agree::<LayerRecord<'_>>(b),
        agree::<Metadata<'_>>(b),
        agree::<Tail<'_>>(b),
        agree::<SplineDesc>(b),
        agree::<Hidden>(b),
        agree::<ParamRef>(b),
        agree::<FlowKind>(b),
        agree::<Order>(b),
    ]
    .iter()
    .filter(|&&ok| ok)
    .count()
}

/// A value of 16 bits, drawn to hit every varint length and the extremes.
fn u16_of(rng: &mut Pcg32) -> u16 {
    match rng.next_u32() % 4 {
        0 => (rng.next_u32() % 128) as u16,
        1 => [0, 127, 128, 16383, 16384, u16::MAX][rng.next_u32() as usize % 6],
        _ => rng.next_u32() as u16,
    }
}

fn u32_of(rng: &mut Pcg32) -> u32 {
    match rng.next_u32() % 3 {
        0 => rng.next_u32() % 300,
        1 => [0, 127, 128, 1 << 21, (1 << 28) - 1, 1 << 28, u32::MAX][rng.next_u32() as usize % 7],
        _ => rng.next_u32() >> (rng.next_u32() % 32),
    }
}

fn spline_of(rng: &mut Pcg32) -> SplineDesc {
    SplineDesc {
        bins: u16_of(rng),
        bound: f32::from_bits(rng.next_u32()),
        order: if rng.next_u32() & 1 == 0 {
            Order::Linear
        } else {
            Order::Quadratic
        },
    }
}

fn hidden_of(rng: &mut Pcg32) -> Hidden {
    Hidden {
        len: rng.next_u32() as u8,
        sizes: core::array::from_fn(|_| u16_of(rng)),
    }
}

fn pref(rng: &mut Pcg32) -> ParamRef {
    ParamRef {
        start: u32_of(rng),
        len: u32_of(rng),
    }
}

/// Encodes a random value of every part type with postcard.
fn encoded_parts(rng: &mut Pcg32, bytes: &[u8], text: &str) -> Vec<Vec<u8>> {
    let mut buf = [0u8; 512];
    let mut out = Vec::new();
    let mut put = |v: &dyn erased::Ser| out.push(v.enc(&mut buf));
    let n = rng.next_u32() as usize % (bytes.len() + 1);
    let m = rng.next_u32() as usize % (bytes.len() + 1);
    put(&Preamble {
        magic: [b'N', b'F', rng.next_u32() as u8, b'W'],
        version: u16_of(rng),
    });
    put(&Header {
        kind: [FlowKind::Plain, FlowKind::Conditional, FlowKind::Joint]
            [rng.next_u32() as usize % 3],
        dim: u16_of(rng),
        context_dim: u16_of(rng),
        layers: u16_of(rng),
        marginal_layers: u16_of(rng),
    });
    let record = match rng.next_u32() % 6 {
        0 => LayerRecord::Affine {
            dim: u16_of(rng),
            params: pref(rng),
        },
        1 => LayerRecord::Exp { dim: u16_of(rng) },
        2 => LayerRecord::Spline {
            dim: u16_of(rng),
            spline: spline_of(rng),
            params: pref(rng),
        },
        3 => LayerRecord::Coupling {
            split: u16_of(rng),
            upper_dim: u16_of(rng),
            spline: spline_of(rng),
            context: u16_of(rng),
            hidden: hidden_of(rng),
            lower: pref(rng),
            hypernet: pref(rng),
        },
        4 => LayerRecord::Permute { perm: &bytes[..n] },
        _ => LayerRecord::ConditionalSpline {
            dim: u16_of(rng),
            spline: spline_of(rng),
            context: u16_of(rng),
            hidden: hidden_of(rng),
            hypernet: pref(rng),
        },
    };
    put(&record);
    let cut = text
        .char_indices()
        .map(|(i, _)| i)
        .nth(rng.next_u32() as usize % 8)
        .unwrap_or(text.len());
    put(&Metadata {
        columns: &text.as_bytes()[..cut],
        scaler: &bytes[..m],
        thresholds: &bytes[m..],
        window: u16_of(rng),
        grouping: match rng.next_u32() % 3 {
            0 => Grouping::None,
            1 => Grouping::RowsPerGroup(rng.next_u32()),
            _ => Grouping::Column(&text.as_bytes()[cut..]),
        },
    });
    put(&Tail {
        pad: &bytes[..n.min(3)],
        params: &bytes[n..],
    });
    out
}

/// Object-safe postcard encoding of the parts.
mod erased {
    use super::*;
    pub(super) trait Ser {
        fn enc(&self, buf: &mut [u8]) -> Vec<u8>;
    }
    impl<T: Serialize> Ser for T {
        fn enc(&self, buf: &mut [u8]) -> Vec<u8> {
            postcard::to_slice(self, buf).unwrap().to_vec()
        }
    }
}

#[test]
fn encoded_parts_their_truncations_and_bit_flips_decode_alike() {
    let mut rng = Pcg32::seed_from_u64(0x5EED);
    let bytes: Vec<u8> = (0..300).map(|i| (i * 37 % 251) as u8).collect();
    let text = "x\ny\nα\nβγ\n温度\nz";
    let (mut cases, mut decoded) = (0usize, 0usize);
    for _ in 0..120 {
        for mut enc in encoded_parts(&mut rng, &bytes, text) {
            // The encoding itself, followed by other bytes too.
            decoded += agree_all(&enc);
            enc.extend_from_slice(&[0x81, 0x00, 0xFF]);
            decoded += agree_all(&enc);
            enc.truncate(enc.len() - 3);
            cases += 2;
            for n in 0..enc.len() {
                decoded += agree_all(&enc[..n]);
                cases += 1;
            }
            for i in 0..enc.len().min(40) {
                for bit in 0..8 {
                    enc[i] ^= 1 << bit;
                    decoded += agree_all(&enc);
                    enc[i] ^= 1 << bit;
                    cases += 1;
                }
            }
        }
    }
    assert!(decoded > cases, "{decoded} of {cases}");
}

#[test]
fn random_bytes_and_edge_cases_decode_alike() {
    let mut rng = Pcg32::seed_from_u64(7);
    let mut b = [0u8; 48];
    for _ in 0..100_000 {
        let n = rng.next_u32() as usize % b.len();
        for x in &mut b[..n] {
            // Biased towards varint continuation bytes and small values.
            *x = match rng.next_u32() % 4 {
                0 => 0x80 | rng.next_u32() as u8,
                1 => rng.next_u32() as u8 % 4,
                _ => rng.next_u32() as u8,
            };
        }
        agree_all(&b[..n]);
    }
    // Varints: non-minimal, at and beyond the last byte's limit, over-long; lengths past
    // the end and beyond 32 bits; invalid UTF-8; unknown variants.
    let edges: &[&[u8]] = &[
        &[0x80, 0x00],
        &[0xFF, 0xFF, 0x03],
        &[0xFF, 0xFF, 0x04],
        &[0x80, 0x80, 0x80, 0x00],
        &[0xFF, 0xFF, 0xFF, 0xFF, 0x0F],
        &[0xFF, 0xFF, 0xFF, 0xFF, 0x10],
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
        &[
            0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0xAA,
        ],
        &[
            0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 0xAA,
        ],
        &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
        &[0x85, 0x80, 0x80, 0x80, 0x80, 0x00, 1, 2, 3, 4, 5, 0, 0],
        &[0x02, 0xC3, 0x28, 0x00, 0x00],
        &[0x02, 0xCE, 0xB1, 0x00, 0x00],
        &[0x03],
        &[0x06, 0x01],
        &[0x86, 0x00, 0x01],
        &[0x04, 0x03, 0x01, 0x02, 0x00],
    ];
    for e in edges {
        for n in 0..=e.len() {
            agree_all(&e[..n]);
        }
    }
}
