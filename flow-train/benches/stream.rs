//! Windows of consecutive IMU readings (`data/imu`): the table of issue 17 — Gaussian mixtures
//! on single readings and on windows of 3 and 8 readings, beside the flows `fit` makes for
//! single readings and with `--window 3` / `--window 8` — on a recording-level split of the
//! training file (docs/streams.md).
//!
//! ```text
//! cargo bench -p flow-train --bench stream             # the table (1.5 minutes on 2 cores)
//! cargo bench -p flow-train --bench stream -- quick    # mixtures only, no flows
//! cargo bench -p flow-train --bench stream -- big      # also the window flow with
//!                                                      # max_instructions = 100,000 (3 min)
//! ```
//!
//! **Split.** The 28 recordings of `imu/imu_train.csv` (14 standing, 14 walking, 100 readings
//! each) are dealt into 4 folds of 7 whole recordings, stratified by class, as the `imu`
//! bench deals them; each fold is held out once while the other 21 recordings train.
//!
//! **NLL.** Nats per window in the file's units, each model per its own window (single
//! readings: per reading; windows of 3: per window of 3), over every held-out reading with 7
//! predecessors in its recording (93 of each recording's 100), so that every row is measured
//! on the same readings; mean over the folds, and each fold's value.
//!
//! **Per-reading AUROC.** Each reading is scored by the log-density of the model's window
//! ending at it. Normal: the held-out readings above. Anomalous: recordings made from each
//! held-out walking recording (there are no anomalous recordings here), every reading of them
//! with 7 predecessors in its (made-up) recording: `amp2` its deviations from the training
//! readings' mean ×2 (stronger, faster motion), `speed2` every second reading (the same motion
//! twice as fast; 50 readings), `shuffle` its readings in a seeded random order (each reading
//! a normal one, their order not). They rank models against each other; only recordings of
//! real anomalies measure the true AUROC.
//!
//! **Mixtures.** Full covariances, `reg_covar` 1e-3, by EM (`common/gmm.rs`, seeded by the
//! fold) on the training recordings' windows (every window of `w` consecutive readings of a
//! recording). The data are already in standard units, so no scaler is fitted. As the issue
//! did, the training readings are jittered for their exact repeats: each value of each
//! training reading gets `0.01 · N(0, 1)` (the trainer's seeded normal, seed `1000 + fold`)
//! before the windows are cut; the held-out readings are scored as they are.
//!
//! **Flows.** As `fit` makes them, on the fold's 21 training recordings, standardized by their
//! readings' mean and standard deviation (the model's scaler), seed 0: the plain per-reading
//! default (`auto_config` without options, no group ids, its own random validation rows; NLL
//! in raw units); and `fit --window W --rows-per-group 100` (`auto_window` + `train_window`,
//! both parts without validation rows as `fit --window` trains them), written by
//! `TrainedWindow::model`, parsed back and scored by flow-core's `WindowScorer` exactly as
//! `eval` does. `W` does not change the training (the model is one joint flow of two
//! readings; `W` is how many of its terms a window sums), so the `--window 3` row is the
//! `--window 8` model's file written with `W = 3`. Unlike `fit`, the bench holds no
//! recordings back for thresholds (`fit --window` keeps 10 % of them). Training seconds are
//! wall seconds of each fit (the window's two parts on two threads), on a shared machine.

// Shared with other benches and tests: not every item is used here.
#[allow(dead_code)]
#[path = "../tests/common/gauss.rs"]
mod gauss;
#[path = "common/gmm.rs"]
mod gmm;
#[path = "common/imu_data.rs"]
mod imu_data;

use flow_core::model::Model;
use flow_core::stream::WindowScorer;
use flow_train::defaults::{auto_config, AutoOptions};
use flow_train::export::auroc;
use flow_train::window::{auto_window, pairs, train_window};
use flow_train::{train, Dataset, LayerSpec};
use gmm::Gmm;
use imu_data::{folds, load, Imu};
use std::ops::ControlFlow;
use std::time::Instant;

/// Values per reading.
const D: usize = 6;
/// The longest window; the readings scored are those with `W - 1` predecessors.
const W: usize = 8;
const FOLDS: usize = 4;
const ANOMALIES: [&str; 3] = ["amp2", "speed2", "shuffle"];

/// One recording: its readings (`D` values each, flat) and class.
struct Rec {
    x: Vec<f32>,
    walking: bool,
}

impl Rec {
    fn len(&self) -> usize {
        self.x.len() / D
    }
}

/// The recordings in file order (their rows are consecutive).
fn recordings(imu: &Imu) -> Vec<(u32, Rec)> {
    let mut out: Vec<(u32, Rec)> = Vec::new();
    for i in 0..imu.data.len() {
        match out.last_mut() {
            Some((id, r)) if *id == imu.rec[i] => r.x.extend_from_slice(imu.data.row(i)),
            _ => out.push((
                imu.rec[i],
                Rec {
                    x: imu.data.row(i).to_vec(),
                    walking: imu.walking[i],
                },
            )),
        }
    }
    out
}

/// A fitted model of windows: the log-density (raw units) of the window ending at each
/// reading of a recording, `None` for a reading without a full window.
trait Windowed: Sync {
    fn score(&self, rec: &[f32]) -> Vec<Option<f64>>;
}

/// A mixture on windows of `w` readings.
struct MixtureW {
    g: Gmm,
    w: usize,
}

impl Windowed for MixtureW {
    fn score(&self, rec: &[f32]) -> Vec<Option<f64>> {
        let n = rec.len() / D;
        (0..n)
            .map(|t| {
                (t + 1 >= self.w).then(|| {
                    let x: Vec<f64> = rec[(t + 1 - self.w) * D..(t + 1) * D]
                        .iter()
                        .map(|&v| v as f64)
                        .collect();
                    self.g.log_prob(&x)
                })
            })
            .collect()
    }
}

/// The plain per-reading flow, with its scaler.
struct PlainFlow {
    e: flow_train::Exported,
    mean: Vec<f64>,
    sd: Vec<f64>,
}

impl Windowed for PlainFlow {
    fn score(&self, rec: &[f32]) -> Vec<Option<f64>> {
        let log_scale: f64 = self.sd.iter().map(|s| s.ln()).sum();
        let z = standardize(rec, &self.mean, &self.sd);
        self.e
            .log_probs::<f64>(&z)
            .expect("scoring")
            .into_iter()
            .map(|l| Some(l - log_scale))
            .collect()
    }
}

/// A windowed model file, scored by flow-core's `WindowScorer` as `eval` does.
struct WindowFlow {
    bytes: Vec<u8>,
}

impl Windowed for WindowFlow {
    fn score(&self, rec: &[f32]) -> Vec<Option<f64>> {
        let model = Model::parse(&self.bytes).expect("the model file parses");
        let flow = model
            .joint_flow::<{ 2 * D }, 16, 64, 32>()
            .expect("a joint flow");
        let mut s = WindowScorer::<{ 2 * D }, { W - 1 }>::new(&model).expect("a window");
        rec.chunks_exact(D)
            .map(|x| s.push(&flow, x).expect("scoring").map(f64::from))
            .collect()
    }
}

/// Per-column mean and (ddof 0) standard deviation of readings (flat).
fn moments(x: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let n = (x.len() / D) as f64;
    let mut m = vec![0.0; D];
    let mut s = [0.0; D];
    for r in x.chunks_exact(D) {
        for j in 0..D {
            m[j] += r[j] as f64 / n;
        }
    }
    for r in x.chunks_exact(D) {
        for j in 0..D {
            s[j] += (r[j] as f64 - m[j]).powi(2) / n;
        }
    }
    (m, s.iter().map(|v| v.sqrt()).collect())
}

fn standardize(x: &[f32], m: &[f64], s: &[f64]) -> Vec<f32> {
    x.chunks_exact(D)
        .flat_map(|r| (0..D).map(move |j| ((r[j] as f64 - m[j]) / s[j]) as f32))
        .collect()
}

/// The anomalous recordings made from one held-out walking recording (module docs), in the
/// order of [`ANOMALIES`].
fn anomalies(rec: &Rec, mean: &[f64], seed: u64) -> [Vec<f32>; 3] {
    let amp = rec
        .x
        .chunks_exact(D)
        .flat_map(|r| (0..D).map(move |j| (mean[j] + 2.0 * (r[j] as f64 - mean[j])) as f32))
        .collect();
    let speed = rec
        .x
        .chunks_exact(D)
        .step_by(2)
        .flatten()
        .copied()
        .collect();
    let order = flow_train::init::Rng::new(seed).permutation(rec.len());
    let shuffle = order
        .iter()
        .flat_map(|&t| rec.x[t * D..(t + 1) * D].iter().copied())
        .collect();
    [amp, speed, shuffle]
}

/// The scores of the readings with `W - 1` predecessors (the table's readings).
fn scored(m: &dyn Windowed, rec: &[f32]) -> Vec<f64> {
    m.score(rec)
        .into_iter()
        .skip(W - 1)
        .map(|s| s.expect("a full window"))
        .collect()
}

/// One fold's held-out data: normal recordings and the anomalous ones of each kind.
struct Held<'a> {
    normal: Vec<&'a Rec>,
    anomalous: [Vec<Vec<f32>>; 3],
}

/// One model's figures on one fold.
struct FoldResult {
    nll: f64,
    auc: [f64; 3],
}

fn evaluate(m: &dyn Windowed, held: &Held<'_>) -> FoldResult {
    let normal: Vec<f64> = held.normal.iter().flat_map(|r| scored(m, &r.x)).collect();
    let nll = -normal.iter().sum::<f64>() / normal.len() as f64;
    let auc = std::array::from_fn(|a| {
        let bad: Vec<f64> = held.anomalous[a]
            .iter()
            .flat_map(|r| scored(m, r))
            .collect();
        auroc(&normal, &bad)
    });
    FoldResult { nll, auc }
}

/// A table row: the model's name, parameters, per-fold results and training seconds.
struct Row {
    name: String,
    params: usize,
    folds: Vec<FoldResult>,
    secs: Vec<f64>,
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = v.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let quick = args.iter().any(|a| a == "quick");
    let big = args.iter().any(|a| a == "big");
    let t_all = Instant::now();
    let imu = load();
    let recs = recordings(&imu);
    let fold_of = folds(&imu, FOLDS);
    let fold = |id: u32| fold_of.iter().find(|f| f.0 == id).expect("dealt").1;

    let mixtures: [(usize, usize, &str); 5] = [
        (1, 16, "mixture, 16 components, single readings (6-D)"),
        (3, 8, "mixture, 8 components, windows of 3 readings (18-D)"),
        (
            8,
            1,
            "mixture, 1 component (one Gaussian), windows of 8 (48-D)",
        ),
        (8, 4, "mixture, 4 components, windows of 8 (48-D)"),
        (8, 8, "mixture, 8 components, windows of 8 (48-D)"),
    ];
    let mut rows: Vec<Row> = mixtures
        .iter()
        .map(|&(w, k, name)| Row {
            name: name.to_string(),
            params: Gmm::param_count(k, w * D),
            folds: Vec::new(),
            secs: Vec::new(),
        })
        .collect();
    let flow_names = [
        "flow, `fit` defaults, single readings (6-D)",
        "flow, `fit --window 3` defaults (p(x_1)·Π p(x_t ∣ x_t-1))",
        "flow, `fit --window 8` defaults (p(x_1)·Π p(x_t ∣ x_t-1))",
        "flow, `fit --window 8 --max-instructions 100000`",
    ];
    let n_flows = if quick {
        0
    } else if big {
        4
    } else {
        3
    };
    for name in &flow_names[..n_flows] {
        rows.push(Row {
            name: name.to_string(),
            params: 0,
            folds: Vec::new(),
            secs: Vec::new(),
        });
    }
    // Sample-and-hold: the window-8 default flow's conditional term of exact repeats and of
    // other readings, and the window scores of windows with and without a repeat.
    let mut repeats = Repeats::default();

    for k in 0..FOLDS {
        let train_recs: Vec<&Rec> = recs
            .iter()
            .filter(|(id, _)| fold(*id) != k)
            .map(|(_, r)| r)
            .collect();
        let test_recs: Vec<(u32, &Rec)> = recs
            .iter()
            .filter(|(id, _)| fold(*id) == k)
            .map(|(id, r)| (*id, r))
            .collect();
        let all_train: Vec<f32> = train_recs.iter().flat_map(|r| r.x.clone()).collect();
        let (m, s) = moments(&all_train);
        let held = Held {
            normal: test_recs.iter().map(|(_, r)| *r).collect(),
            anomalous: std::array::from_fn(|a| {
                test_recs
                    .iter()
                    .filter(|(_, r)| r.walking)
                    .map(|(id, r)| anomalies(r, &m, 2000 + u64::from(*id))[a].clone())
                    .collect()
            }),
        };

        // Mixtures on jittered training windows.
        let mut rng = flow_train::init::Rng::new(1000 + k as u64);
        let jittered: Vec<Vec<f32>> = train_recs
            .iter()
            .map(|r| r.x.iter().map(|&v| v + 0.01 * rng.normal()).collect())
            .collect();
        for (row, &(w, comps, _)) in rows.iter_mut().zip(&mixtures) {
            let mut v = Vec::new();
            for r in &jittered {
                for t in 0..=(r.len() / D).saturating_sub(w) {
                    v.extend_from_slice(&r[t * D..(t + w) * D]);
                }
            }
            let windows = Dataset::new(w * D, v).expect("windows");
            let t = Instant::now();
            let g = Gmm::fit(&windows, comps, k as u64, 1e-3);
            row.secs.push(t.elapsed().as_secs_f64());
            row.folds.push(evaluate(&MixtureW { g, w }, &held));
        }

        if n_flows > 0 {
            // The plain per-reading flow, as `fit` without options.
            let z = Dataset::new(D, standardize(&all_train, &m, &s)).expect("readings");
            let (spec, mut cfg) = auto_config(&z, &AutoOptions::default()).expect("auto_config");
            cfg.seed = 0;
            cfg.groups = None;
            let t = train(&spec, &cfg, &z, |_| ControlFlow::Continue(())).expect("training");
            let plain = PlainFlow {
                e: t.export().expect("export"),
                mean: m.clone(),
                sd: s.clone(),
            };
            let r = &mut rows[mixtures.len()];
            r.params = spec.param_count();
            r.secs.push(t.seconds);
            r.folds.push(evaluate(&plain, &held));

            // The windowed flows, as `fit --window W --rows-per-group 100`.
            let budgets: &[Option<usize>] = if big { &[None, Some(100_000)] } else { &[None] };
            for (b, &max_instructions) in budgets.iter().enumerate() {
                let (mean32, scale32): (Vec<f32>, Vec<f32>) = m
                    .iter()
                    .zip(&s)
                    .map(|(&a, &b)| (a as f32, b as f32))
                    .unzip();
                let mut z = Vec::with_capacity(all_train.len());
                let mut ids = Vec::new();
                for (i, r) in train_recs.iter().enumerate() {
                    for x in r.x.chunks_exact(D) {
                        z.extend((0..D).map(|j| (x[j] - mean32[j]) / scale32[j]));
                        ids.push(i as u32);
                    }
                }
                let readings = Dataset::new(D, z).expect("readings");
                let pair_data = pairs(&readings, &ids).expect("pairs");
                let opts = AutoOptions {
                    max_instructions,
                    ..AutoOptions::default()
                };
                let mut wc = auto_window(&readings, &pair_data, &opts, 0).expect("auto_window");
                for c in [&mut wc.marginal.1, &mut wc.conditional.1] {
                    c.seed = 0;
                    c.validation_fraction = 0.0;
                    c.groups = None;
                }
                let t = Instant::now();
                let trained = train_window(&wc, &readings, &pair_data, &|_| {}).expect("training");
                let secs = t.elapsed().as_secs_f64();
                let names: Vec<String> = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
                    .map(String::from)
                    .to_vec();
                let file = |w: usize| WindowFlow {
                    bytes: trained
                        .model(&names, (&mean32, &scale32), w, (Some(100), None))
                        .expect("model")
                        .encode()
                        .expect("encode"),
                };
                let params = wc.spec().param_count();
                let w8 = file(8);
                let at = |row: usize| mixtures.len() + row;
                let targets: Vec<(usize, WindowFlow)> = if b == 0 {
                    vec![(at(1), file(3)), (at(2), file(8))]
                } else {
                    vec![(at(3), file(8))]
                };
                for (row, f) in targets {
                    rows[row].params = params;
                    if k == 0 {
                        if let Some(LayerSpec::ConditionalSpline { hidden, .. }) =
                            wc.conditional.0.layers.first()
                        {
                            rows[row].name += &format!(", conditional hidden {hidden:?}");
                        }
                    }
                    rows[row].secs.push(secs);
                    rows[row].folds.push(evaluate(&f, &held));
                }
                if b == 0 {
                    repeats.add(&w8, &held.normal);
                }
            }
        }
        eprintln!("fold {k} done at {:.0} s", t_all.elapsed().as_secs_f64());
    }

    println!(
        "`cargo bench -p flow-train --bench stream{}` ({}; recording-level split of \
         data/imu/imu_train.csv: 4 folds of 7 whole recordings, stratified by class; \
         NLL and AUROC: mean over the folds, each fold's NLL in brackets; {:.0} s in all)",
        if big {
            " -- big"
        } else if quick {
            " -- quick"
        } else {
            ""
        },
        today(),
        t_all.elapsed().as_secs_f64()
    );
    println!();
    println!(
        "| model (held out: 7 recordings × 4 folds; every reading with 7 predecessors in its \
         recording) | params | NLL per window (per fold) | per-reading AUROC amp2 / speed2 / \
         shuffle | training s |"
    );
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        let folds: Vec<String> = r.folds.iter().map(|f| format!("{:.2}", f.nll)).collect();
        let aucs: Vec<String> = (0..ANOMALIES.len())
            .map(|a| format!("{:.4}", mean(r.folds.iter().map(|f| f.auc[a]))))
            .collect();
        println!(
            "| {} | {} | {:.3} ({}) | {} | {:.1} |",
            r.name,
            thousands(r.params),
            mean(r.folds.iter().map(|f| f.nll)),
            folds.join(" / "),
            aucs.join(" / "),
            mean(r.secs.iter().copied())
        );
    }
    if n_flows > 0 {
        repeats.print();
    }
}

/// `n` with a comma between thousands.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Today's date (UTC), `YYYY-MM-DD`.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The sample-and-hold check on the held-out recordings (docs/streams.md), per class
/// (standing, walking).
#[derive(Default)]
struct Repeats {
    /// `log p(x_t | x_{t-1})` (raw units) of readings equal to their predecessor, and of the
    /// others.
    cond_repeat: [Vec<f64>; 2],
    cond_other: [Vec<f64>; 2],
    /// Window (8) log-densities of windows with at least one repeat, and without.
    win_repeat: [Vec<f64>; 2],
    win_other: [Vec<f64>; 2],
}

impl Repeats {
    fn add(&mut self, f: &WindowFlow, normal: &[&Rec]) {
        let model = Model::parse(&f.bytes).expect("the model file parses");
        let flow = model
            .joint_flow::<{ 2 * D }, 16, 64, 32>()
            .expect("a joint flow");
        let (mean, scale): (Vec<f32>, Vec<f32>) = (0..D)
            .map(|j| model.scaler(D + j).expect("a scaler"))
            .unzip();
        let log_det: f32 = scale.iter().map(|s| -libm::logf(*s)).sum();
        for r in normal {
            let class = usize::from(r.walking);
            let x: Vec<&[f32]> = r.x.chunks_exact(D).collect();
            let repeat: Vec<bool> = (0..x.len()).map(|t| t > 0 && x[t] == x[t - 1]).collect();
            for t in 1..x.len() {
                let mut pair = [0.0f32; 2 * D];
                for j in 0..D {
                    pair[j] = (x[t - 1][j] - mean[j]) / scale[j];
                    pair[D + j] = (x[t][j] - mean[j]) / scale[j];
                }
                let (_, c) = flow.log_prob_parts(&pair).expect("scoring");
                let c = f64::from(c + log_det);
                if repeat[t] {
                    self.cond_repeat[class].push(c);
                } else {
                    self.cond_other[class].push(c);
                }
            }
            let w = f.score(&r.x);
            for (t, s) in w.iter().enumerate().skip(W - 1) {
                let s = s.expect("a full window");
                // A repeat inside the window: reading u equal to u - 1, both in the window.
                if (t + 2 - W..=t).any(|u| repeat[u]) {
                    self.win_repeat[class].push(s);
                } else {
                    self.win_other[class].push(s);
                }
            }
        }
    }

    fn print(&self) {
        let m = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!();
        println!(
            "sample-and-hold (window-8 default flow, held-out recordings of all folds; log p in \
             nats, raw units):"
        );
        for (c, class) in ["standing", "walking"].iter().enumerate() {
            let n = self.cond_repeat[c].len() + self.cond_other[c].len();
            println!(
                "  {class}: {} of {n} readings ({:.1} %) equal their predecessor; mean \
                 log p(x_t | x_t-1) {:.3} for them, {:.3} for the others; windows of 8 with a \
                 repeat: {} (mean log p {:.3}), without: {} (mean log p {:.3})",
                self.cond_repeat[c].len(),
                100.0 * self.cond_repeat[c].len() as f64 / n as f64,
                m(&self.cond_repeat[c]),
                m(&self.cond_other[c]),
                self.win_repeat[c].len(),
                m(&self.win_repeat[c]),
                self.win_other[c].len(),
                m(&self.win_other[c]),
            );
        }
    }
}
