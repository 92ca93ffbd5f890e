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
