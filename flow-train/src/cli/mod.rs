//! The command line: argument definitions and dispatch. Each command is its own module.

mod checks;
mod decimal;
mod eval;
mod export_c;
mod figures;
mod files;
mod fit;
mod import;
mod inspect;
mod plot;
mod runtime;
mod sample;
mod score;
mod table;
mod windows;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Train normalizing flows for flow-core, score and sample them, and import Pyro's.
///
/// Model files are flow-core's format (`.nflw`): a device loads them with
/// `flow_core::Model::parse`. Every NLL printed is in nats per row, computed by flow-core's
/// own `f32` code on the stored parameters.
#[derive(Debug, Parser)]
#[command(name = "flow-train", version, propagate_version = true)]
struct Cli {
    /// No progress bar and no informational messages (results and errors are still printed).
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fit a flow to data by maximum likelihood and write a model file.
    Fit(Box<FitArgs>),
    /// Score data with a model: mean NLL (last line `nll <value>`), per-row log-densities,
    /// anomaly AUROC.
    Eval(EvalArgs),
    /// Draw samples from a model into a CSV file.
    Sample(SampleArgs),
    /// Describe a model file: kind, layers, parameter count, metadata.
    Inspect(InspectArgs),
    /// Draw PNG pictures of a model against data: joint scatter and marginals.
    Plot(PlotArgs),
    /// Convert a Pyro-trained flow (state_dict + description, JSON) into a model file.
    ImportPyro(ImportArgs),
    /// Write a model file as a C header for flow-capi's `flow.h`: the bytes, their length,
    /// the sealed knot tables and a description.
    ExportC(ExportCArgs),
}

/// The architecture `fit` trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FlowArg {
    /// Chosen from the data by `flow_train::defaults::auto_config` (with --preset and
    /// --max-params); a conditional model when --context-columns is given.
    Auto,
    /// Element-wise splines (Pyro's `Spline`); --layers of them (default 1).
    Spline,
    /// Spline couplings (Pyro's `spline_coupling`) with permutations between them; --layers
    /// of them (default 4). Needs at least 2 data columns.
    Coupling,
    /// `p(x | c)` with c the --context-columns: with one data column, --layers conditional
    /// splines (default 1); with more, a conditional spline, then --layers conditional
    /// couplings (default 2).
    Conditional,
    /// Pyro tutorial's `p(x₁)·p(x₂|x₁)`: a spline for the first column, --layers conditional
    /// splines (default 1) for the rest given the first.
    Joint,
}

/// Spline order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    /// Linear-rational (Pyro's default).
    Linear,
    /// Rational-quadratic.
    Quadratic,
}

/// The instruction set of the training loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IsaArg {
    /// The best this CPU has (AVX-512, AVX2 + FMA, or portable): the fastest, but the model's
    /// bytes depend on which one it is.
    Auto,
    /// The compile target's baseline (SSE2 on x86-64), no FMA: the same bytes on every
    /// machine of the architecture.
    Portable,
    /// x86-64 AVX2 + FMA (an error on a CPU without them).
    Avx2,
    /// x86-64 AVX-512 (an error on a CPU without it).
    Avx512,
}

/// Model size presets for `--flow auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// About 2,000 parameters at most.
    Tiny,
    /// About 5,000 parameters at most.
    Small,
    /// About 20,000 parameters at most.
    Medium,
}

/// What `fit --help` says about reproducibility.
const FIT_REPRODUCIBILITY: &str = "\
Reproducibility: the same data, seed and options write the same model file, byte for byte, \
however loaded the machine is: there is no wall-clock limit unless --max-seconds is given. \
What can still change the bytes is the instruction set the training loops run with: --isa \
auto (the default) picks the best this CPU has (AVX-512, AVX2 + FMA, or the portable \
baseline), and each rounds differently; --isa portable writes identical files on every \
x86-64 machine.

Before training, fit warns on stderr about suspicious data (a constant column, a value more \
than 1,000 MADs from its column's median, more than half the rows exact duplicates, fewer rows \
than the model has parameters); --strict makes them errors.

Options marked [default: auto] are set by the automatic configuration, from the data and the \
architecture (--flow auto's, or the explicit one); fit prints on stderr what it chose.";

#[derive(Debug, Args)]
#[command(after_long_help = FIT_REPRODUCIBILITY)]
pub struct FitArgs {
    /// Training data: a CSV file with a header line (`-` for standard input), or the built-in
    /// `circles` or `moons` (scikit-learn's make_circles / make_moons; write `./circles` for a
    /// file of that name).
    #[arg(long, value_name = "CSV|-|circles|moons")]
    pub data: String,
    /// The model file to write (atomically, only after training succeeded).
    #[arg(long, value_name = "MODEL")]
    pub out: PathBuf,
    /// Also draw the pictures of `plot` (data vs flow) into this directory.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,

    /// Architecture.
    #[arg(long, value_enum, default_value_t = FlowArg::Auto, help_heading = "Model")]
    pub flow: FlowArg,
    /// Number of layers of an explicit --flow [default: see --flow, which says what a layer
    /// is; --flow auto chooses].
    #[arg(long, help_heading = "Model")]
    pub layers: Option<usize>,
    /// Spline bins K of an explicit --flow, 2 to 1000 [default: 16; --flow auto chooses].
    #[arg(long, help_heading = "Model")]
    pub bins: Option<usize>,
    /// Spline order of an explicit --flow [default: linear; --flow auto: linear].
    #[arg(long, value_enum, help_heading = "Model")]
    pub order: Option<OrderArg>,
    /// Spline box [-B, B] in the flow's (standardized) space, identity outside; B > 0, for an
    /// explicit --flow [default: 4; --flow auto chooses].
    #[arg(long, allow_negative_numbers = true, help_heading = "Model")]
    pub bound: Option<f32>,
    /// Hidden layer sizes of the hypernetworks of an explicit --flow, comma-separated
    /// [default: 32,32; --flow auto chooses].
    #[arg(long, value_delimiter = ',', num_args = 1.., help_heading = "Model")]
    pub hidden: Option<Vec<usize>>,
    /// Size preset for --flow auto [default: auto: the circles-tuned model for 2-D, small for
    /// 3-D and more; unbounded for conditional models].
    #[arg(long, value_enum, help_heading = "Model")]
    pub preset: Option<PresetArg>,
    /// Upper bound on the number of parameters: --flow auto picks a model within it, an
    /// explicit --flow with more is an error [default: none].
    #[arg(long, value_name = "N", help_heading = "Model")]
    pub max_params: Option<usize>,
    /// Upper bound on the estimated Cortex-M4F instructions per log_prob (the cost model
    /// `inspect` prints, docs/device-cost.md): --flow auto picks the best architecture within it.
    #[arg(long, value_name = "N", help_heading = "Model")]
    pub max_instructions: Option<usize>,
    /// Upper bound on the estimated flash bytes (model file and flow-core code, as `inspect`
    /// prints them): --flow auto picks the best architecture within it.
    #[arg(long, value_name = "N", help_heading = "Model")]
    pub max_flash_bytes: Option<usize>,

    /// Optimizer steps [default: auto].
    #[arg(long, conflicts_with = "epochs", help_heading = "Training")]
    pub steps: Option<usize>,
    /// Passes over the training rows (converted to steps with the batch size) [default: none;
    /// --steps applies].
    #[arg(long, help_heading = "Training")]
    pub epochs: Option<f64>,
    /// Adam's (peak) learning rate [default: auto].
    #[arg(long, help_heading = "Training")]
    pub lr: Option<f32>,
    /// Rows per step; 0 for the full batch [default: auto].
    #[arg(long, help_heading = "Training")]
    pub batch_size: Option<usize>,
    /// Seed of the initialization, the validation split, the shuffles and the built-in data.
    #[arg(long, default_value_t = 0, help_heading = "Training")]
    pub seed: u64,
    /// Fraction of the rows (or of the groups) held out for validation: their NLL is reported
    /// and the anomaly thresholds come from them; up to 2-D the defaults also stop early and
    /// keep the best validated parameters, for 3-D and more they keep the last ones. 0 trains
    /// on every row [default: auto].
    #[arg(long, help_heading = "Training")]
    pub val_fraction: Option<f32>,
    /// Stop after this many validation checks without improvement and keep the best validated
    /// parameters (whatever the defaults keep); 0 never stops early [default: auto].
    #[arg(long, help_heading = "Training")]
    pub patience: Option<usize>,
    /// Wall-time limit of the training loop in seconds: a loaded machine then stops earlier
    /// and writes a different model [default: none].
    #[arg(long, help_heading = "Training")]
    pub max_seconds: Option<f64>,
    /// Instruction set of the training loops; `portable` writes the same bytes on every
    /// machine (see the end of --help).
    #[arg(long, value_enum, default_value_t = IsaArg::Auto, help_heading = "Training")]
    pub isa: IsaArg,
    /// Treat the warnings about suspicious data as errors: exit 1 and write nothing.
    #[arg(long, help_heading = "Training")]
    pub strict: bool,

    /// CSV columns that are the context c of a conditional model p(x | c), comma-separated.
    #[arg(long, value_delimiter = ',', num_args = 1.., help_heading = "Data")]
    pub context_columns: Vec<String>,
    /// Fit a scaler (mean, standard deviation) on the training rows, train on standardized
    /// data and store the scaler in the model, so raw values can be scored (on by default).
    #[arg(long, overrides_with = "no_standardize", help_heading = "Data")]
    pub standardize: bool,
    /// Train on the values as they are (no scaler in the model).
    #[arg(long, help_heading = "Data")]
    pub no_standardize: bool,
    /// A CSV column of group ids (e.g. recordings): the validation split holds out whole
    /// groups. Not a data column.
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "rows_per_group",
        help_heading = "Data"
    )]
    pub group_column: Option<String>,
    /// Consecutive blocks of N rows form the groups of the validation split (with --window:
    /// the recordings).
    #[arg(long, value_name = "N", help_heading = "Data")]
    pub rows_per_group: Option<usize>,
    /// Model windows of W consecutive readings of one recording (rows in time order; say
    /// where recordings end with --rows-per-group or --group-column) instead of single rows:
    /// `p(x_1)·Π p(x_t | x_t-1)`, scored on a device one new reading at a time.
    #[arg(long, value_name = "W", help_heading = "Data")]
    pub window: Option<usize>,
    /// Built-in data: number of points [default: 100000].
    #[arg(long, help_heading = "Data")]
    pub n: Option<usize>,
    /// Built-in data: standard deviation of the Gaussian noise [default: 0.05].
    #[arg(long, help_heading = "Data")]
    pub noise: Option<f64>,
    /// Built-in circles: radius of the inner circle [default: 0.5].
    #[arg(long, help_heading = "Data")]
    pub factor: Option<f64>,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Rows to score (CSV with a header; `-` for standard input). Values are in RAW units:
    /// when the model stores a scaler, it is applied and log-densities are in raw units (see
    /// --standardized).
    #[arg(long, value_name = "CSV")]
    pub data: PathBuf,
    /// Write each row's log-density to this CSV (column `log_prob`; `-` for standard output,
    /// instead of the figures).
    #[arg(long, value_name = "OUT.csv")]
    pub per_row: Option<PathBuf>,
    /// Anomalous rows (`-` for standard input): also print `auroc <value>`, the probability
    /// that a normal row scores higher than an anomalous one (ties count half).
    #[arg(long, value_name = "ANOMALOUS.csv")]
    pub anomalies: Option<PathBuf>,
    /// The CSV columns holding the context of a conditional model [default: the column names
    /// stored in the model].
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub context_columns: Vec<String>,
    /// The values are already in the flow's (standardized) space: do not apply the model's
    /// scaler; log-densities are in that space.
    #[arg(long)]
    pub standardized: bool,
    /// Print the figures as one JSON object on stdout instead of text lines.
    #[arg(long)]
    pub json: bool,
    /// Threads to score with [default: the machine's cores]. The values do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// A windowed model's recordings: consecutive blocks of N rows [default: the rule stored
    /// in the model].
    #[arg(long, value_name = "N", help_heading = "Windowed models")]
    pub rows_per_group: Option<usize>,
    /// A windowed model's recordings: runs of rows with the same text in this column
    /// [default: the rule stored in the model].
    #[arg(
        long,
        value_name = "NAME",
        conflicts_with = "rows_per_group",
        help_heading = "Windowed models"
    )]
    pub group_column: Option<String>,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Number of samples.
    #[arg(short = 'n', long = "n", value_name = "N")]
    pub count: usize,
    /// Seed of the generator (PCG-64).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The CSV file to write (header: the model's column names, or x1, x2, …; `-` for
    /// standard output).
    #[arg(long, value_name = "CSV")]
    pub out: PathBuf,
    /// The context of a conditional model, comma-separated (required for those).
    #[arg(long, value_delimiter = ',', num_args = 1.., allow_negative_numbers = true)]
    pub context: Vec<f32>,
    /// Write the flow's (standardized) values instead of raw units.
    #[arg(long)]
    pub standardized: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Print the figures as one JSON object on stdout instead of text lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExportCArgs {
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// The C header to write (atomically).
    #[arg(long, value_name = "HEADER")]
    pub out: PathBuf,
    /// The C name of the model's array (a C identifier); the macros are in upper case
    /// (`NAME_LEN`, `NAME_TABLES_LEN`).
    #[arg(long, default_value = "flow_model_bytes")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// The model file.
    #[arg(long, value_name = "MODEL")]
    pub model: PathBuf,
    /// Data to compare with (CSV with a header, raw units as for `eval`; `-` for standard
    /// input).
    #[arg(long, value_name = "CSV")]
    pub data: PathBuf,
    /// Directory for the PNG files.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The CSV columns holding the context of a conditional model [default: the stored names].
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub context_columns: Vec<String>,
    /// Seed of the flow samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// torch `state_dict` as JSON: `{"key": {"shape": [...], "values": [...]}, ...}`.
    #[arg(long, value_name = "JSON")]
    pub state_dict: PathBuf,
    /// The flow's description (JSON; see README "Bring a Pyro-trained flow").
    #[arg(long, value_name = "JSON")]
    pub description: PathBuf,
    /// The model file to write (atomically; nothing is written on error).
    #[arg(long, value_name = "MODEL")]
    pub out: PathBuf,
}

/// Parses the arguments, runs the command, prints an error chain on failure.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = cli.quiet;
    let result = match cli.command {
        Command::Fit(a) => fit::run(&a, quiet),
        Command::Eval(a) => eval::run(&a, quiet),
        Command::Sample(a) => sample::run(&a, quiet),
        Command::Inspect(a) => inspect::run(&a),
        Command::Plot(a) => plot::run(&a, quiet),
        Command::ImportPyro(a) => import::run(&a, quiet),
        Command::ExportC(a) => export_c::run(&a, quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reads a model file and parses it with flow-core; a failure names the file and carries
/// flow-core's typed error.
pub fn read_model(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))
}

/// `--data` and `--anomalies` cannot both read standard input.
pub fn one_stdin(paths: &[Option<&std::path::Path>]) -> anyhow::Result<()> {
    if paths.iter().flatten().filter(|p| files::is_std(p)).count() > 1 {
        anyhow::bail!("only one input can be `-` (standard input)");
    }
    Ok(())
}

/// Wraps a flow-core error with the file it concerns, in words (flow-core's `Display`).
pub fn model_error(path: &std::path::Path, e: flow_core::Error) -> anyhow::Error {
    anyhow::anyhow!("{}: {e}", path.display())
}

/// Informational output, on stderr (suppressed by --quiet); results go to stdout.
macro_rules! info {
    ($quiet:expr, $($t:tt)*) => {
        if !$quiet {
            eprintln!($($t)*);
        }
    };
}
pub(crate) use info;

/// What a model reads from a table: data rows, context rows (row-major), the data columns'
/// names and the context columns' names.
pub type Inputs = (Vec<f32>, Vec<f32>, Vec<String>, Vec<String>);

/// The data and context columns of `table` that a model reads (see [`Inputs`]).
///
/// With column names stored in the model, the data columns are found by name (other columns
/// are ignored) and the context columns are `context_columns`, else the stored ones. Without
/// stored names, the context columns are `context_columns` and the data columns all the others,
/// in file order.
pub fn model_inputs(
    rt: &runtime::Runtime<'_>,
    table: &table::Table,
    context_columns: &[String],
) -> anyhow::Result<Inputs> {
    use anyhow::bail;
    let (d, c) = (rt.dim(), rt.context_dim());
    let (stored_d, stored_c) = rt.columns();
    if c == 0 && !context_columns.is_empty() {
        bail!("--context-columns: the model is not conditional (it has no context)");
    }
    let ctx_names: Vec<String> = if !context_columns.is_empty() {
        context_columns.to_vec()
    } else {
        stored_c
    };
    if ctx_names.len() != c {
        bail!(
            "the model is conditional on {c} context value(s): name the context columns with \
             --context-columns (the model stores no names for them)"
        );
    }
    let ctx_idx: Vec<usize> = ctx_names
        .iter()
        .map(|n| table.index(n))
        .collect::<anyhow::Result<_>>()?;
    let data_idx: Vec<usize> = if !stored_d.is_empty() {
        stored_d
            .iter()
            .map(|n| {
                table.index(n).map_err(|e| {
                    e.context(format!(
                        "`{n}` is a data column of the model, by its stored names"
                    ))
                })
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        (0..table.columns.len())
            .filter(|j| !ctx_idx.contains(j))
            .collect()
    };
    if data_idx.len() != d {
        bail!(
            "{}: {} data column(s) ({}), the model has dimension {d}",
            table.source,
            data_idx.len(),
            data_idx
                .iter()
                .map(|&j| table.columns[j].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let names = data_idx.iter().map(|&j| table.columns[j].clone()).collect();
    Ok((
        table.select(&data_idx)?,
        table.select(&ctx_idx)?,
        names,
        ctx_names,
    ))
}
