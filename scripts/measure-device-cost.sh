#!/bin/sh
# Re-measures the device cost table (docs/device-cost.md) and re-fits the cost model's
# coefficients (flow-train/src/cost.rs): builds the measurement harness (flow-device-bench) for each model of
# tests/tests/cost_model.rs (`measure_cost_table`), runs it in QEMU mps2-an386 with
# -icount shift=0, writes the table to $1 (default device-cost.tsv) and fits it.
# About half a minute per model on a 2-core machine. Needs qemu-system-arm and the
# thumbv7em-none-eabihf target (scripts/test-all.sh installs both).
set -eu
out=$(realpath -m "${1:-device-cost.tsv}")
cd "$(dirname "$0")/.."
COST_TABLE="$out" cargo test --release -p flow-tests --test cost_model -- \
    --ignored measure_cost_table --nocapture
python3 scripts/fit-cost-model.py "$out"
