//! [`Density`]: what [`Flow`](crate::Flow), [`ConditionalFlow`](crate::ConditionalFlow) and
//! [`JointFlow`](crate::JointFlow) share, for code written once over all three (a firmware's
//! workload, a C interface, the tests).

use crate::error::Error;
use crate::real::Real;
use rand_core::RngCore;

/// A density `p(x | c)` on `R^D` with a context `c ∈ R^C` (`C = 0`: unconditional), that
/// scores and samples.
///
/// The flows' own methods of the same names remain (a plain flow's `log_prob` takes no
/// context); these call them.
pub trait Density<const D: usize, const C: usize> {
    /// The dimension `D` of `x`.
    fn dim(&self) -> usize {
        D
    }

    /// The context size `C` (0 for an unconditional density).
    fn context_dim(&self) -> usize {
        C
    }

    /// `log p(x | context)`; `-inf` outside the support.
    fn log_prob<T: Real>(&self, x: &[T; D], context: &[T; C]) -> Result<T, Error>;

    /// One sample `x ~ p(· | context)`.
    fn sample<T: Real, R: RngCore + ?Sized>(
        &self,
        rng: &mut R,
        context: &[T; C],
    ) -> Result<[T; D], Error>;
}
