//! Building the device crates for the device tests: the measurement harness
//! (`flow-device-bench`) and the example (`flow-firmware-example`), for a model file, a target
//! and a board, in a test's own target directory, one build at a time.

use crate::geometry;
use flow_core::Model;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Cortex-M4F (FPU).
pub const M4F: &str = "thumbv7em-none-eabihf";
/// Cortex-M3 (soft float).
pub const M3: &str = "thumbv7m-none-eabi";
/// Cortex-M0 (soft float).
pub const M0: &str = "thumbv6m-none-eabi";
/// RISC-V with atomics (soft float).
pub const RV32IMAC: &str = "riscv32imac-unknown-none-elf";
/// RISC-V without atomics (soft float).
pub const RV32IMC: &str = "riscv32imc-unknown-none-elf";

/// The workspace's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The harness crate.
pub fn harness_dir() -> PathBuf {
    root().join("flow-device-bench")
}

/// The example crate.
pub fn example_dir() -> PathBuf {
    root().join("flow-firmware-example")
}

/// A test's own directory for its inputs, builds and reports, `<tmp>/<name>` (created), with
/// `tmp` the test's `CARGO_TARGET_TMPDIR`.
pub fn work_dir(tmp: &str, name: &str) -> PathBuf {
    let d = Path::new(tmp).join(name);
    std::fs::create_dir_all(&d).expect("create the test's work directory");
    d
}

/// Writes `bytes` to `dir/name` unless the file already holds them (an unchanged file keeps
/// its mtime, so cargo does not rebuild the firmware that embeds it).
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if std::fs::read(&p).ok().as_deref() != Some(bytes) {
        std::fs::write(&p, bytes).expect("write a model or stream file");
    }
    p
}

/// The layer-kind features of flow-core that the model file at `model` needs
/// (`geometry::features`); `None` when it does not parse.
pub fn features(model: &Path) -> Option<Vec<&'static str>> {
    let bytes = std::fs::read(model).ok()?;
    Model::parse(&bytes)
        .and_then(|m| geometry::features(&m))
        .ok()
}

/// A cargo command in `dir` without the host's flags, target and target directory: the
/// firmware's link flags come from its `.cargo/config.toml`, which `RUSTFLAGS` would replace.
pub fn cargo(dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null());
    cmd
}

/// Builds are serialized: they share target directories, and a concurrent build with another
/// model would overwrite the binaries before they are copied.
static BUILDS: Mutex<()> = Mutex::new(());

/// Runs the build `cmd`, one at a time in the test process, and copies each `(from, to)` (the
/// built ELFs, `to`'s directory created); cargo's stderr if the build fails.
pub fn build(mut cmd: Command, copies: &[(PathBuf, PathBuf)]) -> Result<(), String> {
    let _serial = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let out = cmd.output().expect("run cargo to build the firmware");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    for (from, to) in copies {
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).expect("create build output dir");
        }
        std::fs::copy(from, to)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    }
    Ok(())
}

// --- the harness (flow-device-bench) --------------------------------------------------------

/// What a build of the harness embeds.
#[derive(Clone, Default)]
pub struct Embed {
    /// `FLOW_MODEL`.
    pub model: PathBuf,
    /// `FLOW_MODEL_UNCHECKED`.
    pub unchecked: Option<PathBuf>,
    /// `FLOW_STREAM`.
    pub stream: Option<PathBuf>,
}

/// The harness's cargo build for `target` with `embed`'s variables, in `target_dir`, with
/// exactly the layer kinds of `embed.model` (`--no-default-features --features …`; a model
/// that does not parse gets none, and fails in the harness's build.rs).
pub fn harness_cargo(target: &str, embed: &Embed, target_dir: &Path) -> Command {
    let mut cmd = cargo(&harness_dir());
    cmd.args(["build", "--release", "--target", target])
        .arg("--target-dir")
        .arg(target_dir)
        .env("FLOW_MODEL", &embed.model);
    if let Some(features) = features(&embed.model) {
        cmd.args(["--no-default-features", "--features", &features.join(",")]);
    }
    for (var, v) in [
        ("FLOW_MODEL_UNCHECKED", &embed.unchecked),
        ("FLOW_STREAM", &embed.stream),
    ] {
        match v {
            Some(p) => cmd.env(var, p),
            None => cmd.env_remove(var),
        };
    }
    cmd
}

/// Builds `bins` of the harness for `target` embedding `embed` (extra cargo arguments
/// `extra`) in `target_dir`, and copies them to `dest/<bin>.elf`; cargo's stderr if the build
/// fails.
pub fn build_harness(
    target: &str,
    embed: &Embed,
    bins: &[&str],
    extra: &[&str],
    target_dir: &Path,
    dest: &Path,
) -> Result<Vec<PathBuf>, String> {
    let mut cmd = harness_cargo(target, embed, target_dir);
    for b in bins {
        cmd.args(["--bin", b]);
    }
    cmd.args(extra);
    let copies: Vec<(PathBuf, PathBuf)> = bins
        .iter()
        .map(|bin| {
            let from = target_dir.join(target).join("release").join(bin);
            (from, dest.join(format!("{bin}.elf")))
        })
        .collect();
    build(cmd, &copies)?;
    Ok(copies.into_iter().map(|(_, to)| to).collect())
}

// --- the example (flow-firmware-example) ----------------------------------------------------

/// A board of the example: its feature and `boards/<name>.toml`, and its target.
#[derive(Clone, Copy)]
pub struct Board {
    /// Its feature and `boards/<name>.toml`.
    pub name: &'static str,
    /// Its Rust target.
    pub target: &'static str,
}

impl Board {
    const fn new(name: &'static str, target: &'static str) -> Self {
        Board { name, target }
    }

    /// The MPS2 AN386 (Cortex-M4F) in QEMU, output through semihosting.
    pub const MPS2_AN386: Board = Board::new("mps2-an386", M4F);
    /// The Netduino Plus 2 (Cortex-M4F) in QEMU, output on its UART.
    pub const NETDUINOPLUS2: Board = Board::new("netduinoplus2", M4F);
    /// The BBC micro:bit (Cortex-M0) in QEMU, output on its UART.
    pub const MICROBIT: Board = Board::new("microbit", M0);
    /// The HiFive1 (RISC-V) in QEMU, output on its UART.
    pub const HIFIVE1: Board = Board::new("hifive1", RV32IMAC);
}

/// A build of the example for `board` embedding `model`.
#[derive(Clone, Copy)]
pub struct ExampleBuild<'a> {
    /// The board: its feature and `--config boards/<name>.toml`.
    pub board: Board,
    /// `FLOW_MODEL`.
    pub model: &'a Path,
    /// `FLOW_MODEL_UNCHECKED`: these bytes embedded in the model's place, unchecked.
    pub unchecked: Option<&'a Path>,
    /// `FLOW_READINGS` and `FLOW_READINGS_ROWS`; `None`: the example's default readings.
    pub readings: Option<(&'a Path, &'a str)>,
    /// Features added to the default ones and the board's.
    pub features: &'a [&'a str],
}

impl<'a> ExampleBuild<'a> {
    /// The example for `board` with `model`, its default readings and features.
    pub fn new(board: Board, model: &'a Path) -> Self {
        Self {
            board,
            model,
            unchecked: None,
            readings: None,
            features: &[],
        }
    }

    /// Builds it in `target_dir` and copies the ELF to `dest/example.elf`; cargo's stderr if
    /// the build fails.
    pub fn build(&self, target_dir: &Path, dest: &Path) -> Result<PathBuf, String> {
        let board = self.board;
        let mut cmd = cargo(&example_dir());
        cmd.args(["build", "--release", "--features"])
            .arg(
                [board.name]
                    .iter()
                    .chain(self.features)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .arg("--config")
            .arg(format!("boards/{}.toml", board.name))
            .arg("--target-dir")
            .arg(target_dir)
            .env("FLOW_MODEL", self.model);
        match self.unchecked {
            Some(p) => cmd.env("FLOW_MODEL_UNCHECKED", p),
            None => cmd.env_remove("FLOW_MODEL_UNCHECKED"),
        };
        match self.readings {
            Some((csv, rows)) => cmd
                .env("FLOW_READINGS", csv)
                .env("FLOW_READINGS_ROWS", rows),
            None => cmd
                .env_remove("FLOW_READINGS")
                .env_remove("FLOW_READINGS_ROWS"),
        };
        let from = target_dir
            .join(board.target)
            .join("release/flow-firmware-example");
        let to = dest.join("example.elf");
        build(cmd, &[(from, to.clone())])?;
        Ok(to)
    }
}
