//! Loads a normalizing flow from an embedded blob, scores and samples it, and prints
//! machine-readable lines through semihosting (see README.md for the format); then exits QEMU
//! with status 0, or nonzero on a load error, a fault or a panic.

#![no_std]
#![no_main]

mod model;
mod rt;
mod workload;

use core::hint::black_box;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;

use rt::{Calibration, StackMeter, Ticker};
use workload::{Stream, INSIDE_POINTS, N_SAMPLES, POINTS};

/// The model, embedded at build time (see build.rs: `FLOW_MODEL_BLOB`). `Weights` reads
/// little-endian bytes at any alignment, so the blob needs no aligned wrapper.
static BLOB: &[u8] = include_bytes!(env!("FLOW_MODEL_BLOB"));

/// Repetitions of the timed loops (each span stays far below SysTick's 2^24 ticks).
const REPS_LOG_PROB: u32 = 20;
const REPS_SAMPLE: u32 = 64;

#[entry]
fn main() -> ! {
    let mut stack = StackMeter::start();
    let Some(cp) = cortex_m::Peripherals::take() else {
        hprintln!("error peripherals");
        rt::exit_failure()
    };
    let mut ticker = Ticker::start(cp.SYST);
    let calib = Calibration::measure(&mut ticker);
    calib.print();

    let flow = match model::load(BLOB) {
        Ok(f) => f,
        Err(e) => {
            hprintln!("load-error {}", e);
            rt::exit_failure()
        }
    };
    hprintln!("model bytes {} params {}", BLOB.len(), BLOB.len() / 4);

    // --- log_prob of the embedded points ---
    for (i, p) in POINTS.iter().enumerate() {
        match flow.log_prob(p) {
            Ok(lp) => hprintln!("lp {} {:08x}", i, lp.to_bits()),
            Err(e) => hprintln!("lp {} err {}", i, e),
        }
    }

    // --- samples ---
    let mut rng = workload::sample_rng();
    for i in 0..N_SAMPLES {
        match flow.sample::<f32, _>(&mut rng) {
            Ok(x) => hprintln!("sample {} {:08x} {:08x}", i, x[0].to_bits(), x[1].to_bits()),
            Err(e) => hprintln!("sample {} err {}", i, e),
        }
    }

    // --- streaming anomaly scoring ---
    let mut stream = Stream::new();
    let (mut i, mut flagged) = (0usize, 0usize);
    while let Some(point) = stream.next_point(&flow) {
        match point.and_then(|x| flow.log_prob(&x)) {
            Ok(lp) if workload::is_anomalous(lp) => {
                hprintln!("flag {} {:08x}", i, lp.to_bits());
                flagged += 1;
            }
            Ok(_) => {}
            Err(e) => {
                // A point that cannot be scored is an anomaly too.
                hprintln!("flag {} err {}", i, e);
                flagged += 1;
            }
        }
        i += 1;
    }
    hprintln!("flagged {}", flagged);

    // --- instructions per log_prob and per sample ---
    let score = |pts: &[[f32; 2]], reps: u32| {
        for _ in 0..reps {
            for p in pts {
                let _ = black_box(flow.log_prob(black_box(p)));
            }
        }
    };
    let inside = &POINTS[..INSIDE_POINTS];
    let ((), t) = ticker.ticks(|| score(inside, REPS_LOG_PROB));
    let calls = REPS_LOG_PROB as u64 * inside.len() as u64;
    hprintln!("icount_per_log_prob {}", calib.instructions(t) / calls);
    let ((), t) = ticker.ticks(|| score(&POINTS, REPS_LOG_PROB));
    let calls = REPS_LOG_PROB as u64 * POINTS.len() as u64;
    hprintln!("icount_per_log_prob_all {}", calib.instructions(t) / calls);
    let mut rng = workload::sample_rng();
    let ((), t) = ticker.ticks(|| {
        for _ in 0..REPS_SAMPLE {
            let _ = black_box(flow.sample::<f32, _>(&mut rng));
        }
    });
    hprintln!(
        "icount_per_sample {}",
        calib.instructions(t) / u64::from(REPS_SAMPLE)
    );

    // --- stack ---
    hprintln!("flow_struct_bytes {}", core::mem::size_of::<model::Model>());
    hprintln!("stack_main_bytes {}", stack.depth());
    let ((), used) = stack.phase(|| score(&POINTS, 1));
    hprintln!("stack_log_prob_bytes {}", used);
    let mut rng = workload::sample_rng();
    let (_, used) = stack.phase(|| flow.sample::<f32, _>(&mut rng));
    hprintln!("stack_sample_bytes {}", used);
    hprintln!("stack_capacity_bytes {}", stack.capacity());
    // Last, so that every printing above is included.
    hprintln!("stack_peak_bytes {}", stack.peak());
    hprintln!("done");
    rt::exit_success()
}
