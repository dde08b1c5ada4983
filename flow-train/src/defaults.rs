//! The choices `fit` makes when the user makes none: architecture and training settings from
//! the data, a size preset and a parameter budget.

use crate::{default_config, Dataset, ModelSpec, TrainConfig, TrainError};

/// Model size presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// A few hundred to ~2,000 parameters: the smallest microcontrollers.
    Tiny,
    /// Up to ~5,000 parameters.
    Small,
    /// Up to ~20,000 parameters.
    Medium,
}

impl Preset {
    /// The parameter budget the preset aims at.
    pub fn budget(self) -> usize {
        match self {
            Preset::Tiny => 2_000,
            Preset::Small => 5_000,
            Preset::Medium => 20_000,
        }
    }
}

/// What the user asked for; `None` leaves the choice to [`auto_config`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AutoOptions {
    /// Size preset.
    pub preset: Option<Preset>,
    /// Hard upper bound on the number of parameters.
    pub max_params: Option<usize>,
}

/// Architecture and training settings for `data`.
///
/// Fails when no architecture fits `max_params`.
pub fn auto_config(
    data: &Dataset,
    opts: &AutoOptions,
) -> Result<(ModelSpec, TrainConfig), TrainError> {
    let (spec, cfg) = default_config(data);
    let budget = opts
        .max_params
        .or(opts.preset.map(Preset::budget))
        .unwrap_or(usize::MAX);
    if spec.param_count() > budget {
        return Err(TrainError::Spec(format!(
            "the default model has {} parameters, over the budget of {budget}",
            spec.param_count()
        )));
    }
    Ok((spec, cfg))
}
