#!/usr/bin/env bash
# AG_OPENCL_STATS=1 counts what an OpenCL run enqueues and prints it at exit:
# a short MLP training on OpenCL prints one line whose launches outnumber its
# transfers; every download is a host wait, the uploads (a batch each step) are
# not (they are copied and written without waiting); without the variable it
# prints nothing. Prints the launches and waits per training step (9 steps of
# 1152 images vs 18 of 2304: the difference is training alone). Exit 77 without
# an OpenCL device. Usage: tests/ocl_stats.sh BUILD_DIR
set -u
BUILD=${1:-build}
if ! "$BUILD/cli/anygrad" devices 2>/dev/null | grep -qE "^[ *] [0-9]+ +opencl "; then
    echo "ocl_stats: skipped (no OpenCL device)"
    exit 77
fi
run() { # limit [env...]
    local limit=$1
    shift
    env "$@" "$BUILD/cli/anygrad" train --model mlp --epochs 1 --limit "$limit" --device opencl \
        --seed 3 2>&1 >/dev/null | sed -n 's/^anygrad opencl: \([0-9]*\) launches, \([0-9]*\) library calls, \([0-9]*\) uploads, \([0-9]*\) downloads, \([0-9]*\) host waits$/\1 \2 \3 \4 \5/p'
}
read -r l1 c1 u1 d1 w1 <<<"$(run 1280 AG_OPENCL_STATS=1)"
read -r l2 c2 u2 d2 w2 <<<"$(run 2560 AG_OPENCL_STATS=1)"
quiet=$(run 1280)
if [ -z "${l1:-}" ] || [ -z "${l2:-}" ]; then
    echo "FAIL: no statistics line"
    exit 1
fi
echo "9 steps:  $l1 launches, $c1 library calls, $u1 uploads, $d1 downloads, $w1 host waits"
echo "18 steps: $l2 launches, $c2 library calls, $u2 uploads, $d2 downloads, $w2 host waits"
awk -v l="$((l2 - l1))" -v c="$((c2 - c1))" -v w="$((w2 - w1))" \
    'BEGIN { printf "per training step: %.1f launches, %.1f library calls, %.1f host waits\n", l / 9, c / 9, w / 9 }'
if [ -n "$quiet" ]; then
    echo "FAIL: statistics printed without AG_OPENCL_STATS"
    exit 1
fi
if [ "$l2" -le "$l1" ] || [ "$l1" -le "$((u1 + d1))" ] || [ "$w1" -lt "$d1" ] || [ "$((w2 - w1))" -ge "$((u2 - u1 + d2 - d1))" ]; then
    echo "FAIL: expected more launches for more steps, more launches than transfers, a wait per download, none per training upload"
    exit 1
fi
echo "ocl_stats: passed"
