#!/usr/bin/env bash
# Runs every test: the Check suites once per available backend, then the
# examples as end-to-end checks (one test each, passed when they exit 0).
# Ends with exactly one line "N passed, N failed" over everything; exits
# nonzero if anything failed. A binary that crashes, or exits nonzero without
# reporting a failure, counts as a failure, never as nothing.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
# Check's default per-test timeout (4 s) is too tight for slow or loaded machines.
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-120}

# Runs: "name:AG_DEVICE:build dir[:cpu isa, validate, discrete, mobile, wg32, rusticl or clblast]". The sanitizer build (make
# build-sanitize) runs the suite again under AddressSanitizer, LeakSanitizer and
# UBSan, without forking so leaks anywhere in the process are reported.
SAN_BUILD=${SAN_BUILD:-build-sanitize}
backends=("cpu:cpu:$BUILD")
summary=()
# The CPU backend once more per lower instruction set the machine supports
# (the default run above uses the best one); `anygrad devices` refuses an ISA
# the CPU lacks.
for isa in scalar avx2 avx512 neon; do
    best=$("$BUILD/cli/anygrad" devices 2>/dev/null | sed -n 's/.*(\([a-z0-9]*\))$/\1/p' | head -n 1)
    [ "$isa" = "$best" ] && continue
    if AG_CPU_ISA=$isa "$BUILD/cli/anygrad" devices 2>/dev/null | grep -qE "^[ *] [0-9]+ +cpu "; then
        backends+=("cpu-$isa:cpu:$BUILD:$isa")
    fi
done
if [ -x "$SAN_BUILD/tests/anygrad-tests" ]; then
    backends+=("cpu-sanitize:cpu:$SAN_BUILD")
fi
# A GPU backend compiled in must run: without a device its run fails ("no
# device"), it is never skipped. CI has PoCL (OpenCL on the CPU).
if grep -q AG_HAVE_OPENCL "$BUILD/build.ninja" 2>/dev/null; then
    # on CPU devices GEMM picks anygrad's own kernel; the matmul suite once more
    # through CLBlast keeps that path tested; and the whole suite with every
    # kernel limited to 32 work-items (AG_OPENCL_MAX_WG), as on mobile GPUs
    backends+=("opencl:opencl:$BUILD" "opencl-clblast:opencl:$BUILD:clblast"
               "opencl-wg32:opencl:$BUILD:wg32")
    # mesa's rusticl (make deps-test installs it): a second, independent OpenCL
    # implementation, which flushes subnormal results to zero as many GPUs do.
    # Its launches cost ~3 ms on llvmpipe, so the 30,000-launch chains (tag
    # "slow") are left out there.
    if RUSTICL_ENABLE=llvmpipe "$BUILD/cli/anygrad" devices 2>/dev/null | grep -qE '^[ *] [0-9]+ +opencl .*rusticl'; then
        backends+=("opencl-rusticl:rusticl:$BUILD:rusticl")
    else
        summary+=("backend opencl-rusticl: skipped (no rusticl device; make deps-test installs mesa-opencl-icd)")
    fi
fi
# Vulkan runs four times: as is; under the Khronos validation layer with
# synchronization validation, which must report no errors (each one fails the
# test that caused it), on the subgroup shaders lavapipe offers; and again
# validated on the portable shaders with the device treated as a discrete GPU
# (AG_VULKAN_EMULATE=discrete: tensor memory unmapped, every transfer staged),
# the paths real GPUs take that lavapipe's unified memory hides; and as a small
# mobile GPU (AG_VULKAN_EMULATE=mobile: 4 storage buffers a shader, 64
# invocations a group, 16 KiB of shared memory, a 128 MiB buffer range, the
# host planning for subgroups of 16 while lavapipe runs 8, as drivers that
# report one size and run another do; the 30,000-dispatch chains left out).
if grep -q AG_HAVE_VULKAN "$BUILD/build.ninja" 2>/dev/null; then
    backends+=("vulkan:vulkan:$BUILD" "vulkan-validated:vulkan:$BUILD:validate"
               "vulkan-discrete:vulkan:$BUILD:discrete" "vulkan-mobile:vulkan:$BUILD:mobile")
fi
# The GPU backends' host code under the sanitizers too.
if [ -x "$SAN_BUILD/tests/anygrad-tests" ]; then
    for gpu in opencl vulkan; do
        grep -q "AG_HAVE_${gpu^^}" "$SAN_BUILD/build.ninja" 2>/dev/null &&
            backends+=("$gpu-sanitize:$gpu:$SAN_BUILD")
    done
fi
# Each entry: the example's name, then its arguments (split on spaces); an
# AG_DEVICE=... word first runs it on that device. The user's guide programs
# (examples/guide/, docs/guide.md) check themselves and run on every backend built.
examples=(linear_regression neuron
          "fashion_mlp --limit 5000 --epochs 2 --min-acc 0.75")
# the character-level GPT, small, on every backend: its validation loss must
# fall below what single-character statistics give (about 3.3; uniform: ln 114 = 4.74)
gpt_small="--steps 200 --warmup 10 --lr 1e-2 --layers 1 --heads 2 --width 32 --context 32 --batch 8 --eval-every 200 --eval-batches 10 --sample 40 --max-val-loss 3.1"
examples+=("char_gpt $gpt_small")
guide_devices=(cpu)
grep -q AG_HAVE_OPENCL "$BUILD/build.ninja" 2>/dev/null && guide_devices+=(opencl)
grep -q AG_HAVE_VULKAN "$BUILD/build.ninja" 2>/dev/null && guide_devices+=(vulkan)
for g in examples/guide/[0-9][0-9]_*.c; do
    g=$(basename "$g" .c)
    for d in "${guide_devices[@]}"; do examples+=("AG_DEVICE=$d guide/$g"); done
done
for d in "${guide_devices[@]}"; do [ "$d" = cpu ] || examples+=("AG_DEVICE=$d char_gpt $gpt_small"); done

total_pass=0
total_fail=0
log=$(mktemp)
# The sanitizer runs see every OpenCL ICD but mesa's clover (mesa.icd): clover
# loads gallium's swrast pipe, which leaks 128 bytes, and unloads it, so
# LeakSanitizer cannot name the module for a suppression (tests/lsan.supp).
# Clover offers no device on these machines; PoCL and rusticl stay.
san_icd=$(mktemp -d)
for f in /etc/OpenCL/vendors/*.icd; do
    [ -e "$f" ] && [ "$(basename "$f")" != mesa.icd ] && ln -s "$f" "$san_icd/"
done
trap 'rm -f "$log"; rm -rf "$san_icd"' EXIT

describe_exit() { # exit status -> words
    if [ "$1" -gt 128 ]; then echo "killed by signal $(($1 - 128))"; else echo "exit status $1"; fi
}

for run in "${backends[@]}"; do
    IFS=: read -r be dev dir isa <<<"$run"
    bin=$dir/tests/anygrad-tests
    san_env=()
    if [ "$dir" = "$SAN_BUILD" ]; then
        san_env=(CK_FORK=no ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1
                 LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
                 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 OCL_ICD_VENDORS=$san_icd)
    fi
    if [ ! -x "$bin" ]; then
        summary+=("backend $be: 0 passed, 1 failed ($bin not built)")
        total_fail=$((total_fail + 1))
        continue
    fi
    echo "== tests on $be =="
    # Tag the binary's own total so the last line below is the only bare one.
    if [ "$isa" = validate ]; then
        san_env+=(AG_VULKAN_VALIDATION=1)
    elif [ "$isa" = discrete ]; then
        san_env+=(AG_VULKAN_VALIDATION=1 AG_VULKAN_PORTABLE=1 AG_VULKAN_EMULATE=discrete)
    elif [ "$isa" = mobile ]; then
        # uniform parameter blocks cost lavapipe ~4 ms and 170 KB a dispatch:
        # the 30,000-dispatch chains (tag "slow") would take minutes and GBs
        san_env+=(AG_VULKAN_EMULATE=mobile CK_EXCLUDE_TAGS=slow)
    elif [ "$isa" = wg32 ]; then
        # kernels limited to 32 work-items, as register-heavy ones are on mobile GPUs
        san_env+=(AG_OPENCL_MAX_WG=32)
    elif [ "$isa" = rusticl ]; then
        san_env+=(RUSTICL_ENABLE=llvmpipe CK_EXCLUDE_TAGS=slow)
    elif [ "$isa" = clblast ]; then
        san_env+=(AG_OPENCL_GEMM=clblast CK_RUN_SUITE=matmul)
    elif [ -n "$isa" ]; then
        san_env+=(AG_CPU_ISA="$isa")
    fi
    # the portable CPU run also proves the suite needs no GPU stack
    [ "$isa" = scalar ] && san_env+=(AG_OPENCL_LIBRARY=/nonexistent AG_VULKAN_LIBRARY=/nonexistent)
    env "${san_env[@]}" AG_DEVICE="$dev" "$bin" 2>&1 | tee "$log" | sed -u -E "s/^([0-9]+ passed, [0-9]+ failed)$/[$be] \1/"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        read -r pass _ fail _ <<<"$line"
        note=""
        if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
            fail=1 # a crash after the summary, or a failure it did not count
            note=" ($(describe_exit "$rc") with no failure reported)"
        fi
    else
        pass=0
        fail=1
        note=" (no summary line: $(describe_exit "$rc"))"
    fi
    summary+=("backend $be: $pass passed, $fail failed$note")
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
done

for entry in "${examples[@]}"; do
    read -r -a cmd <<<"$entry"
    envs=()
    while [[ "${cmd[0]}" == *=* ]]; do envs+=("${cmd[0]}"); cmd=("${cmd[@]:1}"); done
    ex=${cmd[0]}
    bin=$BUILD/examples/$ex
    [ ${#envs[@]} -gt 0 ] && ex="$ex (${envs[*]})"
    if [ ! -x "$bin" ]; then
        summary+=("example $ex: failed ($bin not built)")
        total_fail=$((total_fail + 1))
        continue
    fi
    env ${envs[@]+"${envs[@]}"} "$bin" "${cmd[@]:1}" >"$log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        summary+=("example $ex: passed")
        total_pass=$((total_pass + 1))
    else
        echo "== example $ex failed ($(describe_exit "$rc")); its output: =="
        cat "$log"
        summary+=("example $ex: failed ($(describe_exit "$rc"))")
        total_fail=$((total_fail + 1))
    fi
done

# Script checks, each one test: no upward include or call between layers; the shared library exports
# exactly the header's functions; installed, pkg-config (shared and static) and subproject builds work;
# the command line end to end (train, save,
# eval, resume, plot, bad arguments) and its argument handling; the CPU chosen
# with the GPU loaders hidden; kernel build and checkpoint write failures
# injected; every device compared with the others (anygrad check); memory
# flat over many steps; checkpoints loaded and evaluated by PyTorch; the OpenCL
# kernels under oclgrind's bounds, API and race checks; Vulkan barriers only
# between dependent commands; OpenCL command counts (exit 77: no python3-torch, oclgrind, Vulkan or OpenCL
# device, reported as skipped and counted neither way).
for script in layers symbols packaging cli_train cli_args no_gpu faults cross_device soak torch_interop oclgrind vk_stats ocl_stats mpi; do
    bash "tests/$script.sh" "$BUILD" >"$log" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        summary+=("$script: passed")
        total_pass=$((total_pass + 1))
    elif [ "$rc" -eq 77 ]; then
        summary+=("$script: skipped ($(sed -n 's/.*skipped (\(.*\))$/\1/p' "$log" | head -n 1))")
    else
        echo "== $script failed; its output: =="
        cat "$log"
        summary+=("$script: failed")
        total_fail=$((total_fail + 1))
    fi
done

# Every buildtype with gcc and clang, warning-free (tests/buildtypes.sh; BUILDTYPES=0
# leaves the step out): one test each.
if [ "${BUILDTYPES:-1}" != 0 ]; then
    t0=$SECONDS
    bash tests/buildtypes.sh >"$log" 2>&1
    rc=$?
    nbt=0
    while read -r line; do
        name=${line#buildtype }
        name=${name%%:*}
        nbt=$((nbt + 1))
        case "$line" in
        *": passed"*) summary+=("buildtype $name: passed"); total_pass=$((total_pass + 1)) ;;
        *": skipped"*) summary+=("${line}") ;;
        *) summary+=("buildtype $name: failed"); total_fail=$((total_fail + 1)) ;;
        esac
    done < <(grep '^buildtype ' "$log")
    if [ "$nbt" -eq 0 ] || [ "$rc" -ne 0 ]; then
        echo "== buildtypes (exit $rc); output: =="
        cat "$log"
        [ "$nbt" -eq 0 ] && { summary+=("buildtypes: failed (no result)"); total_fail=$((total_fail + 1)); }
    fi
    echo "== buildtypes: $nbt builds in $((SECONDS - t0)) s"
fi

# Fuzzing, bounded: every harness (fuzz/run.sh) for FUZZ_SECONDS (15) each, two
# at a time, each one test (FUZZ_SECONDS=0 leaves the step out). Without a clang
# that links libFuzzer the step says it was skipped and counts neither way.
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
if [ "$FUZZ_SECONDS" -gt 0 ]; then
    t0=$SECONDS
    FUZZ_BUILD=${FUZZ_BUILD:-$BUILD-fuzz} FUZZ_SECONDS=$FUZZ_SECONDS FUZZ_JOBS=${FUZZ_JOBS:-2} \
        bash fuzz/run.sh >"$log" 2>&1
    rc=$?
    if [ "$rc" -eq 77 ]; then
        summary+=("fuzz: skipped ($(sed -n 's/.*skipped: //p' "$log" | head -n 1))")
    else
        results=$(sed -n '/^== fuzz summary/,$p' "$log" | grep -E '^[a-z_]+ +[0-9?]+ execs ')
        nfuzz=0
        while read -r h execs _ rate _ rest; do
            [ -n "$h" ] || continue
            nfuzz=$((nfuzz + 1))
            if [ -z "$rest" ]; then
                summary+=("fuzz $h: passed ($execs execs, $rate exec/s)")
                total_pass=$((total_pass + 1))
            else
                summary+=("fuzz $h: failed ${rest#FAILED }")
                total_fail=$((total_fail + 1))
            fi
        done <<<"$results"
        if [ "$nfuzz" -eq 0 ] || { [ "$rc" -ne 0 ] && ! grep -q FAILED <<<"$results"; }; then
            summary+=("fuzz: failed (exit $rc, $nfuzz harnesses reported)")
            total_fail=$((total_fail + 1))
        fi
        [ "$rc" -ne 0 ] && { echo "== fuzz failed; its output: =="; tail -n 40 "$log"; }
        echo "== fuzz: $nfuzz harnesses in $((SECONDS - t0)) s"
    fi
fi

# The aarch64 cross build (make build-arm) under qemu: the CPU suite per ISA.
ARM_BUILD=${ARM_BUILD:-build-arm}
if [ -x "$ARM_BUILD/tests/anygrad-tests" ]; then
    ARM_BUILD=$ARM_BUILD bash cross/test-arm.sh >"$log" 2>&1
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    if [ -n "$line" ]; then
        read -r pass _ fail _ <<<"$line"
    else
        pass=0
        fail=1
    fi
    [ "$fail" -gt 0 ] && cat "$log"
    summary+=("aarch64 (qemu): $pass passed, $fail failed")
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
fi

echo "== summary =="
printf '%s\n' "${summary[@]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
