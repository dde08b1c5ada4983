//! `plot` (and `fit --plots`): the pictures of Pyro's normalizing-flow tutorial, as PNG.
//!
//! * `joint.png`: the data and the flow's samples side by side, the same axes (first two data
//!   columns; for a one-dimensional conditional model, the first context column against x);
//! * `marginals.png`: per data column, the data's histogram (bars) and the histogram of the
//!   flow's samples (line), both as densities.
//!
//! The flow is sampled with flow-core's code, in raw units (the model's scaler applied);
//! 20,000 samples or one per data row if there are more. A conditional model is sampled at
//! each data row's context (cycling through the rows), so its picture is `p(c)·p(x | c)`
//! with the data's `c`. Text uses DejaVu Sans, embedded.

use super::runtime::Runtime;
use super::table::read_csv;
use super::{info, model_error, model_inputs, read_model, PlotArgs};
use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::ops::Range;
use std::path::{Path, PathBuf};

const FONT: &str = "sans-serif";
/// Points drawn per scatter panel (more only clutter the picture).
const SCATTER: usize = 3000;
const BINS: usize = 60;
const DATA_COLOR: RGBColor = RGBColor(31, 119, 180);
const FLOW_COLOR: RGBColor = RGBColor(214, 39, 40);

fn register_font() -> Result<()> {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!("the embedded font did not load"))
    }
}

/// Range of `v` padded by 5% on each side (never empty).
fn range(v: impl Iterator<Item = f32>) -> Range<f32> {
    let (lo, hi) = v.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    if !(lo.is_finite() && hi.is_finite()) {
        return -1.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    lo - pad..hi + pad
}

/// Density histogram of `v` over `r` in `BINS` bins (normalized by all of `v`).
fn histogram(v: &[f32], r: &Range<f32>) -> Vec<f64> {
    let w = (r.end - r.start) as f64 / BINS as f64;
    let mut h = vec![0.0f64; BINS];
    for &x in v {
        let b = ((x - r.start) as f64 / w).floor();
        if b >= 0.0 && (b as usize) < BINS {
            h[b as usize] += 1.0;
        }
    }
    let norm = v.len().max(1) as f64 * w;
    h.iter_mut().for_each(|c| *c /= norm);
    h
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// The two axes of the joint picture: data points, flow samples, axis labels.
struct Axes {
    data: Vec<(f32, f32)>,
    flow: Vec<(f32, f32)>,
    labels: (String, String),
}

#[allow(clippy::too_many_arguments)]
fn scatter(
    area: &Area<'_>,
    title: &str,
    pts: &[(f32, f32)],
    xr: &Range<f32>,
    yr: &Range<f32>,
    labels: (&str, &str),
    color: RGBColor,
) -> Result<()> {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 24))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(52)
        .build_cartesian_2d(xr.clone(), yr.clone())?;
    chart
        .configure_mesh()
        .x_desc(labels.0)
        .y_desc(labels.1)
        .label_style((FONT, 15))
        .draw()?;
    chart.draw_series(
        pts.iter()
            .filter(|(x, y)| xr.contains(x) && yr.contains(y))
            .map(|&(x, y)| Circle::new((x, y), 2, color.mix(0.45).filled())),
    )?;
    Ok(())
}

fn marginal(area: &Area<'_>, name: &str, data: &[f32], flow: &[f32]) -> Result<()> {
    let r = range(data.iter().copied());
    let (hd, hf) = (histogram(data, &r), histogram(flow, &r));
    let top = hd.iter().chain(&hf).copied().fold(0.0, f64::max).max(1e-9) * 1.12;
    let w = (r.end - r.start) / BINS as f32;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{name} marginal"), (FONT, 24))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(60)
        .build_cartesian_2d(r.clone(), 0.0..top as f32)?;
    chart
        .configure_mesh()
        .x_desc(name)
        .y_desc("density")
        .label_style((FONT, 15))
        .draw()?;
    chart
        .draw_series(hd.iter().enumerate().map(|(i, &h)| {
            let x0 = r.start + i as f32 * w;
            Rectangle::new(
                [(x0, 0.0), (x0 + w, h as f32)],
                DATA_COLOR.mix(0.45).filled(),
            )
        }))?
        .label("data")
        .legend(|(x, y)| {
            Rectangle::new([(x, y - 6), (x + 16, y + 6)], DATA_COLOR.mix(0.45).filled())
        });
    chart
        .draw_series(LineSeries::new(
            hf.iter()
                .enumerate()
                .map(|(i, &h)| (r.start + (i as f32 + 0.5) * w, h as f32)),
            FLOW_COLOR.stroke_width(3),
        ))?
        .label("flow samples")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], FLOW_COLOR.stroke_width(3)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 15))
        .draw()?;
    Ok(())
}

/// Draws `joint.png` (when there are two axes to draw) and `marginals.png` into `dir`;
/// `x` and `cx` are the data and context rows in raw units.
pub fn draw(
    mut rt: Runtime<'_>,
    x: &[f32],
    cx: &[f32],
    names: &[String],
    ctx_names: &[String],
    dir: &Path,
    seed: u64,
) -> Result<Vec<PathBuf>> {
    register_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (d, c) = (rt.dim(), rt.context_dim());
    let n = x.len() / d.max(1);
    if n == 0 {
        return Err(anyhow!("no data rows to plot"));
    }
    let ns = n.max(20_000);
    let ctx = |i: usize| cx[(i % n) * c..(i % n) * c + c].to_vec();
    let samples = super::sample::draw(&mut rt, ns, seed, ctx, false)?;
    let col =
        |v: &[f32], j: usize, w: usize| -> Vec<f32> { v.chunks_exact(w).map(|r| r[j]).collect() };
    let mut files = Vec::new();

    // Joint scatter: (x1, x2), or (c1, x) for a one-dimensional conditional model.
    let pairs = |a: Vec<f32>, b: Vec<f32>| -> Vec<(f32, f32)> { a.into_iter().zip(b).collect() };
    let axes = if d >= 2 {
        Some(Axes {
            data: pairs(col(x, 0, d), col(x, 1, d)),
            flow: pairs(col(&samples, 0, d), col(&samples, 1, d)),
            labels: (names[0].clone(), names[1].clone()),
        })
    } else if c >= 1 {
        let cs: Vec<f32> = (0..ns).map(|i| cx[(i % n) * c]).collect();
        Some(Axes {
            data: pairs(col(cx, 0, c), col(x, 0, d)),
            flow: pairs(cs, col(&samples, 0, d)),
            labels: (ctx_names[0].clone(), names[0].clone()),
        })
    } else {
        None
    };
    if let Some(ax) = axes {
        let path = dir.join("joint.png");
        {
            let root = BitMapBackend::new(&path, (1200, 580)).into_drawing_area();
            root.fill(&WHITE)?;
            let xr = range(ax.data.iter().map(|p| p.0));
            let yr = range(ax.data.iter().map(|p| p.1));
            let panels = root.split_evenly((1, 2));
            let labels = (ax.labels.0.as_str(), ax.labels.1.as_str());
            let data = &ax.data[..ax.data.len().min(SCATTER)];
            let flow = &ax.flow[..ax.flow.len().min(SCATTER)];
            scatter(&panels[0], "data", data, &xr, &yr, labels, DATA_COLOR)?;
            scatter(
                &panels[1],
                "flow samples",
                flow,
                &xr,
                &yr,
                labels,
                FLOW_COLOR,
            )?;
            root.present()?;
        }
        files.push(path);
    }

    let path = dir.join("marginals.png");
    {
        let cols = d.min(3);
        let rows = d.div_ceil(cols);
        let root =
            BitMapBackend::new(&path, (580 * cols as u32, 440 * rows as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((rows, cols));
        for j in 0..d {
            marginal(&panels[j], &names[j], &col(x, j, d), &col(&samples, j, d))?;
        }
        root.present()?;
    }
    files.push(path);
    Ok(files)
}

pub fn run(a: &PlotArgs, quiet: bool) -> Result<()> {
    let bytes = read_model(&a.model)?;
    let rt = Runtime::new(&bytes).map_err(|e| model_error(&a.model, e))?;
    let table = read_csv(&a.data)?;
    let (x, cx, names, ctx_names) = model_inputs(&rt, &table, &a.context_columns)?;
    for f in draw(rt, &x, &cx, &names, &ctx_names, &a.out, a.seed)? {
        info!(quiet, "wrote {}", f.display());
    }
    Ok(())
}
