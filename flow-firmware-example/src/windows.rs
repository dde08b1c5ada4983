//! Stream mode, for a windowed model (`flow-train fit --window W`): each new reading is scored
//! by the log-density of the window of the last `W` readings of its recording, and flagged when
//! that is below the model's stored threshold.
//!
//! flow-core's `WindowScorer` keeps what the next windows need in two fixed rings of `W - 1`
//! terms, so a new reading costs one evaluation of the joint flow on the pair (previous
//! reading, new reading), however long the window. Its numbers are those of `flow-train eval`
//! bit for bit (the trainer scores through the same type).

use crate::decimal::{Dec, List};
use crate::inputs::QUANTILE;
use crate::{say, Flow, D, W};
use flow_core::stream::WindowScorer;
use flow_core::{Error, Model};

// `RECORDINGS`: the readings, by recording, written by build.rs (stand-ins for a sensor's).
include!(concat!(env!("OUT_DIR"), "/readings.rs"));

pub fn run(model: &Model<'_>, flow: &Flow) -> Result<(), Error> {
    // A windowed model stores the thresholds of whole windows, in raw units.
    let threshold = model.threshold(QUANTILE);
    match threshold {
        Some(t) => {
            say!("threshold window_log_prob ", Dec(t), " (1 % of the validation windows lie below)")
        }
        None => say!("threshold none stored: nothing is flagged"),
    }
    // Rings of `W - 1` terms, and room for a pair of readings (`D` values).
    let mut scorer = WindowScorer::<D, { W - 1 }>::new(model)?;
    let (mut i, mut scored, mut flagged) = (0usize, 0usize, 0usize);
    for (r, recording) in RECORDINGS.iter().enumerate() {
        // A window never spans two recordings.
        scorer.reset();
        say!("recording ", r, ": ", recording.len(), " readings");
        for x in recording.iter() {
            match scorer.push(flow, x) {
                Ok(None) => say!("reading ", i, " ", List(x, 6), " window not full"),
                Ok(Some(lp)) => {
                    let unusual = threshold.is_some_and(|t| lp < t);
                    scored += 1;
                    flagged += usize::from(unusual);
                    let note = if unusual { "  <- anomaly" } else { "" };
                    say!("reading ", i, " ", List(x, 6), " window_log_prob ", Dec(lp), note);
                }
                // (The scorer starts over after an error.)
                Err(e) => say!("reading ", i, " ", List(x, 6), " not scored (", e, ")"),
            }
            i += 1;
        }
    }
    say!("flagged ", flagged, " of ", scored, " windows");
    Ok(())
}
