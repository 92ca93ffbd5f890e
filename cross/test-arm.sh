#!/usr/bin/env bash
# Runs the CPU test suite of the aarch64 cross build under qemu-aarch64, once
# per instruction set of the CPU backend: neon (the default there) and scalar.
# qemu's default CPU has Advanced SIMD, so both must run; one it refused would
# fail with the library's message. Ends with exactly one line "N passed, N
# failed" over both runs; exits nonzero if anything failed. A binary that
# crashes, or exits nonzero without reporting a failure, counts as a failure.
set -u
cd "$(dirname "$0")/.." || exit 1
ARM_BUILD=${ARM_BUILD:-build-arm}
bin=$ARM_BUILD/tests/anygrad-tests
# emulation is 10-50x slower than native: Check's per-test limit goes up with it
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-600}

total_pass=0
total_fail=0
summary=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for isa in neon scalar; do
    if [ ! -x "$bin" ]; then
        summary+=("cpu-$isa (aarch64): 0 passed, 1 failed ($bin not built)")
        total_fail=$((total_fail + 1))
        continue
    fi
    echo "== tests on cpu-$isa (aarch64, qemu) =="
    start=$SECONDS
    # Tag the binary's own total so the last line below is the only bare one.
    AG_CPU_ISA=$isa AG_DEVICE=cpu qemu-aarch64 "$bin" 2>&1 | tee "$log" |
        sed -u -E "s/^([0-9]+ passed, [0-9]+ failed)$/[cpu-$isa] \1/"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
    note=" in $((SECONDS - start)) s"
    if [ -n "$line" ]; then
        read -r pass _ fail _ <<<"$line"
        if [ "$rc" -ne 0 ] && [ "$fail" -eq 0 ]; then
            fail=1 # a crash after the summary, or a failure it did not count
            note+=" (exit status $rc with no failure reported)"
        fi
    else
        pass=0
        fail=1
        note+=" (no summary line: exit status $rc)"
    fi
    summary+=("cpu-$isa (aarch64): $pass passed, $fail failed$note")
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
done

echo "== summary =="
printf '%s\n' "${summary[@]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
