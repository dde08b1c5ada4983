//! The trainer's seeded generator: initial parameters, shuffles, splits and permutations.

use rand_core::{RngCore, SeedableRng};

/// A seeded generator (PCG-64 MCG): initial parameters, minibatch shuffles, validation splits.
#[derive(Clone, Debug)]
pub struct Rng(rand_pcg::Pcg64Mcg);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(rand_pcg::Pcg64Mcg::seed_from_u64(seed))
    }

    /// Uniform on `[0, 1)` with 24 random bits.
    pub fn uniform(&mut self) -> f32 {
        (self.0.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
    }

    /// A standard Normal draw: Box–Muller on two 24-bit uniforms, `r cos(2π u₂)` with libm's
    /// `sincosf`. This is flow-core's sampler as it was before its device-oriented `f32` sine
    /// (`StdNormal::sample`), kept here so that the generated data, the initial parameters
    /// and so every trained file stay exactly what they were.
    pub fn normal(&mut self) -> f32 {
        const SCALE: f32 = 1.0 / (1u32 << 24) as f32;
        let a = self.0.next_u32() >> 8;
        let b = self.0.next_u32() >> 8;
        let u1 = (a + 1) as f32 * SCALE;
        let u2 = b as f32 * SCALE;
        let r = libm::sqrtf(-2.0 * libm::logf(u1));
        r * libm::sincosf(core::f64::consts::TAU as f32 * u2).1
    }

    /// Uniform index in `0..n` (`n >= 1`).
    pub fn below(&mut self, n: usize) -> usize {
        // Lemire's multiply-shift; the bias for n far below 2^64 is negligible here.
        ((self.0.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<X>(&mut self, v: &mut [X]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }

    /// A uniformly random permutation of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        self.shuffle(&mut p);
        p
    }
}
