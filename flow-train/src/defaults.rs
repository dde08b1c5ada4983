//! The choices `fit` makes when the user makes none: architecture and training settings from
//! the data (its dimension, size and spread), a size preset and a parameter budget.
//!
//! # What [`auto_config`] builds
//!
//! * **1-D and 2-D**: [`default_config`], tuned on Pyro's circles —
//!   `Spline(1, K=16, B=4)`; for 2-D the joint `p(x₁)·p(x₂|x₁)` with `Spline(1, K=32, B=4)`
//!   and a conditional spline (K=32, B=4, hidden `[32, 32]`). A smaller budget shrinks the
//!   bins and hidden widths.
//! * **3-D and more**: spline couplings linked by [`Permutation::Mixing`] (every pair of
//!   dimensions split by some coupling once there are `b` of them, `b` the bit length of
//!   `dim`), quadratic, K = 3 bins, and an ActNorm-style learnable affine on the data side
//!   ([`LayerSpec::act_norm`]). The bound is the 99% quantile of the standardized `|x|`,
//!   rounded up to 0.5, in `[3, 5]`. The number of couplings is `b + 1`, and the hypernetworks
//!   the widest of `[16, 16]`, `[12, 12]`, `[10, 10]`, `[8, 8]` that keep the estimated
//!   Cortex-M4F cost ([`m4f_instructions`], [`crate::cost`]) within [`M4F_TARGET`]; only if
//!   even `[8, 8]` does not fit are there fewer couplings (at least 2). `Medium` keeps `b + 1`
//!   couplings with `[16, 16]` and no cap; `Tiny` has `[8, 8]` and at most `max(b, 3)`
//!   couplings. Any budget then shrinks the hidden widths, drops a hidden layer, drops
//!   couplings, drops bins, and at last falls back to the affine and one element-wise spline.
//!
//! # Training, 3-D and more
//!
//! Adam at 2e-3 with a cosine decay to 2% over 8,000 steps, minibatches of 256, gradient
//! clipping at 10, every spline starting as the identity ([`InitScheme::Identity`]), and
//! Gaussian input noise annealed with the learning rate: its width is [`DataSummary::knn`]
//! (the median distance to the 5th nearest neighbour among 1,000 rows) times
//! [`noise_factor`], set per row by [`row_noise`] (exponent [`NOISE_ALPHA`]). 10% of the rows
//! are held out only to measure (no early stopping; the last parameters are kept); they give
//! the validation NLL and the anomaly thresholds. When rows are held out,
//! [`TrainConfig::groups`](crate::TrainConfig::groups) decides how: whole groups when set
//! (e.g. recordings), otherwise random rows.
//!
//! The cross-validation figures behind each of these choices are in the repository's
//! `docs/imu.md` (`cargo bench -p flow-train --bench imu` reproduces them).

use crate::config::Schedule;
pub use crate::cost::m4f_instructions;
use crate::init::InitScheme;
use crate::noise::{row_noise, NOISE_ALPHA};
use crate::spec::{FlowSpec, LayerSpec, ModelSpec, Permutation, SplineSpec};
use crate::{Dataset, TrainConfig, TrainError};

/// Model size presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// A few hundred to ~2,000 parameters: the smallest microcontrollers.
    Tiny,
    /// Up to ~5,000 parameters.
    Small,
    /// Up to ~20,000 parameters.
    Medium,
}

impl Preset {
    /// The parameter budget the preset aims at.
    pub fn budget(self) -> usize {
        match self {
            Preset::Tiny => 2_000,
            Preset::Small => 5_000,
            Preset::Medium => 20_000,
        }
    }
}

/// What the user asked for; `None` leaves the choice to [`auto_config`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AutoOptions {
    /// Size preset.
    pub preset: Option<Preset>,
    /// Hard upper bound on the number of parameters.
    pub max_params: Option<usize>,
    /// Upper bound on the estimated Cortex-M4F instructions per `log_prob`
    /// ([`DeviceCost`](crate::cost::DeviceCost)).
    pub max_instructions: Option<usize>,
    /// Upper bound on the estimated flash bytes ([`DeviceCost`](crate::cost::DeviceCost)).
    pub max_flash_bytes: Option<usize>,
}

impl AutoOptions {
    /// The size `preset` (`None`: the default size) and no other limit.
    pub fn with_preset(preset: Option<Preset>) -> Self {
        Self {
            preset,
            ..Self::default()
        }
    }
}

/// The limits an automatic architecture must keep: parameters, and the estimated device cost.
#[derive(Clone, Copy, Debug)]
struct Budget {
    params: usize,
    instructions: Option<usize>,
    flash: Option<usize>,
}

impl Budget {
    /// Whether `spec` keeps every limit.
    fn admits(&self, spec: &ModelSpec) -> bool {
        if spec.param_count() > self.params {
            return false;
        }
        if self.instructions.is_none() && self.flash.is_none() {
            return true;
        }
        let c = crate::cost::spec_cost(spec);
        self.instructions
            .is_none_or(|n| c.m4f_instructions <= n as u64)
            && self.flash.is_none_or(|n| c.flash_bytes <= n as u64)
    }

    /// The limits in words, for the error when nothing fits.
    fn describe(&self) -> String {
        let mut v = Vec::new();
        if self.params < usize::MAX {
            v.push(format!("{} parameters", self.params));
        }
        if let Some(n) = self.instructions {
            v.push(format!(
                "{n} estimated Cortex-M4F instructions per log_prob"
            ));
        }
        if let Some(n) = self.flash {
            v.push(format!("{n} estimated flash bytes"));
        }
        v.join(" and ")
    }
}

/// What [`auto_config`] reads from the data.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSummary {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub dim: usize,
    /// Column means.
    pub mean: Vec<f64>,
    /// Column population standard deviations (1 for a constant column).
    pub std: Vec<f64>,
    /// The 99% quantile of `|x - mean| / std` over all values: how far the tails reach in
    /// standard deviations.
    pub tail: f64,
    /// The data's local spread: the median distance, in standardized units, from a row to its
    /// 5th nearest neighbour among 1,000 evenly spaced rows (all rows when there are fewer).
    /// On a fixed number of rows it measures the data's shape (how many dimensions the points
    /// really spread in, how thin their structures are), not its size.
    pub knn: f64,
}

impl DataSummary {
    /// Summarizes `data` (deterministic; a few milliseconds for any size).
    pub fn of(data: &Dataset) -> Self {
        let (n, d) = (data.len(), data.dim());
        let (mean, std) = data.column_moments();
        let std: Vec<f64> = std
            .iter()
            .map(|&s| if s > 0.0 && s.is_finite() { s } else { 1.0 })
            .collect();
        let z = |i: usize, j: usize| (data.row(i)[j] as f64 - mean[j]) / std[j];
        // Tail: the 99% quantile of |z| (on at most ~100k values, evenly spaced rows).
        let step = (n / 100_000).max(1);
        let mut abs: Vec<f64> = (0..n)
            .step_by(step)
            .flat_map(|i| (0..d).map(move |j| z(i, j).abs()))
            .collect();
        let tail = if abs.is_empty() {
            0.0
        } else {
            let k = ((abs.len() as f64 * 0.99) as usize).min(abs.len() - 1);
            *abs.select_nth_unstable_by(k, f64::total_cmp).1
        };
        // Local spread: the median 5th-neighbour distance among evenly spaced rows.
        let knn = crate::noise::local_spread(n, d, z);
        Self {
            rows: n,
            dim: d,
            mean,
            std,
            tail,
            knn,
        }
    }

    /// The base input-noise standard deviation, in data units: `knn · mean(std)`, at most one
    /// mean deviation; [`auto_config`] trains with it times [`noise_factor`].
    pub fn input_noise(&self) -> f32 {
        let mean_std = self.std.iter().sum::<f64>() / self.dim.max(1) as f64;
        self.knn.min(1.0) as f32 * mean_std as f32
    }

    /// The spline bound for `dim ≥ 3`: the 99% `|z|` quantile rounded up to 0.5, in `[3, 5]`.
    pub fn bound(&self) -> f32 {
        ((self.tail * 2.0).ceil() / 2.0).clamp(3.0, 5.0) as f32
    }
}

/// The circles-tuned configuration (found on Pyro's two-circles data, 1000 points; see the
/// crate docs for the search and its results). [`auto_config`] uses it for 1-D and 2-D data;
/// for more dimensions `auto_config` builds a different, smaller model (see the
/// [module docs](self)), and this function's branch below is kept as it was:
///
/// * 1-D: `Spline(1, K=16, B=4)`;
/// * 2-D: the joint `p(x₁)·p(x₂|x₁)`: `Spline(1, K=32, B=4)` and a conditional spline
///   (K=32, B=4, hidden `[32, 32]`);
/// * more dimensions: 4 spline couplings (K=16, B=4, hidden `[32, 32]`, split `dim/2`) with
///   random permutations between them.
///
/// All linear order. Trained with minibatches of 256, Adam 3e-3 on a cosine schedule over
/// 10 000 steps, gradient clipping at 10, 10% of the points held out for early stopping
/// (checked every 50 steps, patience 60 checks), and Gaussian input noise of 0.12 data standard
/// deviations annealed with the learning rate — the regularizer that mattered most on small
/// data. No wall-time cap: the run, and the model it writes, do not depend on the machine's
/// load (set [`TrainConfig::max_seconds`] to bound it).
pub fn default_config(data: &Dataset) -> (ModelSpec, TrainConfig) {
    let dim = data.dim();
    let s = SplineSpec::linear(16, 4.0);
    let s2 = SplineSpec::linear(32, 4.0);
    let spec = match dim {
        0 | 1 => ModelSpec::Flow(FlowSpec::spline(1, s)),
        2 => ModelSpec::spline_joint(s2, &[32, 32]),
        _ => ModelSpec::Flow(FlowSpec::coupling_stack(
            dim,
            4,
            &[32, 32],
            s,
            Permutation::Random(0),
        )),
    };
    let cfg = TrainConfig::circles_default(0.12 * data.mean_std() as f32);
    (spec, cfg)
}

/// Architecture and settings for `data` (see the [module docs](self)).
///
/// The budget is the smaller of `max_params` and the preset's; the architecture is the
/// preset's (no preset: `Small` for 3-D and more, the circles-tuned joint for 2-D) shrunk
/// until it fits. Fails on data without rows, and when not even the smallest model fits.
pub fn auto_config(
    data: &Dataset,
    opts: &AutoOptions,
) -> Result<(ModelSpec, TrainConfig), TrainError> {
    if data.is_empty() {
        return Err(TrainError::Data("no rows to choose a model from".into()));
    }
    let summary = DataSummary::of(data);
    let params = match (opts.max_params, opts.preset) {
        (Some(m), Some(p)) => m.min(p.budget()),
        (Some(m), None) => m,
        (None, Some(p)) => p.budget(),
        (None, None) => usize::MAX,
    };
    let budget = Budget {
        params,
        instructions: opts.max_instructions,
        flash: opts.max_flash_bytes,
    };
    let spec = match summary.dim {
        1 => spline_1d(&budget),
        2 => joint_2d(&budget),
        _ => couplings(data, &summary, opts.preset, &budget),
    }
    .ok_or_else(|| {
        TrainError::Spec(format!(
            "no {}-D model fits in {}",
            summary.dim,
            budget.describe()
        ))
    })?;
    let cfg = training(data, &summary, &spec);
    Ok((spec, cfg))
}

/// The widest hypernetwork layer at which [`auto_config`] trains with the base input-noise
/// width; wider ones get [`WIDE_NOISE`] times it (see the [module docs](self)).
pub const NARROW_HIDDEN: usize = 12;

/// The input-noise factor for hypernetworks wider than [`NARROW_HIDDEN`].
pub const WIDE_NOISE: f32 = 1.25;

/// The factor on [`DataSummary::input_noise`] for a model: [`WIDE_NOISE`] if some
/// hypernetwork layer is wider than [`NARROW_HIDDEN`] units, else 1.
pub fn noise_factor(spec: &ModelSpec) -> f32 {
    let flows: &[&FlowSpec] = match spec {
        ModelSpec::Flow(f) => &[f],
        ModelSpec::Joint {
            marginal,
            conditional,
        } => &[marginal, conditional],
    };
    let widest = flows
        .iter()
        .flat_map(|f| &f.layers)
        .filter_map(|l| match l {
            LayerSpec::Coupling { hidden, .. } | LayerSpec::ConditionalSpline { hidden, .. } => {
                hidden.iter().max().copied()
            }
            _ => None,
        })
        .max()
        .unwrap_or(0);
    if widest > NARROW_HIDDEN {
        WIDE_NOISE
    } else {
        1.0
    }
}

/// The training settings [`auto_config`] pairs with a model `spec` for `data` (for a model
/// built by hand with the automatic training): up to 2-D those of
/// [`default_config`], from 3-D on those in the [module docs](self),
/// the input noise scaled for `spec`'s hypernetworks by [`noise_factor`].
pub fn auto_training(data: &Dataset, spec: &ModelSpec) -> TrainConfig {
    training(data, &DataSummary::of(data), spec)
}

/// [`auto_training`] with the data's summary at hand.
fn training(data: &Dataset, s: &DataSummary, spec: &ModelSpec) -> TrainConfig {
    if s.dim <= 2 {
        return default_config(data).1;
    }
    TrainConfig {
        steps: 8_000,
        lr: 2e-3,
        batch_size: Some(256),
        validation_fraction: 0.1,
        eval_every: 50,
        patience: None,
        restore_best: false,
        clip_grad_norm: Some(10.0),
        input_noise: s.input_noise() * noise_factor(spec),
        row_noise: Some(row_noise(data, NOISE_ALPHA)),
        schedule: Schedule::Cosine {
            final_fraction: 0.02,
        },
        init_scheme: InitScheme::Identity,
        ..TrainConfig::default()
    }
}

fn fits(spec: ModelSpec, budget: &Budget) -> Option<ModelSpec> {
    budget.admits(&spec).then_some(spec)
}

fn spline_1d(budget: &Budget) -> Option<ModelSpec> {
    // 4K - 1 parameters; K = 16 unless the budget is smaller.
    (2..=16).rev().find_map(|k| {
        fits(
            ModelSpec::Flow(FlowSpec::spline(1, SplineSpec::linear(k, 4.0))),
            budget,
        )
    })
}

fn joint_2d(budget: &Budget) -> Option<ModelSpec> {
    let joint = |bins: usize, hidden: &[usize]| {
        ModelSpec::spline_joint(SplineSpec::linear(bins, 4.0), hidden)
    };
    // Largest first (parameters in brackets); the first is the circles-tuned default. The
    // first that keeps the budget (parameters, estimated device cost) is taken. K = 10 with
    // `[8, 8]` or `[6, 6]` took the place of K = 8 `[8, 8]` (398), which they beat on the
    // circles test points at fewer instructions (docs/device-cost.md, "Circles within a
    // budget").
    let ladder: [(usize, &[usize]); 12] = [
        (32, &[32, 32]), // 5,438
        (32, &[28, 28]), // 4,678
        (32, &[24, 24]), // 3,950
        (24, &[24, 24]), // 3,118
        (16, &[24, 24]), // 2,286
        (16, &[20, 20]), // 1,846
        (16, &[16, 16]), // 1,438
        (12, &[12, 12]), // 838
        (10, &[8, 8]),   // 478
        (10, &[6, 6]),   // 366
        (8, &[4]),       // 194
        (4, &[2]),       // 64
    ];
    ladder.iter().find_map(|&(k, h)| fits(joint(k, h), budget))
}

fn couplings(
    data: &Dataset,
    s: &DataSummary,
    preset: Option<Preset>,
    budget: &Budget,
) -> Option<ModelSpec> {
    let dim = s.dim;
    let bits = (usize::BITS - dim.leading_zeros()) as usize;
    let bound = s.bound();
    let bins = 3;
    // The hidden widths to choose from, widest first, and the device-cost cap.
    // The estimate is within 4% of the measured cost on the 6-D stacks (docs/device-cost.md).
    let cap = M4F_TARGET;
    let (widths, cap, max_couplings): (&[usize], _, _) = match preset {
        Some(Preset::Tiny) => (&[8], Some(cap), bits.max(3)),
        Some(Preset::Small) | None => (&[16, 12, 10, 8], Some(cap), bits + 1),
        Some(Preset::Medium) => (&[16], None, bits + 1),
    };
    let act_norm = LayerSpec::act_norm(data);
    let with_norm = |mut f: FlowSpec| {
        f.layers.push(act_norm.clone());
        ModelSpec::Flow(f)
    };
    let stack = |layers: usize, hidden: &[usize], k: usize| {
        let spline = SplineSpec::quadratic(k, bound);
        with_norm(FlowSpec::coupling_stack(
            dim,
            layers,
            hidden,
            spline,
            Permutation::Mixing,
        ))
    };
    // As many couplings as split every pair (`bits`) plus one, the widest hypernetworks that
    // keep them under the device cap; fewer couplings only when even the narrowest do not fit
    // (but at least two). More couplings gain more than wider ones (module docs).
    let fits_cap = |c: usize, w: usize| {
        let spec = stack(c, &[w, w], bins);
        cap.is_none_or(|cap| m4f_instructions(&spec) <= cap) && budget.admits(&spec)
    };
    let (most, width) = (2..=max_couplings.max(2))
        .rev()
        .find_map(|c| widths.iter().find(|&&w| fits_cap(c, w)).map(|&w| (c, w)))
        .unwrap_or((2, widths[widths.len() - 1]));
    // Shrink for the budget: hidden widths, then one hidden layer, then fewer couplings, then
    // fewer bins.
    let mut hiddens: Vec<Vec<usize>> = [width, 12, 10, 8, 6, 4]
        .iter()
        .filter(|&&w| w <= width)
        .map(|&w| vec![w, w])
        .collect();
    hiddens.dedup();
    hiddens.extend([8, 4, 2].iter().filter(|&&w| w <= width).map(|&w| vec![w]));
    for k in (2..=bins).rev() {
        for layers in (1..=most).rev() {
            for h in &hiddens {
                if let Some(spec) = fits(stack(layers, h, k), budget) {
                    return Some(spec);
                }
            }
        }
    }
    // The affine and one element-wise spline, with as many bins as fit.
    (2..=bins).rev().find_map(|k| {
        let f = FlowSpec::spline(dim, SplineSpec::quadratic(k, bound));
        fits(with_norm(f), budget)
    })
}

/// The device-cost target of the `Tiny` and `Small` presets (and of no preset): instructions
/// per `log_prob` on a Cortex-M4F, as [`m4f_instructions`] estimates them.
pub const M4F_TARGET: usize = 40_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Rng;

    /// Gaussian rows with a few heavy outliers, `dim` columns of different scales.
    fn data(n: usize, dim: usize, seed: u64) -> Dataset {
        let mut r = Rng::new(seed);
        let v = (0..n * dim)
            .map(|i| {
                let j = i % dim;
                let x = r.normal() * (1.0 + j as f32) + j as f32;
                if i % 997 == 0 {
                    x * 8.0
                } else {
                    x
                }
            })
            .collect();
        Dataset::new(dim, v).unwrap()
    }

    #[test]
    fn budgets_are_respected_and_models_validate() {
        for dim in [1usize, 2, 3, 6, 9, 20] {
            let d = data(600, dim, dim as u64);
            for preset in [
                None,
                Some(Preset::Tiny),
                Some(Preset::Small),
                Some(Preset::Medium),
            ] {
                for max_params in [None, Some(10_000), Some(1_500), Some(400)] {
                    let opts = AutoOptions {
                        preset,
                        max_params,
                        ..AutoOptions::default()
                    };
                    let budget = max_params
                        .unwrap_or(usize::MAX)
                        .min(preset.map_or(usize::MAX, Preset::budget));
                    let (spec, cfg) = auto_config(&d, &opts).unwrap();
                    spec.validate().unwrap();
                    assert_eq!(spec.dim(), dim);
                    let n = spec.param_count();
                    assert!(n <= budget, "{dim}-D {opts:?}: {n}");
                    // Budgets are used, not just respected: at least a fifth of a small one.
                    assert!(
                        n * 5 >= budget.min(2_000) || dim == 1,
                        "{dim}-D {opts:?}: {n}"
                    );
                    assert!(cfg.input_noise > 0.0 && cfg.steps > 0);
                }
            }
        }
        let tiny = AutoOptions {
            preset: None,
            max_params: Some(3),
            ..AutoOptions::default()
        };
        assert!(auto_config(&data(100, 2, 1), &tiny).is_err());
        assert!(auto_config(&Dataset::new(3, vec![]).unwrap(), &AutoOptions::default()).is_err());
    }

    fn couplings_of(spec: &ModelSpec) -> Vec<(usize, Vec<usize>, SplineSpec)> {
        spec.flows()[0]
            .layers
            .iter()
            .filter_map(|l| match l {
                LayerSpec::Coupling {
                    split,
                    hidden,
                    spline,
                } => Some((*split, hidden.clone(), *spline)),
                _ => None,
            })
            .collect()
    }

    /// 6-D data gets the IMU architecture: the data-side ActNorm affine initialized from the
    /// data, four mixing quadratic couplings (every pair split, plus one) with K = 3 and the
    /// widest hypernetworks under the device-cost cap ([8, 8]; `Medium` [16, 16], uncapped;
    /// `Tiny` one coupling fewer), a validation split that only measures, and per-row input
    /// noise.
    #[test]
    fn six_d_shape() {
        let d = data(2000, 6, 7);
        let auto = |preset| auto_config(&d, &AutoOptions::with_preset(preset)).unwrap();
        let (spec, cfg) = auto(None);
        assert_eq!(spec, auto(Some(Preset::Small)).0);
        let c = couplings_of(&spec);
        assert_eq!(c.len(), 4);
        assert!(c.iter().all(|(split, h, s)| *split == 3
            && h == &[8, 8]
            && s.bins == 3
            && s.order == flow_core::Order::Quadratic
            && (3.0..=5.0).contains(&s.bound)));
        let ModelSpec::Flow(f) = &spec else {
            panic!("{spec:?}")
        };
        let Some(LayerSpec::Affine {
            loc,
            scale,
            learnable: true,
        }) = f.layers.last()
        else {
            panic!("{:?}", f.layers.last())
        };
        let (m, s) = d.column_moments();
        for j in 0..6 {
            assert!((loc[j] as f64 - m[j]).abs() < 1e-5 && (scale[j] as f64 - s[j]).abs() < 1e-5);
        }
        assert_eq!(spec.param_count(), 1388);
        assert!(m4f_instructions(&spec) <= M4F_TARGET);
        assert_eq!(
            (cfg.validation_fraction, cfg.patience, cfg.restore_best),
            (0.1, None, false)
        );
        assert_eq!(cfg.init_scheme, InitScheme::Identity);
        assert_eq!(cfg.row_noise.as_ref().map(Vec::len), Some(d.len()));
        // Medium: four wider couplings, over the device target; Tiny: three.
        let (medium, medium_cfg) = auto(Some(Preset::Medium));
        assert_eq!(couplings_of(&medium).len(), 4);
        assert_eq!(medium.param_count(), 3084);
        assert!(m4f_instructions(&medium) > M4F_TARGET);
        // The [8, 8] default trains with the base noise width, [16, 16] with 1.25 times it.
        let base = DataSummary::of(&d).input_noise();
        assert_eq!(cfg.input_noise, base);
        assert_eq!(medium_cfg.input_noise, base * WIDE_NOISE);
        assert_eq!(auto_training(&d, &medium), medium_cfg);
        assert_eq!(auto_training(&d, &spec), cfg);
        let tiny = auto(Some(Preset::Tiny)).0;
        assert_eq!(couplings_of(&tiny).len(), 3);
        assert!(couplings_of(&tiny).iter().all(|c| c.1 == [8, 8]));
        assert_eq!(tiny.param_count(), 1044);
    }

    /// 2-D data keeps the circles-tuned joint (and its noise), shrunk for small budgets.
    #[test]
    fn two_d_shape() {
        // Two noisy rings, as Pyro's circles.
        let mut r = Rng::new(3);
        let v: Vec<f32> = (0..1000)
            .flat_map(|i| {
                let t = r.uniform() * std::f32::consts::TAU;
                let rad = if i % 2 == 0 { 1.0 } else { 0.5 };
                [
                    rad * t.cos() + 0.05 * r.normal(),
                    rad * t.sin() + 0.05 * r.normal(),
                ]
            })
            .collect();
        let d = Dataset::new(2, v).unwrap();
        assert_eq!(
            auto_config(&d, &AutoOptions::default()).unwrap(),
            default_config(&d)
        );
        // The data-adaptive noise rule is of the order of the value tuned on circles (0.12).
        let noise = DataSummary::of(&d).input_noise() / d.mean_std() as f32;
        assert!((0.07..0.15).contains(&noise), "{noise}");
        let small = AutoOptions::with_preset(Some(Preset::Small));
        let (spec, _) = auto_config(&d, &small).unwrap();
        assert!(matches!(spec, ModelSpec::Joint { .. }));
        assert!(
            (4_000..=5_000).contains(&spec.param_count()),
            "{}",
            spec.param_count()
        );
    }

    /// The spread measures the shape, not the size: the same for 2,000 and 40,000 rows of the
    /// same distribution; larger for points spread in more dimensions; the 5th-neighbour
    /// distance of 1000 standard Normal points in 2-D is about √(5/(π·1000·p(x))) ≈ 0.1.
    #[test]
    fn summary() {
        let small = DataSummary::of(&data(2_000, 2, 11));
        let big = DataSummary::of(&data(40_000, 2, 12));
        let ratio = small.knn / big.knn;
        assert!((0.85..1.15).contains(&ratio), "{ratio}");
        assert!((0.07..0.2).contains(&small.knn), "{}", small.knn);
        let six = DataSummary::of(&data(2_000, 6, 13));
        assert!(six.knn > 4.0 * small.knn, "{} vs {}", six.knn, small.knn);
        assert!(small.tail > 2.0 && small.tail < 3.5, "{}", small.tail);
        assert_eq!(small.bound(), 3.0);
        // Scale-free: the noise follows the data's units.
        let d = data(1000, 3, 5);
        let scaled = Dataset::new(3, d.values().iter().map(|v| v * 10.0).collect()).unwrap();
        let (a, b) = (DataSummary::of(&d), DataSummary::of(&scaled));
        assert!((b.input_noise() / a.input_noise() - 10.0).abs() < 1e-3);
        assert!((a.knn - b.knn).abs() < 1e-6);
    }

    /// End to end on real readings, fast: one standing and one walking recording of the
    /// smartwatch IMU data (`data/imu`, or `$FLOW_DATA_DIR/imu`), standardized as `fit`
    /// does, `Tiny` settings, 300 steps with the recordings as groups (one held out for
    /// validation). The flow learns (its loss falls well below the standard Normal's start),
    /// flow-core scores the export as the engine does, and readings amplified ×3 about the
    /// mean score far below the real ones.
    #[test]
    fn imu_two_recordings() {
        let dir = std::env::var_os("FLOW_DATA_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data"))
            .join("imu");
        let all = Dataset::load_csv(dir.join("imu_train.csv")).unwrap_or_else(|e| panic!("{e}"));
        let rows_path = dir.join("imu_train_rows.csv");
        let rows = std::fs::read_to_string(&rows_path)
            .unwrap_or_else(|e| panic!("{}: {e}", rows_path.display()));
        // Recording 1 (standing) and 20 (walking).
        let (mut idx, mut groups) = (Vec::new(), Vec::new());
        for (i, line) in rows.lines().skip(1).enumerate() {
            let rec: u32 = line.split(',').nth(1).unwrap().parse().unwrap();
            if rec == 1 || rec == 20 {
                idx.push(i);
                groups.push(rec);
            }
        }
        assert_eq!(idx.len(), 200);
        let raw = all.select(&idx);
        let (mean, sd) = raw.column_moments();
        let standardize = |d: &Dataset, k: f64| {
            let v = d
                .values()
                .iter()
                .enumerate()
                .map(|(i, &x)| (k * (x as f64 - mean[i % 6]) / sd[i % 6]) as f32)
                .collect();
            Dataset::new(6, v).unwrap()
        };
        let d = standardize(&raw, 1.0);
        let tiny = AutoOptions::with_preset(Some(Preset::Tiny));
        let (spec, mut cfg) = auto_config(&d, &tiny).unwrap();
        assert!(spec.param_count() <= 2_000);
        cfg.steps = 300;
        cfg.batch_size = Some(64);
        cfg.validation_fraction = 0.5;
        cfg.groups = Some(groups.clone());
        // Measure the held-out recording, keep the last parameters.
        cfg.restore_best = false;
        cfg.patience = None;
        let m = crate::train(&spec, &cfg, &d, |_| std::ops::ControlFlow::Continue(())).unwrap();
        let (train_idx, val_idx) = crate::train::split_groups(&groups, 0.5, cfg.seed);
        assert_eq!((train_idx.len(), val_idx.len()), (100, 100));
        let train_d = d.select(&train_idx);
        // The identity start is the standard Normal of the standardized readings (the data
        // are standardized already, so the ActNorm affine starts at the identity too).
        let p0 = crate::init::initial_params(&spec, &cfg);
        let start = crate::Exported::new(&spec, &p0)
            .unwrap()
            .nll::<f64>(train_d.values())
            .unwrap();
        let normal = train_d
            .values()
            .iter()
            .map(|&z| 0.5 * (z as f64).powi(2) + 0.5 * (std::f64::consts::TAU).ln())
            .sum::<f64>()
            / 100.0;
        assert!((start - normal).abs() < 0.01, "{start} vs {normal}");
        let train_nll = m.nll(&train_d).unwrap();
        assert!(train_nll < start - 4.0, "{start} -> {train_nll}");
        // flow-core agrees with the engine's last validation loss on the held-out recording.
        let (step, last) = *m.val_losses.last().unwrap();
        assert_eq!((step, m.kept_step), (300, 300));
        let val_nll = m.nll(&d.select(&val_idx)).unwrap();
        assert!((val_nll - last).abs() < 1e-3, "{val_nll} vs {last}");
        println!("start {start:.3}, train {train_nll:.3}, validation {val_nll:.3}");
        let far = m
            .export()
            .unwrap()
            .log_probs::<f64>(standardize(&raw, 3.0).values());
        let near = m.export().unwrap().log_probs::<f64>(d.values());
        let (far, near) = (far.unwrap(), near.unwrap());
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            mean(&far) < mean(&near) - 5.0,
            "{} vs {}",
            mean(&far),
            mean(&near)
        );
    }
}
