//! Recording-level cross-validation of a fitted density, and the flow fits it runs.

use flow_train::*;
use std::ops::ControlFlow;

use crate::data::*;

/// A density fitted on a fold's (standardized) training data.
pub(crate) trait Fitted {
    fn log_probs(&self, x: &Dataset) -> Vec<f64>;
}

pub(crate) struct FlowFit(Exported);
impl Fitted for FlowFit {
    fn log_probs(&self, x: &Dataset) -> Vec<f64> {
        self.0.log_probs::<f64>(x.values()).unwrap()
    }
}

/// A fitted density, its parameter count, training seconds and steps.
pub(crate) type Fit = (Box<dyn Fitted>, usize, f64, usize);

#[derive(Default)]
pub(crate) struct Summary {
    pub(crate) nll: Vec<f64>,
    pub(crate) auc: Vec<Vec<f64>>,
    pub(crate) secs: Vec<f64>,
    pub(crate) steps: Vec<usize>,
    pub(crate) train_nll: Vec<f64>,
    /// Mean NLL of the best 99% of the held-out readings.
    pub(crate) trimmed: Vec<f64>,
    pub(crate) params: usize,
}

pub(crate) fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

impl Summary {
    pub(crate) fn print(&self, name: &str) {
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
pub(crate) fn cv(imu: &Imu, seeds: u64, fit: &dyn Fn(&Dataset, &[u32], u64) -> Fit) -> Summary {
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

pub(crate) fn flow_fit(spec: &ModelSpec, cfg: &TrainConfig, d: &Dataset) -> Fit {
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
