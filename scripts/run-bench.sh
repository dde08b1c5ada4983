#!/usr/bin/env bash
# Builds the measurement and parity harness (flow-device-bench) and runs it under QEMU.
#
#   scripts/run-bench.sh [m4f|m3|m0|all] [flow-device-bench|template|fault]
#
#   m4f: thumbv7em-none-eabihf on mps2-an386 (Cortex-M4F)
#   m3:  thumbv7m-none-eabi    on lm3s6965evb (Cortex-M3, soft float)
#   m0:  thumbv6m-none-eabi    on microbit    (Cortex-M0, soft float)
#
# FLOW_MODEL=path embeds another model file (default: flow-firmware-example/models/circles_coupling.nflw);
# FLOW_MODEL_UNCHECKED and FLOW_STREAM are passed on too (flow-device-bench/README.md).
# Relative paths are relative to where the script is called. Exits nonzero if any run fails
# (load error, fault, panic or timeout). See flow-device-bench/README.md for what is printed.
set -euo pipefail
cd "$(dirname "$0")/.."

which=${1:-all}
bin=${2:-flow-device-bench}
for var in FLOW_MODEL FLOW_MODEL_UNCHECKED FLOW_STREAM; do
    if [ -n "${!var:-}" ]; then
        export "$var=$(realpath "${!var}")"
    fi
done
# RUSTFLAGS would replace the firmware's link flags from its .cargo/config.toml.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_TARGET

run() {
    local target=$1
    shift
    echo "== $bin, $target on $*" >&2
    (cd flow-device-bench && cargo build --release --target "$target" --bin "$bin" --target-dir target)
    timeout --kill-after=5 120 qemu-system-arm "$@" -nographic \
        -semihosting-config enable=on,target=native -icount shift=0 \
        -kernel "flow-device-bench/target/$target/release/$bin" </dev/null
}

status=0
case $which in
m4f | all) run thumbv7em-none-eabihf -machine mps2-an386 -cpu cortex-m4 || status=$? ;;&
m3 | all) run thumbv7m-none-eabi -machine lm3s6965evb || status=$? ;;&
m0 | all) run thumbv6m-none-eabi -machine microbit || status=$? ;;&
m4f | m3 | m0 | all) ;;
*)
    echo "usage: $0 [m4f|m3|m0|all] [flow-device-bench|template|fault]" >&2
    exit 2
    ;;
esac
exit $status
