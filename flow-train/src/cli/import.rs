//! `import-pyro`: `flow_train::pyro::import` from files, written atomically.

use super::files::write_atomic;
use super::runtime::Runtime;
use super::{info, ImportArgs};
use anyhow::{Context, Result};

pub fn run(a: &ImportArgs, quiet: bool) -> Result<()> {
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let sd = read(&a.state_dict)?;
    let desc = read(&a.description)?;
    let bytes = flow_train::pyro::import(&sd, &desc).with_context(|| {
        format!(
            "importing {} with {}; nothing written",
            a.state_dict.display(),
            a.description.display()
        )
    })?;
    let rt = Runtime::new(&bytes).map_err(|e| anyhow::anyhow!("flow-core rejected: {e}"))?;
    write_atomic(&a.out, &bytes)?;
    info!(
        quiet,
        "wrote {} ({} bytes): {} flow, dim {}, {} layers, {} parameters",
        a.out.display(),
        bytes.len(),
        format!("{:?}", rt.kind()).to_lowercase(),
        rt.dim(),
        rt.model.header().layers,
        rt.model.param_count()
    );
    Ok(())
}
