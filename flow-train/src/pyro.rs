//! Import of Pyro-trained flows: a torch `state_dict` exported as JSON plus a description of
//! the flow, converted to a flow-core model file.
//!
//! # Inputs
//! The state dict is `{"key": {"shape": [...], "values": [...]}, ...}` with torch's keys (the
//! values row-major; a file that wraps it as `{"state_dict": {...}}` or `{"params": {...}}` is
//! accepted too). The description names Pyro's constructors, in forward order:
//!
//! ```json
//! {
//!   "flow": "plain",
//!   "dim": 2,
//!   "layers": [
//!     {"type": "spline_coupling", "prefix": "0.", "input_dim": 2, "count_bins": 16},
//!     {"type": "permute", "permutation": [1, 0]},
//!     {"type": "spline", "prefix": "2.", "input_dim": 2, "count_bins": 8, "order": "quadratic"}
//!   ]
//! }
//! ```
//!
//! | field | meaning | default |
//! |---|---|---|
//! | `flow` | `plain`, `conditional` (with `context_dim`) or `joint` (with `marginal_layers`: the first layers model `x₁`, the rest `x₂ \| x₁`; `context_dim` is the size of `x₁`) | `plain` |
//! | `type` | `spline` (Pyro's `Spline`/`T.spline`), `spline_coupling`, `conditional_spline`, `permute` | — |
//! | `prefix` | the layer's key prefix in the state dict (e.g. `"0."`, `"layer2."`) | `""` |
//! | `input_dim` | the layer's dimension | the flow's (or part's) dimension |
//! | `count_bins`, `bound`, `order` | as Pyro's arguments | 8, 3.0, `linear` |
//! | `split_dim`, `hidden_dims` | `spline_coupling`'s; `hidden_dims` also `conditional_spline`'s | `input_dim // 2`, `[10·input_dim, 10·input_dim]` |
//! | `context_dim` | `conditional_spline`'s context size | the flow's `context_dim` |
//! | `permutation` | `permute`'s indices, `y[i] = x[perm[i]]` | — |
//!
//! Pyro's `spline_coupling` is always of linear order (the helper takes no `order`), and its
//! lower part is a learnable spline (`identity=False`): keys `lower_spline.unnormalized_*`;
//! the hypernetwork is `upper_spline.nn.layers.{i}.weight/bias`. A `conditional_spline`'s
//! hypernetwork is `nn.layers.{i}.*`.
//!
//! Every key of the state dict must be used by exactly one layer and have exactly the shape
//! the description implies: a missing key, an unknown key or a wrong shape is an error naming
//! the key (and both shapes), and nothing is written.

use flow_core::model::ModelBuilder;
use flow_core::{Order, SplineShape};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Why an import failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportError {
    /// The JSON does not parse or has the wrong structure.
    Json(String),
    /// The description is invalid.
    Description(String),
    /// A key the description needs is not in the state dict.
    MissingKey {
        /// The key.
        key: String,
        /// The shape it should have.
        expected: Vec<usize>,
    },
    /// A key of the state dict is used by no layer.
    UnknownKey(String),
    /// A key has another shape than the description implies.
    Shape {
        /// The key.
        key: String,
        /// The shape the description implies.
        expected: Vec<usize>,
        /// The shape in the state dict.
        found: Vec<usize>,
    },
    /// flow-core rejected the result.
    Model(flow_core::Error),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Json(e) => write!(f, "invalid JSON: {e}"),
            ImportError::Description(e) => write!(f, "invalid description: {e}"),
            ImportError::MissingKey { key, expected } => {
                write!(f, "missing key `{key}` (expected shape {expected:?})")
            }
            ImportError::UnknownKey(k) => {
                write!(f, "unknown key `{k}`: no layer of the description uses it")
            }
            ImportError::Shape {
                key,
                expected,
                found,
            } => write!(
                f,
                "key `{key}` has shape {found:?}, the description implies {expected:?}"
            ),
            ImportError::Model(e) => write!(f, "flow-core rejected the model: {e}"),
        }
    }
}

impl std::error::Error for ImportError {}

type Result<T> = std::result::Result<T, ImportError>;

fn desc(msg: impl Into<String>) -> ImportError {
    ImportError::Description(msg.into())
}

/// The state dict, with every key marked when a layer takes it.
struct StateDict {
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    used: BTreeMap<String, bool>,
}

impl StateDict {
    fn parse(v: &Value) -> Result<Self> {
        let obj = v
            .get("state_dict")
            .or_else(|| v.get("params"))
            .unwrap_or(v)
            .as_object()
            .ok_or_else(|| ImportError::Json("the state dict is not a JSON object".into()))?;
        let mut tensors = BTreeMap::new();
        for (k, t) in obj {
            let shape = t
                .get("shape")
                .and_then(Value::as_array)
                .ok_or_else(|| ImportError::Json(format!("`{k}`: no \"shape\" array")))?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| ImportError::Json(format!("`{k}`: shape is not integers")))?;
            let values = t
                .get("values")
                .and_then(Value::as_array)
                .ok_or_else(|| ImportError::Json(format!("`{k}`: no \"values\" array")))?
                .iter()
                .map(|x| x.as_f64().map(|x| x as f32))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| ImportError::Json(format!("`{k}`: values are not numbers")))?;
            let Some(n) = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
                return Err(ImportError::Json(format!(
                    "`{k}`: shape {shape:?} holds more values than a machine word counts"
                )));
            };
            if n != values.len() {
                return Err(ImportError::Json(format!(
                    "`{k}`: shape {shape:?} holds {n} values, found {}",
                    values.len()
                )));
            }
            tensors.insert(k.clone(), (shape, values));
        }
        let used = tensors.keys().map(|k| (k.clone(), false)).collect();
        Ok(Self { tensors, used })
    }

    /// Takes `key`, checking its shape.
    fn take(&mut self, key: &str, expected: &[usize]) -> Result<Vec<f32>> {
        let Some((shape, values)) = self.tensors.get(key) else {
            return Err(ImportError::MissingKey {
                key: key.into(),
                expected: expected.to_vec(),
            });
        };
        if shape != expected {
            return Err(ImportError::Shape {
                key: key.into(),
                expected: expected.to_vec(),
                found: shape.clone(),
            });
        }
        self.used.insert(key.into(), true);
        Ok(values.clone())
    }

    fn finish(&self) -> Result<()> {
        match self.used.iter().find(|(_, &u)| !u) {
            Some((k, _)) => Err(ImportError::UnknownKey(k.clone())),
            None => Ok(()),
        }
    }

    /// A spline's `unnormalized_*` under `prefix`, in flow-core's layout.
    fn spline(&mut self, prefix: &str, dim: usize, shape: &SplineShape) -> Result<Vec<f32>> {
        let k = shape.bins();
        let mut v = self.take(&format!("{prefix}unnormalized_widths"), &[dim, k])?;
        v.extend(self.take(&format!("{prefix}unnormalized_heights"), &[dim, k])?);
        v.extend(self.take(&format!("{prefix}unnormalized_derivatives"), &[dim, k - 1])?);
        if shape.order() == Order::Linear {
            v.extend(self.take(&format!("{prefix}unnormalized_lambdas"), &[dim, k])?);
        }
        Ok(v)
    }

    /// A DenseNN's `layers.{i}.weight/bias` under `prefix`, in flow-core's layout.
    fn dense(
        &mut self,
        prefix: &str,
        input: usize,
        hidden: &[usize],
        output: usize,
    ) -> Result<Vec<f32>> {
        let mut v = Vec::new();
        let mut fan_in = input;
        for (i, &o) in hidden.iter().chain([output].iter()).enumerate() {
            v.extend(self.take(&format!("{prefix}layers.{i}.weight"), &[o, fan_in])?);
            v.extend(self.take(&format!("{prefix}layers.{i}.bias"), &[o])?);
            fan_in = o;
        }
        Ok(v)
    }
}

fn get_usize(l: &Value, key: &str) -> Result<Option<usize>> {
    match l.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|v| Some(v as usize))
            .ok_or_else(|| desc(format!("`{key}` must be a non-negative integer"))),
    }
}

fn spline_shape(l: &Value, force_linear: bool) -> Result<SplineShape> {
    let bins = get_usize(l, "count_bins")?.unwrap_or(8);
    let bound = match l.get("bound") {
        None | Some(Value::Null) => 3.0,
        Some(v) => v.as_f64().ok_or_else(|| desc("`bound` must be a number"))? as f32,
    };
    let order = match l.get("order").and_then(Value::as_str) {
        None | Some("linear") => Order::Linear,
        Some("quadratic") if !force_linear => Order::Quadratic,
        Some("quadratic") => {
            return Err(desc(
                "Pyro's spline_coupling is always of linear order (it takes no `order`)",
            ))
        }
        Some(o) => return Err(desc(format!("unknown order `{o}`"))),
    };
    SplineShape::new(bins, bound, order).map_err(|e| desc(format!("{e}")))
}

fn hidden_dims(l: &Value, dim: usize) -> Result<Vec<usize>> {
    match l.get("hidden_dims") {
        None | Some(Value::Null) => Ok(vec![10 * dim, 10 * dim]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_u64().map(|v| v as usize))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| desc("`hidden_dims` must be integers")),
        Some(_) => Err(desc("`hidden_dims` must be an array")),
    }
}

/// Adds the layers `layers` (of dimension `dim`, context `context`) to `b`.
fn add_layers(
    b: &mut ModelBuilder,
    sd: &mut StateDict,
    layers: &[Value],
    dim: usize,
    context: usize,
) -> Result<()> {
    for (i, l) in layers.iter().enumerate() {
        let kind = l
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| desc(format!("layer {i}: no `type`")))?;
        let prefix = l.get("prefix").and_then(Value::as_str).unwrap_or("");
        let d = get_usize(l, "input_dim")?.unwrap_or(dim);
        if d != dim {
            return Err(desc(format!(
                "layer {i} ({kind}): input_dim {d} differs from the flow's dimension {dim}"
            )));
        }
        match kind {
            "spline" | "Spline" => {
                let shape = spline_shape(l, false)?;
                let p = sd.spline(prefix, d, &shape)?;
                b.spline(d, &shape, &p);
            }
            "spline_coupling" | "SplineCoupling" => {
                let shape = spline_shape(l, true)?;
                let split = get_usize(l, "split_dim")?.unwrap_or(d / 2);
                if split == 0 || split >= d {
                    return Err(desc(format!("layer {i}: split_dim {split} not in 1..{d}")));
                }
                let ctx = get_usize(l, "context_dim")?.unwrap_or(0);
                let hidden = hidden_dims(l, d)?;
                let lower = sd.spline(&format!("{prefix}lower_spline."), split, &shape)?;
                let out = (d - split) * shape.params_per_dim();
                let nn = sd.dense(
                    &format!("{prefix}upper_spline.nn."),
                    split + ctx,
                    &hidden,
                    out,
                )?;
                b.coupling(split, d - split, &shape, ctx, &hidden, &lower, &nn);
            }
            "conditional_spline" | "ConditionalSpline" => {
                let shape = spline_shape(l, false)?;
                let ctx = get_usize(l, "context_dim")?.unwrap_or(context);
                if ctx == 0 {
                    return Err(desc(format!(
                        "layer {i}: conditional_spline needs a context"
                    )));
                }
                let hidden = hidden_dims(l, d)?;
                let nn = sd.dense(
                    &format!("{prefix}nn."),
                    ctx,
                    &hidden,
                    d * shape.params_per_dim(),
                )?;
                b.conditional_spline(d, &shape, ctx, &hidden, &nn);
            }
            "permute" | "Permute" => {
                let perm = l
                    .get("permutation")
                    .and_then(Value::as_array)
                    .ok_or_else(|| desc(format!("layer {i}: permute needs `permutation`")))?
                    .iter()
                    .map(|v| v.as_u64().and_then(|v| u8::try_from(v).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| {
                        desc(format!("layer {i}: permutation must be small integers"))
                    })?;
                b.permute(&perm);
            }
            other => return Err(desc(format!("layer {i}: unknown type `{other}`"))),
        }
    }
    Ok(())
}

/// Converts a Pyro state dict (JSON) and a description (JSON, see the [module docs](self))
/// into a flow-core model file.
pub fn import(state_dict: &str, description: &str) -> Result<Vec<u8>> {
    let sd_json: Value =
        serde_json::from_str(state_dict).map_err(|e| ImportError::Json(e.to_string()))?;
    let d: Value =
        serde_json::from_str(description).map_err(|e| ImportError::Json(e.to_string()))?;
    let mut sd = StateDict::parse(&sd_json)?;
    let dim = get_usize(&d, "dim")?.ok_or_else(|| desc("no `dim`"))?;
    let context = get_usize(&d, "context_dim")?.unwrap_or(0);
    let layers = d
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| desc("no `layers` array"))?;
    let mut b = match d.get("flow").and_then(Value::as_str).unwrap_or("plain") {
        "plain" => {
            let mut b = ModelBuilder::plain(dim);
            add_layers(&mut b, &mut sd, layers, dim, 0)?;
            b
        }
        "conditional" => {
            if context == 0 {
                return Err(desc("a conditional flow needs `context_dim`"));
            }
            let mut b = ModelBuilder::conditional(dim, context);
            add_layers(&mut b, &mut sd, layers, dim, context)?;
            b
        }
        "joint" => {
            let m = get_usize(&d, "marginal_layers")?
                .ok_or_else(|| desc("a joint flow needs `marginal_layers`"))?;
            if context == 0 || context >= dim || m > layers.len() {
                return Err(desc(
                    "a joint flow needs 0 < context_dim (the size of x1) < dim and \
                     marginal_layers <= the number of layers",
                ));
            }
            let mut b = ModelBuilder::joint(dim, context);
            add_layers(&mut b, &mut sd, &layers[..m], context, 0)?;
            b.end_marginal();
            add_layers(&mut b, &mut sd, &layers[m..], dim - context, context)?;
            b
        }
        other => return Err(desc(format!("unknown flow kind `{other}`"))),
    };
    sd.finish()?;
    if let Some(cols) = d.get("columns").and_then(Value::as_array) {
        let names: Vec<&str> = cols.iter().filter_map(Value::as_str).collect();
        b.columns(&names);
    }
    b.encode().map_err(ImportError::Model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_core::{Flow, JointFlow, Model};

    fn trained(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/pyro-trained")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// Pyro's stored joint log_prob of the first 50 test points, and the points.
    fn reference(json: &str) -> (Vec<[f32; 2]>, Vec<f64>) {
        let v: Value = serde_json::from_str(json).unwrap();
        let x = v["test_first50_x"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| [r[0].as_f64().unwrap() as f32, r[1].as_f64().unwrap() as f32])
            .collect();
        let lp = v["test_first50_joint_log_prob"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        (x, lp)
    }

    /// Worst |ours - Pyro| over the 50 points, ours in f32.
    fn worst(lp: impl Fn([f32; 2]) -> f32, x: &[[f32; 2]], want: &[f64]) -> f64 {
        x.iter()
            .zip(want)
            .map(|(p, w)| (lp(*p) as f64 - w).abs() / w.abs().max(1.0))
            .fold(0.0, f64::max)
    }

    // Tolerance: both sides compute in f32 from the same float32 parameters; on the golden
    // vectors Pyro's own float32 log_prob deviates from the exact value by up to ~1e-5
    // relative at well-conditioned points (median 1e-6), so 1e-4 relative allows for both
    // implementations' rounding with a margin, and is far below any parameter-layout error.
    const TOL: f64 = 1e-4;

    #[test]
    fn tutorial_spline_a() {
        let sd = trained("a_spline_params.json");
        let bytes = import(
            &sd,
            r#"{"dim": 2, "layers": [{"type": "spline", "count_bins": 16}]}"#,
        )
        .unwrap();
        let m = Model::parse(&bytes).unwrap();
        let f: Flow<2, 4, 32, 16> = m.flow().unwrap();
        let (x, want) = reference(&sd);
        let e = worst(|p| f.log_prob(&p).unwrap(), &x, &want);
        assert!(e < TOL, "{e}");
    }

    #[test]
    fn tutorial_coupling_b() {
        let sd = trained("b_spline_coupling_params.json");
        let bytes = import(
            &sd,
            r#"{"dim": 2, "layers": [{"type": "spline_coupling", "count_bins": 16}]}"#,
        )
        .unwrap();
        let f: Flow<2, 4, 32, 16> = Model::parse(&bytes).unwrap().flow().unwrap();
        let (x, want) = reference(&sd);
        let e = worst(|p| f.log_prob(&p).unwrap(), &x, &want);
        assert!(e < TOL, "{e}");
    }

    #[test]
    fn tutorial_joint_c() {
        let sd = trained("c_conditional_params.json");
        let desc = r#"{"flow": "joint", "dim": 2, "context_dim": 1, "marginal_layers": 1,
            "layers": [{"type": "spline", "prefix": "0.", "count_bins": 8},
                       {"type": "conditional_spline", "prefix": "1.", "count_bins": 8}]}"#;
        let bytes = import(&sd, desc).unwrap();
        let f: JointFlow<2, 4, 32, 16> = Model::parse(&bytes).unwrap().joint_flow().unwrap();
        let (x, want) = reference(&sd);
        let e = worst(|p| f.log_prob(&p).unwrap(), &x, &want);
        assert!(e < TOL, "{e}");
    }

    #[test]
    fn errors_name_the_key_and_shapes() {
        let sd = trained("b_spline_coupling_params.json");
        let d = |bins: usize, extra: &str| {
            format!(
                r#"{{"dim": 2, "layers": [{{"type": "spline_coupling", "count_bins": {bins}{extra}}}]}}"#
            )
        };
        // Wrong bins: the first key's shape differs.
        let e = import(&sd, &d(8, "")).unwrap_err();
        assert_eq!(
            e,
            ImportError::Shape {
                key: "lower_spline.unnormalized_widths".into(),
                expected: vec![1, 8],
                found: vec![1, 16]
            }
        );
        assert!(e.to_string().contains("[1, 16]") && e.to_string().contains("[1, 8]"));
        // A prefix that matches nothing: missing key.
        let e = import(&sd, &d(16, r#", "prefix": "0.""#)).unwrap_err();
        assert!(
            matches!(e, ImportError::MissingKey { ref key, .. } if key == "0.lower_spline.unnormalized_widths")
        );
        // A key no layer uses.
        let mut v: Value = serde_json::from_str(&sd).unwrap();
        v["state_dict"]["extra.weight"] = serde_json::json!({"shape": [1], "values": [0.0]});
        let e = import(&v.to_string(), &d(16, "")).unwrap_err();
        assert_eq!(e, ImportError::UnknownKey("extra.weight".into()));
        // Wrong hidden sizes.
        let e = import(&sd, &d(16, r#", "hidden_dims": [20, 10]"#)).unwrap_err();
        assert!(
            matches!(e, ImportError::Shape { ref key, .. } if key == "upper_spline.nn.layers.1.weight")
        );
    }
}
