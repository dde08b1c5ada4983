//! The model file: golden bytes, exhaustive corruption, versioning, round trips.

use flow_core::model::{FlowKind, ModelBuilder, FORMAT_VERSION};
use flow_core::{
    ConditionalFlow, DenseNN, Error, Flow, FormatError, JointFlow, Layer, Model, Order, Permute,
    Spline, SplineCoupling, SplineShape, Weights,
};
use flow_tests::models::{hypernet, params, tutorial_coupling, uniform};
use rand_core::{RngCore, SeedableRng};
use rand_pcg::Pcg32;

/// CRC-32/ISO-HDLC, bitwise, written here independently of the `crc` crate.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn recrc(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let c = crc32(&bytes[..n]);
    bytes[n..].copy_from_slice(&c.to_le_bytes());
}

/// A small fixed model: Affine, Spline (quadratic, K=3), Permute, Coupling (linear, K=2,
/// hidden [2]) on R^2, with every metadata field.
fn small_model() -> Vec<u8> {
    let q3 = SplineShape::new(3, 2.5, Order::Quadratic).unwrap();
    let l2 = SplineShape::new(2, 3.0, Order::Linear).unwrap();
    let spline: Vec<f32> = (0..16).map(|i| (i as f32 - 8.0) / 8.0).collect();
    let lower: Vec<f32> = (0..7).map(|i| i as f32 / 4.0 - 0.75).collect();
    let nn: Vec<f32> = (0..(2 + 2 + 7 * 2 + 7))
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0)
        .collect();
    let mut b = ModelBuilder::plain(2);
    b.affine(&[0.5, -0.25], &[2.0, 0.75])
        .spline(2, &q3, &spline)
        .permute(&[1, 0])
        .coupling(1, 1, &l2, 0, &[2], &lower, &nn)
        .columns(&["a", "b"])
        .scaler(&[1.0, 2.0], &[3.0, 4.0])
        .thresholds(&[(0.01, -6.5)]);
    b.encode().unwrap()
}

/// The encoding of [`small_model`], checked in: any change to the format changes these bytes
/// (and must come with a new `FORMAT_VERSION`).
const GOLDEN: &str = include_str!("data/small_model.hex");
/// The same model as written by format version 1 (before windowed models): every later
/// reader must load it, with the same numbers.
const GOLDEN_V1: &str = include_str!("data/small_model_v1.hex");

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn golden_bytes() {
    let bytes = small_model();
    if std::env::var_os("FLOW_BLESS").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/small_model.hex");
        let text: Vec<String> = hex(&bytes)
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        std::fs::write(path, text.join("\n") + "\n").unwrap();
    }
    assert_eq!(hex(&bytes), hex(&unhex(GOLDEN)), "the encoding changed");
    // Decoding gives the same numbers as the layers built by hand from the same parameters.
    let m = Model::parse(&bytes).unwrap();
    assert_eq!(m.header().kind, FlowKind::Plain);
    assert_eq!(m.metadata().columns, b"a\nb");
    assert_eq!(m.metadata().columns_str(), Some("a\nb"));
    assert_eq!(m.threshold(0.01), Some(-6.5));
    assert_eq!(m.scaler(1), Some((2.0, 4.0)));
    assert_eq!(m.param_count(), 4 + 16 + 7 + 25);
    let flow: Flow<2, 4, 8, 4> = m.flow().unwrap();
    let q3 = SplineShape::new(3, 2.5, Order::Quadratic).unwrap();
    let l2 = SplineShape::new(2, 3.0, Order::Linear).unwrap();
    let enc = |v: Vec<f32>| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let affine_b = enc(vec![0.5, -0.25, 2.0, 0.75]);
    let spline_b = enc((0..16).map(|i| (i as f32 - 8.0) / 8.0).collect());
    let lower_b = enc((0..7).map(|i| i as f32 / 4.0 - 0.75).collect());
    let nn_b = enc((0..25)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0)
        .collect());
    let by_hand: Flow<2, 4, 8, 4> = Flow::new(&[
        Layer::Affine(flow_core::Affine::per_dim(2, Weights::new(&affine_b).unwrap()).unwrap()),
        Layer::Spline(Spline::new(2, q3, Weights::new(&spline_b).unwrap()).unwrap()),
        Layer::Permute(Permute::new(&[1, 0]).unwrap()),
        Layer::Coupling(
            SplineCoupling::new(
                Spline::new(1, l2, Weights::new(&lower_b).unwrap()).unwrap(),
                1,
                l2,
                DenseNN::new(1, &[2], 7, Weights::new(&nn_b).unwrap()).unwrap(),
                0,
            )
            .unwrap(),
        ),
    ])
    .unwrap();
    let mut rng = Pcg32::seed_from_u64(1);
    for _ in 0..200 {
        let x = [uniform(&mut rng, -4.0, 4.0), uniform(&mut rng, -4.0, 4.0)];
        let a = flow.log_prob(&x).unwrap();
        let b = by_hand.log_prob(&x).unwrap();
        assert_eq!(a.to_bits(), b.to_bits(), "at {x:?}");
    }
}

#[test]
fn every_truncation_and_bit_flip_is_rejected() {
    let mut rng = Pcg32::seed_from_u64(42);
    let good = tutorial_coupling(&mut rng);
    assert!(Model::parse(&good).is_ok());
    let mut truncations = 0;
    for n in 0..good.len() {
        assert!(
            Model::parse(&good[..n]).is_err(),
            "truncated to {n} bytes was accepted"
        );
        truncations += 1;
    }
    let mut flips = 0;
    let mut buf = good.clone();
    for i in 0..good.len() {
        for bit in 0..8 {
            buf[i] ^= 1 << bit;
            assert!(
                Model::parse(&buf).is_err(),
                "flip of byte {i} bit {bit} was accepted"
            );
            buf[i] ^= 1 << bit;
            flips += 1;
        }
    }
    assert_eq!(buf, good);
    println!(
        "corruption: {} byte file, {truncations} truncations and {flips} single-bit flips, all rejected",
        good.len()
    );
}

/// With the CRC recomputed, a flip reaches the structural checks: the result is an error or a
/// model whose flows work — never a panic, never a NaN-parameter model.
#[test]
fn bit_flips_behind_a_valid_crc_never_panic() {
    let mut rng = Pcg32::seed_from_u64(43);
    let good = tutorial_coupling(&mut rng);
    let (mut accepted, mut rejected) = (0, 0);
    let mut buf = good.clone();
    for i in 0..good.len() - 4 {
        for bit in 0..8 {
            buf[i] ^= 1 << bit;
            recrc(&mut buf);
            match Model::parse(&buf) {
                Ok(m) => {
                    accepted += 1;
                    // Only a parameter or metadata value can have changed validly.
                    if let Ok(f) = m.flow::<2, 4, 32, 16>() {
                        let lp = f.log_prob(&[0.3f32, -0.7]);
                        assert!(lp.is_ok() || lp == Err(Error::Numerical), "{lp:?}");
                    }
                }
                Err(_) => rejected += 1,
            }
            buf[i] ^= 1 << bit;
        }
    }
    recrc(&mut buf);
    assert_eq!(buf, good);
    println!("flips behind a valid CRC: {accepted} accepted (parameter or metadata values), {rejected} rejected");
    assert!(rejected > 0 && accepted > 0);
}

#[test]
fn version_1_files_still_load() {
    let v1 = unhex(GOLDEN_V1);
    assert_eq!(v1[4], 1, "the fixture is a version-1 file");
    let old = Model::parse(&v1).unwrap();
    let new_bytes = small_model();
    let new = Model::parse(&new_bytes).unwrap();
    assert_eq!(new_bytes[4] as u16, FORMAT_VERSION);
    assert_eq!(old.window(), None);
    assert_eq!(old.metadata().columns, new.metadata().columns);
    assert_eq!(old.metadata().scaler, new.metadata().scaler);
    assert_eq!(old.metadata().thresholds, new.metadata().thresholds);
    assert_eq!(old.param_count(), new.param_count());
    let (a, b): (Flow<2, 4, 8, 4>, Flow<2, 4, 8, 4>) = (old.flow().unwrap(), new.flow().unwrap());
    for x in [[0.3f32, -1.2], [2.0, 0.5], [-4.0, 3.5]] {
        assert_eq!(
            a.log_prob(&x).unwrap().to_bits(),
            b.log_prob(&x).unwrap().to_bits()
        );
    }
}

#[test]
fn header_errors_are_typed() {
    let mut rng = Pcg32::seed_from_u64(44);
    let good = tutorial_coupling(&mut rng);
    // Newer version, with a valid CRC: names both versions.
    let mut v = good.clone();
    assert_eq!(v[4], FORMAT_VERSION as u8);
    v[4] = FORMAT_VERSION as u8 + 1;
    recrc(&mut v);
    let e = Model::parse(&v).unwrap_err();
    assert_eq!(
        e,
        Error::Format(FormatError::Version {
            found: FORMAT_VERSION + 1,
            supported: FORMAT_VERSION
        })
    );
    assert!(e.to_string().contains(&format!("{}", FORMAT_VERSION + 1)));
    assert!(e.to_string().contains(&format!("{FORMAT_VERSION}")));
    // Bad magic.
    let mut m = good.clone();
    m[0] = b'X';
    recrc(&mut m);
    assert_eq!(
        Model::parse(&m).unwrap_err(),
        Error::Format(FormatError::Magic)
    );
    // Checksum.
    let mut c = good.clone();
    let last = c.len() - 1;
    c[last] ^= 0x80;
    assert!(matches!(
        Model::parse(&c),
        Err(Error::Format(FormatError::Checksum { .. }))
    ));
    // Trailing bytes (inside the CRC).
    let mut t = good.clone();
    t.insert(t.len() - 4, 0);
    recrc(&mut t);
    assert_eq!(
        Model::parse(&t).unwrap_err(),
        Error::Format(FormatError::TrailingBytes)
    );
    // Empty, and a lone preamble.
    assert!(Model::parse(&[]).is_err());
    assert!(Model::parse(b"NFLW\x01").is_err());
    // Wrong kind, wrong dimension, too small capacities.
    let model = Model::parse(&good).unwrap();
    assert!(matches!(
        model.conditional_flow::<2, 1, 4, 32, 16>(),
        Err(Error::Format(FormatError::Kind { .. }))
    ));
    assert_eq!(
        model.flow::<3, 4, 32, 16>().unwrap_err(),
        Error::DimensionMismatch {
            expected: 3,
            found: 2
        }
    );
    assert!(matches!(
        model.flow::<2, 4, 16, 16>(),
        Err(Error::Capacity { .. })
    ));
    assert!(matches!(
        model.flow::<2, 4, 32, 8>(),
        Err(Error::Capacity { .. })
    ));
}

#[test]
fn invalid_content_with_valid_crc_is_rejected() {
    let shape = SplineShape::new(4, 3.0, Order::Linear).unwrap();
    let ok = params(
        &mut Pcg32::seed_from_u64(5),
        Spline::param_count(2, &shape),
        1.0,
    );
    // NaN parameter.
    let mut bad = ok.clone();
    bad[3] = f32::NAN;
    assert_eq!(
        ModelBuilder::plain(2)
            .spline(2, &shape, &bad)
            .encode()
            .unwrap_err(),
        Error::NonFiniteParameter
    );
    // Wrong parameter count.
    assert!(matches!(
        ModelBuilder::plain(2).spline(2, &shape, &ok[1..]).encode(),
        Err(Error::ParameterCount { .. })
    ));
    // Not a permutation.
    assert!(ModelBuilder::plain(2).permute(&[1, 1]).encode().is_err());
    // Layer dimension differs from the model's.
    assert!(ModelBuilder::plain(3)
        .spline(2, &shape, &ok)
        .encode()
        .is_err());
    // Scaler with a zero scale, thresholds not increasing.
    assert!(ModelBuilder::plain(2)
        .spline(2, &shape, &ok)
        .scaler(&[0.0, 0.0], &[1.0, 0.0])
        .encode()
        .is_err());
    assert!(ModelBuilder::plain(2)
        .spline(2, &shape, &ok)
        .thresholds(&[(0.05, -1.0), (0.01, -2.0)])
        .encode()
        .is_err());
    // A conditional layer in a plain flow.
    let cs = SplineShape::new(4, 3.0, Order::Quadratic).unwrap();
    let nn = hypernet(
        &mut Pcg32::seed_from_u64(6),
        1,
        &[3],
        2 * cs.params_per_dim(),
        1.0,
    );
    assert!(ModelBuilder::plain(2)
        .conditional_spline(2, &cs, 1, &[3], &nn)
        .encode()
        .is_err());
    assert!(ModelBuilder::conditional(2, 1)
        .conditional_spline(2, &cs, 1, &[3], &nn)
        .encode()
        .is_ok());
}

/// A random valid model of each kind, and the same layers built by hand.
struct Random {
    bytes: Vec<u8>,
    kind: FlowKind,
    dim: usize,
    ctx: usize,
}

fn random_model(rng: &mut Pcg32) -> Random {
    let kind =
        [FlowKind::Plain, FlowKind::Conditional, FlowKind::Joint][rng.next_u32() as usize % 3];
    let dim = 2 + rng.next_u32() as usize % 3;
    let ctx = match kind {
        FlowKind::Plain => 0,
        FlowKind::Conditional => 1 + rng.next_u32() as usize % 3,
        FlowKind::Joint => 1 + rng.next_u32() as usize % (dim - 1),
    };
    let mut b = match kind {
        FlowKind::Plain => ModelBuilder::plain(dim),
        FlowKind::Conditional => ModelBuilder::conditional(dim, ctx),
        FlowKind::Joint => ModelBuilder::joint(dim, ctx),
    };
    let add = |b: &mut ModelBuilder, d: usize, c: usize, rng: &mut Pcg32| {
        for _ in 0..1 + rng.next_u32() % 3 {
            let order = if rng.next_u32().is_multiple_of(2) {
                Order::Linear
            } else {
                Order::Quadratic
            };
            let shape = SplineShape::new(
                2 + rng.next_u32() as usize % 15,
                uniform(rng, 1.0, 5.0),
                order,
            )
            .unwrap();
            let hidden: Vec<usize> = (0..rng.next_u32() % 3)
                .map(|_| 1 + rng.next_u32() as usize % 12)
                .collect();
            match rng.next_u32() % 5 {
                0 => {
                    let n = Spline::param_count(d, &shape);
                    b.spline(d, &shape, &params(rng, n, 2.0));
                }
                1 if d >= 2 => {
                    let split = 1 + rng.next_u32() as usize % (d - 1);
                    let lower = params(rng, Spline::param_count(split, &shape), 2.0);
                    let nn = hypernet(
                        rng,
                        split + c,
                        &hidden,
                        (d - split) * shape.params_per_dim(),
                        1.5,
                    );
                    b.coupling(split, d - split, &shape, c, &hidden, &lower, &nn);
                }
                2 => {
                    let mut p: Vec<u8> = (0..d as u8).collect();
                    for i in (1..d).rev() {
                        p.swap(i, rng.next_u32() as usize % (i + 1));
                    }
                    b.permute(&p);
                }
                3 if c > 0 => {
                    let nn = hypernet(rng, c, &hidden, d * shape.params_per_dim(), 1.5);
                    b.conditional_spline(d, &shape, c, &hidden, &nn);
                }
                _ => {
                    let loc = params(rng, d, 1.0);
                    let scale: Vec<f32> = (0..d).map(|_| uniform(rng, 0.5, 2.0)).collect();
                    b.affine(&loc, &scale);
                }
            }
        }
    };
    match kind {
        FlowKind::Joint => {
            add(&mut b, ctx, 0, rng);
            b.end_marginal();
            add(&mut b, dim - ctx, ctx, rng);
        }
        _ => add(&mut b, dim, ctx, rng),
    }
    Random {
        bytes: b.encode().unwrap(),
        kind,
        dim,
        ctx,
    }
}

/// Decoding, re-encoding from the decoded records, and decoding again gives identical bytes
/// and bit-identical log_prob.
#[test]
fn random_models_round_trip_bit_for_bit() {
    let mut rng = Pcg32::seed_from_u64(7);
    for case in 0..300 {
        let r = random_model(&mut rng);
        let m = Model::parse(&r.bytes).unwrap();
        let recs: Vec<_> = m.records().map(Result::unwrap).collect();
        let mut out = vec![0u8; r.bytes.len() + 16];
        let n = flow_core::model::encode(
            m.header(),
            &recs,
            m.metadata(),
            m.params().as_bytes(),
            &mut out,
        )
        .unwrap();
        assert_eq!(&out[..n], &r.bytes[..], "case {case}: re-encoding differs");
        let m2 = Model::parse(&out[..n]).unwrap();
        let x: Vec<f32> = (0..r.dim).map(|_| uniform(&mut rng, -4.0, 4.0)).collect();
        let c: Vec<f32> = (0..r.ctx).map(|_| uniform(&mut rng, -2.0, 2.0)).collect();
        let (a, b) = (log_prob(&m, &r, &x, &c), log_prob(&m2, &r, &x, &c));
        assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits), "case {case}");
        assert!(a.is_ok(), "case {case}: {a:?}");
    }
}

fn log_prob(m: &Model<'_>, r: &Random, x: &[f32], c: &[f32]) -> Result<f32, Error> {
    macro_rules! dims {
        ($($d:literal),*) => {
            match (r.kind, r.dim, r.ctx) {
                $((FlowKind::Plain, $d, _) => m.flow::<$d, 8, 16, 16>()?.log_prob(&<[f32; $d]>::try_from(x).unwrap()),)*
                $((FlowKind::Joint, $d, _) => m.joint_flow::<$d, 8, 16, 16>()?.log_prob(&<[f32; $d]>::try_from(x).unwrap()),)*
                $((FlowKind::Conditional, $d, 1) => cond::<$d, 1>(m, x, c),
                  (FlowKind::Conditional, $d, 2) => cond::<$d, 2>(m, x, c),
                  (FlowKind::Conditional, $d, 3) => cond::<$d, 3>(m, x, c),)*
                k => panic!("not dispatched: {k:?}"),
            }
        };
    }
    fn cond<const D: usize, const C: usize>(
        m: &Model<'_>,
        x: &[f32],
        c: &[f32],
    ) -> Result<f32, Error> {
        let f: ConditionalFlow<D, C, 8, 16, 16> = m.conditional_flow()?;
        f.log_prob(&x.try_into().unwrap(), &c.try_into().unwrap())
    }
    let _ = JointFlow::<2>::new;
    dims!(2, 3, 4)
}

/// A parsed model's flows (built in one pass over the records with the file's own checks)
/// are the flows built from its layers, and every error is the same: kind, dimension,
/// context and capacities, for each kind of file and flow.
#[test]
fn flows_of_a_model_match_flows_of_its_layers() {
    fn same<F>(
        case: usize,
        a: Result<F, Error>,
        b: Result<F, Error>,
        layers: impl Fn(&F) -> Vec<Layer<'_>>,
    ) {
        match (a, b) {
            (Ok(a), Ok(b)) => assert_eq!(layers(&a), layers(&b), "case {case}"),
            (a, b) => assert_eq!(a.err(), b.err(), "case {case}"),
        }
    }
    fn all<const D: usize, const C: usize, const L: usize, const H: usize, const K: usize>(
        case: usize,
        m: &Model<'_>,
    ) -> usize {
        let marginal = usize::from(m.header().marginal_layers);
        let plain = m.flow::<D, L, H, K>();
        let of_layers = match m.header().kind {
            FlowKind::Plain => Flow::<D, L, H, K>::from_layers(m.layers()),
            found => Err(Error::Format(FormatError::Kind {
                expected: FlowKind::Plain,
                found,
            })),
        };
        let oks = usize::from(plain.is_ok());
        same(case, plain, of_layers, |f| f.layers().to_vec());
        let cond = m.conditional_flow::<D, C, L, H, K>();
        let of_layers = match m.header().kind {
            FlowKind::Conditional => ConditionalFlow::<D, C, L, H, K>::from_layers(m.layers()),
            found => Err(Error::Format(FormatError::Kind {
                expected: FlowKind::Conditional,
                found,
            })),
        };
        let oks = oks + usize::from(cond.is_ok());
        same(case, cond, of_layers, |f| f.layers().to_vec());
        let joint = m.joint_flow::<D, L, H, K>();
        let of_layers = match m.header().kind {
            FlowKind::Joint => JointFlow::<D, L, H, K>::from_layers(
                usize::from(m.header().context_dim),
                m.layers().take(marginal),
                m.layers().skip(marginal),
            ),
            found => Err(Error::Format(FormatError::Kind {
                expected: FlowKind::Joint,
                found,
            })),
        };
        let oks = oks + usize::from(joint.is_ok());
        same(case, joint, of_layers, |f| {
            [f.marginal_layers(), f.conditional_layers()].concat()
        });
        oks
    }
    macro_rules! grid {
        ($case:expr, $m:expr; $(($d:literal, $c:literal)),*; $lhk:tt) => {{
            let mut oks = 0;
            $(oks += grid!(@ $case, $m, $d, $c, $lhk);)*
            oks
        }};
        (@ $case:expr, $m:expr, $d:literal, $c:literal, [$(($l:literal, $h:literal, $k:literal)),*]) => {
            0 $(+ all::<$d, $c, $l, $h, $k>($case, $m))*
        };
    }
    let mut rng = Pcg32::seed_from_u64(11);
    let mut oks = 0;
    for case in 0..150 {
        let r = random_model(&mut rng);
        let m = Model::parse(&r.bytes).unwrap();
        oks += grid!(case, &m; (2, 1), (3, 2), (4, 3), (3, 1);
            [(1, 16, 16), (2, 4, 16), (3, 16, 4), (8, 16, 16), (8, 2, 8)]);
    }
    assert!(oks > 100, "{oks} flows built");
}
