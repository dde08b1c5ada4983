#!/usr/bin/env bash
# Builds the example (flow-firmware-example) for a board with a model embedded, and runs it in
# QEMU.
#
#   scripts/run-firmware.sh BOARD [MODEL]
#
#   BOARD: mps2-an386 (Cortex-M4F, semihosting), netduinoplus2 (STM32F405, USART1),
#          microbit (nRF51822, UART0), hifive1 (FE310 RISC-V, UART0)
#   MODEL: a model file (default: the example's models/circles_coupling.nflw), relative to
#          where the script is called; `flow-train fit`'s output runs as it is.
#
# The model is checked when the example is built: one that does not load fails the build with
# the loader's error; the layer kinds it needs beyond the default features (build.rs names
# them) are added. A windowed model (`flow-train fit --window W`) builds the stream mode. The run ends at the example's `done` (exit 0) or an `error` line, a fault
# or a panic (exit 1), or after 60 s (exit 124): see flow-firmware-example/qemu-run.sh.
# The measurement harness has its own script, scripts/run-bench.sh.
set -euo pipefail

usage() {
    echo "usage: $0 mps2-an386|netduinoplus2|microbit|hifive1 [MODEL]" >&2
    exit 2
}
board=${1:-}
case $board in
mps2-an386 | netduinoplus2 | microbit | hifive1) ;;
*) usage ;;
esac
if [ -n "${2:-}" ]; then
    FLOW_MODEL=$(realpath "$2")
    export FLOW_MODEL
else
    unset FLOW_MODEL
fi
unset FLOW_MODEL_UNCHECKED RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET
cd "$(dirname "$0")/../flow-firmware-example"
features=$board
if ! out=$(cargo build --quiet --release --features "$features" --config "boards/$board.toml" 2>&1); then
    extra=$(printf '%s\n' "$out" | sed -n 's/.*add `--features \([a-z,-]*\)`.*/\1/p' | head -n 1)
    if [ -z "$extra" ]; then
        printf '%s\n' "$out" >&2
        exit 1
    fi
    features="$features,$extra"
fi
exec cargo run --quiet --release --features "$features" --config "boards/$board.toml"
