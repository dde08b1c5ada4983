#!/usr/bin/env bash
# Runs every check of the project. Installs what a fresh machine lacks first.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- set-up: cross targets and QEMU ---------------------------------------------------------
rustup target add thumbv7em-none-eabihf thumbv7m-none-eabi thumbv6m-none-eabi >/dev/null
if ! command -v qemu-system-arm >/dev/null 2>&1; then
    echo "installing qemu-system-arm"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-system-arm >/dev/null
fi

# --- style and lints ------------------------------------------------------------------------
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

# --- flow-core builds for the devices -------------------------------------------------------
cargo build -p flow-core --release --target thumbv7em-none-eabihf
cargo build -p flow-core --release --target thumbv6m-none-eabi

# --- every test -----------------------------------------------------------------------------
cargo test --workspace --release
