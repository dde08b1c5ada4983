//! Maximum-likelihood training of flow-core models with exact, hand-derived gradients — no
//! tensor framework — exporting parameters in flow-core's storage layouts.
//!
//! ```
//! use flow_train::{train, Dataset, ModelSpec, TrainConfig};
//! use std::ops::ControlFlow;
//!
//! // Pyro's tutorial model (b), spline_coupling(2, count_bins=8), on a few points.
//! let data = Dataset::from_csv("x1,x2\n0.1,1.2\n-0.8,0.3\n1.5,-0.2\n-0.3,-1.1\n0.9,0.8\n")?;
//! let spec = ModelSpec::tutorial_coupling(2, 8);
//! let model = train(&spec, &TrainConfig::tutorial(50, 5e-3), &data, |_| ControlFlow::Continue(()))?;
//! assert!(model.losses[49] < model.losses[0]);
//! // The trained layers are flow-core layers; flow-core's exact log_prob scores them.
//! let nll = model.export()?.nll::<f64>(data.values())?;
//! assert!((nll - model.losses[49]).abs() < 0.5);
//! # Ok::<(), flow_train::TrainError>(())
//! ```
//!
//! # API
//! * [`ModelSpec`] (a [`FlowSpec`], or the joint `p(x₁)·p(x₂|x₁)`) describes the architecture:
//!   [`LayerSpec`]s — element-wise [`Spline`](LayerSpec::Spline), spline
//!   [`Coupling`](LayerSpec::Coupling) (optionally conditional), [`ConditionalSpline`](LayerSpec::ConditionalSpline),
//!   [`Permute`](LayerSpec::Permute), [`Affine`](LayerSpec::Affine) (learnable or fixed) — with
//!   bins, order, bound and hidden sizes ([`SplineSpec`]). `ModelSpec::tutorial_*` build Pyro's
//!   tutorial models, [`FlowSpec::coupling_stack`] a stack of couplings with permutations.
//! * [`TrainConfig`]: steps, Adam (torch's defaults and arithmetic), minibatch size, seed,
//!   validation fraction, early-stopping patience, gradient-norm clipping, learning-rate
//!   [`Schedule`], weight decay, input-noise augmentation, wall-time cap, instruction set.
//! * [`train()`]`(spec, config, data, progress)` → [`TrainedModel`]: the spec, the flat `f32`
//!   parameters, per-layer [`LayerParams`] in flow-core layout, the loss history, why it
//!   stopped ([`StopReason`]); [`TrainedModel::export`] gives [`Exported`], which builds
//!   flow-core [`Layer`](flow_core::Layer)s over the encoded bytes and computes flow-core's exact
//!   `log_prob` in `f32` or `f64`. The model file format is flow-core's business.
//! * [`defaults::auto_config`]: what `fit` trains when the user chooses nothing — the
//!   architecture and settings from the data (dimension, size, spread), a size
//!   [`Preset`](defaults::Preset) and a parameter budget; [`default_config`]: the circles-tuned
//!   configuration it uses up to 2-D.
//! * [`LayerSpec::act_norm`] (a learnable affine initialized from the data),
//!   [`Permutation::Mixing`] (couplings that split every pair of dimensions),
//!   [`init::InitScheme::Identity`] (every spline starts as the identity).
//! * [`Engine`]: the differentiable model itself (loss and gradient of a batch), generic over
//!   [`Float`](float::Float) (`f32` to train, `f64` for checks).
//!
//! # Parameter layouts
//! All parameters of a model form one flat vector: flow after flow (the joint's marginal
//! first), layer after layer in forward order, each exactly as flow-core stores it: `Spline`
//! `[uw (dim×K) | uh (dim×K) | ud (dim×(K-1)) | ul (dim×K, linear only)]`; a coupling's lower
//! spline (that layout over `split` dims) then its DenseNN `W0, b0, W1, b1, …` with each `W` as
//! torch's `[out][in]`; a conditional spline's DenseNN; a learnable affine `[loc | scale]`.
//! The hypernetwork output is split `[widths | heights | derivatives | lambdas]`, row-major per
//! dimension, as Pyro does. Pyro's trained state_dicts, concatenated in this order, reproduce
//! Pyro's recorded `log_prob`s (tests in `parity.rs`).
//!
//! # How the gradients are computed
//! `log p(x)` runs each layer's inverse from the data side ([`engine`]); for splines the inverse
//! is analytic. Each point's spline output depends on the parameters only through its bin's
//! seven quantities (knots, widths, knot derivatives, λ); their adjoints are derived by hand from
//! Pyro's formulas (linear and quadratic order), then mapped through the knot cumsum, the
//! softmax Jacobian, softplus and sigmoid, with Pyro's fixed end knots and end derivatives
//! (0.999) getting no gradient, the absolute 1e-6 bin search reproduced, and the identity
//! outside `[-B, B]`. Shared-parameter splines (element-wise layers, a coupling's lower spline)
//! compute their knots once per step and sum per-bin adjoints; per-point splines backpropagate
//! into the hypernetwork's output rows.
//!
//! Checks (unit tests): central differences in `f64` on every parameter of element-wise
//! splines (both orders, with points outside the box), couplings, stacks with permutations and
//! learnable/fixed affines, and joints with conditional splines and conditional couplings — the
//! worst relative error over all parameters is below 1e-5 (tolerance 1e-4). The `f64` engine's
//! loss equals flow-core's `f64` `log_prob` to 1e-10; the `f32` engine's (fast `exp`/`ln`)
//! mean loss agrees with flow-core's `f32` `log_prob` within 2e-5 nats on every instruction set.
//!
//! # Speed
//! Points are processed 128 at a time, each quantity a row of 128 values (batch-innermost), so
//! every per-point loop is a vector loop; the hypernetwork layers are register-blocked matrix
//! products over the tile; the weight gradient accumulates lane-wise and is summed once per
//! step. `f32` `exp`/`ln` are branch-free polynomials (≤ 3 ulp) that vectorize; reported NLLs
//! always come from flow-core's exact code. The hot code is compiled for AVX-512, AVX2+FMA and
//! the baseline, chosen at run time ([`Isa`]); one thread, no `rayon`. Timings against Pyro and
//! how the default configuration was chosen: `docs/circles.md` in the repository
//! (`cargo bench -p flow-train --bench tutorial` reruns them).

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod clock;
pub mod config;
pub mod cost;
pub mod data;
pub mod defaults;
mod dense;
pub mod engine;
pub mod export;
pub mod float;
pub mod init;
pub mod isa;
pub mod noise;
pub mod pyro;
mod rng;
pub mod spec;
mod spline;
pub mod synth;
mod tile;
pub mod train;
pub mod window;

#[cfg(test)]
mod gradcheck;
#[cfg(test)]
mod parity;

pub use config::{Schedule, TrainConfig};
pub use data::Dataset;
pub use defaults::default_config;
pub use engine::Engine;
pub use export::{Exported, LayerParams};
pub use isa::Isa;
pub use spec::{FlowSpec, LayerSpec, ModelSpec, Permutation, SplineSpec};
pub use train::{train, Progress, StopReason, TrainedModel};

/// Everything that can go wrong while setting up or running training.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainError {
    /// The model description is invalid.
    Spec(String),
    /// The data do not fit the model or are not finite.
    Data(String),
    /// flow-core rejected the exported model.
    Export(String),
}

impl std::fmt::Display for TrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainError::Spec(s) => write!(f, "invalid model: {s}"),
            TrainError::Data(s) => write!(f, "invalid data: {s}"),
            TrainError::Export(s) => write!(f, "export: {s}"),
        }
    }
}

impl std::error::Error for TrainError {}
