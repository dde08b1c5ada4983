//! The checks of one case: device against host bit for bit, and the cost figures against the
//! budgets.

use crate::geometry::Geometry;
use crate::workload;
use flow_core::Model;
use flow_tests::elf::Elf;
use flow_tests::firmware::Embed;
use flow_tests::qemu::{self, Machine};
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::harness::*;
use crate::models::*;
use crate::results::*;

// --- the checks --------------------------------------------------------------------------------

/// The three calibration loops must give ticks linear in the loop length: the third is
/// predicted from the first two within 2 ticks.
pub(crate) fn check_calibration(machine: &str, calib: &[(u64, u64)]) {
    let [(n0, t0), (n1, t1), (n2, t2)] = calib else {
        panic!("{machine}: expected 3 calib lines, got {calib:?}");
    };
    assert!(
        t1 > t0 && n1 > n0,
        "{machine}: SysTick does not count: {calib:?}"
    );
    let predicted =
        *t0 as f64 + (*n2 as f64 - *n0 as f64) * (*t1 - *t0) as f64 / (*n1 - *n0) as f64;
    assert!(
        (predicted - *t2 as f64).abs() <= 2.0,
        "{machine}: calibration not linear: {calib:?} (predicted {predicted} ticks for {n2})"
    );
}

pub(crate) fn metric(machine: &str, o: &Output, key: &str) -> u64 {
    *o.metrics
        .get(key)
        .unwrap_or_else(|| panic!("{machine}: no `{key}` line"))
}

/// The geometry line the firmware prints for `g`.
pub(crate) fn geometry_line(g: &Geometry) -> String {
    format!(
        "{} {} {} {} {} {} {}",
        g.kind_name(),
        g.dim,
        g.context,
        g.split,
        g.layers,
        g.hidden,
        g.bins
    )
}

/// One firmware build to compare: its model, what it embeds, and the host's results.
pub(crate) struct Case<'a> {
    pub(crate) label: &'a str,
    pub(crate) target: &'a str,
    pub(crate) machines: &'a [Machine],
    pub(crate) embed: Embed,
    pub(crate) geometry: Geometry,
    pub(crate) model_bytes: u64,
    pub(crate) host: Host,
    /// Also build and run the template and the fault binary.
    pub(crate) with_template: bool,
    /// The harness's budget, checked when set: at most this many bytes of flash and
    /// instructions per `log_prob` (inside the box).
    pub(crate) budget: Option<(u64, u64)>,
}

impl<'a> Case<'a> {
    /// The model file at `model` (whose bytes are `model_bytes` long) embedded alone, no
    /// template run.
    pub(crate) fn new(
        label: &'a str,
        target: &'a str,
        machines: &'a [Machine],
        model: PathBuf,
        geometry: Geometry,
        model_bytes: usize,
        host: Host,
    ) -> Self {
        Case {
            label,
            target,
            machines,
            embed: Embed {
                model,
                ..Embed::default()
            },
            geometry,
            model_bytes: model_bytes as u64,
            host,
            with_template: false,
            budget: None,
        }
    }
}

/// Builds the case's firmware, runs it on each machine, compares everything with the host and
/// reports the measurements.
pub(crate) fn check(case: Case<'_>) {
    let label = case.label;
    let bins: &[&str] = if case.with_template {
        &["flow-device-bench", "template", "fault"]
    } else {
        &["flow-device-bench"]
    };
    let elfs = build(case.target, &case.embed, label, bins, &[]);
    let elf = Elf::read(&elfs[0]);
    let mut report = String::new();
    let mut bad = Vec::new();
    for &m in case.machines {
        let name = format!("{label} ({}) on {}", case.target, m.name);
        let run = qemu::run(m, &elfs[0]);
        let out = parse(&run.stdout);
        assert!(
            out.load_error.is_none(),
            "{name}: load error {:?}",
            out.load_error
        );
        assert!(
            run.code == Some(0) && out.done,
            "{name}: exit status {:?}, done printed: {}\nstdout:\n{}\nstderr:\n{}",
            run.code,
            out.done,
            run.stdout,
            run.stderr
        );
        assert_eq!(
            out.geometry.as_deref(),
            Some(geometry_line(&case.geometry).as_str()),
            "{name}: the firmware was not compiled for the model's geometry"
        );
        assert_eq!(metric(&name, &out, "model_file_bytes"), case.model_bytes);
        bad.extend(mismatches(&name, &out, &case.host));
        check_calibration(&name, &out.calib);

        let lp_instr = metric(&name, &out, "icount_per_log_prob");
        if let Some((flash, instr)) = case.budget {
            assert!(
                elf.flash() <= flash && lp_instr <= instr,
                "{name}: over the harness's budget: flash {} B (at most {flash}), {lp_instr} \
                 instructions per log_prob (at most {instr})",
                elf.flash()
            );
        }
        let peak = metric(&name, &out, "stack_peak_bytes");
        let cap = metric(&name, &out, "stack_capacity_bytes");
        assert!(
            (100..50_000_000).contains(&lp_instr),
            "{name}: implausible icount_per_log_prob {lp_instr}"
        );
        assert!(
            peak < cap,
            "{name}: the stack overflowed ({peak} of {cap} B)"
        );
        let _ = writeln!(
            report,
            "{name}: model {} B, {} params; geometry {}\n  instructions: load {} (Model::parse \
             {}), log_prob {} (inside the box; {} over all points), sample {}; per SysTick tick \
             {:.3}\n  stack: load {} B, log_prob call {} B, sample call {} B, main {} B (flow \
             struct {} B); peak {peak} B of {cap} B\n  RAM: static {} B + stack peak {peak} B = \
             {} B",
            metric(&name, &out, "model_file_bytes"),
            metric(&name, &out, "model_params"),
            geometry_line(&case.geometry),
            metric(&name, &out, "icount_load"),
            metric(&name, &out, "icount_parse"),
            lp_instr,
            metric(&name, &out, "icount_per_log_prob_all"),
            metric(&name, &out, "icount_per_sample"),
            metric(&name, &out, "instr_per_tick_milli") as f64 / 1000.0,
            metric(&name, &out, "stack_load_bytes"),
            metric(&name, &out, "stack_log_prob_bytes"),
            metric(&name, &out, "stack_sample_bytes"),
            metric(&name, &out, "stack_main_bytes"),
            metric(&name, &out, "flow_struct_bytes"),
            elf.static_ram(),
            elf.static_ram() + peak,
        );
        if case.with_template {
            let trun = qemu::run(m, &elfs[1]);
            let tout = parse(&trun.stdout);
            assert!(
                trun.code == Some(0) && tout.done,
                "{name}: template exit status {:?}\n{}",
                trun.code,
                trun.stdout
            );
            check_calibration(&format!("{name} (template)"), &tout.calib);
            let tpeak = metric(&name, &tout, "stack_peak_bytes");
            let _ = writeln!(
                report,
                "  template: stack peak {tpeak} B; flow's stack +{} B",
                peak.saturating_sub(tpeak)
            );
        }
    }
    let _ = writeln!(
        report,
        "{label} ({}): firmware {}",
        case.target,
        elf.describe()
    );
    let by = elf.breakdown(case.model_bytes);
    let mut parts: Vec<String> = by.iter().map(|(k, v)| format!("{k} {v}")).collect();
    parts.push(format!(
        "no symbol (unnamed constants, alignment) {}",
        elf.flash() as i64 - by.values().sum::<u64>() as i64
    ));
    let _ = writeln!(report, "  by symbol: {}", parts.join(", "));
    if case.with_template {
        let t = Elf::read(&elfs[1]);
        let _ = writeln!(
            report,
            "  template {}\n  flow part: flash +{} B, static RAM +{} B",
            t.describe(),
            elf.flash() as i64 - t.flash() as i64,
            elf.static_ram() as i64 - t.static_ram() as i64,
        );
        let run = qemu::run(case.machines[0], &elfs[2]);
        assert!(
            run.stdout.contains("hardfault pc="),
            "{label}: no hardfault line:\n{}",
            run.stdout
        );
        assert_eq!(
            run.code,
            Some(1),
            "{label}: a HardFault must exit with failure"
        );
    }
    print!("{report}");
    std::fs::write(work_dir().join(format!("report-{label}.txt")), &report).expect("write report");
    assert!(
        bad.is_empty(),
        "device and host differ ({} mismatches):\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// The case `label` on `target`'s `machines` for the model `bytes`, written to the work
/// directory as `file`, whose geometry must be `geometry` (as [`geometry_line`] writes it),
/// with the host's results of the typed flow `flow` makes of it (the workload's own samples
/// as the stream).
pub(crate) fn model_case<'a, 'b, const D: usize, const C: usize, F: workload::Density<D, C>>(
    (label, target, machines): (&'a str, &'a str, &'a [Machine]),
    (file, bytes): (&str, &'b [u8]),
    geometry: &str,
    flow: impl FnOnce(&Model<'b>) -> Result<F, flow_core::Error>,
) -> Case<'a> {
    let path = write_file(file, bytes);
    let model = Model::parse(bytes).unwrap_or_else(|e| panic!("{label}: the model: {e}"));
    let g = Geometry::of(&model).unwrap();
    assert_eq!(geometry_line(&g), geometry, "{label}: the model's geometry");
    let flow =
        flow(&model).unwrap_or_else(|e| panic!("{label}: no flow of its type for {g:?}: {e}"));
    let host = host_results::<D, C, _>(&model, &flow, None);
    Case::new(label, target, machines, path, g, bytes.len(), host)
}

/// The tutorial model at `TEST_SEED` in the work directory, its flow type, and its checks.
pub(crate) fn tutorial_case<'a>(
    label: &'a str,
    target: &'a str,
    machines: &'a [Machine],
) -> Case<'a> {
    let bytes = tutorial_model(TEST_SEED);
    let case = model_case(
        (label, target, machines),
        ("tutorial.nflw", &bytes),
        "plain 2 0 0 1 20 16",
        Model::flow::<2, 1, 20, 16>,
    );
    let host = &case.host;
    // The model must exercise the flow: finite log_probs that differ, some points flagged,
    // not all.
    let lps: Vec<f32> = host
        .results
        .iter()
        .filter(|(k, _)| k.0 == "lp")
        .filter_map(|(_, (_, _, v))| match v {
            Val::Bits(b) => Some(f32::from_bits(b[0])).filter(|x| x.is_finite()),
            Val::Err(_) => None,
        })
        .collect();
    assert!(
        lps.len() >= workload::INSIDE_POINTS && lps.windows(2).any(|w| w[0] != w[1]),
        "the test model gives trivial log_probs: {lps:?}"
    );
    let (n, m) = host.flagged.unwrap();
    assert!(0 < n && n < m, "the stream flags {n} of {m}");
    Case {
        with_template: true,
        ..case
    }
}
