#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/fuzz.mk) and runs each for FUZZ_SECONDS
# (default 60) from its seed corpus. Exits nonzero if any harness crashes,
# leaks, hangs or fails to build; the inputs that did are kept under
# $FUZZ_BUILD/crashes/<harness>/. New corpus entries go to $FUZZ_BUILD/corpus/
# (the committed seeds in fuzz/corpus/ are only read).
#   FUZZ_SECONDS=600 bash fuzz/run.sh           longer runs
#   FUZZ_HARNESSES="json csv" bash fuzz/run.sh  a subset
#   FUZZ_ARGS="-jobs=4 -workers=4" ...          extra libFuzzer flags
set -u
cd "$(dirname "$0")/.." || exit 1
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_HARNESSES=${FUZZ_HARNESSES:-json safetensors checkpoint idx idx_gz csv device cli}
FUZZ_ARGS=${FUZZ_ARGS:-}

if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
    echo "fuzz: ${FUZZ_CC:-clang} not found (libFuzzer needs clang: apt-get install clang)" >&2
    exit 1
fi
case $FUZZ_BUILD in /*) ;; *) FUZZ_BUILD=$PWD/$FUZZ_BUILD ;; esac
make --no-print-directory -f fuzz/fuzz.mk -j"$(nproc)" FUZZ_BUILD="$FUZZ_BUILD" || {
    echo "fuzz: build failed" >&2
    exit 1
}

dict_of() {
    case $1 in
    safetensors | checkpoint) echo safetensors ;;
    idx | idx_gz) echo idx ;;
    *) echo "$1" ;;
    esac
}

# Leaks are failures; UBSan reports already abort (-fno-sanitize-recover).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
summary=()
for h in $FUZZ_HARNESSES; do
    bin=$FUZZ_BUILD/fuzz_$h
    work=$FUZZ_BUILD/corpus/$h
    crashes=$FUZZ_BUILD/crashes/$h
    log=$FUZZ_BUILD/logs/$h.log
    mkdir -p "$work" "$crashes" "$(dirname "$log")"
    echo "== fuzz_$h for ${FUZZ_SECONDS}s"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
        -print_final_stats=1 -dict="fuzz/dict/$(dict_of "$h").dict" \
        -artifact_prefix="$crashes/" $FUZZ_ARGS "$work" "fuzz/corpus/$h" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    line=$(printf '%-12s %12s execs %8s exec/s' "$h" "${execs:-?}" "${rate:-?}")
    if [ "$rc" -ne 0 ]; then
        failed+=("$h")
        line+="  FAILED (exit $rc; see $log, inputs in $crashes/)"
        grep -E 'ERROR:|runtime error:|SUMMARY:|^Test unit written' "$log" | head -n 6 >&2
    fi
    summary+=("$line")
done

echo "== fuzz summary (${FUZZ_SECONDS}s each)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz: failed: ${failed[*]}" >&2
    exit 1
fi
