//! Loads the model file embedded at build time, scores and samples its flow, scores an anomaly
//! stream, measures its own cost, and prints machine-readable lines through semihosting (see
//! README.md for the format); then exits QEMU with status 0, or 1 on a load error, a fault or a
//! panic.

#![no_std]
#![no_main]

// `errtext::code` or, with `error-text`, `errtext::error` is used.
#[allow(dead_code)]
mod errtext;
mod model;
mod out;
mod panic;
#[cfg(target_arch = "arm")]
mod rt;
#[cfg(target_arch = "riscv32")]
#[path = "rt_riscv.rs"]
mod rt;
mod stack;
#[cfg(target_arch = "arm")]
mod vectors;
#[cfg(flow_window)]
mod windows;
// Which stream type is used depends on `FLOW_STREAM`; the other one is dead code.
#[allow(dead_code)]
mod workload;

use core::hint::black_box;

#[cfg(target_arch = "arm")]
use cortex_m_rt::entry;
use flow_core::Error;
#[cfg(target_arch = "riscv32")]
use riscv_rt::entry;

use model::{FlowT, C, D};
use out::{key, metric, say, Line};
use rt::{Calibration, Ticker};
use stack::StackMeter;
use workload::{Density, Report, INSIDE_POINTS, POINTS};

/// The names of the `metric!` lines less their `icount_`/`stack_` prefix and `_bytes`
/// suffix (`out::metric_key`), overlapping where they can: `per_log_prob` and `log_prob` are
/// in `per_log_prob_all`, `sample` in `per_sample`; then the `extra` names of the build.
macro_rules! metric_names {
    ($($extra:literal),*) => {
        concat!(
            "instr_per_tick_milli",
            "model_file",
            "model_params",
            "flow_struct",
            "load",
            "tables",
            "parse",
            "per_log_prob_all",
            "per_sample",
            "main",
            "capacity",
            "peak",
            $($extra),*
        )
    };
}
#[cfg(not(flow_window))]
const METRIC_NAMES: &str = metric_names!();
/// With a windowed model, also: `icount_per_reading`, `scorer_bytes`, `stack_push_bytes`.
#[cfg(flow_window)]
const METRIC_NAMES: &str = metric_names!("per_reading", "scorer", "push");

/// The `geometry` line: `geometry <kind> <D> <C> <d₁> <L> <H> <K>`, written at compile time
/// (one string instead of a call per number).
const GEOMETRY: &str = match core::str::from_utf8(&GEOMETRY_BYTES) {
    Ok(s) => s,
    Err(_) => panic!("the geometry line is ASCII"),
};
const GEOMETRY_BYTES: [u8; geometry_line().1] = {
    let (line, n) = geometry_line();
    let mut out = [0; geometry_line().1];
    let mut i = 0;
    while i < n {
        out[i] = line[i];
        i += 1;
    }
    out
};

/// The `geometry` line in a buffer, and its length.
const fn geometry_line() -> ([u8; 64], usize) {
    let mut line = [0; 64];
    let mut n = 0;
    let words: [&str; 2] = ["geometry ", model::KIND_NAME];
    let mut w = 0;
    while w < words.len() {
        let b = words[w].as_bytes();
        let mut i = 0;
        while i < b.len() {
            line[n] = b[i];
            n += 1;
            i += 1;
        }
        w += 1;
    }
    let nums = [D, C, model::SPLIT, model::L, model::H, model::K];
    let mut k = 0;
    while k < nums.len() {
        line[n] = b' ';
        n += 1;
        // The digits from the last; then turned around.
        let (start, mut v) = (n, nums[k]);
        loop {
            line[n] = b'0' + (v % 10) as u8;
            n += 1;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let (mut a, mut b) = (start, n - 1);
        while a < b {
            let t = line[a];
            line[a] = line[b];
            line[b] = t;
            a += 1;
            b -= 1;
        }
        k += 1;
    }
    (line, n)
}

/// Repetitions of the timed loops (each span stays far below SysTick's 2^24 ticks).
const REPS_LOG_PROB: u32 = 20;
const REPS_SAMPLE: u32 = 64;
const REPS_LOAD: u32 = 4;

/// The `threshold` lines: `threshold none`, or `threshold` and two numbers (a piece of the
/// same constant, so its bytes are there once).
const THRESHOLD_NONE: &str = "threshold none";
const THRESHOLD: &str = THRESHOLD_NONE.split_at(9).0;

/// Prints the workload's results as lines: `tag idx… bits…` or `tag idx… err <message>`.
struct Printer;

impl Report for Printer {
    fn result(
        &mut self,
        tag: &'static str,
        idx: &[usize],
        _: [&[f32]; 2],
        out: Result<&[f32], &Error>,
    ) {
        let mut l = Line::start(tag);
        for &i in idx {
            l.num(i as u32);
        }
        match out {
            Ok(v) => {
                for &x in v {
                    l.bits(x);
                }
            }
            Err(e) => {
                l.word("err").err(e);
            }
        }
        l.send();
    }

    fn threshold(&mut self, t: Option<(f32, f32)>) {
        match t {
            Some((q, lp)) => Line::start(THRESHOLD).bits(q).bits(lp).send(),
            None => say(THRESHOLD_NONE),
        }
    }

    fn flagged(&mut self, n: usize, m: usize) {
        Line::start(workload::FLAGGED)
            .num(n as u32)
            .word("of")
            .num(m as u32)
            .send();
    }
}

/// The first context: where a conditional flow is measured (empty otherwise).
fn context0() -> [f32; C] {
    workload::widen(&workload::CONTEXTS[0])
}

/// Scores each of the first `n` of `POINTS` `reps` times (timed, and measured for its stack).
/// Not inlined: one copy of the loop for both timings and the stack phase.
#[inline(never)]
fn score(flow: &FlowT, n: usize, reps: u32, ctx: &[f32; C]) {
    for _ in 0..reps {
        for p in POINTS.get(..n).unwrap_or(&[]) {
            let x = workload::widen::<D>(black_box(p));
            let _ = black_box(flow.score(&x, black_box(ctx)));
        }
    }
}

/// Prints `load-error <error>` and fails the run on an error (one copy for both load steps).
#[inline(never)]
fn check_load(r: &Result<(), Error>) {
    if let Err(e) = r {
        Line::start("load-error").err(e).send();
        rt::exit_failure()
    }
}

/// Hands the sealed knot tables of the fixed-parameter splines to the flow (which checks
/// their seal for the model and that each is well formed); returns the stack it used. A
/// failure is a load error. (Not inlined, so that `firmware`'s frame, under every later phase,
/// does not hold its temporaries.)
#[inline(never)]
fn set_tables(
    stack: &mut StackMeter,
    flow: &mut FlowT,
    tables: &'static [u8],
    model_checksum: u32,
) -> usize {
    // (Checked inside the phase: `check_load`'s frame, beside that of the call, is not the
    // deepest; only a failure prints, and ends the run.)
    let ((), used) =
        stack.phase(|| check_load(&flow.set_sealed_tables(black_box(tables), model_checksum)));
    used
}

#[entry]
fn main() -> ! {
    firmware();
    say("done");
    rt::exit_success()
}

/// Everything `main` does before `done`. A function that returns: in `main`, which never
/// does, the compiler takes every call for a cold path and inlines nothing into it.
fn firmware() {
    let mut stack = StackMeter::start();
    let mut ticker = Ticker::start();
    let calib = Calibration::measure(&mut ticker);

    // --- load: Model::parse + building the flow, with its stack ---
    let bytes: &'static [u8] = &model::FILE.0;
    let tables: &'static [u8] = &model::TABLES.0;
    // The one place of the model and the flow, written by `load` (the timed loads below too)
    // and borrowed from, never moved: one copy of them on main's stack.
    let mut loaded = None;
    // (Checked inside the phase, as in `set_tables`.)
    let ((), load_stack) = stack.phase(|| check_load(&model::load(black_box(bytes), &mut loaded)));
    // Timed here, before `set_tables` (a load builds the flow without its tables).
    let ((), load_ticks) = ticker.ticks(|| {
        for _ in 0..REPS_LOAD {
            let _ = black_box(&model::load(black_box(bytes), &mut loaded));
        }
    });
    let Some((model, flow)) = &mut loaded else {
        rt::exit_failure()
    };
    let model = &*model;
    let tables_stack = set_tables(&mut stack, flow, tables, model.checksum());
    say(GEOMETRY);
    metric!("model_file_bytes", model.file_size() as u32);
    metric!("model_params", model.param_count() as u32);
    metric!("flow_struct_bytes", core::mem::size_of::<FlowT>() as u32);
    metric!("stack_load_bytes", load_stack as u32);
    metric!("stack_tables_bytes", tables_stack as u32);
    let ((), t) = ticker.ticks(|| {
        for _ in 0..REPS_LOAD {
            let _ = black_box(&flow_core::Model::parse(black_box(bytes)));
        }
    });
    calib.report(key!("icount_parse"), t, REPS_LOAD);
    calib.report(key!("icount_load"), load_ticks, REPS_LOAD);
    // (Setting the same tables again: the check's cost.)
    let (r, t) = ticker.ticks(|| flow.set_sealed_tables(black_box(tables), model.checksum()));
    calib.report(key!("icount_tables"), t, 1);
    black_box(r.is_ok());
    let flow = &*flow;

    // --- the workload: log_prob, samples, the anomaly stream ---
    #[cfg(not(flow_stream_file))]
    let stream = workload::SampledStream::new(model, flow);
    #[cfg(flow_stream_file)]
    let stream = workload::FileStream::<D, C>::new(&model::STREAM_FILE.0);
    workload::run::<D, C, _, _>(model, flow, stream, &mut Printer);

    // --- instructions per log_prob and per sample ---
    let ctx = context0();
    let ((), t) = ticker.ticks(|| score(flow, INSIDE_POINTS, REPS_LOG_PROB, &ctx));
    calib.report(
        key!("icount_per_log_prob"),
        t,
        REPS_LOG_PROB * INSIDE_POINTS as u32,
    );
    let ((), t) = ticker.ticks(|| score(flow, POINTS.len(), REPS_LOG_PROB, &ctx));
    calib.report(
        key!("icount_per_log_prob_all"),
        t,
        REPS_LOG_PROB * POINTS.len() as u32,
    );
    let mut rng = workload::sample_rng();
    let ((), t) = ticker.ticks(|| {
        for _ in 0..REPS_SAMPLE {
            let _ = black_box(flow.draw(&mut rng, black_box(&ctx)));
        }
    });
    calib.report(key!("icount_per_sample"), t, REPS_SAMPLE);

    // --- a windowed model: each reading's window, and the cost of a new reading ---
    #[cfg(flow_window)]
    window_workload(&mut stack, &mut ticker, &calib, model, flow);

    // --- stack ---
    metric!("stack_main_bytes", stack.depth() as u32);
    let ((), used) = stack.phase(|| score(flow, POINTS.len(), 1, &ctx));
    metric!("stack_log_prob_bytes", used as u32);
    // The same generator, re-seeded: a second one would take a place in the frame.
    rng = workload::sample_rng();
    let (_, used) = stack.phase(|| flow.draw(&mut rng, &ctx));
    metric!("stack_sample_bytes", used as u32);
    metric!("stack_capacity_bytes", stack.capacity() as u32);
    // Last, so that every printing above is included.
    metric!("stack_peak_bytes", stack.peak() as u32);
}

/// Repetitions of the pass over the readings timed per new reading.
#[cfg(flow_window)]
const REPS_READINGS: u32 = 4;

/// The windowed workload (`src/windows.rs`): `window <t> <bits>` (`none` while the window is
/// not full, `err <error>`) for each reading, then the instructions per new reading (every
/// push timed finds the window full), the stack of a push and the scorer's size.
#[cfg(flow_window)]
#[inline(never)]
fn window_workload(
    stack: &mut StackMeter,
    ticker: &mut Ticker,
    calib: &Calibration,
    model: &flow_core::Model<'_>,
    flow: &FlowT,
) {
    use flow_core::stream::WindowScorer;
    use model::WINDOW;
    let mut scorer = match WindowScorer::<D, { WINDOW - 1 }>::new(model) {
        Ok(s) => s,
        Err(e) => {
            Line::start("load-error").err(&e).send();
            rt::exit_failure()
        }
    };
    windows::score(&mut scorer, flow, |t, r| {
        let mut l = Line::start("window");
        l.num(t as u32);
        match r {
            Ok(Some(lp)) => l.bits(lp),
            Ok(None) => l.word("none"),
            Err(e) => l.word("err").err(&e),
        };
        l.send();
    });
    // The scorer is full: each push below scores a whole window.
    let n = windows::READINGS.len();
    let ((), t) = ticker.ticks(|| {
        for _ in 0..REPS_READINGS {
            for t in 0..n {
                let x = windows::reading::<D>(black_box(t));
                let _ = black_box(scorer.push(flow, black_box(&x[..D / 2])));
            }
        }
    });
    calib.report(key!("icount_per_reading"), t, REPS_READINGS * n as u32);
    let (_, used) = stack.phase(|| scorer.push(flow, &windows::reading::<D>(0)[..D / 2]));
    metric!("stack_push_bytes", used as u32);
    metric!(
        "scorer_bytes",
        core::mem::size_of::<WindowScorer<D, { WINDOW - 1 }>>() as u32
    );
}
