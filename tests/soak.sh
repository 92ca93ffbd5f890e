#!/usr/bin/env bash
# Thousands of training steps hold host memory and device buffers flat, on
# every device (fewer steps on the slow software GPU drivers).
# Usage: tests/soak.sh BUILD_DIR
set -u
BUILD=${1:-build}
fail=0
while read -r backend steps; do
    "$BUILD/cli/anygrad" devices 2>/dev/null | grep -qE "^[ *] [0-9]+ +$backend " || continue
    "$BUILD/bench/soak" --device "$backend" --steps "$steps" || fail=1
done <<'LIST'
cpu 3000
opencl 1000
vulkan 300
LIST
exit $fail
