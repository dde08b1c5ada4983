//! Pyro's normalizing-flow tutorial configurations with this engine, side by side with the
//! recorded Pyro runs (`docs/pyro-reference-runs.md`: torch 2.15, pyro-ppl 1.9.2, one thread).
//!
//! ```text
//! cargo bench -p flow-train --bench tutorial              # (a), (b), (c) and the default config
//! cargo bench -p flow-train --bench tutorial -- b          # one of a, b, c, default
//! cargo bench -p flow-train --bench tutorial -- seeds 8    # (b) over 8 seeds
//! cargo bench -p flow-train --bench tutorial -- explore    # the default-config searches
//!                                                  (explore, explore2, explore3, explore4)
//! cargo bench -p flow-train --bench tutorial -- parts      # ns/point of (b)'s kernels
//! ```
//!
//! The data directory is `$FLOW_DATA_DIR`, else the repository's `data/`.
//! Every NLL printed is computed by flow-core's exact `log_prob` (f64) on the exported
//! parameters; times are the training loop's wall and thread-CPU seconds.

use flow_train::clock::thread_cpu_seconds;
use flow_train::*;
use std::ops::ControlFlow;

fn data_dir() -> std::path::PathBuf {
    match std::env::var_os("FLOW_DATA_DIR") {
        Some(d) => d.into(),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data"),
    }
}

struct Pyro {
    seconds: f64,
    test_nll: f64,
}

fn run(
    name: &str,
    spec: &ModelSpec,
    cfg: &TrainConfig,
    train_d: &Dataset,
    test: &Dataset,
    pyro: Option<Pyro>,
) -> f64 {
    let c0 = thread_cpu_seconds().unwrap_or(0.0);
    let m = train(spec, cfg, train_d, |_| ControlFlow::Continue(())).expect("training");
    let cpu = thread_cpu_seconds().unwrap_or(0.0) - c0;
    let e = m.export().expect("export");
    let nll = e.nll::<f64>(test.values()).expect("nll");
    let nll32 = e.nll::<f32>(test.values()).expect("nll");
    println!(
        "{name}: {} params, {} steps ({:?}, kept {}), isa {:?}: wall {:.3} s, cpu {:.3} s, {:.0} steps/s",
        spec.param_count(),
        m.steps_done,
        m.stop,
        m.kept_step,
        m.isa,
        m.seconds,
        cpu,
        m.steps_done as f64 / m.seconds
    );
    let last = m.losses.last().copied().unwrap_or(f64::NAN);
    println!("  last step loss {last:.4}; test NLL (flow-core f64) {nll:.4}, f32 {nll32:.4}");
    if let Some(p) = pyro {
        println!(
            "  Pyro (1 thread): {:.2} s, test NLL {:.4}  ->  speed-up {:.1}x wall, {:.1}x cpu",
            p.seconds,
            p.test_nll,
            p.seconds / m.seconds,
            p.seconds / cpu
        );
    }
    nll
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let dir = data_dir();
    let train_d = Dataset::load_csv(dir.join("circles_train_scaled.csv")).expect("train data");
    let test = Dataset::load_csv(dir.join("circles_test_scaled.csv")).expect("test data");
    let what = args.first().map(String::as_str).unwrap_or("all");
    let isa = std::env::var("FLOW_ISA").ok().map(|s| match s.as_str() {
        "baseline" => Isa::Baseline,
        "avx2" => Isa::Avx2,
        _ => Isa::Avx512,
    });
    let with_isa = |mut c: TrainConfig| {
        c.isa = isa;
        c
    };
    if matches!(what, "all" | "a") {
        run(
            "(a) Spline(2, K=16), Adam 1e-2, 1001 steps",
            &ModelSpec::tutorial_spline(2, 16),
            &with_isa(TrainConfig::tutorial(1001, 1e-2)),
            &train_d,
            &test,
            Some(Pyro {
                seconds: 2.60,
                test_nll: 2.616201,
            }),
        );
    }
    if matches!(what, "all" | "b") {
        run(
            "(b) spline_coupling(2, K=16), Adam 5e-3, 5002 steps",
            &ModelSpec::tutorial_coupling(2, 16),
            &with_isa(TrainConfig::tutorial(5002, 5e-3)),
            &train_d,
            &test,
            Some(Pyro {
                seconds: 31.81,
                test_nll: 2.034183,
            }),
        );
    }
    if matches!(what, "all" | "c") {
        run(
            "(c) spline(1, K=8) + conditional_spline(1, K=8), Adam 3e-3, 5001 steps",
            &ModelSpec::tutorial_joint(8),
            &with_isa(TrainConfig::tutorial(5001, 3e-3)),
            &train_d,
            &test,
            Some(Pyro {
                seconds: 31.91,
                test_nll: 1.967725,
            }),
        );
    }
    if matches!(what, "all" | "default") {
        let (spec, cfg) = flow_train::default_config(&train_d);
        run(
            "default_config",
            &spec,
            &with_isa(cfg),
            &train_d,
            &test,
            None,
        );
    }
    if what == "default-seeds" {
        let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
        let mut v = Vec::new();
        for seed in 0..n {
            let (mut spec, mut cfg) = flow_train::default_config(&train_d);
            cfg.seed = seed;
            if let Ok(x) = std::env::var("NOISE") {
                cfg.input_noise = x.parse().expect("NOISE");
            }
            if let (
                Ok(k),
                ModelSpec::Joint {
                    marginal,
                    conditional,
                },
            ) = (std::env::var("BINS"), &mut spec)
            {
                let k: usize = k.parse().expect("BINS");
                for f in [marginal, conditional] {
                    for l in &mut f.layers {
                        if let LayerSpec::Spline(s)
                        | LayerSpec::ConditionalSpline { spline: s, .. } = l
                        {
                            s.bins = k;
                        }
                    }
                }
            }
            v.push(run(
                &format!("default_config seed {seed}"),
                &spec,
                &with_isa(cfg),
                &train_d,
                &test,
                None,
            ));
        }
        let (mean, lo, hi) = spread(&v);
        println!(
            "default_config over {n} seeds: test NLL mean {mean:.4}, min {lo:.4}, max {hi:.4}"
        );
    }
    if what == "parts" {
        for isa in [Isa::Baseline, Isa::Avx2, Isa::Avx512] {
            if isa.is_supported() {
                for (n, ns) in flow_train::engine::profile_parts(isa, 20_000) {
                    println!("{isa:?} {n}: {ns:.1} ns/point");
                }
            }
        }
    }
    if what == "seeds" {
        let n: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(8);
        let mut v = Vec::new();
        for seed in 0..n {
            let mut cfg = with_isa(TrainConfig::tutorial(5002, 5e-3));
            cfg.seed = seed;
            v.push(run(
                &format!("(b) seed {seed}"),
                &ModelSpec::tutorial_coupling(2, 16),
                &cfg,
                &train_d,
                &test,
                None,
            ));
        }
        let (mean, lo, hi) = spread(&v);
        let below = v.iter().filter(|&&x| x <= 2.034183).count();
        println!("(b) over {n} seeds: test NLL mean {mean:.4}, min {lo:.4}, max {hi:.4}; {below}/{n} at or below Pyro's 2.0342");
    }
    if what == "explore" {
        explore(&train_d, &test, &args[1..]);
    }
    if what == "explore6" {
        explore6(&train_d, &test);
    }
    if what == "explore5" {
        explore5(&train_d, &test, &args[1..]);
    }
    if what == "explore4" {
        explore4(&train_d, &test, &args[1..]);
    }
    if what == "explore3" {
        explore3(&train_d, &test, &args[1..]);
    }
    if what == "explore2" {
        explore2(&train_d, &test, &args[1..]);
    }
}

/// The mean, least and greatest of `v`.
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    (mean, lo, hi)
}

/// Runs the `cases` whose name contains one of the words in `filter` (every case without one).
fn run_cases(
    cases: Vec<(String, ModelSpec, TrainConfig)>,
    train_d: &Dataset,
    test: &Dataset,
    filter: &[String],
) {
    for (name, spec, cfg) in cases {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        run(&name, &spec, &cfg, train_d, test, None);
    }
}

/// The two 2-D architectures the searches compare, with the spline `s` and hypernetworks of
/// two hidden layers of `hidden`: the joint (`J`) and four couplings (`C4`).
fn joint_and_couplings(s: SplineSpec, hidden: usize) -> [(&'static str, ModelSpec); 2] {
    let joint = ModelSpec::spline_joint(s, &[hidden, hidden]);
    let coup = ModelSpec::Flow(FlowSpec::coupling_stack(
        2,
        4,
        &[hidden, hidden],
        s,
        Permutation::Reverse,
    ));
    [("J", joint), ("C4", coup)]
}

fn explore(train_d: &Dataset, test: &Dataset, filter: &[String]) {
    let mut grid = Vec::new();
    for layers in [2usize, 4, 6] {
        for bins in [16usize, 32] {
            for bound in [3.0f32, 4.0] {
                for hidden in [32usize, 64] {
                    for batch in [128usize, 256] {
                        grid.push((layers, bins, bound, hidden, batch));
                    }
                }
            }
        }
    }
    let mut cases = Vec::new();
    for (layers, bins, bound, hidden, batch) in grid {
        let name = format!("L{layers} K{bins} B{bound} H{hidden} bs{batch}");
        let spec = ModelSpec::Flow(FlowSpec::coupling_stack(
            2,
            layers,
            &[hidden, hidden],
            SplineSpec::linear(bins, bound),
            Permutation::Reverse,
        ));
        let cfg = TrainConfig {
            steps: 20_000,
            lr: 5e-3,
            batch_size: Some(batch),
            validation_fraction: 0.1,
            eval_every: 100,
            patience: Some(20),
            clip_grad_norm: Some(10.0),
            schedule: Schedule::Cosine {
                final_fraction: 0.02,
            },
            max_seconds: Some(10.0),
            ..TrainConfig::default()
        };
        cases.push((name, spec, cfg));
    }
    run_cases(cases, train_d, test, filter);
}

fn explore2(train_d: &Dataset, test: &Dataset, filter: &[String]) {
    let mut cases: Vec<(String, ModelSpec, TrainConfig)> = Vec::new();
    let base = |steps: usize, lr: f32, batch: Option<usize>, val: f32| TrainConfig {
        steps,
        lr,
        batch_size: batch,
        validation_fraction: val,
        patience: if val > 0.0 { Some(60) } else { None },
        max_seconds: Some(10.0),
        ..TrainConfig::circles_default(0.0)
    };
    for bins in [16usize, 32] {
        for hidden in [16usize, 32, 64] {
            for bound in [3.0f32, 4.0] {
                for (steps, lr, batch) in [(3000, 5e-3, None), (6000, 3e-3, Some(256))] {
                    for val in [0.0f32, 0.1] {
                        let s = SplineSpec::linear(bins, bound);
                        let spec = ModelSpec::spline_joint(s, &[hidden, hidden]);
                        cases.push((
                            format!(
                                "J K{bins} H{hidden} B{bound} S{steps} lr{lr} bs{batch:?} v{val}"
                            ),
                            spec,
                            base(steps, lr, batch, val),
                        ));
                    }
                }
            }
        }
    }
    for layers in [2usize, 3, 4] {
        for hidden in [16usize, 32] {
            for (steps, lr, batch) in [(3000, 5e-3, None), (6000, 3e-3, Some(256))] {
                for val in [0.0f32, 0.1] {
                    let spec = ModelSpec::Flow(FlowSpec::coupling_stack(
                        2,
                        layers,
                        &[hidden, hidden],
                        SplineSpec::linear(16, 4.0),
                        Permutation::Reverse,
                    ));
                    cases.push((
                        format!("C L{layers} H{hidden} S{steps} lr{lr} bs{batch:?} v{val}"),
                        spec,
                        base(steps, lr, batch, val),
                    ));
                }
            }
        }
    }
    run_cases(cases, train_d, test, filter);
}

fn explore3(train_d: &Dataset, test: &Dataset, filter: &[String]) {
    let mut cases: Vec<(String, ModelSpec, TrainConfig)> = Vec::new();
    for noise in [0.0f32, 0.03, 0.05] {
        for wd in [0.0f32, 1e-2] {
            for (hidden, bins) in [(32usize, 16usize), (64, 16), (32, 32)] {
                let s = SplineSpec::linear(bins, 4.0);
                let cfg = TrainConfig {
                    steps: 6000,
                    weight_decay: wd,
                    max_seconds: Some(10.0),
                    ..TrainConfig::circles_default(noise)
                };
                for (tag, spec) in joint_and_couplings(s, hidden) {
                    cases.push((
                        format!("{tag} H{hidden} K{bins} noise{noise} wd{wd}"),
                        spec,
                        cfg.clone(),
                    ));
                }
            }
        }
    }
    run_cases(cases, train_d, test, filter);
}

fn explore4(train_d: &Dataset, test: &Dataset, filter: &[String]) {
    let mut cases: Vec<(String, ModelSpec, TrainConfig)> = Vec::new();
    for noise in [0.05f32, 0.08, 0.12] {
        for (steps, batch) in [
            (6000usize, Some(256usize)),
            (10000, Some(256)),
            (4000, None),
        ] {
            for (hidden, bins, bound) in [(32usize, 16usize, 4.0f32), (32, 24, 4.0)] {
                let s = SplineSpec::linear(bins, bound);
                let cfg = TrainConfig {
                    steps,
                    batch_size: batch,
                    max_seconds: Some(10.0),
                    ..TrainConfig::circles_default(noise)
                };
                for (tag, spec) in joint_and_couplings(s, hidden) {
                    cases.push((
                        format!("{tag} H{hidden} K{bins} noise{noise} S{steps} bs{batch:?}"),
                        spec,
                        cfg.clone(),
                    ));
                }
            }
        }
    }
    run_cases(cases, train_d, test, filter);
}

fn explore5(train_d: &Dataset, test: &Dataset, filter: &[String]) {
    let mut cases: Vec<(String, ModelSpec, TrainConfig)> = Vec::new();
    for order in [flow_core::Order::Quadratic, flow_core::Order::Linear] {
        for bins in [16usize, 32] {
            for noise in [0.08f32, 0.12] {
                for hidden in [32usize, 64] {
                    let s = SplineSpec {
                        bins,
                        bound: 4.0,
                        order,
                    };
                    let cfg = TrainConfig {
                        max_seconds: Some(10.0),
                        ..TrainConfig::circles_default(noise)
                    };
                    for (tag, spec) in joint_and_couplings(s, hidden) {
                        cases.push((
                            format!("{tag} {order:?} K{bins} H{hidden} noise{noise}"),
                            spec,
                            cfg.clone(),
                        ));
                    }
                }
            }
        }
    }
    run_cases(cases, train_d, test, filter);
}

fn explore6(train_d: &Dataset, test: &Dataset) {
    let (_, cfg) = flow_train::default_config(train_d);
    for (m_layers, c_layers, bins, hidden) in [
        (1usize, 1usize, 64usize, 32usize),
        (2, 1, 32, 32),
        (1, 2, 32, 32),
        (2, 2, 32, 32),
        (2, 2, 16, 32),
    ] {
        let s = SplineSpec::linear(bins, 4.0);
        let spec = ModelSpec::Joint {
            marginal: FlowSpec {
                dim: 1,
                context: 0,
                layers: vec![LayerSpec::Spline(s); m_layers],
            },
            conditional: FlowSpec {
                dim: 1,
                context: 1,
                layers: vec![
                    LayerSpec::ConditionalSpline {
                        hidden: vec![hidden, hidden],
                        spline: s
                    };
                    c_layers
                ],
            },
        };
        for seed in 0..3 {
            let mut c = cfg.clone();
            c.seed = seed;
            run(
                &format!("J m{m_layers} c{c_layers} K{bins} H{hidden} seed{seed}"),
                &spec,
                &c,
                train_d,
                test,
                None,
            );
        }
    }
}
