//! Normalizing flows for microcontrollers: `no_std`, no allocator, no `unsafe`, and the same
//! numbers as Pyro 1.9.2.
//!
//! A flow pushes a standard Normal through learnable bijections; `flow-core` scores
//! ([`Flow::log_prob`]) and samples ([`Flow::sample`]) such flows with parameters borrowed from
//! wherever they are stored — in flash, on a device. Pyro's tutorial, first a fixed flow: a
//! standard Normal through `Affine(3, 0.5)` and `Exp` is a LogNormal(3, 0.5):
//!
//! ```
//! use flow_core::{Affine, Exp, Flow, Layer};
//! use rand_core::SeedableRng;
//!
//! let flow: Flow<1> = Flow::new(&[
//!     Layer::Affine(Affine::scalar(1, 3.0, 0.5)?),
//!     Layer::Exp(Exp::new(1)?),
//! ])?;
//!
//! // The density equals LogNormal(3, 0.5)'s closed form.
//! let x = 20.0f64;
//! let (mu, sigma) = (3.0f64, 0.5f64);
//! let closed = -(x.ln() - mu).powi(2) / (2.0 * sigma * sigma)
//!     - (x * sigma * (2.0 * core::f64::consts::PI).sqrt()).ln();
//! assert!((flow.log_prob(&[x])? - closed).abs() < 1e-12);
//!
//! // Sampling works with any rand_core RNG.
//! let mut rng = rand_pcg::Pcg32::seed_from_u64(7);
//! let s: [f32; 1] = flow.sample(&mut rng)?;
//! assert!(s[0] > 0.0);
//! # Ok::<(), flow_core::Error>(())
//! ```
//!
//! A learnable element-wise rational spline (Pyro's `Spline(1, count_bins=4)`), its
//! unconstrained parameters stored as little-endian `f32` bytes, read in place:
//!
//! ```
//! use flow_core::{encode_f32s, Flow, Layer, Order, Spline, SplineShape, Weights};
//!
//! let shape = SplineShape::new(4, 3.0, Order::Linear)?;
//! // uw[4] | uh[4] | ud[3] | ul[4], as in Pyro's state_dict.
//! let params = [
//!     -1.6f32, 0.2, 2.2, 0.8, 1.2, -0.4, -1.4, 0.9, 0.9, 0.7, 0.9, 0.9, 0.5, 0.8, 0.7,
//! ];
//! let mut bytes = [0u8; 60];
//! encode_f32s(&params, &mut bytes).unwrap();
//! let spline = Spline::new(1, shape, Weights::new(&bytes).unwrap())?;
//! let flow: Flow<1> = Flow::new(&[Layer::Spline(spline)])?;
//!
//! let x = [0.5f32];
//! let (z, log_det) = flow.inverse_and_log_det(&x)?;
//! let lp = flow.log_prob(&x)?;
//! // log p(x) = log N(z) + log|dz/dx|
//! assert!((lp - (-0.5 * z[0] * z[0] - 0.918_938_5 + log_det)).abs() < 1e-5);
//! // Outside [-B, B] the spline is the identity.
//! assert_eq!(flow.forward(&[7.0f32])?, [7.0]);
//! # Ok::<(), flow_core::Error>(())
//! ```
//!
//! # What is here, bottom-up
//! Each module imports only those listed before it (the order of `lib.rs`):
//! - the errors: [`Error`] and [`FormatError`], with every message as text
//!   ([`Error::text`]);
//! - numerics: [`Real`], [`Weights`], scratch ([`Workspace`]) and the standard Normal
//!   [`base`];
//! - the transforms: [`spline`] (the element-wise monotonic rational spline, linear and
//!   quadratic order, with Pyro's exact parameterization; its bin formulas in [`spline::bin`],
//!   shared with the trainer; the learnable [`Spline`] layer), [`nn`] (the dense hypernetwork
//!   [`DenseNN`]), [`affine`] ([`Affine`], [`Exp`]), [`permute`] ([`Permute`]), [`coupling`]
//!   ([`SplineCoupling`], unconditional as Pyro's and conditional) and [`ConditionalSpline`];
//! - the layer machinery: [`Layer`], and [`Density`], what the flows share;
//! - the flows: [`flow`] ([`Flow`]) and [`conditional`] ([`ConditionalFlow`] and the joint
//!   `p(x₁)·p(x₂|x₁)` [`JointFlow`]);
//! - [`model`]: the model file format, validated and read in place by [`Model`].
//!
//! Every type computes generically over [`Real`] (`f32` on the device; `f64` too, which the
//! tests use to match Pyro's float64 numbers at 1e-9). Parameters are always `f32`.
//!
//! # Never a panic
//! Every operation returns a [`Result`]; none panics, on any input. NaN or infinite inputs are
//! [`Error::NonFiniteInput`]; finite values beyond the spline box take the identity tails;
//! a NaN arising inside is [`Error::Numerical`]. Points exactly on knots and on `±B` follow
//! Pyro's bin search (see [`spline`]).
//!
//! # Features
//! - `std`: implements `std::error::Error` for [`Error`]; implies `alloc`.
//! - `alloc`: the owned model writer `model::ModelBuilder`, for desktop tools.
//! - `micromath`: `f32` `exp` through micromath's approximation instead of libm (micromath's
//!   `ln` and `sqrt` are too coarse for log-densities and are not used). Faster, but no longer
//!   Pyro's numbers to `f32` precision: on the tutorial coupling model the log-density moves by
//!   3.9e-3 nats on average and up to 0.31 nats in flat regions (`tests/tests/micromath.rs`).
//!   Off by default.
//! - Layer kinds `affine`, `exp`, `spline`, `coupling`, `permute`, `conditional-spline`, and
//!   the spline order `quadratic` (the linear order is always there): all in the default
//!   features. A device build with `default-features = false` and only the kinds its models
//!   use leaves the others' code out of flash; [`Layer`] then has only those variants, and
//!   loading a model file that needs a missing one is [`Error::Unsupported`] naming the
//!   feature (a quadratic [`SplineShape`] likewise), never a panic. The tutorial's
//!   `spline_coupling` needs only `coupling`.

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// A build that leaves layer kinds out keeps their types (public API) but not their use by
// `Layer`: their crate-internal helpers are then dead code.
#![cfg_attr(
    not(all(
        feature = "affine",
        feature = "exp",
        feature = "spline",
        feature = "coupling",
        feature = "permute",
        feature = "conditional-spline",
        feature = "quadratic"
    )),
    allow(dead_code, unused_imports)
)]

#[cfg(feature = "alloc")]
extern crate alloc;

// The modules bottom-up: each imports only modules listed before it (one comment each, so
// that the order stays as written).
// 1. The error types (a leaf).
mod error;
// 2. Numerics: the scalar type,
mod real;
// branch-free functions for blocks of points,
#[cfg(feature = "wide")]
mod flat;
// borrowed parameters,
mod weights;
// the model file's wire reader,
mod wire;
// scratch,
mod workspace;
// the standard Normal base.
pub mod base;
// 3. Transforms: the spline (parameters, knots, tables, bin formulas, layer),
pub mod spline;
// the hypernetwork,
pub mod nn;
// the fixed transforms,
pub mod affine;
// the permutation,
pub mod permute;
// the coupling,
pub mod coupling;
// the conditional spline.
mod conditional_spline;
// 4. The layer machinery the flows share,
mod chain;
// many points at once,
#[cfg(feature = "wide")]
mod block;
// and the interface they implement.
mod density;
// 5. The flows: plain,
pub mod flow;
// conditional and joint.
pub mod conditional;
// 6. The model file (format, decoder, `Model`, writer).
pub mod model;
// 7. Streams of readings scored by windows of a windowed model.
pub mod stream;

pub use affine::{Affine, Exp};
pub use base::StdNormal;
pub use conditional::{ConditionalFlow, ConditionalSpline, Conditioned, JointFlow};
pub use coupling::SplineCoupling;
pub use density::Density;
pub use error::{Capacity, Error, Feature, LayerError, Piece};
pub use flow::{Flow, Layer};
pub use model::{FormatError, Model};
pub use nn::DenseNN;
pub use permute::Permute;
pub use real::Real;
pub use spline::{Direction, Order, Spline, SplineShape};
pub use weights::{encode_f32s, Weights};
pub use workspace::Workspace;
