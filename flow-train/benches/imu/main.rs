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

// Shared with other benches and tests: not every item is used here.
#[allow(dead_code)]
#[path = "../../tests/common/gauss.rs"]
mod gauss;
#[path = "../common/imu_data.rs"]
mod imu_data;
// Shared with other benches and tests: not every item is used here.
#[allow(dead_code)]
#[path = "../common/gmm.rs"]
mod mixture;

use flow_train::defaults::{auto_config, AutoOptions, Preset};
use flow_train::*;
use std::ops::ControlFlow;

mod configs;
mod cv;
mod data;
mod gmm;

use configs::*;
use cv::*;
use data::*;
use gmm::*;

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
            auto_config(&train_d, &AutoOptions::with_preset(preset)).unwrap()
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
        auto_config(&d, &AutoOptions::with_preset(preset)).unwrap()
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
                    let p = k * (d.dim() + d.dim() * (d.dim() + 1) / 2) + k - 1;
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
            let opts = AutoOptions::with_preset(preset);
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
