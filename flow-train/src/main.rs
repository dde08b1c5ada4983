//! `flow-train`: fit, score, sample, inspect and plot flow-core models; import Pyro-trained
//! flows. `flow-train --help` and `flow-train <command> --help` describe every option; the
//! workspace README has examples. The training itself is the `flow_train` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
