#!/usr/bin/env bash
# The conformance matrix on every device at once (`anygrad check --quick`):
# each device against the fp64 reference and against the first device, and the
# MLP trained on each. Fails unless every device the probe lists took part.
# Usage: tests/cross_device.sh BUILD_DIR
set -u
BUILD=${1:-build}
ndev=$("$BUILD/cli/anygrad" devices | grep -cE '^[ *] [0-9]+ ')
out=$("$BUILD/cli/anygrad" check --quick 2>&1)
rc=$?
echo "$out" | tail -n 8
if [ "$rc" -ne 0 ]; then
    echo "FAIL: anygrad check exited $rc"
    exit 1
fi
if ! grep -qE " $ndev devices?: [0-9]+ cases, 0 failed; model agrees" <<<"$out"; then
    echo "FAIL: expected all $ndev devices in the summary"
    exit 1
fi

# The language model's loss curve on every device: `anygrad train --model gpt`
# draws the same batches everywhere (the generator is reseeded per step), so
# the devices differ only by the order of float sums (GEMM tiles, reductions):
# a relative 1e-7 a step that 100 AdamW steps grew to 3e-7 (measured, CPU
# against PoCL and lavapipe). The tolerance, 1e-3 relative, leaves three orders
# of magnitude for other hardware, while a wrong kernel (a mask off by one, a
# missed scale) moves the loss by 1e-2 or more within the first steps.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gpt=(train --model gpt --text /usr/share/common-licenses/GPL-3 --blocks 1 --heads 2 --width 32
     --context 32 --batch 8 --lr 1e-2 --warmup 5 --eval-every 100 --eval-batches 3 --steps 100
     --log-every 10)
# BACKEND:INDEX of every listed device
devs=$("$BUILD/cli/anygrad" devices | sed -nE 's/^[ *] [0-9]+ +([a-z]+) .*/\1/p' | awk '{ print $1 ":" n[$1]++ }')
first=""
for d in $devs; do
    if ! "$BUILD/cli/anygrad" "${gpt[@]}" --device "$d" --log "$tmp/${d/:/_}.csv" >"$tmp/${d/:/_}.out" 2>&1; then
        echo "FAIL: gpt on device $d:"
        tail -n 3 "$tmp/${d/:/_}.out"
        exit 1
    fi
    [ -z "$first" ] && first=$d && continue
    worst=$(paste -d, "$tmp/${first/:/_}.csv" "$tmp/${d/:/_}.csv" |
        awk -F, 'NR > 1 { d = ($3 - $13) / $3; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.2g", m + 0 }')
    if awk -v w="$worst" 'BEGIN { exit !(w <= 1e-3) }'; then
        echo "ok: gpt loss curve, device $d against device $first: 100 steps, largest relative difference $worst"
    else
        echo "FAIL: gpt loss curve, device $d against device $first: relative difference $worst (tolerance 1e-3)"
        exit 1
    fi
done
