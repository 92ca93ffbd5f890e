#!/usr/bin/env bash
# A kernel build that fails (AG_FAULT=build:N) on a GPU backend ends the program
# with a clear error, never a crash. Builds happen once per process, so each N
# is a fresh process. Usage: tests/faults.sh BUILD_DIR
set -u
BUILD=${1:-build}
fail=0
for dev in opencl vulkan; do
    "$BUILD/src/cli/anygrad" devices 2>/dev/null | grep -qE "^[ *] [0-9]+ +$dev " || continue
    for n in 1 2 3; do
        out=$(AG_DEVICE=$dev AG_FAULT=build:$n "$BUILD/examples/linear_regression" 2>&1)
        rc=$?
        if [ "$rc" -eq 0 ] || [ "$rc" -gt 128 ] || ! grep -q "injected fault" <<<"$out"; then
            echo "FAIL: $dev build fault $n: exit $rc, output:"
            echo "$out" | tail -n 3
            fail=1
        else
            echo "ok: $dev build fault $n: $(grep -m1 'injected fault' <<<"$out")"
        fi
    done
done
exit $fail
