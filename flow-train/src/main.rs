//! `flow-train` command line (to come: `fit`, `eval`, `sample`, `plot`). The engine is the
//! library; `cargo bench -p flow-train --bench tutorial` runs Pyro's tutorial configurations.

fn main() {
    eprintln!(
        "flow-train {}: the command line is not written yet; the training engine is the \
         flow_train library (see `cargo doc -p flow-train`).",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
