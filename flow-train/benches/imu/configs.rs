//! The configurations the bench's words describe: `cfg …` and `var …` (see the bench's docs).

use flow_train::defaults::{auto_config, AutoOptions, Preset};
use flow_train::*;

use crate::data::*;

/// A configuration from `key=value` words (see the module docs).
pub(crate) fn parse_cfg(
    words: &[String],
    d: &Dataset,
    groups: &[u32],
    seed: u64,
) -> (ModelSpec, TrainConfig) {
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
pub(crate) fn mixing_stack(dim: usize, n: usize, hidden: &[usize], s: SplineSpec) -> FlowSpec {
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
pub(crate) fn parse_var(words: &[String], d: &Dataset, seed: u64) -> (ModelSpec, TrainConfig) {
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
    let (mut spec, mut cfg) =
        auto_config(d, &AutoOptions::with_preset(preset)).expect("auto_config");
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
        cfg.row_noise = (alpha > 0.0).then(|| flow_train::noise::row_noise(d, alpha));
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
