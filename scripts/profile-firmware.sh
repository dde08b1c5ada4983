#!/usr/bin/env bash
# Instruction profile of a firmware ELF under QEMU: runs it one instruction per translation
# block with QEMU's exec trace and counts executed instructions per function.
# Usage: scripts/profile-firmware.sh ELF [machine] [cpu]   (default mps2-an386, cortex-m4)
set -euo pipefail
elf=$1; machine=${2:-mps2-an386}; cpu=${3:-cortex-m4}
log=$(mktemp); trap 'rm -f "$log"' EXIT
timeout 600 qemu-system-arm -machine "$machine" -cpu "$cpu" -nographic \
    -semihosting-config enable=on,target=native -kernel "$elf" \
    -singlestep -d exec,nochain -D "$log" >/dev/null 2>&1 || true
awk '{c[$NF]++; n++} END {for (k in c) printf "%10d %5.1f%% %s\n", c[k], 100*c[k]/n, k}' "$log" \
    | sort -rn | head -n "${TOP:-30}"
