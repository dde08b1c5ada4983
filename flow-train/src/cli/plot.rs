//! `plot` (and `fit --plots`): the pictures of Pyro's normalizing-flow tutorial, as PNG.
//!
//! * `joint.png`: one panel, the data and the flow's samples overlaid, with a legend and a
//!   title naming the model (first two data columns; for a one-dimensional conditional model,
//!   the first context column against x). Two data columns share one scale (a unit is as long
//!   on both axes), so a circle looks round;
//! * `marginals.png`: per data column, the densities of the data and of the flow's samples as
//!   curves (Gaussian kernel density estimates, Silverman's bandwidth, on at most
//!   [`KDE_POINTS`] points of each).
//!
//! The view is the data's 0.1–99.9 % range on each axis (padded 5 %), so that a few far
//! points do not squeeze the picture; the legend says how many data points and samples lie
//! outside it, and so does the command (on stderr).
//!
//! The flow is sampled with flow-core's code, in raw units (the model's scaler applied);
//! 20,000 samples or one per data row if there are more. A conditional model is sampled at
//! each data row's context (cycling through the rows), so its picture is `p(c)·p(x | c)`
//! with the data's `c`. Text uses DejaVu Sans, embedded.

use super::runtime::Runtime;
use super::table::read_csv;
use super::{info, model_error, model_inputs, one_stdin, read_model, PlotArgs};
use anyhow::{anyhow, Context, Result};
use flow_core::model::FlowKind;
use flow_train::export::quantile;
use plotters::prelude::*;
use std::ops::Range;
use std::path::{Path, PathBuf};

const FONT: &str = "sans-serif";
/// Points drawn per set in the joint panel (more only clutter the picture), evenly strided.
const SCATTER: usize = 3000;
/// Points per set the marginal densities are estimated from (evenly strided).
pub const KDE_POINTS: usize = 10_000;
/// Grid points of each density curve.
const GRID: usize = 300;
/// The view's quantiles of the data.
const VIEW: (f64, f64) = (0.001, 0.999);
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

/// The view of `v`: its 0.1–99.9 % range padded by 5 % on each side (never empty).
fn view(v: impl Iterator<Item = f32>) -> Range<f32> {
    let mut s: Vec<f32> = v.filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return -1.0..1.0;
    }
    s.sort_by(f32::total_cmp);
    let (lo, hi) = (quantile(&s, VIEW.0), quantile(&s, VIEW.1));
    let pad = ((hi - lo) * 0.05).max(1e-3 * lo.abs().max(hi.abs()).max(1.0));
    lo - pad..hi + pad
}

/// Widens the shorter of `x` and `y` about its centre so that a unit is as long on both
/// axes in a plotting area of `w` × `h` pixels.
fn equal_scale(x: &mut Range<f32>, y: &mut Range<f32>, w: u32, h: u32) {
    let (sx, sy) = (x.end - x.start, y.end - y.start);
    let per_px = (sx / w as f32).max(sy / h as f32);
    let widen = |r: &mut Range<f32>, span: f32| {
        let c = 0.5 * (r.start + r.end);
        *r = c - 0.5 * span..c + 0.5 * span;
    };
    widen(x, per_px * w as f32);
    widen(y, per_px * h as f32);
}

/// Every `len / n`-th element (all of them if there are at most `n`).
fn strided<T: Copy>(v: &[T], n: usize) -> Vec<T> {
    let step = v.len().div_ceil(n.max(1)).max(1);
    v.iter().step_by(step).copied().collect()
}

/// Gaussian kernel density estimate of `v` on `GRID` points of `r` (Silverman's rule).
fn density(v: &[f32], r: &Range<f32>) -> Vec<(f32, f32)> {
    let pts: Vec<f64> = strided(v, KDE_POINTS).iter().map(|&x| x as f64).collect();
    let n = pts.len().max(1) as f64;
    let mean = pts.iter().sum::<f64>() / n;
    let sd = (pts.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
    let mut sorted: Vec<f32> = pts.iter().map(|&x| x as f32).collect();
    sorted.sort_by(f32::total_cmp);
    let iqr = if sorted.is_empty() {
        0.0
    } else {
        (quantile(&sorted, 0.75) - quantile(&sorted, 0.25)) as f64
    };
    let spread = if iqr > 0.0 { sd.min(iqr / 1.34) } else { sd };
    let h = (0.9 * spread * n.powf(-0.2)).max((r.end - r.start) as f64 * 1e-3);
    let norm = 1.0 / (n * h * (2.0 * std::f64::consts::PI).sqrt());
    (0..GRID)
        .map(|i| {
            let x = r.start as f64 + (r.end - r.start) as f64 * i as f64 / (GRID - 1) as f64;
            let d: f64 = pts
                .iter()
                .map(|&p| {
                    let z = (x - p) / h;
                    if z.abs() < 8.0 {
                        (-0.5 * z * z).exp()
                    } else {
                        0.0
                    }
                })
                .sum();
            (x as f32, (d * norm) as f32)
        })
        .collect()
}

/// Thousands separators for the counts in the legends.
fn count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The legend label of a set with `outside` of its `total` points outside the view.
fn label(what: &str, outside: usize, total: usize) -> String {
    if outside == 0 {
        what.to_string()
    } else {
        format!(
            "{what} ({} of {} outside the view)",
            count(outside),
            count(total)
        )
    }
}

/// The two axes of the joint picture: data points, flow samples, axis labels; `equal` when
/// both axes are data columns (the same units).
struct Axes {
    data: Vec<(f32, f32)>,
    flow: Vec<(f32, f32)>,
    labels: (String, String),
    equal: bool,
}

/// `joint.png`: data and samples in one panel. Returns the note on the points outside.
fn joint(path: &Path, title: &str, ax: &Axes) -> Result<String> {
    let root = BitMapBackend::new(path, (900, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let area = root.titled(title, (FONT, 22))?;
    let (margin, xl, yl) = (16u32, 46u32, 62u32);
    let (w, h) = area.dim_in_pixel();
    let mut xr = view(ax.data.iter().map(|p| p.0));
    let mut yr = view(ax.data.iter().map(|p| p.1));
    if ax.equal {
        equal_scale(&mut xr, &mut yr, w - 2 * margin - yl, h - 2 * margin - xl);
    }
    let inside = |&(x, y): &(f32, f32)| xr.contains(&x) && yr.contains(&y);
    let out_data = ax.data.iter().filter(|p| !inside(p)).count();
    let out_flow = ax.flow.iter().filter(|p| !inside(p)).count();
    let mut chart = ChartBuilder::on(&area)
        .margin(margin)
        .x_label_area_size(xl)
        .y_label_area_size(yl)
        .build_cartesian_2d(xr.clone(), yr.clone())?;
    chart
        .configure_mesh()
        .x_desc(ax.labels.0.as_str())
        .y_desc(ax.labels.1.as_str())
        .label_style((FONT, 15))
        .draw()?;
    for (pts, color, what, outside) in [
        (&ax.data, DATA_COLOR, "data", out_data),
        (&ax.flow, FLOW_COLOR, "flow samples", out_flow),
    ] {
        let shown: Vec<(f32, f32)> = strided(pts, SCATTER).into_iter().filter(inside).collect();
        chart
            .draw_series(
                shown
                    .iter()
                    .map(|&p| Circle::new(p, 2, color.mix(0.4).filled())),
            )?
            .label(label(what, outside, pts.len()))
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 15))
        .draw()?;
    root.present()?;
    Ok(format!(
        "{}: {out_data} of {} data points and {out_flow} of {} flow samples lie outside the \
         view (the data's 0.1-99.9 % range)",
        path.display(),
        ax.data.len(),
        ax.flow.len()
    ))
}

/// One marginal panel; returns the counts outside the view.
fn marginal(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    name: &str,
    data: &[f32],
    flow: &[f32],
) -> Result<(usize, usize)> {
    let r = view(data.iter().copied());
    let (dd, df) = (density(data, &r), density(flow, &r));
    let top = dd
        .iter()
        .chain(&df)
        .map(|p| p.1)
        .fold(0.0, f32::max)
        .max(1e-9)
        * 1.35;
    let out = |v: &[f32]| v.iter().filter(|x| !r.contains(x)).count();
    let (od, of) = (out(data), out(flow));
    let mut chart = ChartBuilder::on(area)
        .caption(name, (FONT, 20))
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(60)
        .build_cartesian_2d(r.clone(), 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc(name)
        .y_desc("density")
        .label_style((FONT, 15))
        .draw()?;
    chart
        .draw_series(LineSeries::new(dd, DATA_COLOR.stroke_width(3)))?
        .label(label("data", od, data.len()))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], DATA_COLOR.stroke_width(3)));
    chart
        .draw_series(LineSeries::new(df, FLOW_COLOR.stroke_width(2)))?
        .label(label("flow samples", of, flow.len()))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], FLOW_COLOR.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()?;
    Ok((od, of))
}

/// The model's name in titles: `name`, its kind and parameter count.
pub fn model_title(rt: &Runtime<'_>, name: &str) -> String {
    let kind = match rt.kind() {
        FlowKind::Plain => "flow p(x)",
        FlowKind::Joint => "joint p(x1)·p(x2 | x1)",
        FlowKind::Conditional => "conditional p(x | c)",
    };
    format!(
        "{name}: {kind}, {} parameters",
        count(rt.model.param_count())
    )
}

/// Draws `joint.png` (when there are two axes to draw) and `marginals.png` into `dir`;
/// `x` and `cx` are the data and context rows in raw units; `title` names the model. Returns
/// the files and a note per file on the points outside the view.
#[allow(clippy::too_many_arguments)]
pub fn draw(
    mut rt: Runtime<'_>,
    x: &[f32],
    cx: &[f32],
    names: &[String],
    ctx_names: &[String],
    dir: &Path,
    seed: u64,
    title: &str,
) -> Result<(Vec<PathBuf>, Vec<String>)> {
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
    let mut notes = Vec::new();

    // Joint scatter: (x1, x2), or (c1, x) for a one-dimensional conditional model.
    let pairs = |a: Vec<f32>, b: Vec<f32>| -> Vec<(f32, f32)> { a.into_iter().zip(b).collect() };
    let axes = if d >= 2 {
        Some(Axes {
            data: pairs(col(x, 0, d), col(x, 1, d)),
            flow: pairs(col(&samples, 0, d), col(&samples, 1, d)),
            labels: (names[0].clone(), names[1].clone()),
            equal: true,
        })
    } else if c >= 1 {
        let cs: Vec<f32> = (0..ns).map(|i| cx[(i % n) * c]).collect();
        Some(Axes {
            data: pairs(col(cx, 0, c), col(x, 0, d)),
            flow: pairs(cs, col(&samples, 0, d)),
            labels: (ctx_names[0].clone(), names[0].clone()),
            equal: false,
        })
    } else {
        None
    };
    if let Some(ax) = axes {
        let path = dir.join("joint.png");
        notes.push(joint(&path, title, &ax)?);
        files.push(path);
    }

    let path = dir.join("marginals.png");
    {
        let cols = d.min(3);
        let rows = d.div_ceil(cols);
        let root = BitMapBackend::new(&path, (580 * cols as u32, 440 * rows as u32 + 40))
            .into_drawing_area();
        root.fill(&WHITE)?;
        let area = root.titled(&format!("{title}: marginal densities"), (FONT, 22))?;
        let panels = area.split_evenly((rows, cols));
        let (mut od, mut of) = (0, 0);
        for j in 0..d {
            let (a, b) = marginal(&panels[j], &names[j], &col(x, j, d), &col(&samples, j, d))?;
            od += a;
            of += b;
        }
        root.present()?;
        notes.push(format!(
            "{}: {od} data values and {of} sample values lie outside the views (each column's \
             0.1-99.9 % range of the data)",
            path.display()
        ));
    }
    files.push(path);
    Ok((files, notes))
}

pub fn run(a: &PlotArgs, quiet: bool) -> Result<()> {
    one_stdin(&[Some(&a.data)])?;
    let bytes = read_model(&a.model)?;
    let rt = Runtime::new(&bytes).map_err(|e| model_error(&a.model, e))?;
    let table = read_csv(&a.data)?;
    let (x, cx, names, ctx_names) = model_inputs(&rt, &table, &a.context_columns)?;
    let name = a.model.file_name().map_or_else(
        || a.model.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let title = model_title(&rt, &name);
    let (files, notes) = draw(rt, &x, &cx, &names, &ctx_names, &a.out, a.seed, &title)?;
    for (f, note) in files.iter().zip(&notes) {
        info!(quiet, "wrote {}", f.display());
        info!(quiet, "{note}");
    }
    Ok(())
}
