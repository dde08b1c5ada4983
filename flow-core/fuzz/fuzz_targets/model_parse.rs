//! Fuzzes the model loader: any byte string is parsed; whatever parses is built into every
//! flow kind it claims to be and evaluated. Nothing may panic. The loader's hand-written
//! decoder of the parts must also agree with postcard + serde, which write the file: the same
//! value and rest, or the same error, on every input.
#![no_main]

use flow_core::model::{FlowKind, Header, LayerRecord, Metadata};
use flow_core::{Error, FormatError, Model};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// postcard's result, with the errors mapped as the loader maps its own.
fn reference<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<(T, &'a [u8]), Error> {
    postcard::take_from_bytes(b).map_err(|e| {
        Error::Format(match e {
            postcard::Error::DeserializeUnexpectedEnd => FormatError::Truncated,
            _ => FormatError::Malformed,
        })
    })
}

/// The two decoders agree (compared through `Debug`, so that NaN bounds compare equal).
fn agree<'a, T: Deserialize<'a> + std::fmt::Debug>(
    ours: Result<(T, &'a [u8]), Error>,
    b: &'a [u8],
) {
    let theirs = reference::<T>(b);
    assert_eq!(format!("{ours:?}"), format!("{theirs:?}"), "on {b:02x?}");
}

fn eval<const D: usize>(m: &Model<'_>, x: f32) {
    let p = [x; D];
    match m.header().kind {
        FlowKind::Plain => {
            if let Ok(f) = m.flow::<D, 8, 64, 32>() {
                let _ = f.log_prob(&p);
                let _ = f.forward(&p);
                let _ = m.log_prob_raw(&f, &p);
            }
        }
        // `JointFlow<D>` asserts D >= 2 at compile time: joints are evaluated in `joint2`.
        FlowKind::Joint => {}
        FlowKind::Conditional => {
            if let Ok(f) = m.conditional_flow::<D, 1, 8, 64, 32>() {
                let _ = f.log_prob(&p, &[x]);
            }
            if let Ok(f) = m.conditional_flow::<D, 2, 8, 64, 32>() {
                let _ = f.log_prob(&p, &[x, -x]);
            }
        }
    }
}

fn joint2(m: &Model<'_>, x: f32) {
    if let Ok(f) = m.joint_flow::<2, 8, 64, 32>() {
        let _ = f.log_prob(&[x, -x]);
    }
    if let Ok(f) = m.joint_flow::<3, 8, 64, 32>() {
        let _ = f.log_prob(&[x, -x, x]);
    }
}

fuzz_target!(|data: &[u8]| {
    agree(Header::take(data), data);
    agree(LayerRecord::take(data), data);
    agree(Metadata::take(data), data);
    // Also exercise the structural checks behind the CRC: fix the CRC of the input when asked
    // to by its first byte, so mutations reach the decoder instead of the checksum.
    let mut buf = data.to_vec();
    if buf.first() == Some(&b'N') && buf.len() >= 8 {
        let n = buf.len() - 4;
        let c = crc32(&buf[..n]);
        buf[n..].copy_from_slice(&c.to_le_bytes());
    }
    if let Ok(m) = Model::parse(&buf) {
        let _ = m.param_count();
        let _ = m.thresholds().count();
        for x in [0.0f32, 2.9, -7.0] {
            eval::<1>(&m, x);
            eval::<2>(&m, x);
            eval::<3>(&m, x);
            eval::<6>(&m, x);
            joint2(&m, x);
        }
    }
});

fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}
