//! Architecture descriptions: what to build, independent of any parameters.

use flow_core::{Order, SplineShape};

/// Bins, bound and order of a rational spline (flow-core's [`SplineShape`], in plain fields).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SplineSpec {
    /// Number of bins `K` (2..=1000).
    pub bins: usize,
    /// The box `[-B, B]`; the spline is the identity outside.
    pub bound: f32,
    /// Linear-rational (Pyro's default) or rational-quadratic.
    pub order: Order,
}

impl SplineSpec {
    /// A linear-order spline (Pyro's default) with `bins` bins and bound `bound`.
    pub fn linear(bins: usize, bound: f32) -> Self {
        Self {
            bins,
            bound,
            order: Order::Linear,
        }
    }

    /// A quadratic-order spline with `bins` bins and bound `bound`.
    pub fn quadratic(bins: usize, bound: f32) -> Self {
        Self {
            bins,
            bound,
            order: Order::Quadratic,
        }
    }

    /// The validated flow-core shape.
    pub fn shape(&self) -> Result<SplineShape, crate::TrainError> {
        SplineShape::new(self.bins, self.bound, self.order)
            .map_err(|e| crate::TrainError::Spec(format!("spline shape: {e}")))
    }

    /// Unconstrained parameters per dimension: `4K - 1` (linear) or `3K - 1` (quadratic).
    pub fn params_per_dim(&self) -> usize {
        match self.order {
            Order::Linear => 4 * self.bins - 1,
            Order::Quadratic => 3 * self.bins - 1,
        }
    }
}

/// One layer, in forward (sampling) order as flow-core lists them.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerSpec {
    /// Element-wise learnable spline on every dimension (Pyro's `Spline`).
    Spline(SplineSpec),
    /// Spline coupling (Pyro's `spline_coupling`): dims `..split` through a learnable
    /// element-wise spline, dims `split..` through a spline whose parameters a DenseNN
    /// computes from the untransformed `x[..split]` (and the context, if the flow has one).
    /// Both splines have the shape `spline`.
    Coupling {
        /// Lower part size `d` (Pyro's default: `dim / 2`).
        split: usize,
        /// Hidden layer sizes of the hypernetwork (Pyro's default: `[10·dim, 10·dim]`).
        hidden: Vec<usize>,
        /// Shape of the lower and upper splines.
        spline: SplineSpec,
    },
    /// Element-wise spline whose parameters a DenseNN computes from the context (Pyro's
    /// `conditional_spline`); only in a flow with a context.
    ConditionalSpline {
        /// Hidden layer sizes (Pyro's default: `[10·dim, 10·dim]`).
        hidden: Vec<usize>,
        /// The spline's shape.
        spline: SplineSpec,
    },
    /// `y[i] = x[perm[i]]`.
    Permute(Vec<usize>),
    /// `y = loc + scale·x` per dimension.
    Affine {
        /// Initial (or fixed) `loc`, one per dimension.
        loc: Vec<f32>,
        /// Initial (or fixed) `scale`, one per dimension; non-zero.
        scale: Vec<f32>,
        /// Whether training changes `loc` and `scale`.
        learnable: bool,
    },
}

impl LayerSpec {
    /// A learnable per-dimension affine initialized from `data` (ActNorm's data-dependent
    /// initialization, Kingma & Dhariwal 2018): `loc` the column means, `scale` the column
    /// standard deviations (1 for a constant column). As the *last* layer of a flow (the data
    /// side) it starts by standardizing the data, so the splines' box `[-B, B]` covers the
    /// bulk of every column whatever its units; training then moves `loc` and `scale` with
    /// the rest. A larger learned `scale` also widens the Gaussian tails beyond the box.
    pub fn act_norm(data: &crate::Dataset) -> Self {
        let (mean, std) = data.column_moments();
        LayerSpec::Affine {
            loc: mean.iter().map(|&m| m as f32).collect(),
            scale: std
                .iter()
                .map(|&s| {
                    let s = s as f32;
                    if s.is_normal() {
                        s
                    } else {
                        1.0
                    }
                })
                .collect(),
            learnable: true,
        }
    }

    /// Number of trainable parameters of this layer in a flow of dimension `dim` with context
    /// size `context`.
    pub fn param_count(&self, dim: usize, context: usize) -> usize {
        match self {
            LayerSpec::Spline(s) => dim * s.params_per_dim(),
            LayerSpec::Coupling {
                split,
                hidden,
                spline,
            } => {
                split * spline.params_per_dim()
                    + flow_core::nn::dense_param_count(
                        split + context,
                        hidden,
                        (dim - split) * spline.params_per_dim(),
                    )
            }
            LayerSpec::ConditionalSpline { hidden, spline } => {
                flow_core::nn::dense_param_count(context, hidden, dim * spline.params_per_dim())
            }
            LayerSpec::Permute(_) => 0,
            LayerSpec::Affine { learnable, .. } => {
                if *learnable {
                    2 * dim
                } else {
                    0
                }
            }
        }
    }
}

/// A flow on `R^dim`, optionally conditioned on a context in `R^context`.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowSpec {
    /// Dimension of the modelled variable.
    pub dim: usize,
    /// Context size (0 for an unconditional flow).
    pub context: usize,
    /// Layers in forward (sampling) order: `x = f_L(… f_1(z))`.
    pub layers: Vec<LayerSpec>,
}

/// How to permute between coupling layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permutation {
    /// No permutation between layers.
    None,
    /// Reverse the dimensions (for 2-D: swap).
    Reverse,
    /// A random permutation per gap (Pyro's `T.permute(D)`), drawn from this seed.
    Random(u64),
    /// Couplings that split every pair of dimensions: coupling `l` puts in its lower part the
    /// dims `i` whose code `i + 1` has bit `l mod b` set (`b` bits are enough for `dim`
    /// codes; from the `b+1`-th coupling on the parts swap roles, then repeat), with the
    /// permutations in between that bring those dims to the front, and one at the end that
    /// restores the data order. After `b` couplings every dimension has been conditioned on,
    /// or conditioned, every other — with `Reverse`, dims in the same half never are (for 6-D
    /// sensor data, the three gyroscope axes). The lower parts are not always half the dims.
    Mixing,
}

/// The dims in the lower part of coupling `l` of a [`Permutation::Mixing`] stack.
fn mixing_lower(dim: usize, l: usize) -> Vec<usize> {
    let bits = (usize::BITS - dim.leading_zeros()) as usize;
    let (bit, flip) = (l % bits, (l / bits) % 2 == 1);
    (0..dim)
        .filter(|&i| (((i + 1) >> bit) & 1 == 1) != flip)
        .collect()
}

impl FlowSpec {
    /// Pyro's `Spline(dim, count_bins, bound, order)` as the only layer.
    pub fn spline(dim: usize, spline: SplineSpec) -> Self {
        Self {
            dim,
            context: 0,
            layers: vec![LayerSpec::Spline(spline)],
        }
    }

    /// `layers` spline couplings (split `dim / 2`) with `perm` between consecutive ones
    /// ([`Permutation::Mixing`] chooses its own splits).
    pub fn coupling_stack(
        dim: usize,
        layers: usize,
        hidden: &[usize],
        spline: SplineSpec,
        perm: Permutation,
    ) -> Self {
        if perm == Permutation::Mixing && dim >= 2 {
            return Self::mixing_stack(dim, layers, hidden, spline);
        }
        let mut out = Vec::new();
        let mut rng = match perm {
            Permutation::Random(seed) => Some(crate::rng::Rng::new(seed)),
            _ => None,
        };
        for l in 0..layers {
            if l > 0 {
                match perm {
                    Permutation::None => {}
                    Permutation::Reverse => out.push(LayerSpec::Permute((0..dim).rev().collect())),
                    Permutation::Random(_) => {
                        let p = rng.as_mut().map(|r| r.permutation(dim)).unwrap_or_default();
                        out.push(LayerSpec::Permute(p));
                    }
                    // A 1-D flow has nothing to permute.
                    Permutation::Mixing => {}
                }
            }
            out.push(LayerSpec::Coupling {
                split: dim / 2,
                hidden: hidden.to_vec(),
                spline,
            });
        }
        Self {
            dim,
            context: 0,
            layers: out,
        }
    }

    /// [`coupling_stack`](Self::coupling_stack) with [`Permutation::Mixing`] (`dim >= 2`).
    fn mixing_stack(dim: usize, layers: usize, hidden: &[usize], spline: SplineSpec) -> Self {
        // Position → data dim at each coupling: its lower dims first, in data order.
        let orders: Vec<Vec<usize>> = (0..layers)
            .map(|l| {
                let mut ord = mixing_lower(dim, l);
                let upper: Vec<usize> = (0..dim).filter(|i| !ord.contains(i)).collect();
                ord.extend(upper);
                ord
            })
            .collect();
        // `Permute(p)` between `prev` (base side) and `next` (data side): `y[i] = x[p[i]]`,
        // so position `i` on the data side takes the position of the same dim on the base
        // side.
        let link = |prev: &[usize], next: &[usize]| -> Vec<usize> {
            next.iter()
                .map(|d| prev.iter().position(|p| p == d).unwrap_or(0))
                .collect()
        };
        let mut out = Vec::new();
        for (l, ord) in orders.iter().enumerate() {
            if l > 0 {
                out.push(LayerSpec::Permute(link(&orders[l - 1], ord)));
            }
            out.push(LayerSpec::Coupling {
                split: mixing_lower(dim, l).len(),
                hidden: hidden.to_vec(),
                spline,
            });
        }
        if let Some(last) = orders.last() {
            let identity: Vec<usize> = (0..dim).collect();
            if *last != identity {
                out.push(LayerSpec::Permute(link(last, &identity)));
            }
        }
        Self {
            dim,
            context: 0,
            layers: out,
        }
    }

    /// Total trainable parameters.
    pub fn param_count(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.param_count(self.dim, self.context))
            .sum()
    }

    /// Checks sizes and shapes against flow-core's limits.
    pub fn validate(&self) -> Result<(), crate::TrainError> {
        use crate::TrainError::Spec;
        if self.dim == 0 {
            return Err(Spec("dim must be at least 1".into()));
        }
        for (i, l) in self.layers.iter().enumerate() {
            match l {
                LayerSpec::Spline(s) => {
                    s.shape()?;
                }
                LayerSpec::Coupling {
                    split,
                    hidden,
                    spline,
                } => {
                    spline.shape()?;
                    if *split == 0 || *split >= self.dim {
                        return Err(Spec(format!("layer {i}: split must be in 1..dim")));
                    }
                    check_hidden(i, hidden)?;
                }
                LayerSpec::ConditionalSpline { hidden, spline } => {
                    spline.shape()?;
                    if self.context == 0 {
                        return Err(Spec(format!(
                            "layer {i}: a conditional spline needs a context"
                        )));
                    }
                    check_hidden(i, hidden)?;
                }
                LayerSpec::Permute(p) => {
                    let mut seen = vec![false; self.dim];
                    if p.len() != self.dim || p.len() > flow_core::permute::MAX_PERMUTE_DIM {
                        return Err(Spec(format!("layer {i}: permutation size")));
                    }
                    for &v in p {
                        if v >= self.dim || std::mem::replace(&mut seen[v], true) {
                            return Err(Spec(format!("layer {i}: not a permutation")));
                        }
                    }
                }
                LayerSpec::Affine { loc, scale, .. } => {
                    if loc.len() != self.dim || scale.len() != self.dim {
                        return Err(Spec(format!("layer {i}: affine needs dim locs and scales")));
                    }
                    if scale.iter().any(|s| !s.is_finite() || *s == 0.0)
                        || loc.iter().any(|l| !l.is_finite())
                    {
                        return Err(Spec(format!(
                            "layer {i}: affine values must be finite, scale non-zero"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_hidden(i: usize, hidden: &[usize]) -> Result<(), crate::TrainError> {
    if hidden.len() > flow_core::nn::MAX_HIDDEN_LAYERS || hidden.contains(&0) {
        return Err(crate::TrainError::Spec(format!(
            "layer {i}: 0..={} hidden layers of size >= 1",
            flow_core::nn::MAX_HIDDEN_LAYERS
        )));
    }
    Ok(())
}

/// A model to train: one flow, or the joint `p(x₁)·p(x₂ | x₁)`.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSpec {
    /// `p(x)` with one (unconditional) flow.
    Flow(FlowSpec),
    /// `p(x) = p(x₁)·p(x₂ | x₁)` with `x₁ = x[..marginal.dim]`: `conditional.context` must
    /// equal `marginal.dim`.
    Joint {
        /// The flow of `x₁`.
        marginal: FlowSpec,
        /// The flow of `x₂` with context `x₁`.
        conditional: FlowSpec,
    },
}

impl ModelSpec {
    /// Dimension of the data.
    pub fn dim(&self) -> usize {
        match self {
            ModelSpec::Flow(f) => f.dim,
            ModelSpec::Joint {
                marginal,
                conditional,
            } => marginal.dim + conditional.dim,
        }
    }

    /// The flows: `[flow]` or `[marginal, conditional]`.
    pub fn flows(&self) -> Vec<&FlowSpec> {
        match self {
            ModelSpec::Flow(f) => vec![f],
            ModelSpec::Joint {
                marginal,
                conditional,
            } => vec![marginal, conditional],
        }
    }

    /// Total trainable parameters.
    pub fn param_count(&self) -> usize {
        self.flows().iter().map(|f| f.param_count()).sum()
    }

    /// Checks the whole model.
    pub fn validate(&self) -> Result<(), crate::TrainError> {
        match self {
            ModelSpec::Flow(f) => {
                if f.context != 0 {
                    return Err(crate::TrainError::Spec(
                        "a lone flow has no context to condition on".into(),
                    ));
                }
                f.validate()
            }
            ModelSpec::Joint {
                marginal,
                conditional,
            } => {
                if marginal.context != 0 || conditional.context != marginal.dim {
                    return Err(crate::TrainError::Spec(
                        "joint: marginal has no context; conditional's context is x1".into(),
                    ));
                }
                marginal.validate()?;
                conditional.validate()
            }
        }
    }

    /// Pyro tutorial (a): `Spline(dim, count_bins=bins, bound)`, linear.
    pub fn tutorial_spline(dim: usize, bins: usize) -> Self {
        ModelSpec::Flow(FlowSpec::spline(dim, SplineSpec::linear(bins, 3.0)))
    }

    /// Pyro tutorial (b): `spline_coupling(dim, count_bins=bins)`: split `dim/2`, hidden
    /// `[10·dim, 10·dim]`, linear, bound 3.
    pub fn tutorial_coupling(dim: usize, bins: usize) -> Self {
        ModelSpec::Flow(FlowSpec::coupling_stack(
            dim,
            1,
            &[10 * dim, 10 * dim],
            SplineSpec::linear(bins, 3.0),
            Permutation::None,
        ))
    }

    /// Pyro tutorial (c): `spline(1, count_bins=bins)` for `x₁` and
    /// `conditional_spline(1, context_dim=1, count_bins=bins)` (hidden `[10, 10]`) for `x₂ | x₁`.
    pub fn tutorial_joint(bins: usize) -> Self {
        Self::spline_joint(SplineSpec::linear(bins, 3.0), &[10, 10])
    }

    /// The 2-D joint `p(x₁)·p(x₂|x₁)`: an element-wise spline for `x₁` and a conditional
    /// spline of the same shape for `x₂ | x₁`, its hypernetwork hidden sizes `hidden`.
    pub fn spline_joint(spline: SplineSpec, hidden: &[usize]) -> Self {
        ModelSpec::Joint {
            marginal: FlowSpec::spline(1, spline),
            conditional: FlowSpec {
                dim: 1,
                context: 1,
                layers: vec![LayerSpec::ConditionalSpline {
                    hidden: hidden.to_vec(),
                    spline,
                }],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data dims in each coupling's lower part, walking the layers from the data side.
    fn lower_parts(f: &FlowSpec) -> Vec<Vec<usize>> {
        let mut at: Vec<usize> = (0..f.dim).collect(); // position -> data dim
        let mut out = Vec::new();
        for l in f.layers.iter().rev() {
            match l {
                LayerSpec::Permute(p) => {
                    // y[i] = x[p[i]]: base-side position p[i] holds data-side position i's dim.
                    let mut next = vec![0; f.dim];
                    for (i, &pi) in p.iter().enumerate() {
                        next[pi] = at[i];
                    }
                    at = next;
                }
                LayerSpec::Coupling { split, .. } => {
                    let mut lower = at[..*split].to_vec();
                    lower.sort_unstable();
                    out.push(lower);
                }
                _ => {}
            }
        }
        out.reverse();
        out
    }

    #[test]
    fn mixing_splits_every_pair() {
        for dim in 2..=12usize {
            let bits = (usize::BITS - dim.leading_zeros()) as usize;
            let s = SplineSpec::quadratic(4, 3.0);
            let f = FlowSpec::coupling_stack(dim, bits + 1, &[4], s, Permutation::Mixing);
            f.validate().unwrap();
            let parts = lower_parts(&f);
            assert_eq!(parts.len(), bits + 1);
            for (l, part) in parts.iter().enumerate() {
                assert_eq!(part, &mixing_lower(dim, l), "{dim}-D coupling {l}");
                assert!(!part.is_empty() && part.len() < dim);
            }
            for a in 0..dim {
                for b in a + 1..dim {
                    assert!(
                        parts[..bits]
                            .iter()
                            .any(|p| p.contains(&a) != p.contains(&b)),
                        "{dim}-D: {a} and {b} never split"
                    );
                }
            }
            // The last permutation restores the data order.
            assert!(matches!(
                f.layers.last(),
                Some(LayerSpec::Permute(_)) | Some(LayerSpec::Coupling { .. })
            ));
        }
        // 6-D: acc {0,1,2} and gyr {3,4,5}; the gyroscope axes are split from each other.
        let f =
            FlowSpec::coupling_stack(6, 3, &[4], SplineSpec::linear(4, 3.0), Permutation::Mixing);
        assert_eq!(
            lower_parts(&f),
            vec![vec![0, 2, 4], vec![1, 2, 5], vec![3, 4, 5]]
        );
        // One dimension: a single coupling-free spline stack is not possible; 1-D stacks have
        // no permutations.
        let one =
            FlowSpec::coupling_stack(1, 2, &[4], SplineSpec::linear(4, 3.0), Permutation::Mixing);
        assert!(!one
            .layers
            .iter()
            .any(|l| matches!(l, LayerSpec::Permute(_))));
    }

    #[test]
    fn act_norm_standardizes() {
        let d = crate::Dataset::from_csv("1,7\n3,7\n5,7\n").unwrap();
        let LayerSpec::Affine {
            loc,
            scale,
            learnable,
        } = LayerSpec::act_norm(&d)
        else {
            panic!()
        };
        assert_eq!(loc, vec![3.0, 7.0]);
        assert!((scale[0] - (8.0f32 / 3.0).sqrt()).abs() < 1e-6);
        // A constant column keeps scale 1.
        assert_eq!((scale[1], learnable), (1.0, true));
    }
}
