//! Trained parameters as flow-core layers, and flow-core's exact `log_prob` on them.
//!
//! Every layer's parameters are already in flow-core's storage layout; exporting only encodes
//! them as little-endian `f32` bytes (`flow_core::encode_f32s`) and builds the layers over
//! those bytes.

use crate::spec::{FlowSpec, LayerSpec, ModelSpec};
use crate::TrainError;
use flow_core::{
    encode_f32s, Affine, ConditionalSpline, DenseNN, Direction, Layer, Permute, Real, Spline,
    SplineCoupling, StdNormal, Weights, Workspace,
};

/// Widest hypernetwork layer [`Exported`] can evaluate.
pub const MAX_HIDDEN: usize = 1024;
/// Most spline bins [`Exported`] can evaluate (flow-core's own limit).
pub const MAX_BINS: usize = flow_core::spline::MAX_BINS_BY_MIN_SIZE;

/// The parameters of one layer, split as flow-core's constructors take them.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerParams {
    /// `Spline`: `[uw | uh | ud | ul]`, each row-major by dimension.
    Spline(Vec<f32>),
    /// `SplineCoupling`: the lower spline's parameters and the hypernetwork's
    /// (`W0, b0, W1, b1, …`, each `W` as `[out][in]`).
    Coupling {
        /// The lower element-wise spline (`Spline` layout over `split` dimensions).
        lower: Vec<f32>,
        /// The hypernetwork.
        hypernet: Vec<f32>,
    },
    /// `ConditionalSpline`: the hypernetwork's parameters.
    ConditionalSpline(Vec<f32>),
    /// `Permute`: the permutation (no parameters).
    Permute(Vec<u8>),
    /// `Affine::per_dim`: `[loc (dim) | scale (dim)]`, learnable or fixed.
    Affine(Vec<f32>),
}

/// Splits a model's flat parameter vector into per-layer [`LayerParams`], per flow.
pub fn split_params(spec: &ModelSpec, params: &[f32]) -> Result<Vec<Vec<LayerParams>>, TrainError> {
    if params.len() != spec.param_count() {
        return Err(TrainError::Spec(format!(
            "{} parameters given, the model has {}",
            params.len(),
            spec.param_count()
        )));
    }
    let mut off = 0;
    let mut out = Vec::new();
    for f in spec.flows() {
        let mut layers = Vec::new();
        for l in &f.layers {
            let n = l.param_count(f.dim, f.context);
            let p = &params[off..off + n];
            off += n;
            layers.push(match l {
                LayerSpec::Spline(_) => LayerParams::Spline(p.to_vec()),
                LayerSpec::Coupling { split, spline, .. } => {
                    let nl = split * spline.params_per_dim();
                    LayerParams::Coupling {
                        lower: p[..nl].to_vec(),
                        hypernet: p[nl..].to_vec(),
                    }
                }
                LayerSpec::ConditionalSpline { .. } => LayerParams::ConditionalSpline(p.to_vec()),
                LayerSpec::Permute(perm) => {
                    LayerParams::Permute(perm.iter().map(|&v| v as u8).collect())
                }
                LayerSpec::Affine {
                    loc,
                    scale,
                    learnable,
                } => LayerParams::Affine(if *learnable {
                    p.to_vec()
                } else {
                    loc.iter().chain(scale.iter()).copied().collect()
                }),
            });
        }
        out.push(layers);
    }
    Ok(out)
}

fn bytes(v: &[f32]) -> Vec<u8> {
    let mut b = vec![0u8; v.len() * 4];
    encode_f32s(v, &mut b);
    b
}

/// One layer's bytes.
#[derive(Clone, Debug)]
enum Blob {
    One(Vec<u8>),
    Two(Vec<u8>, Vec<u8>),
}

/// A trained model as flow-core sees it: the layers' parameter bytes, from which flow-core
/// layers are built on demand.
#[derive(Clone, Debug)]
pub struct Exported {
    spec: ModelSpec,
    blobs: Vec<Vec<Blob>>,
}

fn ferr(e: flow_core::Error) -> TrainError {
    TrainError::Export(format!("{e}"))
}

fn weights(b: &[u8]) -> Result<Weights<'_>, TrainError> {
    Weights::new(b).ok_or_else(|| TrainError::Export("byte length".into()))
}

impl Exported {
    /// Encodes `params` (flat, in the model's order) for flow-core.
    pub fn new(spec: &ModelSpec, params: &[f32]) -> Result<Self, TrainError> {
        spec.validate()?;
        for f in spec.flows() {
            for l in &f.layers {
                if let LayerSpec::Coupling { hidden, .. }
                | LayerSpec::ConditionalSpline { hidden, .. } = l
                {
                    if hidden.iter().any(|&h| h > MAX_HIDDEN) {
                        return Err(TrainError::Spec(format!(
                            "hidden layers up to {MAX_HIDDEN}"
                        )));
                    }
                }
            }
        }
        let blobs = split_params(spec, params)?
            .into_iter()
            .map(|layers| {
                layers
                    .into_iter()
                    .map(|l| match l {
                        LayerParams::Spline(p)
                        | LayerParams::ConditionalSpline(p)
                        | LayerParams::Affine(p) => Blob::One(bytes(&p)),
                        LayerParams::Coupling { lower, hypernet } => {
                            Blob::Two(bytes(&lower), bytes(&hypernet))
                        }
                        LayerParams::Permute(p) => Blob::One(p),
                    })
                    .collect()
            })
            .collect();
        let e = Self {
            spec: spec.clone(),
            blobs,
        };
        for i in 0..e.blobs.len() {
            e.layers(i)?;
        }
        Ok(e)
    }

    /// The model.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// flow-core layers of flow `i` (0, or 1 for a joint's conditional), in forward order.
    pub fn layers(&self, i: usize) -> Result<Vec<Layer<'_>>, TrainError> {
        let flows = self.spec.flows();
        let f: &FlowSpec = flows
            .get(i)
            .ok_or_else(|| TrainError::Export("no such flow".into()))?;
        let mut out = Vec::new();
        for (l, blob) in f.layers.iter().zip(&self.blobs[i]) {
            out.push(match (l, blob) {
                (LayerSpec::Spline(s), Blob::One(b)) => {
                    Layer::Spline(Spline::new(f.dim, s.shape()?, weights(b)?).map_err(ferr)?)
                }
                (
                    LayerSpec::Coupling {
                        split,
                        hidden,
                        spline,
                    },
                    Blob::Two(lo, nn),
                ) => {
                    let shape = spline.shape()?;
                    let lower = Spline::new(*split, shape, weights(lo)?).map_err(ferr)?;
                    let p = (f.dim - split) * shape.params_per_dim();
                    let nn =
                        DenseNN::new(split + f.context, hidden, p, weights(nn)?).map_err(ferr)?;
                    Layer::Coupling(
                        SplineCoupling::new(lower, f.dim - split, shape, nn, f.context)
                            .map_err(ferr)?,
                    )
                }
                (LayerSpec::ConditionalSpline { hidden, spline }, Blob::One(b)) => {
                    let shape = spline.shape()?;
                    let nn = DenseNN::new(
                        f.context,
                        hidden,
                        f.dim * shape.params_per_dim(),
                        weights(b)?,
                    )
                    .map_err(ferr)?;
                    Layer::ConditionalSpline(
                        ConditionalSpline::new(f.dim, shape, nn).map_err(ferr)?,
                    )
                }
                (LayerSpec::Permute(_), Blob::One(b)) => {
                    Layer::Permute(Permute::new(b).map_err(ferr)?)
                }
                (LayerSpec::Affine { .. }, Blob::One(b)) => {
                    Layer::Affine(Affine::per_dim(f.dim, weights(b)?).map_err(ferr)?)
                }
                _ => return Err(TrainError::Export("layer/parameter mismatch".into())),
            });
        }
        Ok(out)
    }

    /// `log p(x)` of each row of `data` (row-major, `dim` columns) by flow-core's code, in
    /// precision `R` (`f32` as on a device, `f64` for the most exact value). A point flow-core
    /// rejects (e.g. a numerical failure) gives NaN.
    pub fn log_probs<R: Real>(&self, data: &[f32]) -> Result<Vec<f64>, TrainError> {
        let d = self.spec.dim();
        if d == 0 || !data.len().is_multiple_of(d) {
            return Err(TrainError::Data(
                "data length is not a multiple of dim".into(),
            ));
        }
        let flows = self.spec.flows();
        let layers: Vec<Vec<Layer<'_>>> = (0..flows.len())
            .map(|i| self.layers(i))
            .collect::<Result<_, _>>()?;
        let mut ws = Box::new(Workspace::<R, MAX_HIDDEN, MAX_BINS>::new());
        let mut out = Vec::with_capacity(data.len() / d);
        let mut x = vec![R::ZERO; d];
        let mut v = vec![R::ZERO; d];
        let mut lds = vec![R::ZERO; d];
        for row in data.chunks_exact(d) {
            for (a, &b) in x.iter_mut().zip(row) {
                *a = R::from_f32(b);
            }
            let mut lp = 0.0f64;
            let mut col = 0;
            for (f, ls) in flows.iter().zip(&layers) {
                let ctx = &x[..f.context];
                let vv = &mut v[..f.dim];
                vv.copy_from_slice(&x[col..col + f.dim]);
                let ld = &mut lds[..f.dim];
                let mut total = R::ZERO;
                let mut ok = true;
                for l in ls.iter().rev() {
                    match l.apply(vv, ctx, ld, Direction::Inverse, &mut ws) {
                        Ok(t) => total += t,
                        Err(_) => {
                            ok = false;
                            break;
                        }
                    }
                }
                lp += if ok {
                    (StdNormal::log_prob(vv) + total).to_f64()
                } else {
                    f64::NAN
                };
                col += f.dim;
            }
            out.push(lp);
        }
        Ok(out)
    }

    /// Mean negative log-likelihood (nats per point) of `data` by flow-core, in `R`.
    pub fn nll<R: Real>(&self, data: &[f32]) -> Result<f64, TrainError> {
        let lp = self.log_probs::<R>(data)?;
        Ok(-lp.iter().sum::<f64>() / lp.len().max(1) as f64)
    }
}

/// NumPy's default (linear) quantile `q` of `sorted` (ascending, not empty): what `fit`'s
/// stored thresholds and the plots' views use.
pub fn quantile(sorted: &[f32], q: f64) -> f32 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = pos - lo as f64;
    (sorted[lo] as f64 * (1.0 - t) + sorted[hi] as f64 * t) as f32
}

/// Area under the ROC curve of log-densities as a normality score ("normal rows score
/// higher"): the probability that a normal row's score exceeds an anomalous row's, ties
/// counting half (Mann–Whitney U with average ranks). NaN scores count as `-inf`. `eval
/// --anomalies` prints it for [`Exported::log_probs`]-style scores.
pub fn auroc(normal: &[f64], anomalous: &[f64]) -> f64 {
    let fix = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
    let mut all: Vec<(f64, bool)> = normal
        .iter()
        .map(|&v| (fix(v), true))
        .chain(anomalous.iter().map(|&v| (fix(v), false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum = 0.0f64;
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their average.
        let avg = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg * all[i..j].iter().filter(|e| e.1).count() as f64;
        i = j;
    }
    let (n, m) = (normal.len() as f64, anomalous.len() as f64);
    (rank_sum - n * (n + 1.0) / 2.0) / (n * m)
}

#[cfg(test)]
mod auroc_tests {
    use super::auroc;

    #[test]
    fn auroc_counts_pairs_and_half_ties() {
        assert_eq!(auroc(&[3.0, 4.0], &[1.0, 2.0]), 1.0);
        assert_eq!(auroc(&[1.0, 2.0], &[3.0, 4.0]), 0.0);
        assert_eq!(auroc(&[1.0, 1.0], &[1.0]), 0.5);
        // Pairs (normal, anomalous): (2,1) win, (2,2) tie, (2,3) loss, (5,·) 3 wins → 4.5/6.
        assert_eq!(auroc(&[2.0, 5.0], &[1.0, 2.0, 3.0]), 4.5 / 6.0);
        assert_eq!(auroc(&[0.0], &[f64::NAN]), 1.0);
    }
}
