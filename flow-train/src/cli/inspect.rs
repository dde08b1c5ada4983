//! `inspect`: what a model file holds, as text lines or (`--json`) one JSON object with the
//! same figures. An invalid file is flow-core's error, in words.

use super::runtime::Runtime;
use super::{model_error, read_model, InspectArgs};
use anyhow::Result;
use flow_core::model::{FlowKind, Hidden, LayerRecord, SplineDesc};
use flow_core::Order;
use flow_train::cost::DeviceCost;
use serde_json::json;

fn spline(s: &SplineDesc) -> String {
    format!(
        "K={} B={} {}",
        s.bins,
        s.bound,
        match s.order {
            Order::Linear => "linear",
            Order::Quadratic => "quadratic",
        }
    )
}

fn hidden(h: &Hidden) -> Vec<u16> {
    h.used().to_vec()
}

/// One line per layer record.
fn layer(r: &LayerRecord<'_>) -> String {
    let n = r.param_count();
    match r {
        LayerRecord::Affine { dim, .. } => format!("affine      dim {dim}, params {n}"),
        LayerRecord::Exp { dim } => format!("exp         dim {dim}"),
        LayerRecord::Spline { dim, spline: s, .. } => {
            format!("spline      dim {dim}, {}, params {n}", spline(s))
        }
        LayerRecord::Coupling {
            split,
            upper_dim,
            spline: s,
            context,
            hidden: h,
            lower,
            hypernet,
        } => format!(
            "coupling    split {split} + upper {upper_dim}, {}, context {context}, hidden \
             {:?}, params {n} (lower spline {}, hypernet {})",
            spline(s),
            hidden(h),
            lower.len,
            hypernet.len
        ),
        LayerRecord::Permute { perm } => format!("permute     {perm:?}"),
        LayerRecord::ConditionalSpline {
            dim,
            spline: s,
            context,
            hidden: h,
            ..
        } => format!(
            "cond_spline dim {dim}, {}, context {context}, hidden {:?}, params {n}",
            spline(s),
            hidden(h)
        ),
    }
}

pub fn run(a: &InspectArgs) -> Result<()> {
    let bytes = read_model(&a.model)?;
    let rt = Runtime::new(&bytes).map_err(|e| model_error(&a.model, e))?;
    let m = &rt.model;
    let h = m.header();
    // The text lines, and the same figures for --json.
    let mut text = Vec::new();
    let mut j = serde_json::Map::new();
    text.push(format!(
        "file: {} ({} bytes)",
        a.model.display(),
        m.file_size()
    ));
    j.insert("file".into(), json!(a.model.display().to_string()));
    j.insert("bytes".into(), json!(m.file_size()));
    let (kind, kind_word) = match h.kind {
        FlowKind::Plain => ("plain p(x)".to_string(), "plain"),
        FlowKind::Conditional => (
            format!("conditional p(x | c), context {}", h.context_dim),
            "conditional",
        ),
        FlowKind::Joint => (
            format!(
                "joint p(x1)·p(x2|x1), x1 = the first {} of {} dims",
                h.context_dim, h.dim
            ),
            "joint",
        ),
    };
    text.push(format!("kind: {kind}"));
    j.insert("kind".into(), json!(kind_word));
    // A windowed model: the window, and where recordings end.
    if let Some(w) = m.window() {
        let rule = super::windows::Rule::stored(m.metadata().grouping);
        text.push(format!(
            "window: {w} readings of {} values, log p(x_1) + Σ log p(x_t | x_t-1); {}",
            h.context_dim,
            rule.describe()
        ));
        j.insert("window".into(), json!(w));
        j.insert(
            "grouping".into(),
            match rule {
                super::windows::Rule::One => json!(null),
                super::windows::Rule::RowsPerGroup(n) => json!({"rows_per_group": n}),
                super::windows::Rule::Column(c) => json!({"group_column": c}),
            },
        );
    }
    match h.kind {
        FlowKind::Conditional => j.insert("context_dim".into(), json!(h.context_dim)),
        FlowKind::Joint => j.insert("x1_dim".into(), json!(h.context_dim)),
        FlowKind::Plain => None,
    };
    text.push(format!("dim: {}", h.dim));
    j.insert("dim".into(), json!(h.dim));
    text.push(format!("layers: {}", h.layers));
    let mut layers = Vec::new();
    for (i, r) in m.records().enumerate() {
        let r = r.map_err(|e| model_error(&a.model, e))?;
        let part = match h.kind {
            FlowKind::Joint if i < usize::from(h.marginal_layers) => "x1     ",
            FlowKind::Joint => "x2 | x1",
            _ => "",
        };
        let desc = layer(&r);
        text.push(format!(
            "  {i:>2} {part}{}{desc}",
            if part.is_empty() { "" } else { " " },
        ));
        layers.push(json!({
            "part": part.trim(),
            "description": desc.split_whitespace().collect::<Vec<_>>().join(" "),
            "params": r.param_count(),
        }));
    }
    j.insert("layers".into(), json!(layers));
    let (d, c) = rt.columns();
    let d = match (m.window(), m.metadata().columns_str()) {
        (Some(_), Some(names)) if !names.is_empty() => {
            names.split('\n').map(str::to_string).collect()
        }
        _ => d,
    };
    if d.is_empty() {
        text.push("columns: (not stored)".into());
    } else if c.is_empty() {
        text.push(format!("columns: {}", d.join(", ")));
    } else {
        text.push(format!(
            "columns: {}; context: {}",
            d.join(", "),
            c.join(", ")
        ));
    }
    j.insert("columns".into(), json!(d));
    j.insert("context_columns".into(), json!(c));
    if rt.has_scaler() {
        let (mean, scale): (Vec<f32>, Vec<f32>) = (0..rt.dim()).filter_map(|j| m.scaler(j)).unzip();
        text.push(format!(
            "scaler: mean {mean:?}, scale {scale:?} (the flow models (raw - mean) / scale)"
        ));
        j.insert("scaler".into(), json!({"mean": mean, "scale": scale}));
    } else {
        text.push("scaler: none".into());
        j.insert("scaler".into(), serde_json::Value::Null);
    }
    let thresholds: Vec<(f32, f32)> = m.thresholds().collect();
    if thresholds.is_empty() {
        text.push("thresholds: none".into());
    } else {
        let t: Vec<String> = thresholds
            .iter()
            .map(|(q, lp)| format!("{}%: {lp}", q * 100.0))
            .collect();
        let space = if m.window().is_some() {
            "log p of a window, raw units"
        } else {
            "log p, flow space"
        };
        text.push(format!("thresholds ({space}): {}", t.join(", ")));
    }
    j.insert(
        "thresholds".into(),
        thresholds
            .iter()
            .map(|&(q, lp)| json!({"quantile": q, "log_prob": lp}))
            .collect(),
    );
    // The expected cost on a Cortex-M4F (`flow_train::cost`; docs/device-cost.md).
    let cost = DeviceCost::of_model(m).map_err(|e| model_error(&a.model, e))?;
    if m.window().is_some() {
        text.push("(device cost per new reading: one joint-flow evaluation)".into());
    }
    for (key, v) in [
        ("flash_bytes", cost.flash_bytes),
        ("ram_bytes", cost.ram_bytes),
        ("m4f_instructions", cost.m4f_instructions),
    ] {
        text.push(format!("{key} {v}"));
        j.insert(key.into(), json!(v));
    }
    text.push(format!("params {}", m.param_count()));
    j.insert("params".into(), json!(m.param_count()));
    if a.json {
        println!("{}", serde_json::Value::Object(j));
    } else {
        for line in text {
            println!("{line}");
        }
    }
    Ok(())
}
