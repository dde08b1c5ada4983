//! The windowed workload, for a windowed model (`cfg(flow_window)`, `flow-train fit --window
//! W`): the readings below pushed one by one into flow-core's `WindowScorer`, which prints the
//! log-density of each full window; and what one new reading costs. Shared with the host test
//! (`tests/tests/stream.rs` compiles this file too), which scores the same readings with the
//! same model on the host and compares every printed value, bit for bit.

use flow_core::stream::WindowScorer;
use flow_core::{Error, JointFlow};

/// Rows 800 to 823 of `data/imu/imu_train.csv` (the first 24 readings of a recording of
/// walking), in the file's units: what the IMU models are trained on. A model of `d` values
/// a reading takes value `j` from column `j % 6`. (The file's text: more digits than an `f32`
/// holds, each rounds to the `f32` the trainer reads.)
#[allow(clippy::excessive_precision)]
#[rustfmt::skip]
pub const READINGS: [[f32; 6]; 24] = [
    [-0.3578165544, 0.1119977346, 0.5183636099, -1.463620695, 2.20192281, -0.7821989713],
    [-0.3578165544, 0.1119977346, 0.5183636099, -1.463620695, 2.20192281, -0.7821989713],
    [-0.6134216056, -1.141905389, 1.280795322, 0.03801307629, -0.7562725518, 0.1088340405],
    [-0.2192482511, -1.406042126, 0.1922452326, 0.7651970789, -0.5466368437, 0.5168071183],
    [-0.002211022248, -0.4937926277, 0.2036996533, 0.8524591592, -0.7795650843, 1.084965051],
    [1.050848983, 0.03305714885, 0.3359839571, 0.2561689596, -2.712874438, 1.555511292],
    [0.6389342357, 1.08091848, -0.06454187279, 0.4779588859, -0.9115570738, 1.465406313],
    [0.6389342357, 1.08091848, -0.06454187279, 0.4779588859, -0.9115570738, 1.465406313],
    [2.067308795, 1.897899959, 1.653761922, -0.1765060338, 1.448786901, -0.008801814993],
    [2.067308795, 1.897899959, 1.653761922, -0.1765060338, 1.448786901, -0.008801814993],
    [-0.08083831358, 1.471313435, 1.601679544, 0.1434549273, 2.582372366, -0.9248640921],
    [0.319031786, 1.063500529, 1.371871604, -0.1001515429, 1.448786901, -1.412929127],
    [0.2338221397, -0.4615131512, 0.9003150372, 0.07800802579, 1.518664499, -2.138770304],
    [-0.1453577781, -1.541264634, 0.8513674751, -0.1910490313, 0.6801216667, -1.833416838],
    [-1.146977211, -2.134756043, -0.2666177975, -0.5255529899, 0.05121454235, -0.5193935649],
    [1.502254321, -2.036057054, -0.8964529587, -0.1110591323, -0.9659082599, 0.3966677724],
    [-0.4395058794, -0.7171786051, -1.111496408, 0.8670021567, -1.773395354, 1.785777902],
    [2.467923833, 0.5663373303, -0.7004652418, 1.917782528, -2.86815896, 2.434028731],
    [2.429299388, 1.568837894, -0.7503335018, 1.637816517, -1.276480219, 1.981004104],
    [1.113086742, 2.211272671, -0.6014618245, 0.1725422874, -0.2050091461, 1.743227963],
    [0.8072531908, 2.664372167, 0.3595111224, -0.4601074535, 0.3229646423, 0.6394490147],
    [3.926408242, 2.587592945, 0.6262987849, 0.0961877965, 1.293499464, -1.05251203],
    [0.8411682437, 0.9552770327, 0.4383221276, 0.0671004364, 1.169270681, -2.156290977],
    [1.042158328, 0.3911041882, 0.7579079925, 0.2452613703, 0.5481296772, -2.058677406],
];

/// Reading `t` of [`READINGS`] with `R` values (wrapping around after the last).
pub fn reading<const R: usize>(t: usize) -> [f32; R] {
    let row = &READINGS[t % READINGS.len()];
    core::array::from_fn(|j| row[j % row.len()])
}

/// Pushes [`READINGS`] in order into `scorer` (reset first) and hands each result to `f`:
/// `None` until the window is full, then the window's log-density in raw units.
pub fn score<const D: usize, const N: usize, const L: usize, const H: usize, const K: usize>(
    scorer: &mut WindowScorer<D, N>,
    flow: &JointFlow<'_, D, L, H, K>,
    mut f: impl FnMut(usize, Result<Option<f32>, Error>),
) {
    scorer.reset();
    for t in 0..READINGS.len() {
        f(t, scorer.push(flow, &reading::<D>(t)[..D / 2]));
    }
}
