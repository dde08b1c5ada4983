//! Maximum-likelihood training: Adam, minibatches, clipping, schedules, early stopping.

use crate::config::TrainConfig;
use crate::data::Dataset;
use crate::engine::Engine;
use crate::export::{split_params, Exported, LayerParams};
use crate::init::{initial_params, Rng};
use crate::isa::Isa;
use crate::spec::ModelSpec;
use crate::TrainError;
use std::ops::ControlFlow;
use std::time::Instant;

/// What the progress callback sees after each step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Steps done (1-based).
    pub step: usize,
    /// Planned steps.
    pub steps: usize,
    /// The step's minibatch loss (mean NLL, nats per point) before its update.
    pub loss: f64,
    /// The validation NLL, on steps where it was evaluated.
    pub val_loss: Option<f64>,
    /// The learning rate used.
    pub lr: f32,
    /// The gradient norm (before clipping).
    pub grad_norm: f64,
    /// Seconds since the start.
    pub elapsed: f64,
}

/// Why training stopped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StopReason {
    /// All steps done.
    Completed,
    /// Validation stopped improving for `patience` evaluations.
    EarlyStopped,
    /// The loss or gradient became NaN or infinite at this step; the parameters are the last
    /// ones with a finite loss (or the best validated ones).
    NonFinite {
        /// The step (1-based) whose loss or gradient was not finite.
        step: usize,
    },
    /// `max_seconds` ran out.
    TimeLimit,
    /// The progress callback asked to stop.
    Cancelled,
}

/// A trained model: the architecture, the parameters in flow-core layout, and the run's record.
#[derive(Clone, Debug)]
pub struct TrainedModel {
    /// The architecture.
    pub spec: ModelSpec,
    /// All parameters, flat: layer after layer, each in flow-core's layout (see
    /// [`layer_params`](Self::layer_params)).
    pub params: Vec<f32>,
    /// The loss of every step.
    pub losses: Vec<f64>,
    /// `(step, validation NLL)` of every evaluation.
    pub val_losses: Vec<(usize, f64)>,
    /// Why the run stopped.
    pub stop: StopReason,
    /// Steps done.
    pub steps_done: usize,
    /// The step whose parameters were kept (the best validation, or the last good step).
    pub kept_step: usize,
    /// Wall seconds of the run.
    pub seconds: f64,
    /// The instruction set used.
    pub isa: Isa,
}

impl TrainedModel {
    /// The parameters per flow (one, or the joint's two) and per layer, in flow-core layout.
    pub fn layer_params(&self) -> Vec<Vec<LayerParams>> {
        split_params(&self.spec, &self.params).expect("consistent by construction")
    }

    /// The model encoded for flow-core.
    pub fn export(&self) -> Result<Exported, TrainError> {
        Exported::new(&self.spec, &self.params)
    }

    /// Mean NLL (nats per point) of `data` computed by flow-core's exact `log_prob` in `f64`.
    pub fn nll(&self, data: &Dataset) -> Result<f64, TrainError> {
        self.export()?.nll::<f64>(data.values())
    }
}

/// Splits `0..n` into shuffled (train, validation) index sets.
/// Splits rows by group: a seeded random `fraction` of the distinct groups (at least one when
/// `fraction > 0` and there are two or more groups) goes to validation, whole.
pub fn split_groups(groups: &[u32], fraction: f32, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut ids: Vec<u32> = groups.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let (_, val_pos) = split_indices(ids.len(), fraction, seed);
    let mut held: Vec<u32> = val_pos.iter().map(|&i| ids[i]).collect();
    if held.is_empty() && fraction > 0.0 && ids.len() >= 2 {
        held.push(ids[(seed as usize) % ids.len()]);
    }
    held.sort_unstable();
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (i, g) in groups.iter().enumerate() {
        if held.binary_search(g).is_ok() {
            val.push(i);
        } else {
            train.push(i);
        }
    }
    (train, val)
}

/// Splits `0..n` at random: a seeded `fraction` goes to validation.
pub fn split_indices(n: usize, fraction: f32, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    let n_val = ((n as f64) * fraction.clamp(0.0, 0.9) as f64).round() as usize;
    if n_val == 0 {
        return (idx, Vec::new());
    }
    Rng::new(seed ^ 0x9e37_79b9_7f4a_7c15).shuffle(&mut idx);
    let val = idx.split_off(n - n_val);
    (idx, val)
}

/// Adam with torch's arithmetic (`torch.optim.Adam`, no weight decay).
#[derive(Clone, Debug)]
pub struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
    betas: (f32, f32),
    eps: f32,
}

impl Adam {
    /// State for `n` parameters.
    pub fn new(n: usize, betas: (f32, f32), eps: f32) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            betas,
            eps,
        }
    }

    /// One update of `p` with gradient `g` at rate `lr`.
    pub fn step(&mut self, p: &mut [f32], g: &[f32], lr: f32) {
        self.t += 1;
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powi(self.t);
        let bc2_sqrt = (1.0 - b2.powi(self.t)).sqrt();
        let step = lr / bc1;
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(&mut self.m).zip(&mut self.v) {
            *m += (g - *m) * (1.0 - b1);
            *v = *v * b2 + (1.0 - b2) * g * g;
            let denom = v.sqrt() / bc2_sqrt + self.eps;
            *p -= step * *m / denom;
        }
    }
}

/// Fits `spec` to `data` by maximum likelihood. `progress` is called after every step and may
/// stop the run by returning `ControlFlow::Break`.
pub fn train(
    spec: &ModelSpec,
    config: &TrainConfig,
    data: &Dataset,
    mut progress: impl FnMut(&Progress) -> ControlFlow<()>,
) -> Result<TrainedModel, TrainError> {
    let start = Instant::now();
    spec.validate()?;
    if data.dim() != spec.dim() {
        return Err(TrainError::Data(format!(
            "data has {} columns, the model {}",
            data.dim(),
            spec.dim()
        )));
    }
    let isa = config.isa.unwrap_or_else(Isa::detect).or_supported();
    let mut engine = Engine::<f32>::new(spec)?;
    let mut params = match &config.init {
        Some(p) if p.len() == spec.param_count() => p.clone(),
        Some(p) => {
            return Err(TrainError::Spec(format!(
                "initial parameters: {} given, {} needed",
                p.len(),
                spec.param_count()
            )))
        }
        None => initial_params(spec, config),
    };
    let (train_idx, val_idx) = match &config.groups {
        Some(g) if g.len() == data.len() => {
            split_groups(g, config.validation_fraction, config.seed)
        }
        Some(g) => {
            return Err(TrainError::Data(format!(
                "{} group ids for {} rows",
                g.len(),
                data.len()
            )))
        }
        None => split_indices(data.len(), config.validation_fraction, config.seed),
    };
    if train_idx.is_empty() {
        return Err(TrainError::Data("no training points".into()));
    }
    if let Some(r) = &config.row_noise {
        if r.len() != data.len() {
            return Err(TrainError::Data(format!(
                "{} noise factors for {} rows",
                r.len(),
                data.len()
            )));
        }
    }
    let x = data.values();
    let batch = config
        .batch_size
        .unwrap_or(train_idx.len())
        .clamp(1, train_idx.len());
    let mut rng = Rng::new(config.seed.wrapping_add(1));
    let mut order = train_idx.clone();
    let mut cursor = order.len();
    let full = batch == order.len();

    let mut adam = Adam::new(params.len(), config.betas, config.eps);
    let mut noisy: Vec<f32> = Vec::new();
    let seq: Vec<usize> = (0..batch).collect();
    let mut grad = vec![0.0f32; params.len()];
    let mut last_good = params.clone();
    let mut best: Option<(f64, Vec<f32>, usize)> = None;
    let mut since_best = 0usize;
    let mut losses = Vec::with_capacity(config.steps);
    let mut val_losses = Vec::new();
    let mut stop = StopReason::Completed;
    let mut kept_step = 0;
    let mut step = 0;
    while step < config.steps {
        let idx: &[usize] = if full {
            &train_idx
        } else {
            if cursor + batch > order.len() {
                rng.shuffle(&mut order);
                cursor = 0;
            }
            cursor += batch;
            &order[cursor - batch..cursor]
        };
        let lr = config.schedule.lr(config.lr, step, config.steps);
        let loss = if config.input_noise > 0.0 {
            let sigma = config.input_noise * lr / config.lr;
            noisy.clear();
            for &i in idx {
                let s = sigma * config.row_noise.as_ref().map_or(1.0, |r| r[i]);
                noisy.extend(data.row(i).iter().map(|&v| v + s * rng.normal()));
            }
            engine.loss_grad(isa, &params, &noisy, &seq[..idx.len()], &mut grad)
        } else {
            engine.loss_grad(isa, &params, x, idx, &mut grad)
        };
        let norm = grad
            .iter()
            .map(|&g| (g as f64) * (g as f64))
            .sum::<f64>()
            .sqrt();
        step += 1;
        if !loss.is_finite() || !norm.is_finite() {
            stop = StopReason::NonFinite { step };
            params = last_good.clone();
            break;
        }
        losses.push(loss);
        last_good.copy_from_slice(&params);
        kept_step = step - 1;
        if let Some(max) = config.clip_grad_norm {
            if norm > max as f64 {
                let c = (max as f64 / (norm + 1e-6)) as f32;
                grad.iter_mut().for_each(|g| *g *= c);
            }
        }
        if config.weight_decay > 0.0 {
            let f = 1.0 - lr * config.weight_decay;
            params.iter_mut().for_each(|p| *p *= f);
        }
        adam.step(&mut params, &grad, lr);
        let mut val_loss = None;
        if !val_idx.is_empty() && (step % config.eval_every.max(1) == 0 || step == config.steps) {
            let v = engine.loss(isa, &params, x, &val_idx);
            val_loss = Some(v);
            val_losses.push((step, v));
            if v.is_finite() && best.as_ref().is_none_or(|b| v < b.0) {
                best = Some((v, params.clone(), step));
                since_best = 0;
            } else {
                since_best += 1;
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let p = Progress {
            step,
            steps: config.steps,
            loss,
            val_loss,
            lr,
            grad_norm: norm,
            elapsed,
        };
        if progress(&p).is_break() {
            stop = StopReason::Cancelled;
            break;
        }
        if config.patience.is_some_and(|pat| since_best >= pat) {
            stop = StopReason::EarlyStopped;
            break;
        }
        if config.max_seconds.is_some_and(|m| elapsed >= m) {
            stop = StopReason::TimeLimit;
            break;
        }
        kept_step = step;
    }
    if let Some((_, p, s)) = best {
        if config.restore_best || matches!(stop, StopReason::NonFinite { .. }) {
            params = p;
            kept_step = s;
        }
    }
    Ok(TrainedModel {
        spec: spec.clone(),
        params,
        losses,
        val_losses,
        stop,
        steps_done: step,
        kept_step,
        seconds: start.elapsed().as_secs_f64(),
        isa,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Schedule;
    use crate::spec::ModelSpec;

    fn rings(n: usize, seed: u64) -> Dataset {
        let mut r = Rng::new(seed);
        let mut v = Vec::new();
        for i in 0..n {
            let rad = if i % 2 == 0 { 1.8 } else { 0.9 };
            let a = r.uniform() * std::f32::consts::TAU;
            v.push(rad * a.cos() + 0.09 * r.normal());
            v.push(rad * a.sin() + 0.09 * r.normal());
        }
        Dataset::new(2, v).unwrap()
    }

    /// torch.optim.Adam's first two steps, computed by hand in f64.
    #[test]
    fn adam_matches_torch_arithmetic() {
        let mut a = Adam::new(2, (0.9, 0.999), 1e-8);
        let mut p = [1.0f32, -2.0];
        let g1 = [0.5f32, -0.25];
        a.step(&mut p, &g1, 0.1);
        // Step 1: m̂ = g, v̂ = g², so each moves by lr·g/(|g| + ε).
        assert!((p[0] - (1.0 - 0.1 * 0.5 / (0.5 + 1e-8))).abs() < 1e-7);
        assert!((p[1] - (-2.0 + 0.1 * 0.25 / (0.25 + 1e-8))).abs() < 1e-7);
        let g2 = [0.1f32, 0.3];
        let before = p;
        a.step(&mut p, &g2, 0.1);
        for j in 0..2 {
            let (g1, g2) = (g1[j] as f64, g2[j] as f64);
            let m = 0.9 * (0.1 * g1) + 0.1 * g2;
            let v = 0.999 * (0.001 * g1 * g1) + 0.001 * g2 * g2;
            let (bc1, bc2) = (1.0 - 0.81, 1.0 - 0.999f64.powi(2));
            let want = before[j] as f64 - 0.1 / bc1 * m / (v.sqrt() / bc2.sqrt() + 1e-8);
            assert!((p[j] as f64 - want).abs() < 1e-6, "{} {want}", p[j]);
        }
    }

    #[test]
    fn schedules() {
        let c = Schedule::Cosine {
            final_fraction: 0.1,
        };
        assert_eq!(c.lr(1.0, 0, 101), 1.0);
        assert!((c.lr(1.0, 50, 101) - 0.55).abs() < 1e-6);
        assert!((c.lr(1.0, 100, 101) - 0.1).abs() < 1e-6);
        let s = Schedule::Step {
            every: 10,
            gamma: 0.5,
        };
        assert_eq!(
            (s.lr(1.0, 9, 0), s.lr(1.0, 10, 0), s.lr(1.0, 25, 0)),
            (1.0, 0.5, 0.25)
        );
    }

    #[test]
    fn split_is_a_partition() {
        let (t, v) = split_indices(1000, 0.1, 3);
        assert_eq!((t.len(), v.len()), (900, 100));
        let mut all: Vec<usize> = t.iter().chain(&v).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(split_indices(10, 0.0, 3).1.len(), 0);
        // By groups: whole groups on one side, about the fraction of groups held out.
        let groups: Vec<u32> = (0..2800).map(|i| i / 100).collect();
        let (t, v) = split_groups(&groups, 0.2, 5);
        assert_eq!(t.len() + v.len(), 2800);
        let held: std::collections::BTreeSet<u32> = v.iter().map(|&i| groups[i]).collect();
        assert!(t.iter().all(|&i| !held.contains(&groups[i])));
        assert_eq!(v.len(), held.len() * 100);
        assert!((4..=8).contains(&held.len()), "{held:?}");
    }

    /// Training lowers the loss, the exported model scores the data as the engine does, and
    /// the same seed gives the same run.
    #[test]
    fn trains_and_is_reproducible() {
        let d = rings(600, 1);
        let spec = ModelSpec::tutorial_coupling(2, 8);
        let cfg = TrainConfig {
            steps: 300,
            lr: 5e-3,
            batch_size: Some(200),
            clip_grad_norm: Some(5.0),
            schedule: Schedule::Cosine {
                final_fraction: 0.1,
            },
            ..TrainConfig::default()
        };
        let mut seen = 0;
        let m = train(&spec, &cfg, &d, |p| {
            seen = p.step;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(
            (seen, m.steps_done, m.stop),
            (300, 300, StopReason::Completed)
        );
        let first = m.losses[..10].iter().sum::<f64>() / 10.0;
        let last = m.losses[290..].iter().sum::<f64>() / 10.0;
        // Rings in N(0,1)-scaled coordinates start near 3 nats; 300 steps reach well below.
        assert!(last < first - 0.5, "{first} -> {last}");
        let nll = m.nll(&d).unwrap();
        assert!((nll - last).abs() < 0.3, "{nll} vs {last}");
        let again = train(&spec, &cfg, &d, |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(again.params, m.params);
    }

    #[test]
    fn early_stopping_keeps_the_best_validated_params() {
        let d = rings(400, 2);
        let spec = ModelSpec::tutorial_coupling(2, 8);
        let cfg = TrainConfig {
            steps: 5000,
            lr: 2e-2,
            validation_fraction: 0.25,
            eval_every: 10,
            patience: Some(3),
            ..TrainConfig::default()
        };
        let m = train(&spec, &cfg, &d, |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(m.stop, StopReason::EarlyStopped);
        let best = m
            .val_losses
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert_eq!(m.kept_step, best.0);
        // The kept parameters are the ones validated: re-scoring the held-out points agrees.
        let (_, val) = split_indices(d.len(), 0.25, cfg.seed);
        let exact = m.nll(&d.select(&val)).unwrap();
        assert!((exact - best.1).abs() < 1e-4, "{exact} vs {}", best.1);
        assert_eq!(m.steps_done, m.val_losses.last().unwrap().0);
    }

    #[test]
    fn non_finite_stops_with_last_good_params() {
        let d = rings(100, 3);
        let spec = ModelSpec::tutorial_coupling(2, 8);
        // A learning rate of 1e30 throws the parameters to ±1e30 after the first step, where
        // the hypernetwork overflows.
        let cfg = TrainConfig {
            steps: 50,
            lr: 1e30,
            ..TrainConfig::default()
        };
        let m = train(&spec, &cfg, &d, |_| ControlFlow::Continue(())).unwrap();
        let StopReason::NonFinite { step } = m.stop else {
            panic!("{:?}", m.stop)
        };
        assert!(step >= 2);
        assert_eq!(m.kept_step, step - 1);
        assert_eq!(m.losses.len(), step - 1);
        assert!(m.params.iter().all(|p| p.is_finite()));
        // The kept parameters are exactly those that gave the last finite loss.
        let mut e = Engine::<f32>::new(&spec).unwrap();
        let idx: Vec<usize> = (0..d.len()).collect();
        let l = e.loss(m.isa, &m.params, d.values(), &idx);
        assert_eq!(l, *m.losses.last().unwrap());
    }

    #[test]
    fn cancel_and_bad_inputs() {
        let d = rings(50, 4);
        let spec = ModelSpec::tutorial_spline(2, 4);
        let cfg = TrainConfig::tutorial(100, 1e-2);
        let m = train(&spec, &cfg, &d, |p| {
            if p.step == 7 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        assert_eq!((m.stop, m.steps_done), (StopReason::Cancelled, 7));
        let d3 = Dataset::new(3, vec![0.0; 30]).unwrap();
        assert!(matches!(
            train(&spec, &cfg, &d3, |_| ControlFlow::Continue(())),
            Err(TrainError::Data(_))
        ));
        let bad = TrainConfig {
            init: Some(vec![0.0; 3]),
            ..cfg.clone()
        };
        assert!(train(&spec, &bad, &d, |_| ControlFlow::Continue(())).is_err());
        // One noise factor per row, or an error.
        let noisy = |n: usize| TrainConfig {
            input_noise: 0.1,
            row_noise: Some(vec![1.0; n]),
            ..cfg.clone()
        };
        assert!(train(
            &spec,
            &noisy(d.len() - 1),
            &d,
            |_| ControlFlow::Continue(())
        )
        .is_err());
        assert!(train(&spec, &noisy(d.len()), &d, |_| ControlFlow::Continue(())).is_ok());
    }
}
