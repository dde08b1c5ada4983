//! `export-c`: a model file as a C header, for C firmware linking flow-capi (`flow.h`).
//!
//! The header holds the model file's bytes as `static const uint8_t NAME[]`, aligned to 4 bytes
//! (flow-core reads the parameters in place as `f32`), its length `NAME_LEN` (the macro in
//! upper case), and the sealed knot tables of its fixed-parameter splines as `NAME_tables[]`
//! and `NAME_TABLES_LEN` (for `flow_model_set_tables`, computed here with flow-core's own
//! `f32` code as the Rust firmware's build does); a comment describes the model: kind,
//! dimensions, layers, columns, scaler, thresholds.

use super::files::write_atomic;
use super::{info, read_model, ExportCArgs};
use anyhow::{anyhow, bail, Result};
use flow_core::model::FlowKind;
use flow_core::{Layer, Model};
use std::fmt::Write as _;

/// Whether `s` is a C identifier.
fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f == '_' || f.is_ascii_alphabetic())
        && c.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
}

/// The sealed knot tables of the model's fixed-parameter splines: the tables, then their seal
/// for the model file (`flow_core::flow::table_seal`), as `flow_model_set_tables` takes them.
pub fn sealed_tables(model: &Model<'_>) -> Result<Vec<u8>, flow_core::Error> {
    let layers = model.layers().collect::<Result<Vec<Layer<'_>>, _>>()?;
    let n: usize = layers.iter().map(Layer::table_len).sum();
    let bins = layers.iter().map(Layer::bins).max().unwrap_or(2).max(2);
    let mut out = vec![0u8; 4 * n];
    let (mut xs, mut ys) = (vec![0f32; bins], vec![0f32; bins]);
    // The buffers are sized for every layer: writing cannot run out of room.
    flow_core::flow::write_tables(&layers, &mut out, &mut xs, &mut ys)
        .ok_or(flow_core::Error::Numerical)?;
    let seal = flow_core::flow::table_seal(model.checksum(), &out);
    out.extend_from_slice(&seal.to_le_bytes());
    Ok(out)
}

/// `bytes` as the lines of a C array initializer, 16 bytes a line.
fn array_body(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.chunks(16) {
        out.push_str("   ");
        for b in chunk {
            let _ = write!(out, " 0x{b:02x},");
        }
        out.push('\n');
    }
}

/// A comment-safe rendering of text from the model file (no `*/`, one line).
fn comment_text(s: &str) -> String {
    s.replace("*/", "* /").replace(['\n', '\r'], " ")
}

/// The header text for the model file `bytes`, named `name`, from `source` (a file name).
pub fn header(bytes: &[u8], name: &str, source: &str) -> Result<String> {
    if !is_identifier(name) {
        bail!("--name {name:?} is not a C identifier (letters, digits and _, not starting with a digit)");
    }
    let model = Model::parse(bytes).map_err(|e| anyhow!("{source}: {e}"))?;
    let tables = sealed_tables(&model).map_err(|e| anyhow!("{source}: {e}"))?;
    let h = model.header();
    let upper = name.to_ascii_uppercase();
    let kind = match h.kind {
        FlowKind::Plain => format!("plain p(x), dim {}", h.dim),
        FlowKind::Conditional => format!(
            "conditional p(x | context), dim {}, context {}",
            h.dim, h.context_dim
        ),
        FlowKind::Joint => format!(
            "joint p(x1) p(x2 | x1), dim {} (x1: the first {})",
            h.dim, h.context_dim
        ),
    };
    let columns = model
        .metadata()
        .columns_str()
        .filter(|c| !c.is_empty())
        .map(|c| comment_text(&c.split('\n').collect::<Vec<_>>().join(", ")))
        .unwrap_or_else(|| "(not stored)".into());
    let scaler = if model.scaler(0).is_some() {
        let d = usize::from(h.dim);
        let (m, s): (Vec<String>, Vec<String>) = (0..d)
            .filter_map(|j| model.scaler(j))
            .map(|(m, s)| (format!("{m}"), format!("{s}")))
            .unzip();
        format!(
            "mean [{}], scale [{}]: flow_log_prob_raw, flow_sample_raw and flow_is_anomaly use it",
            m.join(", "),
            s.join(", ")
        )
    } else {
        "none (raw units are the flow's)".into()
    };
    let thresholds: Vec<String> = model
        .thresholds()
        .map(|(q, lp)| format!("{} per mille: {lp}", q * 1000.0))
        .collect();
    let thresholds = if thresholds.is_empty() {
        "none".into()
    } else {
        thresholds.join(", ")
    };

    let mut o = String::new();
    let _ = write!(
        o,
        "/*\n * {name}: a flow-core model for flow.h (flow-capi), written by `flow-train export-c` from\n \
         * {source} ({len} bytes, CRC-32 0x{crc:08x}).\n *\n \
         * kind: {kind}\n * layers: {layers}, parameters: {params}\n * columns: {columns}\n \
         * scaler: {scaler}\n * thresholds (log p, flow space): {thresholds}\n *\n \
         * Load with flow_model_init(&m, {name}, {upper}_LEN); optionally\n \
         * flow_model_set_tables(&m, {name}_tables, {upper}_TABLES_LEN) (same results, faster).\n \
         * Include this header in one .c file (the arrays are static).\n */\n\
         #ifndef {upper}_H\n#define {upper}_H\n\n#include <stdint.h>\n\n\
         #if defined(__GNUC__) || defined(__clang__)\n\
         #define {upper}_ALIGN4 __attribute__((aligned(4)))\n\
         #else\n#error \"{name}: align the arrays below to 4 bytes for this compiler\"\n#endif\n\n\
         /** Bytes of the model file. */\n#define {upper}_LEN {len}u\n\n\
         /** The model file, 4-byte aligned (flow_model_init reads it in place). */\n\
         static const uint8_t {name}[{upper}_LEN] {upper}_ALIGN4 = {{\n",
        len = bytes.len(),
        crc = model.checksum(),
        layers = h.layers,
        params = model.param_count(),
    );
    array_body(&mut o, bytes);
    let _ = write!(
        o,
        "}};\n\n/** Bytes of the sealed knot tables. */\n#define {upper}_TABLES_LEN {}u\n\n\
         /** The knot tables of the model's fixed-parameter splines, sealed for this model file\n \
         * (flow_model_set_tables). */\n\
         static const uint8_t {name}_tables[{upper}_TABLES_LEN] {upper}_ALIGN4 = {{\n",
        tables.len()
    );
    array_body(&mut o, &tables);
    let _ = write!(o, "}};\n\n#endif /* {upper}_H */\n");
    Ok(o)
}

pub fn run(a: &ExportCArgs, quiet: bool) -> Result<()> {
    let bytes = read_model(&a.model)?;
    let source = a
        .model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| a.model.display().to_string());
    let text = header(&bytes, &a.name, &source)?;
    write_atomic(&a.out, text.as_bytes())?;
    info!(
        quiet,
        "wrote {} ({} model bytes as `{}`)",
        a.out.display(),
        bytes.len(),
        a.name
    );
    Ok(())
}
