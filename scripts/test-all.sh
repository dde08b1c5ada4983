#!/usr/bin/env bash
# Runs every check of the project. Installs what a fresh machine lacks first.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

# --- set-up: cross targets, QEMU, the fuzzer ------------------------------------------------
step "set-up"
rustup target add thumbv7em-none-eabihf thumbv7m-none-eabi thumbv6m-none-eabi \
    riscv32imac-unknown-none-elf riscv32imc-unknown-none-elf >/dev/null 2>&1
rustup component add rustfmt clippy >/dev/null 2>&1 || true
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
# QEMU for the Cortex-M boards (qemu-system-arm) and the RISC-V one (qemu-system-misc).
qemu_packages=()
command -v qemu-system-arm >/dev/null 2>&1 || qemu_packages+=(qemu-system-arm)
command -v qemu-system-riscv32 >/dev/null 2>&1 || qemu_packages+=(qemu-system-misc)
if [ ${#qemu_packages[@]} -gt 0 ]; then
    echo "installing ${qemu_packages[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${qemu_packages[@]}" >/dev/null
fi
# qemu-x86_64 (user mode) runs the trainer on an emulated CPU without AVX: the test that
# `fit --isa portable` writes the same bytes on every x86-64 machine (flow-train/tests/cli/).
if [ "$(uname -m)" = x86_64 ] && ! command -v qemu-x86_64 >/dev/null 2>&1; then
    echo "installing qemu-user"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-user >/dev/null
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo +nightly install cargo-fuzz --locked --quiet
fi

# --- style and lints ------------------------------------------------------------------------
step "fmt, clippy, doc"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
# The trainer as a library, without the command line's dependencies (clap, plotters, …).
cargo clippy -p flow-train --lib --no-default-features -- -D warnings
if cargo tree -p flow-train --no-default-features -e normal --prefix none | grep -qE '^(clap|plotters|indicatif|csv) '; then
    echo "flow-train --no-default-features still depends on the command line's crates" >&2
    exit 1
fi

# --- flow-core builds for the devices -------------------------------------------------------
step "flow-core for thumbv7em-none-eabihf and thumbv6m-none-eabi"
cargo build -p flow-core --release --target thumbv7em-none-eabihf
cargo build -p flow-core --release --target thumbv6m-none-eabi
cargo build -p flow-core --release --target thumbv7em-none-eabihf --features micromath
# Device builds with layer kinds left out: only the tutorial's coupling, only the element-wise
# spline with both orders, and none at all; and lints for feature sets the defaults never see.
for f in coupling spline,quadratic ""; do
    cargo build -p flow-core --release --target thumbv7em-none-eabihf --no-default-features --features "$f"
done
cargo build -p flow-core --release --target thumbv6m-none-eabi --no-default-features --features coupling
# RISC-V (the HiFive1's rv32imac, and rv32imc without atomics).
for t in riscv32imac-unknown-none-elf riscv32imc-unknown-none-elf; do
    cargo build -p flow-core --release --target "$t"
done
for f in coupling spline,quadratic affine,exp,permute conditional-spline "" alloc; do
    cargo clippy -p flow-core --no-default-features --features "$f" -- -D warnings
done
RUSTDOCFLAGS="-D warnings" cargo doc -p flow-core --no-deps --no-default-features --features coupling --quiet
cargo test -p flow-tests --release --features micromath --test micromath -- --nocapture

# --- the device harness (outside the workspace; its own config, lock file and target dir) ------
# Built for every target and run under QEMU by tests/tests/firmware/ (in "tests" below).
step "device harness: fmt, clippy (five targets, with the no-panic check binary on Cortex-M)"
(
    cd flow-device-bench && cargo fmt --check
    for t in thumbv7em-none-eabihf thumbv7m-none-eabi thumbv6m-none-eabi; do
        cargo clippy --release --bins --features panic-check --target "$t" --target-dir target \
            -- -D warnings
    done
    # Every layer kind compiled in (the default builds only the default model's coupling), and
    # errors as text instead of codes.
    cargo clippy --release --bins --features panic-check,all-layers,error-text --target-dir target \
        -- -D warnings
    # A windowed model: the windowed workload compiled in (src/windows.rs).
    FLOW_MODEL=../flow-firmware-example/models/imu_window8.nflw \
        cargo clippy --release --bins --features all-layers --target-dir target -- -D warnings
    # RISC-V: the flow firmware only (the template, fault and no-panic binaries are Cortex-M's).
    for t in riscv32imac-unknown-none-elf riscv32imc-unknown-none-elf; do
        cargo clippy --release --bin flow-device-bench --target "$t" --target-dir target -- -D warnings
    done
)

# --- the example (outside the workspace too) ----------------------------------------------------
# Its four QEMU boards run in tests/tests/firmware/, which also builds, links and sizes the
# three probe-rs boards (no hardware here).
step "example: fmt, clippy (seven boards)"
(
    cd flow-firmware-example && cargo fmt --check
    for b in mps2-an386 netduinoplus2 microbit hifive1 nrf52840-dk rp-pico nucleo-f401re; do
        cargo clippy --release --features "$b" --config "boards/$b.toml" -- -D warnings
    done
    # Stream mode (a windowed model).
    FLOW_MODEL=models/imu_window8.nflw cargo clippy --release --features mps2-an386,all-layers \
        --config boards/mps2-an386.toml -- -D warnings
)

# --- the C interface (flow-capi): static libraries, header, host C test, C firmware ----------
step "flow-capi: static libraries, committed header, host C test, C firmware"
(
    rustup target add thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imac-unknown-none-elf \
        >/dev/null 2>&1
    if ! command -v arm-none-eabi-gcc >/dev/null 2>&1; then
        echo "installing gcc-arm-none-eabi"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc-arm-none-eabi >/dev/null
    fi
    # libflow_capi.a for the host and the three device targets (default capacities).
    cargo build -p flow-capi --profile capi
    for t in thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imac-unknown-none-elf; do
        cargo build -p flow-capi --profile capi --target "$t"
    done
    # The committed header is the generated one.
    cargo run -q -p flow-capi --example header | diff -u flow-capi/include/flow.h -
    cargo test -p flow-capi --test header
    # The host C test (every kind, every status) and the C firmware under QEMU (host parity,
    # the no-panic link check, instruction counts): tests/tests/capi.rs.
    cargo test -p flow-tests --release --test capi -- --nocapture
)

# --- every test -----------------------------------------------------------------------------
step "tests"
cargo test --workspace --release

# --- the README's first model on a board ---------------------------------------------------------
step "the README's model on the example (hifive1 in QEMU), and the windowed model"
cargo run --release -p flow-train -- fit --data circles --out out/circles.nflw --quiet
scripts/run-firmware.sh hifive1 out/circles.nflw
# Stream mode: the checked-in windowed model on its default readings.
scripts/run-firmware.sh mps2-an386 flow-firmware-example/models/imu_window8.nflw >/dev/null

# --- fuzz smoke runs (under 3 minutes): the model loader, the CSV reader, import-pyro's JSON --
# Each target runs FUZZ_SECONDS (default 60 for the loader, 45 for the others) from its seeds.
fuzz() { # <crate dir> <target> <seconds>
    (
        cd "$1"
        mkdir -p "corpus/$2"
        seeds=seeds
        [ -d "seeds/$2" ] && seeds="seeds/$2"
        cargo +nightly fuzz run "$2" "corpus/$2" "$seeds" -- \
            -max_total_time="$3" -print_final_stats=1 2>&1 | tail -n 6
        test "${PIPESTATUS[0]}" -eq 0
    )
    echo "fuzz $2: no crash"
}
step "fuzz smoke runs"
fuzz flow-core/fuzz model_parse "${FUZZ_SECONDS:-60}"
fuzz flow-train/fuzz csv_read "${FUZZ_SECONDS:-45}"
fuzz flow-train/fuzz import_pyro "${FUZZ_SECONDS:-45}"
