//! A trained flow on a microcontroller: the model file is embedded at build time (`build.rs`
//! checks it), loaded with flow-core's validating loader, and used to score sensor readings,
//! flag the unusual ones and draw samples (a windowed model: score a stream of readings by
//! windows, `windows.rs`). Every number is printed in decimal, in the
//! model's raw units, with enough digits to read it back as the same `f32` (`decimal.rs`).
//!
//! One source for every board: `src/board/` holds what differs (how a line is printed, how
//! the run ends); `boards/<board>.toml` the target and the runner. See README.md.

#![no_std]
#![no_main]

mod board;
mod decimal;
// (Stream mode uses its quantile only.)
#[cfg_attr(flow_kind = "window", allow(dead_code))]
mod inputs;
mod text;
#[cfg(flow_kind = "window")]
mod windows;

#[cfg(not(flow_kind = "window"))]
use decimal::{Dec, List, EXACT};
use flow_core::{Error, Model};
#[cfg(not(flow_kind = "window"))]
use inputs::{QUANTILE, READINGS, SAMPLES, SAMPLE_SEED};
#[cfg(not(flow_kind = "window"))]
use rand_core::SeedableRng;
#[cfg(not(flow_kind = "window"))]
use rand_pcg::Pcg64;

// `D`, `L`, `H`, `K`: the sizes of the embedded model, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/geometry.rs"));

/// Bytes at a 4-byte aligned address, so flow-core reads the parameters in place.
#[repr(C, align(4))]
struct Aligned<B: ?Sized>(B);

/// The model file (`FLOW_MODEL`, default `models/circles_coupling.nflw`).
static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("FLOW_MODEL_FILE")));
/// The knot tables of its fixed splines, sealed for it by build.rs: faster `log_prob`.
static TABLES: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/tables.bin")));

#[cfg(flow_kind = "plain")]
type Flow = flow_core::Flow<'static, D, L, H, K>;
#[cfg(any(flow_kind = "joint", flow_kind = "window"))]
type Flow = flow_core::JointFlow<'static, D, L, H, K>;

#[board::entry]
fn main() -> ! {
    board::init();
    say!("flow-firmware-example on ", board::NAME);
    match run() {
        Ok(()) => {
            say!("done");
            board::exit(true)
        }
        Err(e) => {
            say!("error: ", e);
            board::exit(false)
        }
    }
}

/// Loads the model and its flow: `Model::parse` checks the whole file (magic, version, CRC,
/// every layer and parameter); nothing is copied out of flash.
fn load() -> Result<(Model<'static>, Flow), Error> {
    let model = Model::parse(&MODEL.0)?;
    #[cfg(flow_kind = "plain")]
    let mut flow = model.flow()?;
    #[cfg(any(flow_kind = "joint", flow_kind = "window"))]
    let mut flow = model.joint_flow()?;
    flow.set_sealed_tables(&TABLES.0, model.checksum())?;
    Ok((model, flow))
}

/// Stream mode: scores `windows.rs`'s readings by windows.
#[cfg(flow_kind = "window")]
fn run() -> Result<(), Error> {
    let (model, flow) = load()?;
    let (params, bytes) = (model.param_count(), model.file_size());
    say!(
        "model: windows of ",
        W,
        " readings of ",
        D / 2,
        " values, ",
        params,
        " parameters, ",
        bytes,
        " bytes"
    );
    windows::run(&model, &flow)
}

#[cfg(not(flow_kind = "window"))]
fn run() -> Result<(), Error> {
    let (model, flow) = load()?;
    let (layers, params, bytes) = (model.header().layers, model.param_count(), model.file_size());
    say!("model: ", D, "-D flow, ", layers, " layers, ", params, " parameters, ", bytes, " bytes");
    // Densities in raw units: the flow's, less the scaler's log-scales.
    let shift = model.raw_log_det::<f32>();
    let threshold = model.threshold(QUANTILE).map(|t| t + shift);
    match threshold {
        Some(t) => say!("threshold log_prob ", Dec(t), " (1 % of the training data lie below)"),
        None => say!("threshold none stored: nothing is flagged"),
    }

    let mut flagged = 0;
    for (i, r) in READINGS.iter().enumerate() {
        let x: [f32; D] = core::array::from_fn(|j| r[j % 2]);
        match flow.log_prob(&model.standardize(&x)) {
            Ok(lp) => {
                let lp = lp + shift;
                let unusual = threshold.is_some_and(|t| lp < t);
                flagged += usize::from(unusual);
                let note = if unusual { "  <- anomaly" } else { "" };
                say!("reading ", i, " ", List(&x, 6), " log_prob ", Dec(lp), note);
            }
            Err(e) => {
                flagged += 1;
                say!("reading ", i, " ", List(&x, 6), " not scored (", e, ")  <- anomaly");
            }
        }
    }
    say!("flagged ", flagged, " of ", READINGS.len());

    let mut rng = Pcg64::seed_from_u64(SAMPLE_SEED);
    for i in 0..SAMPLES {
        let x = model.unstandardize(&flow.sample::<f32, _>(&mut rng)?);
        say!("sample ", i, " ", List(&x, EXACT));
    }
    Ok(())
}
