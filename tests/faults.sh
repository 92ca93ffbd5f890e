#!/usr/bin/env bash
# A kernel build that fails (AG_FAULT=build:N) on a GPU backend ends the program
# with a clear error, never a crash. Builds happen once per process, so each N
# is a fresh process. Then a checkpoint save of `anygrad train` that fails at a
# write step (AG_FAULT=write:N) exits 1 and leaves the previous checkpoint as it
# was, with no temporary file. Usage: tests/faults.sh BUILD_DIR
set -u
BUILD=${1:-build}
DATA=${AG_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
fail=0
for dev in opencl vulkan; do
    "$BUILD/cli/anygrad" devices 2>/dev/null | grep -qE "^[ *] [0-9]+ +$dev " || continue
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

# The tiled GEMM kernels are a program of their own (gemm_tiled.cl) because
# some compilers cannot meet their fixed work-group size: where it does not
# build, GEMM falls back to gemm.cl and succeeds. With the tiled path forced,
# gemm_tiled is the first program a matmul check builds: fault 1 must pass,
# fault 2 (another program, no fallback) must fail with the injected error.
if "$BUILD/cli/anygrad" devices 2>/dev/null | grep -qE "^[ *] [0-9]+ +opencl "; then
    chk=("$BUILD/cli/anygrad" check --quick --no-model --op matmul --device opencl)
    if ! out=$(AG_OPENCL_CACHE=0 AG_OPENCL_GEMM=own:tiled AG_FAULT=build:1 "${chk[@]}" 2>&1); then
        echo "FAIL: matmul with gemm_tiled.cl failing to build did not fall back:"
        echo "$out" | grep -m3 FAIL
        fail=1
    elif ! out=$(AG_OPENCL_CACHE=0 AG_OPENCL_GEMM=own:tiled AG_FAULT=build:2 "${chk[@]}" 2>&1) &&
        grep -q "injected fault: building kernels/" <<<"$out" && ! grep -q "kernels/gemm_tiled.cl" <<<"$out"; then
        echo "ok: gemm_tiled.cl failing to build falls back; $(grep -m1 -o 'injected fault: building kernels/[a-z_]*.cl' <<<"$out") fails"
    else
        echo "FAIL: build fault 2 of the matmul check was not another program's clear error:"
        echo "$out" | tail -n 3
        fail=1
    fi
    # 128 x 128 tiles need 17 KiB of local memory: with 16 KiB (AG_OPENCL_LOCAL_KB,
    # as on small GPUs) the kernel is refused after its build and smaller
    # tiles or gemm_simple do the work, every later call without a rebuild
    if ! AG_OPENCL_LOCAL_KB=16 "$BUILD/cli/anygrad" devices -v 2>&1 | grep -q "local memory: 16 KiB"; then
        echo "FAIL: AG_OPENCL_LOCAL_KB=16 is not what devices -v reports"
        fail=1
    elif ! out=$(AG_OPENCL_LOCAL_KB=16 AG_OPENCL_GEMM=own:tiled128 "${chk[@]}" 2>&1); then
        echo "FAIL: matmul with 128-tiles over the local memory did not fall back:"
        echo "$out" | grep -m3 FAIL
        fail=1
    else
        echo "ok: 128-tiles over 16 KiB of local memory fall back"
    fi
    # attention whose accumulators (8 rows x (E + Ev) floats) pass 1 KiB of
    # local memory is refused by the OpenCL kernel and composed from other ops,
    # with the same dropout mask: the suite's reference redraws it from the seed
    if out=$(AG_OPENCL_LOCAL_KB=1 AG_DEVICE=opencl CK_RUN_SUITE=attention \
        "$BUILD/tests/anygrad-tests" 2>&1) && grep -q "^[0-9]* passed, 0 failed" <<<"$out"; then
        echo "ok: attention refused for local memory is composed, same dropout mask"
    else
        echo "FAIL: attention with 1 KiB of local memory:"
        echo "$out" | grep -E "F:|failed" | head -n 5
        fail=1
    fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
train=("$BUILD/cli/anygrad" train --model mlp --limit 500 --data "$DATA" --log-every 0)
if ! AG_DEVICE=cpu "${train[@]}" --epochs 1 --save "$tmp/a.st" >"$tmp/out" 2>&1; then
    echo "FAIL: training the first checkpoint:"
    tail -n 3 "$tmp/out"
    exit 1
fi
cp "$tmp/a.st" "$tmp/orig.st"
# A checkpoint of this MLP with Adam's state is 27 write events: 1 creates the
# file, 20 is a tensor's write, 27 the rename into place (the last: 28 must
# find nothing to fail, checked below, so a change in the count is noticed).
for n in 1 20 27; do
    AG_DEVICE=cpu AG_FAULT=write:$n "${train[@]}" --resume "$tmp/a.st" --epochs 2 \
        --save "$tmp/a.st" >"$tmp/out" 2>&1
    rc=$?
    left=$(cd "$tmp" && ls | grep -vxE 'a\.st|orig\.st|out')
    if [ "$rc" -ne 1 ] || ! grep -q "injected fault" "$tmp/out" || ! cmp -s "$tmp/a.st" "$tmp/orig.st" ||
        [ -n "$left" ]; then
        echo "FAIL: write fault $n: exit $rc, checkpoint $(cmp -s "$tmp/a.st" "$tmp/orig.st" && echo kept || echo changed), left: ${left:-nothing}"
        tail -n 3 "$tmp/out"
        fail=1
    else
        echo "ok: write fault $n: $(grep -m1 'injected fault' "$tmp/out")"
    fi
done
cp "$tmp/orig.st" "$tmp/a.st"
if AG_DEVICE=cpu AG_FAULT=write:28 "${train[@]}" --resume "$tmp/a.st" --epochs 2 --save "$tmp/a.st" \
    >"$tmp/out" 2>&1; then
    echo "ok: write fault 28: past the save's 27 events, nothing fails"
else
    echo "FAIL: write fault 28 failed the save: the checkpoint has more than 27 write events now; update the list above"
    tail -n 3 "$tmp/out"
    fail=1
fi
exit $fail
