//! What the firmware computes, shared with the host test (`tests/tests/firmware/` compiles
//! this file too): device and host run the same code on the same inputs, and the host compares
//! every value the device prints with its own, bit for bit.
//!
//! Everything is generic in the dimension `D` and the context size `C` (0 unless the flow is
//! conditional), and in the kind of flow through [`Density`]. The results go to a [`Report`]:
//! on the device, lines printed through semihosting; on the host, a map the device's lines are
//! compared against.
//!
//! | kind | lines |
//! |---|---|
//! | plain, joint | `lp <i>` of [`POINTS`], `sample <i>` (seeded [`Pcg32`]); with a scaler also `lp_raw <i>` of [`RAW_POINTS`] (plain) and `sample_raw <i>` |
//! | conditional | `clp <c> <i>` of [`POINTS`] at each of [`CONTEXTS`], `csample <c> <i>` |
//! | all | `threshold …`, then the anomaly stream: `flag <i> …` and `flagged <n> of <m>` |

use flow_core::model::FlowKind;
use flow_core::{ConditionalFlow, Error, Flow, JointFlow, Model};
use rand_pcg::Pcg32;

// --- inputs ----------------------------------------------------------------------------------

/// Embedded points scored with `log_prob` (in the flow's standardized space): inside the box
/// `[-3, 3]^D` of the tutorial model's splines, on its faces and corners, just inside and
/// outside them, and far in the tails. A point of dimension `D` takes coordinate `j` from
/// column `j % 2` ([`widen`]).
pub const POINTS: [[f32; 2]; 20] = [
    // inside the box
    [0.0, 0.0],
    [0.5, -0.25],
    [-1.2, 2.1],
    [2.5, -2.9],
    [-0.01, 0.7],
    [1.75, 1.75],
    // on the faces and corners of the box
    [3.0, 0.0],
    [-3.0, 1.0],
    [0.4, 3.0],
    [1.0, -3.0],
    [3.0, -3.0],
    [-3.0, -3.0],
    // just inside and just outside
    [2.999_999, -2.999_999],
    [3.000_001, 0.5],
    [-0.5, -3.000_001],
    // tails: one or both coordinates outside the box, some very far
    [5.0, 0.0],
    [0.0, -7.5],
    [-12.0, 40.0],
    [1.0e3, -1.0e3],
    [-1.0e6, 2.0],
];

/// How many of `POINTS` (the first ones) lie strictly inside the box; the instruction count
/// per `log_prob` is measured on these (the tails are cheaper: identity outside the box).
pub const INSIDE_POINTS: usize = 6;

/// Sensor-style points in the model's raw units, scored with `Model::log_prob_raw` when the
/// model has a scaler (plain flows). Widened like [`POINTS`].
pub const RAW_POINTS: [[f32; 2]; 8] = [
    [0.1, -0.2],
    [0.35, 0.1],
    [-0.6, -1.1],
    [1.2, 0.8],
    [-1.4, 1.6],
    [2.0, -2.0],
    [0.0, 0.0],
    [25.0, -40.0],
];

/// Contexts a conditional flow is evaluated at. Widened like [`POINTS`] to `C` values.
pub const CONTEXTS: [[f32; 2]; 4] = [[0.0, 0.0], [0.5, -1.0], [-1.5, 2.0], [3.0, 0.25]];

/// A 2-column row as a point of dimension `N`: coordinate `j` is `row[j % 2]`.
pub fn widen<const N: usize>(row: &[f32; 2]) -> [f32; N] {
    core::array::from_fn(|j| if j % 2 == 0 { row[0] } else { row[1] })
}

/// Seed of the `Pcg32` the samples are drawn from.
pub const SAMPLE_SEED: u64 = 0x5EED_F10E;
/// Number of samples printed (plain and joint flows).
pub const N_SAMPLES: usize = 16;
/// Number of samples printed per context (conditional flows).
pub const N_CONTEXT_SAMPLES: usize = 4;

/// The random generator of the samples: `Pcg32::seed_from_u64(SAMPLE_SEED)`. (Not inlined:
/// one copy of its two constants for every place that seeds it.)
#[inline(never)]
pub fn sample_rng() -> Pcg32 {
    seeded(SAMPLE_WORDS)
}

/// `Pcg32::seed_from_u64(seed)` as the arguments of `Pcg32::new`: rand_core expands the `u64`
/// into the 16 seed bytes with a PCG32 step of its own (`SeedableRng::seed_from_u64`), and
/// `Pcg32::from_seed` takes bytes 0..8 as the state and 8..16 as the increment (made odd),
/// which is `Pcg32::new`'s `stream` shifted left by one. Evaluated at compile time, so the
/// device carries no seed expansion; a test checks it against `seed_from_u64`.
pub const fn pcg32_seed_words(mut s: u64) -> (u64, u64) {
    const MUL: u64 = 6_364_136_223_846_793_005;
    const INC: u64 = 11_634_580_027_462_260_723;
    let mut w = [0u64; 2];
    let mut k = 0;
    while k < 4 {
        s = s.wrapping_mul(MUL).wrapping_add(INC);
        let x = ((((s >> 18) ^ s) >> 27) as u32).rotate_right((s >> 59) as u32);
        w[k / 2] |= (x as u64) << (32 * (k % 2));
        k += 1;
    }
    (w[0], w[1] >> 1)
}

const SAMPLE_WORDS: (u64, u64) = pcg32_seed_words(SAMPLE_SEED);
const STREAM_WORDS: (u64, u64) = pcg32_seed_words(STREAM_SEED);

/// The generator of seed words `w` ([`pcg32_seed_words`]). (Inlined, `Pcg32::new` folds to
/// two constants.)
#[inline]
fn seeded(w: (u64, u64)) -> Pcg32 {
    Pcg32::new(w.0, w.1)
}

#[cfg(test)]
#[test]
fn seed_words_are_seed_from_u64() {
    use rand_core::SeedableRng;
    assert!(sample_rng() == Pcg32::seed_from_u64(SAMPLE_SEED));
    assert!(seeded(STREAM_WORDS) == Pcg32::seed_from_u64(STREAM_SEED));
    for seed in [0, 1, u64::MAX, 0x8000_0000_0000_0000] {
        assert!(seeded(pcg32_seed_words(seed)) == Pcg32::seed_from_u64(seed));
    }
}

// --- the three kinds of flow -------------------------------------------------------------------

/// A flow scored and sampled at a context of `C` values (`C = 0`: no context).
pub trait Density<const D: usize, const C: usize> {
    /// The kind of flow.
    const KIND: FlowKind;
    /// `log p(x | ctx)`.
    fn score(&self, x: &[f32; D], ctx: &[f32; C]) -> Result<f32, Error>;
    /// One sample `x ~ p(· | ctx)`.
    fn draw(&self, rng: &mut Pcg32, ctx: &[f32; C]) -> Result<[f32; D], Error>;
    /// `log p(raw)` in raw units through `Model::log_prob_raw`, for the flows it supports.
    fn score_raw(&self, _model: &Model<'_>, _raw: &[f32; D]) -> Option<Result<f32, Error>> {
        None
    }
}

/// The [`Density`] of a flow type without a context (`Flow`, `JointFlow`, of `kind`), with
/// the further items `extra` (a macro: the two types share no trait to be generic over).
macro_rules! density_without_context {
    ($flow:ident, $kind:ident $(, { $($extra:tt)* })?) => {
        impl<const D: usize, const L: usize, const H: usize, const K: usize> Density<D, 0>
            for $flow<'_, D, L, H, K>
        {
            const KIND: FlowKind = FlowKind::$kind;
            #[inline]
            fn score(&self, x: &[f32; D], _: &[f32; 0]) -> Result<f32, Error> {
                self.log_prob(x)
            }
            // One copy of the sampling path however often the workload draws (flash).
            #[inline(never)]
            fn draw(&self, rng: &mut Pcg32, _: &[f32; 0]) -> Result<[f32; D], Error> {
                self.sample(rng)
            }
            $($($extra)*)?
        }
    };
}

density_without_context!(Flow, Plain, {
    fn score_raw(&self, model: &Model<'_>, raw: &[f32; D]) -> Option<Result<f32, Error>> {
        Some(model.log_prob_raw(self, raw))
    }
});

impl<const D: usize, const C: usize, const L: usize, const H: usize, const K: usize> Density<D, C>
    for ConditionalFlow<'_, D, C, L, H, K>
{
    const KIND: FlowKind = FlowKind::Conditional;
    #[inline]
    fn score(&self, x: &[f32; D], ctx: &[f32; C]) -> Result<f32, Error> {
        self.log_prob(x, ctx)
    }
    #[inline(never)]
    fn draw(&self, rng: &mut Pcg32, ctx: &[f32; C]) -> Result<[f32; D], Error> {
        self.condition(ctx).sample(rng)
    }
}

density_without_context!(JointFlow, Joint);

// --- where the results go ----------------------------------------------------------------------

/// Tags that begin others: each is a piece of the longer one's constant, so the device
/// carries their bytes once.
const SAMPLE_RAW: &str = "sample_raw";
const SAMPLE: &str = SAMPLE_RAW.split_at(6).0;
const LP_RAW: &str = "lp_raw";
const LP: &str = LP_RAW.split_at(2).0;
/// `flagged <n> of <m>` ([`Report::flagged`]); its first 4 bytes are the tag `flag`.
pub const FLAGGED: &str = "flagged";
const FLAG: &str = FLAGGED.split_at(4).0;

/// Receives the results, in order.
pub trait Report {
    /// A result: `tag`, its indices, what was evaluated (`x` and the context; for the host's
    /// messages) and the values or the error.
    fn result(
        &mut self,
        tag: &'static str,
        idx: &[usize],
        input: [&[f32]; 2],
        out: Result<&[f32], &Error>,
    );
    /// A `log_prob` result: [`result`](Self::result) with its one value. (Not inlined: one
    /// copy of the conversion for every caller.)
    #[inline(never)]
    fn value(
        &mut self,
        tag: &'static str,
        idx: &[usize],
        input: [&[f32]; 2],
        lp: &Result<f32, Error>,
    ) {
        self.result(tag, idx, input, value(lp));
    }
    /// The anomaly threshold in use: `(quantile, log_prob)`, or none stored.
    fn threshold(&mut self, t: Option<(f32, f32)>);
    /// `n` of the stream's `m` points were flagged.
    fn flagged(&mut self, n: usize, m: usize);
}

fn values<const N: usize>(r: &Result<[f32; N], Error>) -> Result<&[f32], &Error> {
    match r {
        Ok(v) => Ok(v),
        Err(e) => Err(e),
    }
}

/// A `log_prob` result as a slice of one value (borrowed in place, not copied).
fn value(r: &Result<f32, Error>) -> Result<&[f32], &Error> {
    r.as_ref().map(core::slice::from_ref)
}

/// Runs the workload of the flow's kind (module docs), then scores `stream`.
pub fn run<const D: usize, const C: usize, F: Density<D, C>, R: Report>(
    model: &Model<'_>,
    flow: &F,
    stream: impl Stream<D, C>,
    r: &mut R,
) {
    let scaler = !model.metadata().scaler.is_empty();
    let mut rng = sample_rng();
    if F::KIND == FlowKind::Conditional {
        for (c, ctx) in CONTEXTS.iter().map(widen::<C>).enumerate() {
            for (i, x) in POINTS.iter().map(widen::<D>).enumerate() {
                let lp = flow.score(&x, &ctx);
                r.value("clp", &[c, i], [&x, &ctx], &lp);
            }
        }
        for (c, ctx) in CONTEXTS.iter().map(widen::<C>).enumerate() {
            for i in 0..N_CONTEXT_SAMPLES {
                let x = flow.draw(&mut rng, &ctx);
                r.result("csample", &[c, i], [&[], &ctx], values(&x));
            }
        }
    } else {
        for (i, x) in POINTS.iter().map(widen::<D>).enumerate() {
            let lp = flow.score(&x, &[0.0; C]);
            r.value(LP, &[i], [&x, &[]], &lp);
        }
        if scaler {
            for (i, raw) in RAW_POINTS.iter().map(widen::<D>).enumerate() {
                if let Some(lp) = flow.score_raw(model, &raw) {
                    r.value(LP_RAW, &[i], [&raw, &[]], &lp);
                }
            }
        }
        for i in 0..N_SAMPLES {
            let x = flow.draw(&mut rng, &[0.0; C]);
            r.result(SAMPLE, &[i], [&[], &[]], values(&x));
            if let (true, Ok(x)) = (scaler, &x) {
                r.result(SAMPLE_RAW, &[i], [x, &[]], Ok(&model.unstandardize(x)));
            }
        }
    }
    let t = threshold(model);
    r.threshold(t);
    score_stream(model, flow, t.map_or(f32::NEG_INFINITY, |t| t.1), stream, r);
}

// --- streaming anomaly scoring -----------------------------------------------------------------

/// The quantile whose threshold is used when the model stores it.
pub const THRESHOLD_QUANTILE: f32 = 0.01;

/// The anomaly threshold `(quantile, log_prob)`: the model's 1 % quantile if stored, else the
/// lowest stored log-density; `None` without thresholds (then only points that cannot be
/// scored are flagged).
pub fn threshold(model: &Model<'_>) -> Option<(f32, f32)> {
    // One pass: `Model::threshold(THRESHOLD_QUANTILE)` is the first stored pair of that
    // quantile; the lowest is kept on the way (the first of equal ones). The pairs are read as
    // `Model::thresholds` reads them, from the metadata's whole 8-byte chunks (a parsed model
    // has no other).
    let mut low: Option<(f32, f32)> = None;
    for &[a, b, c, d, e, f, g, h] in model.metadata().thresholds.as_chunks::<8>().0 {
        let t = (
            f32::from_le_bytes([a, b, c, d]),
            f32::from_le_bytes([e, f, g, h]),
        );
        if t.0 == THRESHOLD_QUANTILE {
            return Some(t);
        }
        match low {
            Some(l) if l.1 <= t.1 => {}
            _ => low = Some(t),
        }
    }
    low
}

/// A stream of points: `x` in the model's raw units, or the error that took its place, and the
/// context (`C = 0`: none).
pub trait Stream<const D: usize, const C: usize> {
    /// Hands every point to `f`, in order, by reference from where it was made (an error is
    /// never moved).
    fn each(self, f: impl FnMut(Result<&[f32; D], &Error>, &[f32; C]));
}

/// Scores every point of `stream` in the flow's space (`Model::standardize` first; the
/// thresholds are stored in that space) and flags those below `threshold`, and those that
/// cannot be scored. Returns how many were flagged, of how many.
///
/// An error is reported by reference from where it arose, the stream or the score (a flagged
/// error of the stream leaves out `x`).
pub fn score_stream<const D: usize, const C: usize, F: Density<D, C>, R: Report>(
    model: &Model<'_>,
    flow: &F,
    threshold: f32,
    stream: impl Stream<D, C>,
    r: &mut R,
) -> (usize, usize) {
    let (mut flagged, mut m) = (0, 0);
    stream.each(|x, ctx| {
        let i = m;
        m += 1;
        let lp;
        let (input, out): (&[f32], _) = match x {
            Ok(x) => {
                lp = flow.score(&model.standardize(x), ctx);
                (x, value(&lp))
            }
            Err(e) => (&[], Err(e)),
        };
        // NaN (flow-core never returns it as a value) and -inf (outside the support) are
        // flagged whatever the threshold.
        if !matches!(out, Ok(&[v]) if v >= threshold && v > f32::NEG_INFINITY) {
            flagged += 1;
            r.result(FLAG, &[i], [input, ctx], out);
        }
    });
    r.flagged(flagged, m);
    (flagged, m)
}

/// Seed of the built-in stream.
pub const STREAM_SEED: u64 = 0xA11_0E1;
/// Length of the built-in stream.
pub const STREAM_LEN: usize = 48;
/// Every `OUTLIER_EVERY`-th point of the built-in stream is pushed off the model's mass.
pub const OUTLIER_EVERY: usize = 6;
/// The shift of an outlier, in the flow's space: `+OUTLIER_SHIFT` on even coordinates,
/// `-OUTLIER_SHIFT` on odd ones.
pub const OUTLIER_SHIFT: f32 = 4.5;

/// The built-in stream, standing in for sensor readings: samples of the model itself (at the
/// [`CONTEXTS`] in turn), every `OUTLIER_EVERY`-th shifted by `±OUTLIER_SHIFT`, in raw units
/// (`Model::unstandardize`).
pub struct SampledStream<'m, 'f, F, const D: usize, const C: usize> {
    model: &'m Model<'m>,
    flow: &'f F,
    rng: Pcg32,
    i: usize,
}

impl<'m, 'f, F, const D: usize, const C: usize> SampledStream<'m, 'f, F, D, C> {
    /// The stream from its start.
    pub fn new(model: &'m Model<'m>, flow: &'f F) -> Self {
        Self {
            model,
            flow,
            rng: seeded(STREAM_WORDS),
            i: 0,
        }
    }
}

impl<const D: usize, const C: usize, F: Density<D, C>> Stream<D, C>
    for SampledStream<'_, '_, F, D, C>
{
    fn each(mut self, mut f: impl FnMut(Result<&[f32; D], &Error>, &[f32; C])) {
        while self.i < STREAM_LEN {
            let i = self.i;
            self.i += 1;
            let ctx = widen::<C>(&CONTEXTS[i % CONTEXTS.len()]);
            // Changed in place: an error stays where `draw` put it.
            let mut x = self.flow.draw(&mut self.rng, &ctx);
            if let Ok(x) = &mut x {
                if i % OUTLIER_EVERY == OUTLIER_EVERY - 1 {
                    for (j, v) in x.iter_mut().enumerate() {
                        *v += if j % 2 == 0 {
                            OUTLIER_SHIFT
                        } else {
                            -OUTLIER_SHIFT
                        };
                    }
                }
                *x = self.model.unstandardize(x);
            }
            f(x.as_ref(), &ctx);
        }
    }
}

/// A stream of rows read from little-endian `f32` bytes (`FLOW_STREAM`): `D` values of `x`,
/// then `C` of the context, per row. A trailing partial row is ignored.
pub struct FileStream<'a, const D: usize, const C: usize> {
    rows: core::slice::ChunksExact<'a, u8>,
}

impl<'a, const D: usize, const C: usize> FileStream<'a, D, C> {
    /// The rows of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            rows: bytes.chunks_exact(4 * (D + C)),
        }
    }
}

impl<const D: usize, const C: usize> Stream<D, C> for FileStream<'_, D, C> {
    fn each(self, mut f: impl FnMut(Result<&[f32; D], &Error>, &[f32; C])) {
        for row in self.rows {
            let at = |j: usize| {
                let b = row.get(4 * j..4 * j + 4).unwrap_or(&[0; 4]);
                f32::from_le_bytes([b[0], b[1], b[2], b[3]])
            };
            f(
                Ok(&core::array::from_fn(at)),
                &core::array::from_fn(|j| at(D + j)),
            );
        }
    }
}
