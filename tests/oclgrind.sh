#!/usr/bin/env bash
# The OpenCL kernels under oclgrind, an OpenCL simulator that checks every
# memory access against its buffer's bounds, every API call (--check-api) and
# every pair of work-items for data races in local and global memory
# (--data-races): the quick conformance matrix (every op, forward and backward,
# 3 seeds) through the backend as a user runs it. Fails on any failed case and
# on any message oclgrind writes. oclgrind presents itself as a discrete GPU
# with 128 MiB of memory, so the GPU kernel paths run (tiled GEMM, local-memory
# reductions), not the CPU ones PoCL takes. Exit 77 (skipped) without oclgrind.
# Usage: tests/oclgrind.sh BUILD_DIR
set -u
BUILD=${1:-build}
rt=${OCLGRIND_RT:-/usr/lib/oclgrind/liboclgrind-rt.so}
if ! grep -q AG_HAVE_OPENCL "$BUILD/build.ninja" 2>/dev/null; then
    echo "oclgrind: skipped (the OpenCL backend is not built)"
    exit 77
fi
if [ ! -f "$rt" ]; then
    echo "oclgrind: skipped (no $rt; make deps-test installs oclgrind)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The uninitialized-value plugin is left out: oclgrind 21.10 (Debian 12)
# aborts on LLVM's `freeze` instruction, which its own compiler emits.
# AG_OPENCL_CACHE=0: kernels are built by oclgrind's compiler every time, so
# what runs is what it instrumented.
AG_OPENCL_LIBRARY=$rt AG_OPENCL_CACHE=0 OCLGRIND_CHECK_API=1 OCLGRIND_DATA_RACES=1 \
    OCLGRIND_LOG="$tmp/oclgrind.log" AG_DEVICE=opencl \
    "$BUILD/cli/anygrad" check --quick --no-model --device opencl >"$tmp/out" 2>&1
rc=$?
fail=0
if ! grep -q 'Oclgrind' "$tmp/out"; then
    echo "FAIL: the check did not run on oclgrind's device"
    fail=1
fi
if [ "$rc" -ne 0 ]; then
    echo "FAIL: anygrad check exited $rc"
    fail=1
fi
if [ -s "$tmp/oclgrind.log" ]; then
    echo "FAIL: oclgrind reported $(grep -cE '^(Invalid|Read|Write|Uninit|OCLGRIND|.*data race)' "$tmp/oclgrind.log") problems; the first:"
    head -n 40 "$tmp/oclgrind.log"
    fail=1
fi
tail -n 3 "$tmp/out"
[ "$fail" -eq 0 ] && echo "oclgrind: passed (no message)"
exit "$fail"
