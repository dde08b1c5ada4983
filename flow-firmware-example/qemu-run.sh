#!/usr/bin/env bash
# Runs the example's ELF in QEMU on BOARD, printing its output: the runner of the QEMU
# boards' configs (boards/<board>.toml) and of scripts/run-firmware.sh.
#
#   ./qemu-run.sh BOARD ELF        BOARD: mps2-an386, netduinoplus2, microbit, hifive1
#
# mps2-an386 prints through semihosting and QEMU exits with the example's status. The other
# boards print on their UART with semihosting off (a stray semihosting call faults and ends
# the run with an error): QEMU never exits by itself there, so the run ends here when the
# example prints `done` (status 0) or a line starting with `error` (status 1). Status 1 also
# when QEMU stops before either, 124 after QEMU_TIMEOUT seconds (default 60).
set -uo pipefail
board=${1:?usage: $0 BOARD ELF}
elf=${2:?usage: $0 BOARD ELF}
limit=${QEMU_TIMEOUT:-60}

case $board in
mps2-an386)
    exec timeout --kill-after=5 "$limit" qemu-system-arm -machine mps2-an386 -cpu cortex-m4 \
        -nographic -semihosting-config enable=on,target=native -kernel "$elf" </dev/null
    ;;
netduinoplus2 | microbit) qemu=(qemu-system-arm -machine "$board") ;;
hifive1) qemu=(qemu-system-riscv32 -machine sifive_e) ;;
*)
    echo "$0: unknown board '$board' (mps2-an386, netduinoplus2, microbit, hifive1)" >&2
    exit 2
    ;;
esac

status=1
# QEMU's own messages are shown only when the run fails (ending it here makes QEMU say so).
errors=$(mktemp)
trap 'rm -f "$errors"' EXIT
exec 3< <(exec timeout --kill-after=5 "$limit" "${qemu[@]}" -display none -monitor none \
    -serial stdio -kernel "$elf" </dev/null 2>"$errors")
qemu_pid=$!
while IFS= read -r line <&3; do
    printf '%s\n' "$line"
    case $line in
    done)
        status=0
        break
        ;;
    error*)
        break
        ;;
    esac
done
if kill -0 "$qemu_pid" 2>/dev/null; then
    kill "$qemu_pid" 2>/dev/null
elif [ "$status" -ne 0 ]; then
    wait "$qemu_pid"
    [ $? -eq 124 ] && { echo "$0: no 'done' within $limit s" >&2; status=124; }
fi
[ "$status" -ne 0 ] && cat "$errors" >&2
exit $status
