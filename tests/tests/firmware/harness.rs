//! Building the firmware for a model and a target, and running it under QEMU.

use crate::geometry;
use flow_core::Model;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::models::*;

// --- building and running the firmware -----------------------------------------------------

/// What a firmware build embeds.
#[derive(Clone, Default)]
pub(crate) struct Embed {
    /// `FLOW_MODEL`.
    pub(crate) model: PathBuf,
    /// `FLOW_MODEL_UNCHECKED`.
    pub(crate) unchecked: Option<PathBuf>,
    /// `FLOW_STREAM`.
    pub(crate) stream: Option<PathBuf>,
}

/// The firmware's cargo command for `target` with `embed`'s variables, in the test's own
/// target directory (`<target dir>/tmp/firmware/target`, so parallel runs with different
/// target directories do not meet).
pub(crate) fn cargo(target: &str, embed: &Embed) -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(firmware_dir())
        .args(["build", "--release", "--target", target])
        .arg("--target-dir")
        .arg(work_dir().join("target"))
        .env("FLOW_MODEL", &embed.model)
        // The firmware's link flags come from its .cargo/config.toml, which RUSTFLAGS would
        // replace; the host's target directory and target must not leak in either.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .stdin(Stdio::null());
    // Exactly the layer kinds the model needs (a model that does not parse fails in build.rs).
    if let Ok(bytes) = std::fs::read(&embed.model) {
        if let Ok(features) = Model::parse(&bytes).and_then(|m| geometry::features(&m)) {
            cmd.args(["--no-default-features", "--features", &features.join(",")]);
        }
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

/// Builds are serialized: they share the firmware's target directory, and a concurrent build
/// with another model would overwrite the binaries. Each label is built once per test run.
pub(crate) static BUILDS: Mutex<BTreeMap<String, Vec<PathBuf>>> = Mutex::new(BTreeMap::new());

/// Builds `bins` of the firmware for `target` embedding `embed` (extra cargo arguments
/// `extra`), and copies them to `work_dir()/<label>/<bin>.elf`; once per label and test run.
pub(crate) fn build(
    target: &str,
    embed: &Embed,
    label: &str,
    bins: &[&str],
    extra: &[&str],
) -> Vec<PathBuf> {
    let mut builds = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(b) = builds.get(label) {
        return b.clone();
    }
    let mut cmd = cargo(target, embed);
    for b in bins {
        cmd.args(["--bin", b]);
    }
    let out = cmd
        .args(extra)
        .output()
        .expect("run cargo to build the firmware");
    assert!(
        out.status.success(),
        "building the firmware ({label}) for {target} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dest = work_dir().join(label);
    std::fs::create_dir_all(&dest).expect("create build output dir");
    let elfs: Vec<PathBuf> = bins
        .iter()
        .map(|bin| {
            let from = work_dir()
                .join("target")
                .join(target)
                .join("release")
                .join(bin);
            let to = dest.join(format!("{bin}.elf"));
            std::fs::copy(&from, &to)
                .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
            to
        })
        .collect();
    builds.insert(label.to_string(), elfs.clone());
    elfs
}

pub(crate) fn require_qemu() {
    let ok = Command::new("qemu-system-arm")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "qemu-system-arm is not installed or does not run; the firmware tests need it \
         (scripts/test-all.sh installs it: apt-get install qemu-system-arm)"
    );
}

/// A QEMU machine to run a target's firmware on.
#[derive(Clone, Copy)]
pub(crate) struct Machine {
    pub(crate) name: &'static str,
    pub(crate) cpu: Option<&'static str>,
}

pub(crate) const MPS2_AN386: Machine = Machine {
    name: "mps2-an386",
    cpu: Some("cortex-m4"),
};
pub(crate) const LM3S6965EVB: Machine = Machine {
    name: "lm3s6965evb",
    cpu: None,
};
pub(crate) const MPS2_AN385: Machine = Machine {
    name: "mps2-an385",
    cpu: None,
};
pub(crate) const MICROBIT: Machine = Machine {
    name: "microbit",
    cpu: None,
};
/// The HiFive1's FE310 (RISC-V): the harness prints on UART0 (`qemu_uart`).
pub(crate) const SIFIVE_E: Machine = Machine {
    name: "sifive_e",
    cpu: None,
};

pub(crate) const M4F: &str = "thumbv7em-none-eabihf";
pub(crate) const M3: &str = "thumbv7m-none-eabi";
pub(crate) const M0: &str = "thumbv6m-none-eabi";
pub(crate) const RV32IMAC: &str = "riscv32imac-unknown-none-elf";
pub(crate) const RV32IMC: &str = "riscv32imc-unknown-none-elf";

pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `elf` on `machine` under `timeout`, with instruction counting (`-icount shift=0`).
pub(crate) fn qemu(machine: Machine, elf: &Path) -> Run {
    if machine.name == SIFIVE_E.name {
        return qemu_uart(machine, elf);
    }
    require_qemu();
    let mut cmd = Command::new("timeout");
    cmd.args([
        "--kill-after=5",
        QEMU_TIMEOUT_S,
        "qemu-system-arm",
        "-machine",
        machine.name,
    ]);
    if let Some(cpu) = machine.cpu {
        cmd.args(["-cpu", cpu]);
    }
    cmd.args([
        "-nographic",
        "-semihosting-config",
        "enable=on,target=native",
        "-icount",
        "shift=0",
        "-kernel",
    ])
    .arg(elf);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run timeout qemu-system-arm");
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_ne!(
        run.code,
        Some(124),
        "QEMU ({}) timed out after {QEMU_TIMEOUT_S} s on {}; output:\n{}",
        machine.name,
        elf.display(),
        run.stdout
    );
    run
}

/// Runs the RISC-V harness `elf` on `machine` (`qemu-system-riscv32`, `-icount shift=0`, no
/// semihosting) and reads its UART: QEMU does not exit by itself, so the run is ended at `done`
/// (status 0) or a `load-error`, `trap` or `panic` line (status 1); QEMU stopping before
/// either gives its own status (124 on the timeout, a failure).
pub(crate) fn qemu_uart(machine: Machine, elf: &Path) -> Run {
    use std::io::BufRead;
    let ok = Command::new("qemu-system-riscv32")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "qemu-system-riscv32 is not installed; scripts/test-all.sh installs it (qemu-system-misc)"
    );
    let mut child = Command::new("timeout")
        .args(["--kill-after=5", QEMU_TIMEOUT_S, "qemu-system-riscv32"])
        .args([
            "-machine",
            machine.name,
            "-display",
            "none",
            "-monitor",
            "none",
        ])
        .args(["-serial", "stdio", "-icount", "shift=0", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run timeout qemu-system-riscv32");
    let lines = std::io::BufReader::new(child.stdout.take().expect("QEMU's stdout")).lines();
    let (mut stdout, mut code) = (String::new(), None);
    for line in lines {
        let line = line.expect("read QEMU's output");
        stdout.push_str(&line);
        stdout.push('\n');
        match line.split_whitespace().next() {
            Some("done") => code = Some(0),
            Some("load-error" | "trap" | "panic") => code = Some(1),
            _ => continue,
        }
        break;
    }
    if code.is_some() {
        // SIGTERM to `timeout`, which passes it on to QEMU.
        let _ = Command::new("kill").arg(child.id().to_string()).status();
    }
    let status = child.wait().expect("wait for QEMU");
    let code = code.or(status.code());
    assert_ne!(
        code,
        Some(124),
        "QEMU ({}) timed out after {QEMU_TIMEOUT_S} s on {}; output:\n{stdout}",
        machine.name,
        elf.display()
    );
    Run {
        code,
        stdout,
        stderr: String::new(),
    }
}
