#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/fuzz.mk) and runs each for FUZZ_SECONDS
# (default 60) from its seed corpus, FUZZ_JOBS harnesses at a time (default 1).
# Exits 1 if any harness crashes, leaks, hangs or fails to build (the inputs
# that did are kept under $FUZZ_BUILD/crashes/<harness>/), and 77 when there is
# no clang that links libFuzzer (nothing ran: a skip, not a pass). New corpus
# entries go to $FUZZ_BUILD/corpus/ (the committed seeds in fuzz/corpus/ are
# only read). Ends with one line per harness:
#   <harness> <executions> execs <rate> exec/s [FAILED (...)]
#   FUZZ_SECONDS=600 bash fuzz/run.sh           longer runs
#   FUZZ_HARNESSES="json csv" bash fuzz/run.sh  a subset
#   FUZZ_JOBS=2 bash fuzz/run.sh                two harnesses at once
#   FUZZ_ARGS="-jobs=4 -workers=4" ...          extra libFuzzer flags
set -u
cd "$(dirname "$0")/.." || exit 1
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_HARNESSES=${FUZZ_HARNESSES:-json safetensors checkpoint idx idx_gz csv device cli}
FUZZ_JOBS=${FUZZ_JOBS:-1}
FUZZ_ARGS=${FUZZ_ARGS:-}
CC=${FUZZ_CC:-clang}

case $FUZZ_BUILD in /*) ;; *) FUZZ_BUILD=$PWD/$FUZZ_BUILD ;; esac
mkdir -p "$FUZZ_BUILD"
# libFuzzer ships apart from clang on Debian (libclang-rt-dev): try a link.
probe=$FUZZ_BUILD/probe
if ! command -v "$CC" >/dev/null 2>&1 ||
    ! printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return (int)(d && n) * 0; }\n' |
    "$CC" -fsanitize=fuzzer -x c - -o "$probe" >/dev/null 2>&1; then
    echo "fuzz: skipped: $CC cannot link libFuzzer (apt-get install clang libclang-rt-dev; make deps does)" >&2
    exit 77
fi
rm -f "$probe"
make --no-print-directory -f fuzz/fuzz.mk -j"$(nproc)" FUZZ_BUILD="$FUZZ_BUILD" FUZZ_CC="$CC" || {
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

# One harness; its exit status goes to logs/<h>.rc. The outer timeout only
# catches a harness that never gets going (-max_total_time bounds the rest).
run_one() {
    local h=$1 bin=$FUZZ_BUILD/fuzz_$1 work=$FUZZ_BUILD/corpus/$1 crashes=$FUZZ_BUILD/crashes/$1
    local log=$FUZZ_BUILD/logs/$1.log
    mkdir -p "$work" "$crashes" "$(dirname "$log")"
    # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
    timeout $((FUZZ_SECONDS + 120)) "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 \
        -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
        -dict="fuzz/dict/$(dict_of "$h").dict" -artifact_prefix="$crashes/" $FUZZ_ARGS \
        "$work" "fuzz/corpus/$h" >"$log" 2>&1
    echo $? >"$FUZZ_BUILD/logs/$h.rc"
}

for h in $FUZZ_HARNESSES; do
    rm -f "$FUZZ_BUILD/logs/$h.rc"
    echo "== fuzz_$h for ${FUZZ_SECONDS}s"
    if [ "$FUZZ_JOBS" -gt 1 ]; then
        while [ "$(jobs -rp | wc -l)" -ge "$FUZZ_JOBS" ]; do wait -n; done
        run_one "$h" &
    else
        run_one "$h"
    fi
done
wait

failed=()
summary=()
for h in $FUZZ_HARNESSES; do
    log=$FUZZ_BUILD/logs/$h.log
    rc=$(cat "$FUZZ_BUILD/logs/$h.rc" 2>/dev/null || echo 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    line=$(printf '%-12s %12s execs %8s exec/s' "$h" "${execs:-?}" "${rate:-?}")
    if [ "$rc" -ne 0 ]; then
        failed+=("$h")
        line+="  FAILED (exit $rc; see $log, inputs in $FUZZ_BUILD/crashes/$h/)"
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
