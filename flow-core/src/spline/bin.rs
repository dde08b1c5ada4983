//! The formulas of one bin: forward, inverse and `log|J|`, for both orders (see the
//! [module docs](super) for the formulas).
//!
//! They are written once, generic over the number type `T` and over [`BinOps`], which says how
//! to take a logarithm or a square root and how to choose between two branches. flow-core
//! evaluates them with [`RealOps`] (the [`Real`] functions, and a branch: only the side taken is
//! computed); the trainer (`flow-train`) evaluates the same formulas with its own
//! vectorizable `ln` and a `pick` that computes both sides and blends, so that its loops over
//! many points compile to SIMD code. Trainer and device therefore compute each bin in the same
//! operation order.

use crate::real::Real;
use core::ops::{Add, Div, Mul, Neg, Sub};

/// The arithmetic the bin formulas are written in: a copyable, ordered number with `+ - × ÷`
/// and negation (`f32` and `f64`).
pub trait Arith:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
}

impl<T> Arith for T where
    T: Copy
        + PartialOrd
        + Add<Output = T>
        + Sub<Output = T>
        + Mul<Output = T>
        + Div<Output = T>
        + Neg<Output = T>
{
}

/// The operations of the bin formulas beyond arithmetic, for numbers of type `T`: constants,
/// `ln`, `sqrt`, `|·|`, and the choice between two branches.
pub trait BinOps<T: Arith> {
    /// The constant `v` in `T` (rounded to nearest).
    fn lit(v: f64) -> T;
    /// Natural logarithm.
    fn ln(v: T) -> T;
    /// Square root.
    fn sqrt(v: T) -> T;
    /// Absolute value.
    fn abs(v: T) -> T;
    /// `if c { a() } else { b() }`. An implementation may compute both sides and blend (for
    /// SIMD lanes); the closures are pure, so the value is the same either way.
    fn pick<R: Copy>(c: bool, a: impl FnOnce() -> R, b: impl FnOnce() -> R) -> R;
}

/// flow-core's [`BinOps`]: [`Real`]'s functions, and a branch that computes only the side
/// taken.
#[derive(Clone, Copy, Debug)]
pub struct RealOps;

impl<T: Real> BinOps<T> for RealOps {
    #[inline(always)]
    fn lit(v: f64) -> T {
        T::from_f64(v)
    }
    #[inline(always)]
    fn ln(v: T) -> T {
        v.ln()
    }
    #[inline(always)]
    fn sqrt(v: T) -> T {
        v.sqrt()
    }
    #[inline(always)]
    fn abs(v: T) -> T {
        v.abs()
    }
    #[inline(always)]
    fn pick<R: Copy>(c: bool, a: impl FnOnce() -> R, b: impl FnOnce() -> R) -> R {
        if c {
            a()
        } else {
            b()
        }
    }
}

/// The quantities of the bin a point falls in: its left knots `x_k`, `y_k`, its width `Δx`
/// and height `Δy`, the slope `s = Δy/Δx` and the knot derivatives `δ_k`, `δ_{k+1}`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bin<T> {
    /// `x_k`.
    pub x_k: T,
    /// `Δx_k`.
    pub dx: T,
    /// `y_k`.
    pub y_k: T,
    /// `Δy_k`.
    pub dy: T,
    /// `s_k = Δy_k/Δx_k`.
    pub s: T,
    /// `δ_k`.
    pub d_k: T,
    /// `δ_{k+1}`.
    pub d_k1: T,
}

/// A bin of the linear-rational spline, with its weights (see [`Bin::linear`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearBin<T> {
    /// `x_k`.
    pub x_k: T,
    /// `Δx_k`.
    pub dx: T,
    /// `λ_k`.
    pub lambda: T,
    /// `wb = sqrt(δ_k/δ_{k+1})`.
    pub wb: T,
    /// `wc = (λ δ_k + (1-λ) wb δ_{k+1}) / s_k`.
    pub wc: T,
    /// `ya = y_k`.
    pub ya: T,
    /// `yb = y_k + Δy_k`.
    pub yb: T,
    /// `yc = ((1-λ) ya + λ wb yb) / ((1-λ) + λ wb)`.
    pub yc: T,
}

impl<T: Arith> Bin<T> {
    /// The bin from its edges `x_k, x_{k+1}`, `y_k, y_{k+1}` and knot derivatives.
    #[inline]
    pub fn from_edges((x_k, x_k1): (T, T), (y_k, y_k1): (T, T), d_k: T, d_k1: T) -> Self {
        let (dx, dy) = (x_k1 - x_k, y_k1 - y_k);
        Self::new(x_k, dx, y_k, dy, d_k, d_k1)
    }

    /// The bin from its left knots, width, height and knot derivatives.
    #[inline]
    pub fn new(x_k: T, dx: T, y_k: T, dy: T, d_k: T, d_k1: T) -> Self {
        Self {
            x_k,
            dx,
            y_k,
            dy,
            s: dy / dx,
            d_k,
            d_k1,
        }
    }
}

/// The formulas, written once and emitted twice: with flow-core's inlining (`inline` hints on
/// the shared parts, the rest left to the compiler: the device's code size and instruction
/// counts) and, as the `…_inlined` methods, always inlined (the trainer's loops over many
/// points, which must inline them to vectorize).
macro_rules! formulas {
    (
        $(#[$outer:meta])*;
        $inner:meta;
        $den:ident, $log_det:ident, $qf:ident, $qi:ident, $lin:ident, $lf:ident, $li:ident
    ) => {
        impl<T: Arith> Bin<T> {
            /// `den = s + c·t`, evaluated as `s (θ² + (1-θ)²) + (δ_k + δ_{k+1}) t`: the same
            /// value as a sum of non-negative terms for `θ` in `[0, 1]`, so no cancellation.
            #[$inner]
            fn $den<M: BinOps<T>>(&self, theta: T, t: T) -> T {
                let one_m = M::lit(1.0) - theta;
                self.s * (theta * theta + one_m * one_m) + (self.d_k + self.d_k1) * t
            }

            /// `ln(s² (δ_{k+1} θ² + 2 s t + δ_k (1-θ)²)) - 2 ln(den)`.
            #[$inner]
            fn $log_det<M: BinOps<T>>(&self, theta: T, t: T, den: T) -> T {
                let one_m = M::lit(1.0) - theta;
                let num = self.s
                    * self.s
                    * (self.d_k1 * theta * theta
                        + (self.s + self.s) * t
                        + self.d_k * one_m * one_m);
                M::ln(num) - (M::ln(den) + M::ln(den))
            }

            /// Rational-quadratic `(y, log|dy/dx|)` at `x` (`log|J|` 0 unless `want`).
            $(#[$outer])*
            pub fn $qf<M: BinOps<T>>(&self, x: T, want: bool) -> (T, T) {
                let theta = (x - self.x_k) / self.dx;
                let t = theta * (M::lit(1.0) - theta);
                let den = self.$den::<M>(theta, t);
                let y = self.y_k + self.dy * (self.s * theta * theta + self.d_k * t) / den;
                let ld = if want {
                    self.$log_det::<M>(theta, t, den)
                } else {
                    M::lit(0.0)
                };
                (y, ld)
            }

            /// Rational-quadratic `(x, log|dx/dy|)` at `y` (`log|J|` 0 unless `want`).
            $(#[$outer])*
            pub fn $qi<M: BinOps<T>>(&self, y: T, want: bool) -> (T, T) {
                let zero = M::lit(0.0);
                let delta = y - self.y_k;
                let c = self.d_k + self.d_k1 - (self.s + self.s);
                let a = delta * c + self.dy * (self.s - self.d_k);
                let b = self.dy * self.d_k - delta * c;
                let q = -self.s * delta;
                let disc = b * b - M::lit(4.0) * a * q;
                let disc = M::pick(disc > zero, || disc, || zero);
                let theta = (q + q) / (-b - M::sqrt(disc));
                let x = theta * self.dx + self.x_k;
                let ld = if want {
                    let t = theta * (M::lit(1.0) - theta);
                    -self.$log_det::<M>(theta, t, self.$den::<M>(theta, t))
                } else {
                    zero
                };
                (x, ld)
            }

            /// The linear-rational bin of `λ_k = lambda`.
            $(#[$outer])*
            pub fn $lin<M: BinOps<T>>(&self, lambda: T) -> LinearBin<T> {
                let wb = M::sqrt(self.d_k / self.d_k1);
                let one_m_l = M::lit(1.0) - lambda;
                let wc = (lambda * self.d_k + one_m_l * wb * self.d_k1) / self.s;
                let ya = self.y_k;
                let yb = self.dy + self.y_k;
                let yc = (one_m_l * ya + lambda * wb * yb) / (one_m_l + lambda * wb);
                LinearBin {
                    x_k: self.x_k,
                    dx: self.dx,
                    lambda,
                    wb,
                    wc,
                    ya,
                    yb,
                    yc,
                }
            }
        }

        impl<T: Arith> LinearBin<T> {
            // The rational functions are evaluated in a rearranged but algebraically identical
            // form that subtracts nearby `y` values first (e.g. `ya (λ-θ) + wc yc θ = ya·den +
            // wc θ (yc-ya)`), so that `f32` keeps its precision where the spline is flat or `y`
            // is close to a weight point.

            /// `(y, log|dy/dx|)` at `x` (`log|J|` 0 unless `want`).
            $(#[$outer])*
            pub fn $lf<M: BinOps<T>>(&self, x: T, want: bool) -> (T, T) {
                let (l, wb, wc) = (self.lambda, self.wb, self.wc);
                let (ya, yb, yc) = (self.ya, self.yb, self.yc);
                let one = M::lit(1.0);
                let theta = (x - self.x_k) / self.dx;
                let (y, den, dnum) = M::pick(
                    theta <= l,
                    || {
                        let den = (l - theta) + wc * theta;
                        (ya + wc * theta * (yc - ya) / den, den, wc * l * (yc - ya))
                    },
                    || {
                        let den = wc * (one - theta) + wb * (theta - l);
                        (
                            yc + wb * (theta - l) * (yb - yc) / den,
                            den,
                            wb * wc * (one - l) * (yb - yc),
                        )
                    },
                );
                let ld = if want {
                    let lden = M::ln(M::abs(den));
                    M::ln(dnum / self.dx) - (lden + lden)
                } else {
                    M::lit(0.0)
                };
                (y, ld)
            }

            /// `(x, log|dx/dy|)` at `y` (`log|J|` 0 unless `want`).
            $(#[$outer])*
            pub fn $li<M: BinOps<T>>(&self, y: T, want: bool) -> (T, T) {
                let (l, wb, wc) = (self.lambda, self.wb, self.wc);
                let (ya, yb, yc) = (self.ya, self.yb, self.yc);
                let one = M::lit(1.0);
                // y <= yc: num = λ (ya - y),                  den = wc (y - yc) + (ya - y)
                // y >  yc: num = wc (y - yc) + λ wb (yb - y), den = wc (y - yc) + wb (yb - y)
                let (num, den, dnum) = M::pick(
                    y <= yc,
                    || (l * (ya - y), wc * (y - yc) + (ya - y), wc * l * (yc - ya)),
                    || {
                        let (a, b) = (wc * (y - yc), yb - y);
                        (a + l * wb * b, a + wb * b, wb * wc * (one - l) * (yb - yc))
                    },
                );
                let theta = num / den;
                let x = theta * self.dx + self.x_k;
                let ld = if want {
                    let lden = M::ln(M::abs(den));
                    M::ln(dnum * self.dx) - (lden + lden)
                } else {
                    M::lit(0.0)
                };
                (x, ld)
            }
        }
    };
}

formulas!(
    ;
    inline;
    quadratic_den,
    quadratic_log_det,
    quadratic_forward,
    quadratic_inverse,
    linear,
    forward,
    inverse
);
formulas!(
    #[inline(always)];
    inline(always);
    quadratic_den_inlined,
    quadratic_log_det_inlined,
    quadratic_forward_inlined,
    quadratic_inverse_inlined,
    linear_inlined,
    forward_inlined,
    inverse_inlined
);
