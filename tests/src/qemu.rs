//! Running the device crates' ELFs under QEMU, each run under `timeout`.
//!
//! QEMU missing is a failure, not a skip: `scripts/test-all.sh` installs it
//! (`qemu-system-arm`, and `qemu-system-riscv32` from `qemu-system-misc`).

use crate::firmware::{example_dir, Board, RV32IMAC};
use std::path::Path;
use std::process::{Command, Stdio};

/// Wall-clock limit of one QEMU run, in seconds (a run takes a few seconds at most).
pub const TIMEOUT_S: &str = "120";

/// Fails, saying how to install it, unless `qemu --version` runs.
pub fn require(qemu: &str) {
    let ok = Command::new(qemu)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success());
    let package = match qemu {
        "qemu-system-arm" => "qemu-system-arm",
        _ => "qemu-system-misc",
    };
    assert!(
        ok,
        "{qemu} is not installed or does not run; the device tests need it \
         (scripts/test-all.sh installs it: apt-get install {package})"
    );
}

/// A QEMU machine to run the harness on.
#[derive(Clone, Copy)]
pub struct Machine {
    /// `-machine`.
    pub name: &'static str,
    /// `-cpu`, if not the machine's default.
    pub cpu: Option<&'static str>,
}

impl Machine {
    const fn new(name: &'static str, cpu: Option<&'static str>) -> Self {
        Machine { name, cpu }
    }
}

/// The MPS2 AN386 (Cortex-M4F).
pub const MPS2_AN386: Machine = Machine::new("mps2-an386", Some("cortex-m4"));
/// The Stellaris LM3S6965 evaluation board (Cortex-M3).
pub const LM3S6965EVB: Machine = Machine::new("lm3s6965evb", None);
/// The MPS2 AN385 (Cortex-M3).
pub const MPS2_AN385: Machine = Machine::new("mps2-an385", None);
/// The BBC micro:bit (Cortex-M0).
pub const MICROBIT: Machine = Machine::new("microbit", None);
/// The HiFive1's FE310 (RISC-V): the harness prints on UART0 (`run_uart`).
pub const SIFIVE_E: Machine = Machine::new("sifive_e", None);

/// A run's exit status and output.
pub struct Run {
    /// The exit status (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the harness's `elf` on `machine` under `timeout`, with instruction counting
/// (`-icount shift=0`): semihosting on the Cortex-M machines, the UART on `SIFIVE_E`. A
/// timeout fails.
pub fn run(machine: Machine, elf: &Path) -> Run {
    if machine.name == SIFIVE_E.name {
        return run_uart(machine, elf);
    }
    require("qemu-system-arm");
    let mut cmd = Command::new("timeout");
    cmd.args([
        "--kill-after=5",
        TIMEOUT_S,
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
        "QEMU ({}) timed out after {TIMEOUT_S} s on {}; output:\n{}",
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
fn run_uart(machine: Machine, elf: &Path) -> Run {
    use std::io::BufRead;
    require("qemu-system-riscv32");
    let mut child = Command::new("timeout")
        .args(["--kill-after=5", TIMEOUT_S, "qemu-system-riscv32"])
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
        "QEMU ({}) timed out after {TIMEOUT_S} s on {}; output:\n{stdout}",
        machine.name,
        elf.display()
    );
    Run {
        code,
        stdout,
        stderr: String::new(),
    }
}

/// Runs the example's `elf` on `board` with the example's own runner, `qemu-run.sh` (QEMU
/// without semihosting on the UART boards; the run ends at `done` or an `error` line), its
/// timeout `TIMEOUT_S`.
pub fn run_example(board: Board, elf: &Path) -> Run {
    require(if board.target == RV32IMAC {
        "qemu-system-riscv32"
    } else {
        "qemu-system-arm"
    });
    let out = Command::new(example_dir().join("qemu-run.sh"))
        .arg(board.name)
        .arg(elf)
        .env("QEMU_TIMEOUT", TIMEOUT_S)
        .stdin(Stdio::null())
        .output()
        .expect("run qemu-run.sh");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
