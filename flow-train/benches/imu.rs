//! Smartwatch IMU readings (`data/imu`): recording-level cross-validation of flow
//! configurations, to estimate the NLL on held-back recordings; the Gaussian-mixture baseline
//! under the same folds; circles checks of `auto_config`; a model file for the firmware.
//!
//! ```text
//! cargo bench -p flow-train --bench imu                     # auto_config, no preset
//! cargo bench -p flow-train --bench imu -- auto medium seeds=3 [groups]
//! IMU_FOLDS=7 cargo bench -p flow-train --bench imu -- auto # 7 folds of 4 recordings
//! cargo bench -p flow-train --bench imu -- var c=3 nza=1         # auto_config, some choices changed
//! cargo bench -p flow-train --bench imu -- cfg p=mix c=2 h=12x12 k=4 b=3.5 nz=0.97
//! cargo bench -p flow-train --bench imu -- gauss seeds=3    # full-covariance GMMs (EM)
//! IMU_CLASS=standing cargo bench -p flow-train --bench imu -- auto seeds=3 # one class only
//! cargo bench -p flow-train --bench imu -- circles [default] [n=100000] [preset=tiny] seeds=5
//! cargo bench -p flow-train --bench imu -- summary          # what auto_config reads
//! cargo bench -p flow-train --bench imu -- stats | knn      # tails; neighbour distances
//! cargo bench -p flow-train --bench imu -- write OUT.nflw [tiny|small|medium | cfg words | var words]
//! ```
//!
//! Windows of consecutive readings (mixtures and `fit --window` flows on the same folds) are
//! the `stream` bench's (`cargo bench -p flow-train --bench stream`, docs/streams.md).
//!
//! The data directory is `$FLOW_DATA_DIR`, else the repository's `data/`; the bench
//! reads `imu/imu_train.csv` and `imu/imu_train_rows.csv` (and the circles files).
//!
//! **Folds.** The 28 recordings (14 standing, 14 walking) are dealt, stratified by class, into
//! 4 folds of 7 whole recordings (`IMU_FOLDS=7`: 7 folds of 4); each fold is held out once
//! while the others train. As `fit` does, the training recordings are standardized (their
//! mean and standard deviation; the model's scaler) and the held-out NLL is reported in the
//! file's units (the standardized NLL plus the scaler's `Σ log scale`). `TrainConfig::groups`
//! holds the training rows' recording ids, so a validation split (if any) holds out whole
//! recordings — except for `auto`, which like `fit`'s defaults has no group ids (its 10%
//! validation rows are random rows) unless `groups` is given. Printed per configuration: parameters, the mean ± sd of the per-fold NLLs
//! (every fold of every seed listed), the mean NLL of the best 99% of held-out readings, the
//! training NLL, the proxy AUROCs, seconds and steps per fit. `IMU_PER_RECORDING=1` prints the
//! NLL of each held-out recording (mean/worst reading); `IMU_VERBOSE=1` each run's stop reason,
//! validation curve and learned affines.
//!
//! **Proxy anomalies.** No anomalous recordings are available here, so the per-reading AUROC
//! is estimated against synthetic anomalies made from the held-out fold's readings: `amp2`
//! amplifies the walking readings' deviations from the training mean ×2 (stronger, faster
//! motion, like running), `gyr3` the gyroscope columns ×3 of all readings (wrist rotations,
//! like badminton; many standing readings stay inside the normal range, hence its low
//! values). Normal readings are all held-out readings. They compare models with each other;
//! only the held-back recordings measure the true AUROC. With `IMU_CLASS=standing` (or
//! `walking`) only that class's recordings are dealt into folds, trained on and held out, and
//! the other class's readings are a third, real set of anomalies (`other-class`): an unseen
//! activity, as running and badminton are for the full model.
//!
//! `cfg` keys (defaults in brackets): `c` couplings [3], `h` hidden sizes `16` or `24x24` or
//! `-` for none [16], `k` bins [8], `b` bound [5], `o` order `l`/`q` [q], `p` permutation
//! `rev`/`rand`/`none`/`mix` [rev], `ng` no group ids [0], `an` ActNorm-style learnable affine from the data [1], `as`
//! its initial scale multiplier [1], `al` learnable [1], `ab` a learnable affine at the base
//! side with this scale [none], `es`/`eb` an element-wise spline at the data/base end [0],
//! `lr` [2e-3], `st` steps [8000], `bs` batch [256], `nz` input noise in data standard
//! deviations [0.05], `wd` weight decay [0], `pat` patience in checks, 0 for none [30], `rb`
//! restore the best validated parameters [1], `ev` steps between checks [50], `clip` [10],
//! `vf` validation fraction [0.15], `fin` final lr fraction [0.02], `init` `id`/`pyro` [id],
//! `seeds` [1]. The first occurrence of a key counts.
//!
//! `var` keys change `auto_config`'s choices (the rest stay as `fit` would make them):
//! `preset` `tiny`/`medium`; the architecture (any of these rebuilds the mixing stack with the
//! data-side ActNorm affine): `c` couplings [4], `h` [8x8], `k` [3], `o` `l`/`q` [q], `b`
//! [the data's bound], `ew`/`ea` an element-wise spline / a learnable affine between the
//! couplings, `ewk` that spline's bins, `es`/`eb` an element-wise spline at the data/base end,
//! `as` the affine's initial scale multiplier (the training is then `auto_training`'s for that
//! architecture, as `fit --flow coupling` would pair with it); training: `nzm` multiplies the
//! input noise, `nza` the per-row noise exponent (0 for one width), `lr`, `st`, `bs` [256],
//! `wd`, `vf`, `clip`, `fin`.

#[path = "common/gmm.rs"]
mod gmm;
#[path = "common/imu_data.rs"]
mod imu_data;

use flow_train::defaults::{auto_config, AutoOptions, Preset};
use flow_train::*;
use gmm::Gmm;
use imu_data::{data_dir, folds, load, Imu};
use std::ops::ControlFlow;

/// The number of folds: `$IMU_FOLDS`, else 4.
fn n_folds() -> usize {
    std::env::var("IMU_FOLDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// `$IMU_CLASS` (`standing` or `walking`): train and test on that class's recordings only,
/// the other class's readings (all of them, never trained on) a third, real set of anomalies.
fn only_class() -> Option<bool> {
    match std::env::var("IMU_CLASS").ok().as_deref() {
        None => None,
        Some("walking") => Some(true),
        Some("standing") => Some(false),
        Some(other) => panic!("IMU_CLASS={other}: standing or walking"),
    }
}

/// Per-column mean and (ddof 0) standard deviation.
fn moments(d: &Dataset) -> (Vec<f64>, Vec<f64>) {
    let (n, dim) = (d.len() as f64, d.dim());
    let mut m = vec![0.0; dim];
    let mut s = vec![0.0; dim];
    for i in 0..d.len() {
        for (j, &v) in d.row(i).iter().enumerate() {
            m[j] += v as f64 / n;
        }
    }
    for i in 0..d.len() {
        for (j, &v) in d.row(i).iter().enumerate() {
            s[j] += (v as f64 - m[j]).powi(2) / n;
        }
    }
    (m, s.iter().map(|v| v.sqrt()).collect())
}

fn scale(d: &Dataset, m: &[f64], s: &[f64]) -> Dataset {
    let v = d
        .values()
        .chunks_exact(d.dim())
        .flat_map(|r| {
            r.iter()
                .enumerate()
                .map(|(j, &x)| ((x as f64 - m[j]) / s[j]) as f32)
        })
        .collect();
    Dataset::new(d.dim(), v).unwrap()
}

/// The synthetic anomalies of a held-out fold (see the module docs), in file units.
fn anomalies(test: &Dataset, walk: &[bool], mean: &[f64]) -> Vec<(&'static str, Dataset)> {
    let dim = test.dim();
    let mut amp = Vec::new();
    let mut gyr = Vec::new();
    for (i, &walking) in walk.iter().enumerate() {
        let r = test.row(i);
        if walking {
            amp.extend(
                r.iter()
                    .enumerate()
                    .map(|(j, &x)| (mean[j] + 2.0 * (x as f64 - mean[j])) as f32),
            );
        }
        gyr.extend(r.iter().enumerate().map(|(j, &x)| {
            if j >= 3 {
                (mean[j] + 3.0 * (x as f64 - mean[j])) as f32
            } else {
                x
            }
        }));
    }
    vec![
        ("amp2", Dataset::new(dim, amp).unwrap()),
        ("gyr3", Dataset::new(dim, gyr).unwrap()),
    ]
}

/// A density fitted on a fold's (standardized) training data.
trait Fitted {
    fn log_probs(&self, x: &Dataset) -> Vec<f64>;
}

struct FlowFit(Exported);
impl Fitted for FlowFit {
    fn log_probs(&self, x: &Dataset) -> Vec<f64> {
        self.0.log_probs::<f64>(x.values()).unwrap()
    }
}

/// A fitted density, its parameter count, training seconds and steps.
type Fit = (Box<dyn Fitted>, usize, f64, usize);

#[derive(Default)]
struct Summary {
    nll: Vec<f64>,
    auc: Vec<Vec<f64>>,
    secs: Vec<f64>,
    steps: Vec<usize>,
    train_nll: Vec<f64>,
    /// Mean NLL of the best 99% of the held-out readings.
    trimmed: Vec<f64>,
    params: usize,
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

impl Summary {
    fn print(&self, name: &str) {
        let (m, s) = mean_sd(&self.nll);
        let (tm, _) = mean_sd(&self.train_nll);
        let (sec, _) = mean_sd(&self.secs);
        let aucs: Vec<String> = self
            .auc
            .iter()
            .map(|a| match a.iter().filter(|v| v.is_finite()).count() {
                0 => "-".to_string(),
                _ => format!("{:.4}", mean_sd(a).0),
            })
            .collect();
        let names = if self.auc.len() > 2 {
            "amp2/gyr3/other-class"
        } else {
            "amp2/gyr3"
        };
        let folds: Vec<String> = self.nll.iter().map(|v| format!("{v:.2}")).collect();
        println!(
            "== {name}: {} params | CV NLL {m:.3} ± {s:.3} [{}] | 99% {:.3} | train {tm:.3} | proxy AUROC {names} {} | {sec:.2} s, {:.0} steps",
            self.params,
            folds.join(" "),
            mean_sd(&self.trimmed).0,
            aucs.join("/"),
            self.steps.iter().sum::<usize>() as f64 / self.steps.len() as f64,
        );
    }
}

/// Cross-validates `fit` (a fold's standardized training data and its group ids → a density
/// and its params, seconds, steps).
fn cv(imu: &Imu, seeds: u64, fit: &dyn Fn(&Dataset, &[u32], u64) -> Fit) -> Summary {
    let nf = n_folds();
    let f = folds(imu, nf);
    let fold_of = |id: u32| f.iter().find(|x| x.0 == id).unwrap().1;
    let only = only_class();
    let keep = |i: usize| only.is_none_or(|w| imu.walking[i] == w);
    let other: Vec<usize> = (0..imu.data.len()).filter(|&i| !keep(i)).collect();
    let mut sum = Summary {
        auc: vec![Vec::new(); if only.is_some() { 3 } else { 2 }],
        ..Default::default()
    };
    for seed in 0..seeds {
        for k in 0..nf {
            let tr: Vec<usize> = (0..imu.data.len())
                .filter(|&i| keep(i) && fold_of(imu.rec[i]) != k)
                .collect();
            let te: Vec<usize> = (0..imu.data.len())
                .filter(|&i| keep(i) && fold_of(imu.rec[i]) == k)
                .collect();
            let train_raw = imu.data.select(&tr);
            let test_raw = imu.data.select(&te);
            let (m, s) = moments(&train_raw);
            let log_scale: f64 = s.iter().map(|v| v.ln()).sum();
            let train_d = scale(&train_raw, &m, &s);
            let groups: Vec<u32> = tr.iter().map(|&i| imu.rec[i]).collect();
            let (model, params, secs, steps) = fit(&train_d, &groups, seed);
            let lp = model.log_probs(&scale(&test_raw, &m, &s));
            let nll = -lp.iter().sum::<f64>() / lp.len() as f64 + log_scale;
            if std::env::var_os("IMU_PER_RECORDING").is_some() {
                let mut line = format!("   fold {k}:");
                let mut ids: Vec<u32> = te.iter().map(|&i| imu.rec[i]).collect();
                ids.dedup();
                for id in ids {
                    let v: Vec<f64> = te
                        .iter()
                        .zip(&lp)
                        .filter(|(&i, _)| imu.rec[i] == id)
                        .map(|(_, &l)| log_scale - l)
                        .collect();
                    let worst = v.iter().copied().fold(f64::MIN, f64::max);
                    line += &format!(
                        " {id}:{:.2}/{worst:.0}",
                        v.iter().sum::<f64>() / v.len() as f64
                    );
                }
                println!("{line}");
            }
            let mut sorted: Vec<f64> = lp.iter().map(|v| -v).collect();
            sorted.sort_by(f64::total_cmp);
            let keep = &sorted[..sorted.len() * 99 / 100];
            sum.trimmed
                .push(keep.iter().sum::<f64>() / keep.len() as f64 + log_scale);
            let lpt = model.log_probs(&train_d);
            sum.train_nll
                .push(-lpt.iter().sum::<f64>() / lpt.len() as f64 + log_scale);
            let walk: Vec<bool> = te.iter().map(|&i| imu.walking[i]).collect();

            let mut sets: Vec<Dataset> = anomalies(&test_raw, &walk, &m)
                .into_iter()
                .map(|(_, an)| an)
                .collect();
            if only.is_some() {
                sets.push(imu.data.select(&other));
            }
            for (a, an) in sets.iter().enumerate() {
                let la = model.log_probs(&scale(an, &m, &s));
                sum.auc[a].push(if la.is_empty() {
                    f64::NAN
                } else {
                    flow_train::export::auroc(&lp, &la)
                });
            }
            sum.nll.push(nll);
            sum.secs.push(secs);
            sum.steps.push(steps);
            sum.params = params;
        }
    }
    sum
}

fn flow_fit(spec: &ModelSpec, cfg: &TrainConfig, d: &Dataset) -> Fit {
    let m = train(spec, cfg, d, |_| ControlFlow::Continue(())).expect("training");
    if std::env::var_os("IMU_VERBOSE").is_some() {
        println!(
            "   fold: {:?} at {} of {}, kept {}, last val {:?}",
            m.stop,
            m.steps_done,
            cfg.steps,
            m.kept_step,
            m.val_losses.iter().map(|v| v.1).fold(f64::MAX, f64::min)
        );
        let curve: Vec<String> = m
            .val_losses
            .iter()
            .step_by(10)
            .map(|(s, v)| format!("{s}:{v:.2}"))
            .collect();
        println!("   val {}", curve.join(" "));
        if let Some(LayerSpec::Affine { .. }) = spec.flows()[0].layers.first() {
            let d = spec.dim();
            println!(
                "   base affine loc {:.2?}\n   base affine scale {:.2?}",
                &m.params[..d],
                &m.params[d..2 * d]
            );
        }
        if let Some(LayerSpec::Affine { .. }) = spec.flows()[0].layers.last() {
            let n = m.params.len();
            let d = spec.dim();
            println!(
                "   affine loc {:.2?}\n   affine scale {:.2?}",
                &m.params[n - 2 * d..n - d],
                &m.params[n - d..]
            );
        }
    }
    (
        Box::new(FlowFit(m.export().expect("export"))),
        spec.param_count(),
        m.seconds,
        m.steps_done,
    )
}

/// A configuration from `key=value` words (see the module docs).
fn parse_cfg(words: &[String], d: &Dataset, groups: &[u32], seed: u64) -> (ModelSpec, TrainConfig) {
    let get = |k: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    let num = |k: &str, dflt: f64| get(k).map(|v| v.parse::<f64>().expect(k)).unwrap_or(dflt);
    let dim = d.dim();
    let hidden: Vec<usize> = match get("h").as_deref() {
        Some("-") => vec![],
        Some(h) => h.split('x').map(|v| v.parse().expect("h")).collect(),
        None => vec![16],
    };
    let k = num("k", 8.0) as usize;
    let b = num("b", 5.0) as f32;
    let s = match get("o").as_deref() {
        Some("l") => SplineSpec::linear(k, b),
        _ => SplineSpec::quadratic(k, b),
    };
    let perm = match get("p").as_deref() {
        Some("rand") => Permutation::Random(seed),
        Some("none") => Permutation::None,
        _ => Permutation::Reverse,
    };
    let nc = num("c", 3.0) as usize;
    let mut flow = if get("p").as_deref() == Some("mix") {
        mixing_stack(dim, nc, &hidden, s)
    } else {
        FlowSpec::coupling_stack(dim, nc, &hidden, s, perm)
    };
    if num("eb", 0.0) > 0.0 {
        flow.layers.insert(0, LayerSpec::Spline(s));
    }
    if num("ab", 0.0) > 0.0 {
        flow.layers.insert(
            0,
            LayerSpec::Affine {
                loc: vec![0.0; dim],
                scale: vec![num("ab", 1.0) as f32; dim],
                learnable: true,
            },
        );
    }
    if num("es", 0.0) > 0.0 {
        flow.layers.push(LayerSpec::Spline(s));
    }
    if num("an", 1.0) > 0.0 {
        let (m, sd) = moments(d);
        let mult = num("as", 1.0);
        flow.layers.push(LayerSpec::Affine {
            loc: m.iter().map(|&v| v as f32).collect(),
            scale: sd.iter().map(|&v| (v * mult) as f32).collect(),
            learnable: num("al", 1.0) > 0.0,
        });
    }
    let lr = num("lr", 2e-3) as f32;
    let cfg = TrainConfig {
        steps: num("st", 8000.0) as usize,
        lr,
        batch_size: Some(num("bs", 256.0) as usize),
        seed,
        validation_fraction: num("vf", 0.15) as f32,
        groups: (num("ng", 0.0) == 0.0).then(|| groups.to_vec()),
        eval_every: num("ev", 50.0) as usize,
        patience: Some(num("pat", 30.0) as usize).filter(|&p| p > 0),
        restore_best: num("rb", 1.0) > 0.0,
        clip_grad_norm: Some(num("clip", 10.0) as f32),
        weight_decay: num("wd", 0.0) as f32,
        input_noise: num("nz", 0.05) as f32 * d.mean_std() as f32,
        schedule: Schedule::Cosine {
            final_fraction: num("fin", 0.02) as f32,
        },
        max_seconds: Some(60.0),
        init_scheme: if get("init").as_deref() == Some("pyro") {
            flow_train::init::InitScheme::Pyro
        } else {
            flow_train::init::InitScheme::Identity
        },
        ..TrainConfig::default()
    };
    (ModelSpec::Flow(flow), cfg)
}

/// `n` couplings whose lower halves are the dims with bit `l` of their code `i + 1` set, so
/// that every pair of dims is split by some coupling; permutations in between.
fn mixing_stack(dim: usize, n: usize, hidden: &[usize], s: SplineSpec) -> FlowSpec {
    let bits = (usize::BITS - dim.leading_zeros()) as usize;
    let orders: Vec<Vec<usize>> = (0..n)
        .map(|l| {
            let b = l % bits;
            let flip = (l / bits) % 2 == 1;
            let (mut lo, hi): (Vec<usize>, Vec<usize>) =
                (0..dim).partition(|&i| (((i + 1) >> b) & 1 == 1) != flip);
            lo.extend(hi);
            lo
        })
        .collect();
    let mut layers = Vec::new();
    for (l, ord) in orders.iter().enumerate() {
        if l > 0 {
            let prev = &orders[l - 1];
            let pos = |d: usize| prev.iter().position(|&x| x == d).unwrap();
            layers.push(LayerSpec::Permute(ord.iter().map(|&d| pos(d)).collect()));
        }
        let split = (0..dim)
            .filter(|&i| (((i + 1) >> (l % bits)) & 1 == 1) != ((l / bits) % 2 == 1))
            .count();
        layers.push(LayerSpec::Coupling {
            split,
            hidden: hidden.to_vec(),
            spline: s,
        });
    }
    // The last coupling sits at the data: put the dims back in data order after it.
    let last = orders.last().unwrap();
    let pos = |d: usize| last.iter().position(|&x| x == d).unwrap();
    layers.push(LayerSpec::Permute((0..dim).map(pos).collect()));
    FlowSpec {
        dim,
        context: 0,
        layers,
    }
}

/// `auto_config` with some choices replaced (`var` words, see the module docs).
fn parse_var(words: &[String], d: &Dataset, seed: u64) -> (ModelSpec, TrainConfig) {
    let get = |k: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    let num = |k: &str, dflt: f64| get(k).map(|v| v.parse::<f64>().expect(k)).unwrap_or(dflt);
    let preset = match get("preset").as_deref() {
        Some("tiny") => Some(Preset::Tiny),
        Some("medium") => Some(Preset::Medium),
        _ => None,
    };
    let (mut spec, mut cfg) = auto_config(
        d,
        &AutoOptions {
            preset,
            max_params: None,
            ..AutoOptions::default()
        },
    )
    .expect("auto_config");
    let arch_keys = ["c", "h", "k", "o", "b", "ew", "ewk", "ea", "es", "eb", "as"];
    if arch_keys.iter().any(|k| get(k).is_some()) {
        let summary = flow_train::defaults::DataSummary::of(d);
        let dim = d.dim();
        let hidden: Vec<usize> = match get("h").as_deref() {
            Some("-") => vec![],
            Some(h) => h.split('x').map(|v| v.parse().expect("h")).collect(),
            None => vec![8, 8],
        };
        let k = num("k", 3.0) as usize;
        let b = num("b", summary.bound() as f64) as f32;
        let s = match get("o").as_deref() {
            Some("l") => SplineSpec::linear(k, b),
            _ => SplineSpec::quadratic(k, b),
        };
        let ew = SplineSpec {
            bins: num("ewk", k as f64) as usize,
            ..s
        };
        let f =
            FlowSpec::coupling_stack(dim, num("c", 4.0) as usize, &hidden, s, Permutation::Mixing);
        let mut layers = Vec::new();
        let mut seen_coupling = false;
        for l in f.layers {
            if matches!(l, LayerSpec::Coupling { .. }) {
                if seen_coupling {
                    if num("ew", 0.0) > 0.0 {
                        layers.push(LayerSpec::Spline(ew));
                    }
                    if num("ea", 0.0) > 0.0 {
                        layers.push(LayerSpec::Affine {
                            loc: vec![0.0; dim],
                            scale: vec![1.0; dim],
                            learnable: true,
                        });
                    }
                }
                seen_coupling = true;
            }
            layers.push(l);
        }
        if num("eb", 0.0) > 0.0 {
            layers.insert(0, LayerSpec::Spline(ew));
        }
        if num("es", 0.0) > 0.0 {
            layers.push(LayerSpec::Spline(ew));
        }
        let mut an = LayerSpec::act_norm(d);
        if let LayerSpec::Affine { scale, .. } = &mut an {
            scale.iter_mut().for_each(|v| *v *= num("as", 1.0) as f32);
        }
        layers.push(an);
        spec = ModelSpec::Flow(FlowSpec {
            dim,
            context: 0,
            layers,
        });
        cfg = flow_train::defaults::auto_training(d, &spec);
    }
    cfg.seed = seed;
    cfg.input_noise *= num("nzm", 1.0) as f32;
    if let Some(alpha) = get("nza").map(|v| v.parse::<f64>().expect("nza")) {
        cfg.row_noise = (alpha > 0.0).then(|| flow_train::defaults::row_noise(d, alpha));
    }
    cfg.lr = num("lr", cfg.lr as f64) as f32;
    cfg.steps = num("st", cfg.steps as f64) as usize;
    cfg.batch_size = Some(num("bs", 256.0) as usize);
    cfg.weight_decay = num("wd", 0.0) as f32;
    cfg.validation_fraction = num("vf", cfg.validation_fraction as f64) as f32;
    cfg.clip_grad_norm = Some(num("clip", 10.0) as f32);
    cfg.schedule = Schedule::Cosine {
        final_fraction: num("fin", 0.02) as f32,
    };
    (spec, cfg)
}

impl Fitted for Gmm {
    fn log_probs(&self, x: &Dataset) -> Vec<f64> {
        (0..x.len())
            .map(|i| self.log_prob(&x.row(i).iter().map(|&v| v as f64).collect::<Vec<_>>()))
            .collect()
    }
}

/// `auto_config` (or `default_config` with `default`) on circles: Pyro's 1000 training points
/// and 10,000 test points, or `n=N` generated points (`flow_train::synth`, standardized as
/// `fit` does) scored on 20,000 fresh ones. `noise=X` overrides the input noise (in data
/// standard deviations).
fn circles(words: &[String], seeds: u64) {
    let get = |k: &str| {
        words
            .iter()
            .find_map(|w| w.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    let (train_d, test) = match get("n").and_then(|v| v.parse::<usize>().ok()) {
        None => (
            Dataset::load_csv(data_dir().join("circles_train_scaled.csv")).unwrap(),
            Dataset::load_csv(data_dir().join("circles_test_scaled.csv")).unwrap(),
        ),
        Some(n) => {
            let tr = flow_train::synth::circles(n, 0.5, 0.05, 1).unwrap();
            let te = flow_train::synth::circles(20_000, 0.5, 0.05, 2).unwrap();
            let (m, s) = moments(&tr);
            (scale(&tr, &m, &s), scale(&te, &m, &s))
        }
    };
    let preset = match get("preset").as_deref() {
        Some("tiny") => Some(Preset::Tiny),
        Some("small") => Some(Preset::Small),
        Some("medium") => Some(Preset::Medium),
        _ => None,
    };
    let mut v = Vec::new();
    let mut params = 0;
    let mut secs = 0.0;
    for seed in 0..seeds {
        let (spec, mut cfg) = if words.iter().any(|w| w == "default") {
            default_config(&train_d)
        } else {
            auto_config(
                &train_d,
                &AutoOptions {
                    preset,
                    max_params: None,
                    ..AutoOptions::default()
                },
            )
            .unwrap()
        };
        cfg.seed = seed;
        if let Some(x) = get("noise") {
            cfg.input_noise = x.parse::<f32>().unwrap() * train_d.mean_std() as f32;
        }
        if let Some(x) = get("vf") {
            cfg.validation_fraction = x.parse().unwrap();
        }
        match get("init").as_deref() {
            Some("id") => cfg.init_scheme = flow_train::init::InitScheme::Identity,
            Some("pyro") => cfg.init_scheme = flow_train::init::InitScheme::Pyro,
            _ => {}
        }
        let m = train(&spec, &cfg, &train_d, |_| ControlFlow::Continue(())).unwrap();
        v.push(m.nll(&test).unwrap());
        params = spec.param_count();
        secs += m.seconds / seeds as f64;
        if seed == 0 {
            println!(
                "   noise {:.4}, {} steps ({:?})",
                cfg.input_noise, m.steps_done, m.stop
            );
        }
    }
    let (m, sd) = mean_sd(&v);
    let all: Vec<String> = v.iter().map(|x| format!("{x:.3}")).collect();
    println!(
        "== circles {}: {params} params, {} training points: test NLL {m:.3} ± {sd:.3} [{}], {secs:.2} s",
        words.join(" "),
        train_d.len(),
        all.join(" ")
    );
}

/// Hypernetwork multiply-accumulates per reading, spline evaluations (one per dimension and
/// layer) and the largest bin count of a plain flow.
fn device_cost(spec: &ModelSpec) -> (usize, usize, usize) {
    let (mut macs, mut splines, mut bins) = (0, 0, 0);
    for f in spec.flows() {
        for l in &f.layers {
            match l {
                LayerSpec::Coupling {
                    split,
                    hidden,
                    spline,
                } => {
                    let mut prev = split + f.context;
                    for &h in hidden {
                        macs += prev * h;
                        prev = h;
                    }
                    macs += prev * (f.dim - split) * spline.params_per_dim();
                    splines += f.dim;
                    bins = bins.max(spline.bins);
                }
                LayerSpec::Spline(s) => {
                    splines += f.dim;
                    bins = bins.max(s.bins);
                }
                _ => {}
            }
        }
    }
    (macs, splines, bins)
}

/// Trains `auto_config` on the whole file (standardized, no group ids, as `fit` with its
/// defaults) and writes the model file to the first argument (for the firmware's
/// `FLOW_MODEL`).
fn write_model(imu: &Imu, words: &[String]) {
    let path = words.first().expect("write PATH [tiny|small|medium]");
    let preset = match words.get(1).map(String::as_str) {
        Some("tiny") => Some(Preset::Tiny),
        Some("medium") => Some(Preset::Medium),
        Some("small") => Some(Preset::Small),
        _ => None,
    };
    let (m, s) = moments(&imu.data);
    let d = scale(&imu.data, &m, &s);
    let (spec, mut cfg) = if words.get(1).map(String::as_str) == Some("var") {
        parse_var(&words[2..], &d, 0)
    } else if words.iter().skip(1).any(|w| w.contains('=')) {
        parse_cfg(&words[1..], &d, &imu.rec, 0)
    } else {
        auto_config(
            &d,
            &AutoOptions {
                preset,
                max_params: None,
                ..AutoOptions::default()
            },
        )
        .unwrap()
    };
    // As `fit` with its defaults: no group ids.
    cfg.groups = None;
    let model = train(&spec, &cfg, &d, |_| ControlFlow::Continue(())).unwrap();
    let e = model.export().unwrap();
    let mut b = flow_core::model::ModelBuilder::plain(6);
    for l in e.layers(0).unwrap() {
        b.layer(&l);
    }
    b.columns(&["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]);
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    b.scaler(&f32s(&m), &f32s(&s));
    let bytes = b.encode().unwrap();
    std::fs::write(path, &bytes).unwrap();
    let (macs, splines, bins) = device_cost(&spec);
    println!(
        "{} params, {} B; train NLL {:.3} (standardized) in {:.2} s; hypernet MACs/reading {macs}, {splines} spline evaluations, K = {bins}",
        spec.param_count(),
        bytes.len(),
        model.nll(&d).unwrap(),
        model.seconds
    );
    println!("{spec:?}");
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let imu = load();
    let what = args.first().map(String::as_str).unwrap_or("auto");
    let seeds: u64 = args
        .iter()
        .find_map(|w| w.strip_prefix("seeds="))
        .map(|v| v.parse().expect("seeds"))
        .unwrap_or(1);
    match what {
        "stats" => {
            let d = &imu.data;
            for b in [3.0f32, 4.0, 5.0, 6.0, 8.0] {
                let out = (0..d.len())
                    .filter(|&i| d.row(i).iter().any(|v| v.abs() > b))
                    .count();
                println!("bound {b}: {out} of {} readings outside the box", d.len());
            }
        }
        "summary" => {
            let circles =
                Dataset::load_csv(data_dir().join("circles_train_scaled.csv")).expect("circles");
            for (name, d) in [("imu", &imu.data), ("circles", &circles)] {
                let t = std::time::Instant::now();
                let s = flow_train::defaults::DataSummary::of(d);
                println!(
                    "{name}: tail {:.3} (bound {}), knn {:.3}, noise {:.3} ({:.1} ms)",
                    s.tail,
                    s.bound(),
                    s.knn,
                    s.input_noise(),
                    t.elapsed().as_secs_f64() * 1e3
                );
            }
            for n in [1_000usize, 10_000, 100_000] {
                let d = flow_train::synth::circles(n, 0.5, 0.05, 1).unwrap();
                let (m, sd) = moments(&d);
                let d = scale(&d, &m, &sd);
                let t = std::time::Instant::now();
                let s = flow_train::defaults::DataSummary::of(&d);
                println!(
                    "synthetic circles n={n}: knn {:.4}, noise {:.4} ({:.1} ms)",
                    s.knn,
                    s.input_noise(),
                    t.elapsed().as_secs_f64() * 1e3
                );
            }
        }
        "circles" => circles(&args[1..], seeds),
        "write" => write_model(&imu, &args[1..]),
        "knn" => {
            let circles =
                Dataset::load_csv(data_dir().join("circles_train_scaled.csv")).expect("circles");
            for (name, d) in [("imu", &imu.data), ("circles", &circles)] {
                let (m, s) = moments(d);
                let d = scale(d, &m, &s);
                for k in [1usize, 5, 10, 20] {
                    let mut dist: Vec<f64> = (0..d.len())
                        .map(|i| {
                            let mut v: Vec<f64> = (0..d.len())
                                .filter(|&j| j != i)
                                .map(|j| {
                                    d.row(i)
                                        .iter()
                                        .zip(d.row(j))
                                        .map(|(a, b)| ((a - b) as f64).powi(2))
                                        .sum::<f64>()
                                        .sqrt()
                                })
                                .collect();
                            v.select_nth_unstable_by(k - 1, f64::total_cmp);
                            v[k - 1]
                        })
                        .collect();
                    dist.sort_by(f64::total_cmp);
                    println!(
                        "{name}: {k}-NN distance median {:.3}, mean {:.3}, per-dim median {:.3}",
                        dist[dist.len() / 2],
                        dist.iter().sum::<f64>() / dist.len() as f64,
                        dist[dist.len() / 2] / (d.dim() as f64).sqrt()
                    );
                }
            }
        }
        "gauss" => {
            for k in [1usize, 4, 8, 16] {
                let s = cv(&imu, seeds, &|d, _, seed| {
                    let t = std::time::Instant::now();
                    let g = Gmm::fit(d, k, seed, 1e-6);
                    let p = Gmm::param_count(k, d.dim());
                    (Box::new(g), p, t.elapsed().as_secs_f64(), 0)
                });
                s.print(&format!("GMM full-cov {k} components"));
            }
        }
        "auto" => {
            let preset = match args.get(1).map(String::as_str) {
                Some("tiny") => Some(Preset::Tiny),
                Some("small") => Some(Preset::Small),
                Some("medium") => Some(Preset::Medium),
                _ => None,
            };
            let opts = AutoOptions {
                preset,
                max_params: None,
                ..AutoOptions::default()
            };
            // As `fit` with its defaults: no group ids (`groups` passes the recordings, as
            // `fit --rows-per-group 100` would).
            let with_groups = args.iter().any(|a| a == "groups");
            let s = cv(&imu, seeds, &|d, g, seed| {
                let (spec, mut cfg) = auto_config(d, &opts).expect("auto_config");
                cfg.groups = with_groups.then(|| g.to_vec());
                cfg.seed = seed;
                flow_fit(&spec, &cfg, d)
            });
            s.print(&format!("auto_config {preset:?}"));
        }
        "var" => {
            let words = &args[1..];
            let s = cv(&imu, seeds, &|d, _, seed| {
                let (spec, cfg) = parse_var(words, d, seed);
                flow_fit(&spec, &cfg, d)
            });
            let (spec, _) = parse_var(words, &imu.data, 0);
            let m4f = flow_train::defaults::m4f_instructions(&spec);
            s.print(&format!("var {} (M4F est. {m4f})", words.join(" ")));
        }
        "cfg" => {
            let words = &args[1..];
            let s = cv(&imu, seeds, &|d, g, seed| {
                let (spec, cfg) = parse_cfg(words, d, g, seed);
                flow_fit(&spec, &cfg, d)
            });
            s.print(&words.join(" "));
        }
        other => panic!("unknown command {other}"),
    }
}
