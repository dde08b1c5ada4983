//! Precomputed knot tables (`set_tables`, and sealed ones: `set_sealed_tables`): the same bits
//! as computing the knots on every call, for every flow kind, both spline orders and both
//! directions; tables that are not the flow's own are rejected, and sealed tables with a seal
//! that does not match the model or a table that is not a valid spline.

use flow_core::model::ModelBuilder;
use flow_core::{ConditionalFlow, Error, Flow, JointFlow, LayerError, Model, Order, Spline};
use flow_core::{Layer, SplineShape};
use flow_tests::models::{hypernet, params, tutorial_coupling, uniform};
use rand_core::SeedableRng;
use rand_pcg::Pcg32;

const TABLES: Error = Error::InvalidLayer(LayerError::Tables);

/// Points inside and around the box `[-b, b]^D`: random ones, the box's faces, just inside
/// and outside, and the knots of every layer's first dimension (points on a knot and within
/// the search's 1e-6 of it are where the bin search is delicate).
fn points<const D: usize>(rng: &mut Pcg32, b: f32, knots: &[f32]) -> Vec<[f32; D]> {
    let mut v: Vec<[f32; D]> = (0..300)
        .map(|_| std::array::from_fn(|_| uniform(rng, -1.2 * b, 1.2 * b)))
        .collect();
    let special = [
        -b,
        b,
        -b + 1e-6,
        b - 1e-6,
        f32::from_bits(b.to_bits() + 1),
        0.0,
    ];
    for &s in special.iter().chain(knots) {
        for d in [0.0f32, 1e-6, -1e-6, 5e-7] {
            v.push(std::array::from_fn(|j| {
                if j % 2 == 0 {
                    s + d
                } else {
                    0.3 - s
                }
            }));
        }
    }
    v
}

/// The interior `x` and `y` knots of the first spline dimension in `tables`.
fn knots_of(tables: &[u8], bins: usize) -> Vec<f32> {
    tables
        .chunks_exact(4)
        .take(2 * (bins - 1))
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn same(a: Result<f32, Error>, b: Result<f32, Error>, what: &str) {
    match (a, b) {
        (Ok(a), Ok(b)) => assert_eq!(a.to_bits(), b.to_bits(), "{what}: {a} vs {b}"),
        (a, b) => assert_eq!(a, b, "{what}"),
    }
}

fn same_vec<const D: usize>(a: Result<([f32; D], f32), Error>, b: Result<([f32; D], f32), Error>) {
    match (a, b) {
        (Ok((x, l)), Ok((y, m))) => {
            assert_eq!(x.map(f32::to_bits), y.map(f32::to_bits));
            assert_eq!(l.to_bits(), m.to_bits());
        }
        (a, b) => assert_eq!(a.map(|_| ()), b.map(|_| ())),
    }
}

/// Every wrong table is rejected: shorter, longer, a bit flipped.
fn rejects(tables: &[u8], mut set: impl FnMut(&[u8]) -> Result<(), Error>) {
    assert_eq!(set(&tables[..tables.len() - 4]), Err(TABLES));
    assert_eq!(set(&tables[..tables.len() - 1]), Err(TABLES));
    let mut longer = tables.to_vec();
    longer.extend_from_slice(&[0; 4]);
    assert_eq!(set(&longer), Err(TABLES));
    for i in (0..tables.len()).step_by(7) {
        let mut bad = tables.to_vec();
        bad[i] ^= 1 << (i % 8);
        assert_eq!(set(&bad), Err(TABLES), "flipped bit in byte {i}");
    }
}

/// `tables` followed by their seal for the model file with checksum `checksum`.
fn sealed(tables: &[u8], checksum: u32) -> Vec<u8> {
    let mut v = tables.to_vec();
    v.extend_from_slice(&flow_core::flow::table_seal(checksum, tables).to_le_bytes());
    v
}

/// Every sealed table that is not this model's is rejected: shorter, longer (sealed or not),
/// a bit flipped anywhere (tables or seal), sealed for another model file.
fn rejects_sealed(
    tables: &[u8],
    checksum: u32,
    mut set: impl FnMut(&[u8], u32) -> Result<(), Error>,
) {
    let good = sealed(tables, checksum);
    assert_eq!(set(&good[..good.len() - 1], checksum), Err(TABLES));
    assert_eq!(set(tables, checksum), Err(TABLES), "no seal");
    assert_eq!(
        set(&sealed(&tables[..tables.len() - 4], checksum), checksum),
        Err(TABLES)
    );
    let mut longer = tables.to_vec();
    longer.extend_from_slice(&0.5f32.to_le_bytes());
    assert_eq!(set(&sealed(&longer, checksum), checksum), Err(TABLES));
    for i in (0..good.len()).step_by(5) {
        let mut bad = good.clone();
        bad[i] ^= 1 << (i % 8);
        assert_eq!(set(&bad, checksum), Err(TABLES), "flipped bit in byte {i}");
    }
    assert_eq!(set(&good, checksum ^ 0x100), Err(TABLES), "another model");
    assert_eq!(
        set(&sealed(tables, checksum ^ 0x100), checksum),
        Err(TABLES)
    );
}

#[test]
fn plain_flows_with_tables_match_without() {
    let mut rng = Pcg32::seed_from_u64(11);
    // The tutorial coupling, and a deeper flow: element-wise splines of both orders, a
    // permutation and a quadratic coupling.
    let q6 = SplineShape::new(6, 2.5, Order::Quadratic).unwrap();
    let l5 = SplineShape::new(5, 3.0, Order::Linear).unwrap();
    let mut b = ModelBuilder::plain(2);
    b.spline(2, &l5, &params(&mut rng, Spline::param_count(2, &l5), 2.0))
        .permute(&[1, 0])
        .spline(2, &q6, &params(&mut rng, Spline::param_count(2, &q6), 2.0))
        .coupling(
            1,
            1,
            &q6,
            0,
            &[7],
            &params(&mut rng, Spline::param_count(1, &q6), 2.0),
            &hypernet(&mut rng, 1, &[7], q6.params_per_dim(), 2.0),
        );
    let files = [tutorial_coupling(&mut rng), b.encode().unwrap()];
    for (n, file) in files.iter().enumerate() {
        let model = Model::parse(file).unwrap();
        let plain: Flow<2, 4, 20, 16> = model.flow().unwrap();
        let mut tables = vec![0u8; 4 * plain.table_len()];
        assert_eq!(plain.write_tables(&mut tables), Some(tables.len()));
        assert!(plain
            .write_tables(&mut vec![0u8; tables.len() - 1])
            .is_none());
        // The layer-wise writer (for build scripts) writes the same bytes.
        let layers: Vec<Layer> = model.layers().collect::<Result<_, _>>().unwrap();
        let mut again = vec![0u8; tables.len()];
        let (mut xs, mut ys) = (vec![0f32; 16], vec![0f32; 16]);
        let written = flow_core::flow::write_tables(&layers, &mut again, &mut xs, &mut ys);
        assert_eq!((written, &again), (Some(tables.len()), &tables));

        rejects(&tables, |t| plain.clone().set_tables(t));
        let mut tabled = plain.clone();
        tabled.set_tables(&tables).unwrap();
        let cs = model.checksum();
        rejects_sealed(&tables, cs, |t, c| plain.clone().set_sealed_tables(t, c));
        let seal = sealed(&tables, cs);
        let mut by_seal = plain.clone();
        by_seal.set_sealed_tables(&seal, cs).unwrap();
        let first = layers[0].bins();
        for x in points::<2>(&mut rng, 3.0, &knots_of(&tables, first)) {
            let what = format!("model {n}, x {x:?}");
            same(plain.log_prob(&x), tabled.log_prob(&x), &what);
            same(plain.log_prob(&x), by_seal.log_prob(&x), &what);
            same_vec(
                plain.inverse_and_log_det(&x),
                by_seal.inverse_and_log_det(&x),
            );
            same_vec(
                plain.inverse_and_log_det(&x),
                tabled.inverse_and_log_det(&x),
            );
            same_vec(
                plain.forward_and_log_det(&x),
                tabled.forward_and_log_det(&x),
            );
            // f64 computes as before (the tables hold f32 values).
            let x64 = x.map(f64::from);
            assert_eq!(
                plain.log_prob(&x64).map(f64::to_bits),
                tabled.log_prob(&x64).map(f64::to_bits)
            );
        }
        let (mut r1, mut r2) = (Pcg32::seed_from_u64(5), Pcg32::seed_from_u64(5));
        for _ in 0..200 {
            same_vec::<2>(
                plain.sample_with_log_prob(&mut r1),
                tabled.sample_with_log_prob(&mut r2),
            );
        }
    }
}

#[test]
fn conditional_and_joint_flows_with_tables_match_without() {
    let mut rng = Pcg32::seed_from_u64(12);
    let l8 = SplineShape::new(8, 3.0, Order::Linear).unwrap();
    let q8 = SplineShape::new(8, 2.5, Order::Quadratic).unwrap();

    let mut b = ModelBuilder::conditional(2, 2);
    b.conditional_spline(
        2,
        &l8,
        2,
        &[12],
        &hypernet(&mut rng, 2, &[12], 2 * l8.params_per_dim(), 2.0),
    )
    .permute(&[1, 0])
    .coupling(
        1,
        1,
        &q8,
        2,
        &[10, 10],
        &params(&mut rng, Spline::param_count(1, &q8), 1.5),
        &hypernet(&mut rng, 3, &[10, 10], q8.params_per_dim(), 2.0),
    );
    let file = b.encode().unwrap();
    let model = Model::parse(&file).unwrap();
    let cond: ConditionalFlow<2, 2, 3, 12, 8> = model.conditional_flow().unwrap();
    let mut tables = vec![0u8; 4 * cond.table_len()];
    assert_eq!(cond.write_tables(&mut tables), Some(tables.len()));
    rejects(&tables, |t| cond.clone().set_tables(t));
    let mut tabled = cond.clone();
    tabled.set_tables(&tables).unwrap();
    let cs = model.checksum();
    rejects_sealed(&tables, cs, |t, c| cond.clone().set_sealed_tables(t, c));
    let seal = sealed(&tables, cs);
    let mut by_seal = cond.clone();
    by_seal.set_sealed_tables(&seal, cs).unwrap();
    for x in points::<2>(&mut rng, 2.5, &knots_of(&tables, 8)) {
        for c in [[0.5f32, -1.0], [2.0, 0.1]] {
            same(
                cond.log_prob(&x, &c),
                tabled.log_prob(&x, &c),
                "conditional",
            );
            same(
                cond.log_prob(&x, &c),
                by_seal.log_prob(&x, &c),
                "conditional, sealed",
            );
            same_vec(
                cond.condition(&c).forward_and_log_det(&x),
                tabled.condition(&c).forward_and_log_det(&x),
            );
        }
    }

    let mut b = ModelBuilder::joint(3, 1);
    b.affine(&[0.2], &[1.3])
        .spline(1, &q8, &params(&mut rng, Spline::param_count(1, &q8), 1.5))
        .end_marginal()
        .conditional_spline(
            2,
            &l8,
            1,
            &[8, 8],
            &hypernet(&mut rng, 1, &[8, 8], 2 * l8.params_per_dim(), 2.0),
        )
        .permute(&[1, 0])
        .coupling(
            1,
            1,
            &l8,
            1,
            &[10],
            &params(&mut rng, Spline::param_count(1, &l8), 1.5),
            &hypernet(&mut rng, 2, &[10], l8.params_per_dim(), 2.0),
        );
    let file = b.encode().unwrap();
    let model = Model::parse(&file).unwrap();
    let joint: JointFlow<3, 3, 10, 8> = model.joint_flow().unwrap();
    let mut tables = vec![0u8; 4 * joint.table_len()];
    assert_eq!(joint.write_tables(&mut tables), Some(tables.len()));
    // The marginal's spline, then the conditional's coupling: as the file orders the layers.
    let layers: Vec<Layer> = model.layers().collect::<Result<_, _>>().unwrap();
    let mut again = vec![0u8; tables.len()];
    let (mut xs, mut ys) = (vec![0f32; 8], vec![0f32; 8]);
    flow_core::flow::write_tables(&layers, &mut again, &mut xs, &mut ys).unwrap();
    assert_eq!(again, tables);
    rejects(&tables, |t| joint.clone().set_tables(t));
    let mut tabled = joint.clone();
    tabled.set_tables(&tables).unwrap();
    let cs = model.checksum();
    rejects_sealed(&tables, cs, |t, c| joint.clone().set_sealed_tables(t, c));
    let seal = sealed(&tables, cs);
    let mut by_seal = joint.clone();
    by_seal.set_sealed_tables(&seal, cs).unwrap();
    for x in points::<3>(&mut rng, 3.0, &knots_of(&tables, 8)) {
        same(joint.log_prob(&x), tabled.log_prob(&x), "joint");
        same(joint.log_prob(&x), by_seal.log_prob(&x), "joint, sealed");
    }
    let (mut r1, mut r2) = (Pcg32::seed_from_u64(6), Pcg32::seed_from_u64(6));
    for _ in 0..200 {
        same_vec::<3>(
            joint.sample_with_log_prob(&mut r1),
            tabled.sample_with_log_prob(&mut r2),
        );
    }
}

#[test]
fn flows_without_fixed_splines_take_empty_tables() {
    let mut rng = Pcg32::seed_from_u64(13);
    let l8 = SplineShape::new(8, 3.0, Order::Linear).unwrap();
    let mut b = ModelBuilder::conditional(1, 1);
    b.conditional_spline(
        1,
        &l8,
        1,
        &[4],
        &hypernet(&mut rng, 1, &[4], l8.params_per_dim(), 2.0),
    );
    let file = b.encode().unwrap();
    let model = Model::parse(&file).unwrap();
    let mut cond: ConditionalFlow<1, 1, 1, 4, 8> = model.conditional_flow().unwrap();
    assert_eq!(cond.table_len(), 0);
    assert_eq!(cond.write_tables(&mut []), Some(0));
    cond.set_tables(&[]).unwrap();
    assert_eq!(cond.set_tables(&[0; 4]), Err(TABLES));
    let cs = model.checksum();
    let (empty, one) = (sealed(&[], cs), sealed(&[0; 4], cs));
    let mut cond = cond.clone();
    cond.set_sealed_tables(&empty, cs).unwrap();
    assert_eq!(cond.set_sealed_tables(&[], cs), Err(TABLES), "no seal");
    assert_eq!(cond.set_sealed_tables(&one, cs), Err(TABLES));
}

/// The seal does not make a table valid: one that is not a monotone spline is rejected even
/// when sealed (as forged tables would be); one that is (here: a knot moved within its
/// neighbours) is taken — the seal detects corruption and another model's tables, not forgery.
#[test]
fn sealed_tables_must_be_valid_splines() {
    let mut rng = Pcg32::seed_from_u64(14);
    let file = tutorial_coupling(&mut rng);
    let model = Model::parse(&file).unwrap();
    let cs = model.checksum();
    let plain: Flow<2, 4, 20, 16> = model.flow().unwrap();
    let mut tables = vec![0u8; 4 * plain.table_len()];
    plain.write_tables(&mut tables).unwrap();
    let k = model.layers().next().unwrap().unwrap().bins();
    let bound = 3.0f32;
    let entries: Vec<f32> = tables
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(entries.len(), 4 * k - 3, "x and y knots, derivatives, λs");
    let with = |i: usize, v: f32| {
        let mut t = tables.clone();
        t[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
        sealed(&t, cs)
    };
    let (x1, x2) = (entries[0], entries[1]);
    let (d1, l0) = (2 * (k - 1), 3 * (k - 1));
    for (what, bad) in [
        ("x knots not increasing", with(0, x2)),
        ("x knot at -B", with(0, -bound)),
        ("x knot beyond B", with(k - 2, bound)),
        ("x knot NaN", with(0, f32::NAN)),
        ("y knots not increasing", with(k - 1, entries[k])),
        ("y knot NaN", with(k - 1, f32::NAN)),
        ("derivative zero", with(d1, 0.0)),
        ("derivative infinite", with(d1, f32::INFINITY)),
        ("derivative NaN", with(d1, f32::NAN)),
        ("λ one", with(l0, 1.0)),
        ("λ zero", with(l0, 0.0)),
        ("λ NaN", with(l0 + k - 1, f32::NAN)),
    ] {
        let mut f = plain.clone();
        assert_eq!(f.set_sealed_tables(&bad, cs), Err(TABLES), "{what}");
        // The flow is left as it was: still computing its knots.
        let x = [0.3f32, -0.4];
        same(f.log_prob(&x), plain.log_prob(&x), what);
    }
    // Well formed and sealed: taken, and then it is what the flow evaluates.
    let moved = with(0, 0.5 * (x1 + x2));
    let mut f = plain.clone();
    f.set_sealed_tables(&moved, cs).unwrap();
    let x = [0.5 * (x1 + x2) - 1e-3, 0.0];
    assert_ne!(
        f.log_prob(&x).unwrap().to_bits(),
        plain.log_prob(&x).unwrap().to_bits()
    );
}
