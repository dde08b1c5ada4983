//! `inspect`: what a model file holds. An invalid file is flow-core's typed error.

use super::runtime::Runtime;
use super::{model_error, read_model, InspectArgs};
use anyhow::Result;
use flow_core::model::{FlowKind, Hidden, LayerRecord, SplineDesc};
use flow_core::Order;
use flow_train::cost::DeviceCost;

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
    h.sizes[..usize::from(h.len).min(h.sizes.len())].to_vec()
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
    println!("file: {} ({} bytes)", a.model.display(), m.file_size());
    let kind = match h.kind {
        FlowKind::Plain => "plain p(x)".to_string(),
        FlowKind::Conditional => format!("conditional p(x | c), context {}", h.context_dim),
        FlowKind::Joint => format!(
            "joint p(x1)·p(x2|x1), x1 = the first {} of {} dims",
            h.context_dim, h.dim
        ),
    };
    println!("kind: {kind}");
    println!("dim: {}", h.dim);
    println!("layers: {}", h.layers);
    for (i, r) in m.records().enumerate() {
        let r = r.map_err(|e| model_error(&a.model, e))?;
        let part = match h.kind {
            FlowKind::Joint if i < usize::from(h.marginal_layers) => "x1     ",
            FlowKind::Joint => "x2 | x1",
            _ => "",
        };
        println!(
            "  {i:>2} {part}{}{}",
            if part.is_empty() { "" } else { " " },
            layer(&r)
        );
    }
    let (d, c) = rt.columns();
    if d.is_empty() {
        println!("columns: (not stored)");
    } else if c.is_empty() {
        println!("columns: {}", d.join(", "));
    } else {
        println!("columns: {}; context: {}", d.join(", "), c.join(", "));
    }
    if rt.has_scaler() {
        let (mean, scale): (Vec<f32>, Vec<f32>) = (0..rt.dim()).filter_map(|j| m.scaler(j)).unzip();
        println!("scaler: mean {mean:?}, scale {scale:?} (the flow models (raw - mean) / scale)");
    } else {
        println!("scaler: none");
    }
    let t: Vec<String> = m
        .thresholds()
        .map(|(q, lp)| format!("{}%: {lp}", q * 100.0))
        .collect();
    if t.is_empty() {
        println!("thresholds: none");
    } else {
        println!("thresholds (log p, flow space): {}", t.join(", "));
    }
    device_cost(m).map_err(|e| model_error(&a.model, e))?;
    println!("params {}", m.param_count());
    Ok(())
}

/// The expected cost on a Cortex-M4F (`flow_train::cost`; docs/device-cost.md).
fn device_cost(m: &flow_core::Model<'_>) -> Result<(), flow_core::Error> {
    let c = DeviceCost::of_model(m)?;
    println!("flash_bytes {}", c.flash_bytes);
    println!("ram_bytes {}", c.ram_bytes);
    println!("m4f_instructions {}", c.m4f_instructions);
    Ok(())
}
