//! Kernels of the dense hypernetwork on batch tiles.
//!
//! Activations are `[units][T]` (batch-innermost). A forward layer is `out = W·x + b`, blocked
//! four output rows at a time over chunks of `C` points, so each weight is broadcast once per
//! chunk and the accumulators stay in registers. The weight gradient `Σ_t g[o][t]·x[i][t]` is
//! accumulated lane-wise (`L` lanes per weight, summed once per step) so no horizontal sum is
//! needed per tile.

use crate::float::Float;
use crate::tile::{Row, L, T};

/// Output rows per register block.
const R: usize = 4;

/// What to apply to a computed row.
#[derive(Clone, Copy)]
pub(crate) enum Post<'a, F> {
    /// Nothing.
    None,
    /// `max(v, 0)`.
    Relu,
    /// `v` where `mask > 0`, else 0 (the ReLU derivative, `mask` the ReLU's output).
    Mask(&'a [Row<F>]),
}

/// Weights of `W·x` (torch's `W[out][in]`) rearranged in blocks of `R` output rows,
/// input-major within a block (`blocks[b·n_in + i][r] = W[R·b + r][i]`, zero-padded), so the
/// kernel reads them contiguously; built once per step.
#[derive(Clone, Debug, Default)]
pub(crate) struct Blocked<F> {
    n_in: usize,
    n_out: usize,
    w: Vec<[F; R]>,
    b: Vec<[F; R]>,
}

impl<F: Float> Blocked<F> {
    /// Blocks of `W` (`transpose = false`) or `Wᵀ` (`true`, no bias) from `w` (`n_out × n_in`
    /// row-major) and `bias`.
    pub fn set(&mut self, w: &[F], bias: Option<&[F]>, n_out: usize, n_in: usize, transpose: bool) {
        let (rows, cols) = if transpose {
            (n_in, n_out)
        } else {
            (n_out, n_in)
        };
        let at = |r: usize, c: usize| {
            if transpose {
                w[c * n_in + r]
            } else {
                w[r * n_in + c]
            }
        };
        let nb = rows.div_ceil(R);
        self.n_in = cols;
        self.n_out = rows;
        self.w.clear();
        self.b.clear();
        for blk in 0..nb {
            for c in 0..cols {
                let mut v = [F::ZERO; R];
                for (k, vk) in v.iter_mut().enumerate() {
                    if blk * R + k < rows {
                        *vk = at(blk * R + k, c);
                    }
                }
                self.w.push(v);
            }
            let mut v = [F::ZERO; R];
            for (k, vk) in v.iter_mut().enumerate() {
                if let (Some(b), true) = (bias, blk * R + k < rows) {
                    *vk = b[blk * R + k];
                }
            }
            self.b.push(v);
        }
    }
}

/// `out = W·x + b` (or `Wᵀ·x`) with `W` as [`Blocked`], then `post`. `VW` is the vector
/// width in `f32` lanes the code is compiled for (4, 8 or 16); the kernel keeps `R × 2·VW`
/// accumulators (eight vector registers) so that FMA latency is hidden.
#[inline(always)]
pub(crate) fn matmul<F: Float, const VW: usize>(
    w: &Blocked<F>,
    x: &[Row<F>],
    out: &mut [Row<F>],
    post: Post<'_, F>,
) {
    match VW {
        16 => matmul_c::<F, true, 32>(w, x, out, post),
        8 => matmul_c::<F, true, 16>(w, x, out, post),
        _ => matmul_c::<F, false, 8>(w, x, out, post),
    }
}

/// The kernel: `R` rows × `C` points of accumulators.
#[inline(always)]
fn matmul_c<F: Float, const FMA: bool, const C: usize>(
    w: &Blocked<F>,
    x: &[Row<F>],
    out: &mut [Row<F>],
    post: Post<'_, F>,
) {
    let n_in = w.n_in;
    let x = &x[..n_in];
    let n_out = w.n_out;
    for (blk, (wb, bias)) in w.w.chunks_exact(n_in.max(1)).zip(&w.b).enumerate() {
        let wb = &wb[..n_in];
        let r0 = blk * R;
        for c0 in (0..T).step_by(C) {
            let mut acc = [[F::ZERO; C]; R];
            for (a, &bv) in acc.iter_mut().zip(bias) {
                *a = [bv; C];
            }
            for (wi, xi) in wb.iter().zip(x) {
                let xc: &[F; C] = chunk(xi, c0);
                for r in 0..R {
                    fma_row::<F, FMA, C>(&mut acc[r], wi[r], xc);
                }
            }
            let nr = (n_out - r0).min(R);
            for (r, a) in acc.into_iter().enumerate().take(nr) {
                out[r0 + r][c0..c0 + C].copy_from_slice(&a);
            }
        }
    }
    // The activation (or the ReLU derivative's mask) as a separate pass, so the accumulators
    // above never escape to memory.
    match post {
        Post::None => {}
        Post::Relu => {
            for o in out[..n_out].iter_mut() {
                for v in o.iter_mut() {
                    *v = if *v > F::ZERO { *v } else { F::ZERO };
                }
            }
        }
        Post::Mask(m) => {
            for (o, m) in out[..n_out].iter_mut().zip(m) {
                for (v, &mv) in o.iter_mut().zip(m) {
                    *v = if mv > F::ZERO { *v } else { F::ZERO };
                }
            }
        }
    }
}

#[inline(always)]
fn chunk<F, const N: usize>(row: &Row<F>, c0: usize) -> &[F; N] {
    row[c0..c0 + N].try_into().unwrap()
}

/// `acc += w·x` lane-wise.
#[inline(always)]
fn fma_row<F: Float, const FMA: bool, const C: usize>(acc: &mut [F; C], w: F, x: &[F; C]) {
    for l in 0..C {
        acc[l] = F::madd::<FMA>(w, x[l], acc[l]);
    }
}

/// Lane-wise weight and bias gradients of `out = W·x + b` given `g = ∂L/∂out`:
/// `gw[o·n_in + i] += g[o]∘x[i]` and `gb[o] += g[o]`, each folded to `L` lanes.
#[inline(always)]
pub(crate) fn outer<F: Float, const VW: usize>(
    g: &[Row<F>],
    x: &[Row<F>],
    gw: &mut [[F; L]],
    gb: &mut [[F; L]],
) {
    // 4×4 blocks of 16-lane accumulators fill half of AVX-512's registers; narrower vectors
    // take 2×2 blocks.
    if VW >= 16 {
        outer_n::<F, true, 4>(g, x, gw);
    } else if VW >= 8 {
        outer_n::<F, true, 2>(g, x, gw);
    } else {
        outer_n::<F, false, 2>(g, x, gw);
    }
    for (gbo, go) in gb.iter_mut().zip(g) {
        let mut acc = *gbo;
        for c0 in (0..T).step_by(L) {
            let c: &[F; L] = chunk(go, c0);
            for l in 0..L {
                acc[l] += c[l];
            }
        }
        *gbo = acc;
    }
}

#[inline(always)]
fn outer_n<F: Float, const FMA: bool, const N: usize>(
    g: &[Row<F>],
    x: &[Row<F>],
    gw: &mut [[F; L]],
) {
    let n_in = x.len();
    let n_out = g.len();
    let mut o0 = 0;
    while o0 < n_out {
        let no = (n_out - o0).min(N);
        let mut i0 = 0;
        while i0 < n_in {
            let ni = (n_in - i0).min(N);
            // Every edge shape gets its own register block, so no reduction is a lone chain.
            match (no, ni) {
                (4, 4) => outer_block::<F, FMA, 4, 4>(g, x, gw, o0, i0),
                (4, 3) => outer_block::<F, FMA, 4, 3>(g, x, gw, o0, i0),
                (4, 2) => outer_block::<F, FMA, 4, 2>(g, x, gw, o0, i0),
                (4, 1) => outer_block::<F, FMA, 4, 1>(g, x, gw, o0, i0),
                (3, 4) => outer_block::<F, FMA, 3, 4>(g, x, gw, o0, i0),
                (3, 3) => outer_block::<F, FMA, 3, 3>(g, x, gw, o0, i0),
                (3, 2) => outer_block::<F, FMA, 3, 2>(g, x, gw, o0, i0),
                (3, 1) => outer_block::<F, FMA, 3, 1>(g, x, gw, o0, i0),
                (2, 4) => outer_block::<F, FMA, 2, 4>(g, x, gw, o0, i0),
                (2, 3) => outer_block::<F, FMA, 2, 3>(g, x, gw, o0, i0),
                (2, 2) => outer_block::<F, FMA, 2, 2>(g, x, gw, o0, i0),
                (2, 1) => outer_block::<F, FMA, 2, 1>(g, x, gw, o0, i0),
                (1, 4) => outer_block::<F, FMA, 1, 4>(g, x, gw, o0, i0),
                (1, 3) => outer_block::<F, FMA, 1, 3>(g, x, gw, o0, i0),
                (1, 2) => outer_block::<F, FMA, 1, 2>(g, x, gw, o0, i0),
                _ => outer_block::<F, FMA, 1, 1>(g, x, gw, o0, i0),
            }
            i0 += ni;
        }
        o0 += no;
    }
}

#[inline(always)]
fn outer_block<F: Float, const FMA: bool, const NO: usize, const NI: usize>(
    g: &[Row<F>],
    x: &[Row<F>],
    gw: &mut [[F; L]],
    o0: usize,
    i0: usize,
) {
    let n_in = x.len();
    let mut acc = [[[F::ZERO; L]; NI]; NO];
    for c0 in (0..T).step_by(L) {
        let mut gc = [[F::ZERO; L]; NO];
        for (o, v) in gc.iter_mut().enumerate() {
            *v = g[o0 + o][c0..c0 + L].try_into().unwrap();
        }
        let mut xc = [[F::ZERO; L]; NI];
        for (i, v) in xc.iter_mut().enumerate() {
            *v = x[i0 + i][c0..c0 + L].try_into().unwrap();
        }
        for o in 0..NO {
            for i in 0..NI {
                for l in 0..L {
                    acc[o][i][l] = F::madd::<FMA>(gc[o][l], xc[i][l], acc[o][i][l]);
                }
            }
        }
    }
    for o in 0..NO {
        for i in 0..NI {
            let dst = &mut gw[(o0 + o) * n_in + i0 + i];
            let mut d = *dst;
            for l in 0..L {
                d[l] += acc[o][i][l];
            }
            *dst = d;
        }
    }
}
