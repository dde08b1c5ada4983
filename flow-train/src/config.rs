//! How to train: the settings of a run ([`TrainConfig`]), its learning-rate [`Schedule`] and
//! how a fresh run starts ([`InitScheme`]).

use crate::isa::Isa;

/// How [`initial_params`](crate::init::initial_params) starts a model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InitScheme {
    /// As Pyro does ([`init_params`](crate::init::init_params)): random splines.
    #[default]
    Pyro,
    /// Every spline the identity ([`identity_params`](crate::init::identity_params)): the flow
    /// starts as its affines alone.
    Identity,
}

/// Learning-rate schedule over the run's `steps`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// Constant `lr`.
    Constant,
    /// Cosine decay from `lr` to `lr·final_fraction` at the last step.
    Cosine {
        /// Fraction of `lr` at the end.
        final_fraction: f32,
    },
    /// `lr·gamma^(step / every)`.
    Step {
        /// Steps between decays.
        every: usize,
        /// Factor per decay.
        gamma: f32,
    },
}

impl Schedule {
    /// The rate at `step` of `steps`.
    pub fn lr(&self, lr: f32, step: usize, steps: usize) -> f32 {
        match *self {
            Schedule::Constant => lr,
            Schedule::Cosine { final_fraction } => {
                let t = step as f64 / (steps.max(2) - 1) as f64;
                let c = 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos());
                (lr as f64 * (final_fraction as f64 + (1.0 - final_fraction as f64) * c)) as f32
            }
            Schedule::Step { every, gamma } => lr * gamma.powi((step / every.max(1)) as i32),
        }
    }
}

/// How to train.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Optimizer steps (the run may stop earlier: early stopping, time limit, NaN).
    pub steps: usize,
    /// Adam's learning rate (peak, before the schedule).
    pub lr: f32,
    /// Adam's `(β1, β2)`; torch's default `(0.9, 0.999)`.
    pub betas: (f32, f32),
    /// Adam's `ε`; torch's default `1e-8`.
    pub eps: f32,
    /// Points per step; `None` is full batch. Minibatches walk through a fresh shuffle of the
    /// training points each epoch.
    pub batch_size: Option<usize>,
    /// Seed of the initialization, the validation split and the shuffles.
    pub seed: u64,
    /// Fraction of the data held out for validation (0 for none).
    pub validation_fraction: f32,
    /// A group id per data row (e.g. the recording it comes from). When set, the validation
    /// split holds out whole groups (about `validation_fraction` of them), so that neighbouring
    /// rows of one recording never sit on both sides of the split.
    pub groups: Option<Vec<u32>>,
    /// Steps between validation evaluations.
    pub eval_every: usize,
    /// Whether the run ends with the parameters of the best validation evaluation (`true`, the
    /// default) or with its last parameters (`false`: the validation NLL is then measured and
    /// reported, and stops the run only through `patience`). A run that turns non-finite falls
    /// back to the best validated parameters either way, when there are any.
    pub restore_best: bool,
    /// Stop after this many validation evaluations without improvement (`None`: never).
    pub patience: Option<usize>,
    /// Clip the gradient to this global L2 norm (torch's `clip_grad_norm_`).
    pub clip_grad_norm: Option<f32>,
    /// Decoupled weight decay (AdamW): each step multiplies the parameters by `1 - lr·wd`
    /// before the Adam update. 0 disables it (torch's `Adam` default).
    pub weight_decay: f32,
    /// Standard deviation of Gaussian noise added to each training point every time it is used
    /// (data augmentation against overfitting small data sets); 0 disables it. It decays with
    /// the learning-rate schedule (`input_noise · lr_t / lr`), so the last steps fit the data
    /// themselves.
    pub input_noise: f32,
    /// A factor per data row on `input_noise` (`None`: 1 for every row), e.g.
    /// [`row_noise`](crate::noise::row_noise): wide noise where the data are sparse,
    /// narrow where they are dense. One per row of the data passed to [`train`](crate::train()).
    pub row_noise: Option<Vec<f32>>,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Stop after this much wall time.
    pub max_seconds: Option<f64>,
    /// Instruction set (`None`: the best the CPU has).
    pub isa: Option<Isa>,
    /// Start from these parameters instead of a fresh initialization.
    pub init: Option<Vec<f32>>,
    /// How a fresh initialization starts (when `init` is `None`): Pyro's random splines (the
    /// default) or every spline the identity ([`identity_params`](crate::init::identity_params)).
    pub init_scheme: InitScheme,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            batch_size: None,
            seed: 0,
            validation_fraction: 0.0,
            groups: None,
            eval_every: 100,
            restore_best: true,
            patience: None,
            clip_grad_norm: None,
            weight_decay: 0.0,
            input_noise: 0.0,
            row_noise: None,
            schedule: Schedule::Constant,
            max_seconds: None,
            isa: None,
            init: None,
            init_scheme: InitScheme::Pyro,
        }
    }
}

impl TrainConfig {
    /// Pyro's tutorial loop: full-batch Adam at `lr` for `steps` steps, nothing else.
    pub fn tutorial(steps: usize, lr: f32) -> Self {
        Self {
            steps,
            lr,
            ..Self::default()
        }
    }

    /// The training of [`default_config`](crate::default_config), tuned on Pyro's circles:
    /// Adam 3e-3 on a cosine schedule (to 0) over 10 000 steps on minibatches of 256, gradient
    /// clipping at 10, 10% of the points held out for early stopping (checked every 50 steps,
    /// patience 60 checks), and Gaussian input noise of standard deviation `input_noise`.
    pub fn circles_default(input_noise: f32) -> Self {
        Self {
            steps: 10_000,
            lr: 3e-3,
            batch_size: Some(256),
            validation_fraction: 0.1,
            eval_every: 50,
            patience: Some(60),
            clip_grad_norm: Some(10.0),
            input_noise,
            schedule: Schedule::Cosine {
                final_fraction: 0.0,
            },
            ..Self::default()
        }
    }
}
