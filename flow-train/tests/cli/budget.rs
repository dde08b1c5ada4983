//! `--max-params` with an automatic conditional model.

use crate::common::*;

use crate::helpers::*;

/// Conditional `--flow auto` picks a model within `--preset` and `--max-params`.
#[test]
fn conditional_auto_honours_the_budget() {
    let dir = scratch("cond-budget");
    let mut csv = String::from("t,x,y\n");
    let mut rng = Lcg(3);
    for _ in 0..2000 {
        let t = rng.normal();
        csv += &format!("{t},{},{}\n", t + rng.normal(), t - rng.normal());
    }
    let data = dir.join("d.csv");
    std::fs::write(&data, csv).unwrap();
    let model = dir.join("m.nflw");
    let params = |extra: &[&str]| -> usize {
        let mut args = fit_args(p(&data), "--context-columns t --steps 5", &model);
        args.extend_from_slice(extra);
        let err = fit_stderr(&args);
        let n: usize = err
            .lines()
            .find_map(|l| l.strip_prefix("parameters: "))
            .unwrap_or_else(|| panic!("{err}"))
            .parse()
            .unwrap();
        let info = ok(&["inspect", "--model", p(&model)]);
        assert_eq!(info.lines().last().unwrap(), format!("params {n}"));
        n
    };
    let unbounded = params(&[]);
    assert!(unbounded > 20_000, "{unbounded}");
    for (extra, limit) in [
        (&["--preset", "medium"][..], 20_000),
        (&["--preset", "small"], 5_000),
        (&["--preset", "tiny"], 2_000),
        (&["--max-params", "700"], 700),
        (&["--preset", "small", "--max-params", "3000"], 3_000),
    ] {
        let n = params(extra);
        // The largest of the ladder within the limit: above a quarter of it.
        assert!(n <= limit && n > limit / 4, "{extra:?}: {n} parameters");
    }
    let err = fails(&fit_args(
        p(&data),
        "--context-columns t --max-params 10",
        &model,
    ));
    assert!(err.contains("fits in 10 parameters"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
