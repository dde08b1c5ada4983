//! Building the harness for a model and a target, once per label and test run.

use flow_tests::firmware::{self, Embed};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use crate::models::*;

/// The builds so far, by label: each label is built once per test run.
static BUILT: Mutex<BTreeMap<String, Vec<PathBuf>>> = Mutex::new(BTreeMap::new());

/// The harness's cargo build for `target` with `embed`'s variables, in the test's own target
/// directory (`<target dir>/tmp/firmware/target`, so parallel runs with different target
/// directories do not meet).
pub(crate) fn cargo(target: &str, embed: &Embed) -> Command {
    firmware::harness_cargo(target, embed, &work_dir().join("target"))
}

/// Builds `bins` of the harness for `target` embedding `embed` (extra cargo arguments
/// `extra`), and copies them to `work_dir()/<label>/<bin>.elf`; once per label and test run.
pub(crate) fn build(
    target: &str,
    embed: &Embed,
    label: &str,
    bins: &[&str],
    extra: &[&str],
) -> Vec<PathBuf> {
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = built.get(label) {
        return b.clone();
    }
    let elfs = firmware::build_harness(
        target,
        embed,
        bins,
        extra,
        &work_dir().join("target"),
        &work_dir().join(label),
    )
    .unwrap_or_else(|stderr| {
        panic!("building the firmware ({label}) for {target} failed:\n{stderr}")
    });
    built.insert(label.to_string(), elfs.clone());
    elfs
}
