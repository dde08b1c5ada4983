//! The defaults: the circles target, the parameters kept, the IMU file on new recordings,
//! reproducibility, and the help that shows them.

use crate::common::*;
use std::path::Path;
use std::process::Command;

use crate::helpers::*;

/// The README's first command: `fit --data circles` with every default reaches test NLL
/// ≤ 1.80 nats on Pyro's 10,000 test points (tutorial-scaled, scored in the flow's space).
/// Release builds only: an unoptimized build trains far slower than the defaults assume.
#[test]
fn default_fit_reaches_the_target() {
    if cfg!(debug_assertions) {
        eprintln!("default_fit_reaches_the_target: skipped in a debug build (run with --release)");
        return;
    }
    let dir = scratch("default");
    let model = dir.join("circles.nflw");
    let t = std::time::Instant::now();
    ok(&["fit", "--data", "circles", "--out", p(&model), "-q"]);
    let secs = t.elapsed().as_secs_f64();
    let test = repo().join("data/circles_test_scaled.csv");
    let nll = last_nll(&ok(&[
        "eval",
        "--model",
        p(&model),
        "--data",
        p(&test),
        "--standardized",
    ]));
    println!("default fit: test NLL {nll:.4} in {secs:.1} s");
    assert!(nll <= 1.80, "{nll}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `fit` says which parameters it keeps: for 3-D data the defaults only measure the
/// validation rows and keep the last step; `--patience N` stops early and keeps the best
/// validated step; up to 2-D the defaults keep the best validated step.
#[test]
fn fit_reports_the_parameters_it_keeps() {
    let dir = scratch("kept");
    let mut rng = Lcg(7);
    let mut csv = String::from("a,b,c\n");
    for _ in 0..600 {
        let a = rng.normal();
        csv += &format!("{a},{},{}\n", a + 0.3 * rng.normal(), rng.normal());
    }
    let data = dir.join("d.csv");
    std::fs::write(&data, csv).unwrap();
    let model = dir.join("m.nflw");
    // What fit chose and did is status: on stderr.
    let fit = |extra: &[&str]| {
        let mut args = fit_args(p(&data), "--steps 200", &model);
        args.extend_from_slice(extra);
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    let out = fit(&[]);
    assert!(
        out.contains("no early stopping; keeps the last parameters")
            && out.contains("kept the parameters of step 200 (last step)"),
        "{out}"
    );
    let out = fit(&["--patience", "3"]);
    assert!(
        out.contains("early stopping after 3 checks without improvement; keeps the best validated")
            && out.contains("(best validation)"),
        "{out}"
    );
    // Nothing held out: nothing validated, the last step.
    let out = fit(&["--val-fraction", "0"]);
    assert!(
        !out.contains("validation:") && out.contains("(last step)"),
        "{out}"
    );
    let out = fit_stderr(&fit_args("circles", "--n 1000 --steps 200", &model));
    assert!(
        out.contains("early stopping after 60 checks")
            && out.contains("keeps the best validated parameters")
            && out.contains("(best validation)"),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The IMU use case end to end with every default: `fit` on 20 of the smartwatch file's 28
/// recordings, then `eval` on the other 8 (every 4th standing and every 4th walking recording
/// by id) with proxy anomalies — those recordings' walking readings, their deviations from the
/// training mean doubled (the `imu` bench's `amp2`). Against a full-covariance Gaussian fitted
/// on the same rows: the flow's NLL must be lower by 2 nats (measured 4.67–4.72 against 9.19
/// over seeds 0–3) and its AUROC higher by 0.01 (0.969–0.972 against 0.943); its NLL at most
/// 4.85 nats per reading (0.13 above the worst seed, four times the seeds' spread; the
/// recording-level cross-validation's per-fold NLLs span 3.3–5.4, so this bound is for this
/// split only); `inspect` reports at most 5,000 parameters. Release builds only.
#[test]
fn imu_defaults_on_new_recordings() {
    if cfg!(debug_assertions) {
        eprintln!("imu_defaults_on_new_recordings: skipped in a debug build (run with --release)");
        return;
    }
    let (header, rows) = imu_split();
    let (mut train, mut test, mut walking) = (Vec::new(), Vec::new(), Vec::new());
    for &(_, walk, held, r) in &rows {
        if held {
            test.push(r);
            walking.push(walk);
        } else {
            train.push(r);
        }
    }
    let n = train.len() as f64;
    let mut mean = [0.0; 6];
    for r in &train {
        for j in 0..6 {
            mean[j] += r[j] / n;
        }
    }
    let amp2: Vec<[f64; 6]> = test
        .iter()
        .zip(&walking)
        .filter(|w| *w.1)
        .map(|(r, _)| std::array::from_fn(|j| mean[j] + 2.0 * (r[j] - mean[j])))
        .collect();
    let dir = scratch("imu");
    let write = |name: &str, rows: &[[f64; 6]]| {
        let mut s = header.clone() + "\n";
        for r in rows {
            let cells: Vec<String> = r.iter().map(|v| v.to_string()).collect();
            s += &(cells.join(",") + "\n");
        }
        let path = dir.join(name);
        std::fs::write(&path, s).unwrap();
        path
    };
    let (train_csv, test_csv, amp_csv) = (
        write("train.csv", &train),
        write("test.csv", &test),
        write("amp2.csv", &amp2),
    );
    let model = dir.join("imu.nflw");
    ok(&["fit", "--data", p(&train_csv), "--out", p(&model), "-q"]);
    let info = ok(&["inspect", "--model", p(&model)]);
    let params = line_value(&info, "params ");
    assert!(params <= 5_000.0, "{params}");
    let out = eval_anomalies(&model, &test_csv, &amp_csv, &["-q"]);
    let nll = last_nll(&out);
    let auroc = line_value(&out, "auroc ");

    // The Gaussian baseline: mean and (ddof 0) covariance of the training rows, log-density
    // through the Cholesky factor.
    let mut cov = vec![0.0; 36];
    for r in &train {
        for a in 0..6 {
            for b in 0..6 {
                cov[a * 6 + b] += (r[a] - mean[a]) * (r[b] - mean[b]) / n;
            }
        }
    }
    let l = gauss::cholesky(&cov, 6);
    let gauss_nll = |r: &[f64; 6]| -gauss::log_density(r, &mean, &l);
    let normal: Vec<f64> = test.iter().map(|r| -gauss_nll(r)).collect();
    let anomalous: Vec<f64> = amp2.iter().map(|r| -gauss_nll(r)).collect();
    let g_nll = -normal.iter().sum::<f64>() / normal.len() as f64;
    let g_auroc = flow_train::export::auroc(&normal, &anomalous);
    println!(
        "IMU, 8 new recordings: flow NLL {nll:.3}, AUROC {auroc:.4} ({params} parameters); \
         Gaussian NLL {g_nll:.3}, AUROC {g_auroc:.4}"
    );
    assert!(nll <= g_nll - 2.0 && nll <= 4.85, "{nll} vs {g_nll}");
    assert!(auroc >= g_auroc + 0.01, "{auroc} vs {g_auroc}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Reproducible training: two runs of `fit` with the same options write the same bytes, the
/// second with the other core kept busy (no wall-clock limit makes a loaded run stop
/// earlier); `--isa portable` writes the same bytes on a CPU without AVX (QEMU's user-mode
/// emulator with its baseline `qemu64` CPU, package qemu-user) as on this one, while the
/// detected instruction sets differ.
#[cfg(target_arch = "x86_64")]
#[test]
fn fit_is_reproducible_under_load_and_across_cpus() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = scratch("repro");
    let common = [
        "fit", "--data", "circles", "--n", "2000", "--steps", "300", "--flow", "joint", "--bins",
        "8", "--hidden", "8,8",
    ];
    let fit = |out: &Path, extra: &[&str]| -> (Vec<u8>, String) {
        let mut args = common.to_vec();
        args.extend_from_slice(&["--out", p(out)]);
        args.extend_from_slice(extra);
        let err = fit_stderr(&args);
        (std::fs::read(out).unwrap(), err)
    };
    let (quiet_run, err) = fit(&dir.join("a.nflw"), &[]);
    assert!(err.contains("no time limit"), "{err}");
    let busy = AtomicBool::new(true);
    let loaded_run = std::thread::scope(|s| {
        s.spawn(|| {
            let mut x = 0u64;
            while busy.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        });
        let r = fit(&dir.join("b.nflw"), &[]).0;
        busy.store(false, Ordering::Relaxed);
        r
    });
    assert_eq!(quiet_run, loaded_run, "a loaded run wrote different bytes");

    // The same model under an emulated CPU without AVX.
    let native = fit(&dir.join("portable.nflw"), &["--isa", "portable"]).0;
    let (auto_native, auto_err) = fit(&dir.join("auto.nflw"), &["--isa", "auto"]);
    let emulated = |out: &Path, isa: &str| -> (Vec<u8>, String) {
        let mut args = vec!["-cpu", "qemu64", env!("CARGO_BIN_EXE_flow-train")];
        args.extend_from_slice(&common);
        args.extend_from_slice(&["--out", p(out), "--isa", isa]);
        let o = Command::new("qemu-x86_64")
            .args(&args)
            .output()
            .expect("qemu-x86_64 (Debian/Ubuntu package qemu-user) is needed for this test");
        assert!(o.status.success(), "{}", stderr(&o));
        (std::fs::read(out).unwrap(), stderr(&o))
    };
    let (qemu_portable, _) = emulated(&dir.join("q-portable.nflw"), "portable");
    let (qemu_auto, qemu_err) = emulated(&dir.join("q-auto.nflw"), "auto");
    assert!(
        qemu_err.contains("instruction set portable (detected)"),
        "{qemu_err}"
    );
    assert_eq!(qemu_portable, native, "--isa portable differs across CPUs");
    assert_eq!(
        qemu_auto, native,
        "auto on a baseline CPU is the portable code"
    );
    // On a CPU with AVX2 or AVX-512, `auto` picks it, and it rounds differently: this is what
    // --isa portable pins.
    if !auto_err.contains("instruction set portable") {
        assert_ne!(auto_native, native, "{auto_err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--help` states what the defaults are, says "auto" where --flow auto decides, and the
/// explicit defaults it shows are the ones used.
#[test]
fn help_shows_the_defaults_used() {
    let help = ok(&["fit", "--help"]);
    for needle in [
        "[default: auto]",
        "--isa <ISA>",
        "[default: auto]",
        "portable",
        "no wall-clock limit unless --max-seconds",
        "--strict",
        "[default: 16; --flow auto chooses]",
        "[default: 4; --flow auto chooses]",
        "[default: linear;",
        "[default: 32,32; --flow auto chooses]",
        "[default: 100000]",
        "[default: 0.05]",
        "[default: 0.5]",
    ] {
        assert!(help.contains(needle), "fit --help lacks {needle}");
    }
    let dir = scratch("help-defaults");
    let model = dir.join("m.nflw");
    let err = fit_stderr(&fit_args(
        "circles",
        "--n 500 --steps 5 --flow coupling --layers 1",
        &model,
    ));
    // What the explicit flow used: the defaults --help shows.
    let info = ok(&["inspect", "--model", p(&model)]);
    assert!(
        info.contains("K=16 B=4 linear") && info.contains("[32, 32]"),
        "{info}"
    );
    assert!(err.contains("model: plain flow on 2 dims"), "{err}");
    // What auto chose is printed.
    let err = fit_stderr(&fit_args("circles", "--n 500 --steps 5", &model));
    for needle in [
        "model: joint",
        "parameters: ",
        "training: 5 steps, Adam lr",
        "batch ",
    ] {
        assert!(err.contains(needle), "{err} lacks {needle}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
