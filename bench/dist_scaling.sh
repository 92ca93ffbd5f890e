#!/usr/bin/env bash
# Data parallelism on one machine: an epoch of `anygrad train` (the MLP on all
# 60,000 Fashion-MNIST images; the CNN on --cnn-limit of them) as one process
# with 1 and with all cores' threads, and as N processes (mpirun) of one thread
# each. Prints the median training speed (samples/s) of --rounds runs, the speed-up over
# one process on the same cores, and per optimizer step the bytes each rank
# contributes to the gradient sum and the milliseconds spent in
# ag_dist_average_gradients (AG_DIST_STATS=1), with the load average.
#
# usage: bench/dist_scaling.sh [--build DIR] [--ranks N] [--rounds R]
#            [--cnn-limit N] [--data DIR]
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=build
RANKS=$(nproc)
ROUNDS=3
CNN_LIMIT=6000
DATA=/usr/share/datasets/fashion-mnist
while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=$2 ;;
    --ranks) RANKS=$2 ;;
    --rounds) ROUNDS=$2 ;;
    --cnn-limit) CNN_LIMIT=$2 ;;
    --data) DATA=$2 ;;
    *) echo "usage: $0 [--build DIR] [--ranks N] [--rounds R] [--cnn-limit N] [--data DIR]" >&2; exit 2 ;;
    esac
    shift 2
done
AG=$BUILD/cli/anygrad
command -v mpirun >/dev/null || { echo "no mpirun (apt-get install openmpi-bin)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# one run: prints the training samples/s (and leaves the stats in $tmp/stats)
once() { # THREADS NP ARGS...
    local threads=$1 np=$2
    shift 2
    local cmd=("$AG" train "$@" --epochs 1 --device cpu --val-frac 0 --eval-every 0)
    [ "$np" -gt 1 ] && cmd=(mpirun -np "$np" -x AG_NUM_THREADS -x AG_DIST_STATS "${cmd[@]}")
    AG_NUM_THREADS=$threads AG_DIST_STATS=1 "${cmd[@]}" >"$tmp/out" 2>"$tmp/err" ||
        { echo "failed: ${cmd[*]}" >&2; tail -n 3 "$tmp/err" >&2; echo nan; return; }
    grep -m1 'ag_dist stats: rank 0' "$tmp/err" >"$tmp/stats" || : >"$tmp/stats"
    sed -n 's/.*(1 in this run: [0-9.]* s training, \([0-9]*\) samples\/s.*/\1/p' "$tmp/out"
}

echo "anygrad data parallelism on $(nproc) cores, $(date -u +%F), load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %-24s %10s %9s %14s %14s\n' model setup "samples/s" speed-up "bytes/step" "ms/step in allreduce"
for model in mlp cnn; do
    args=(--model "$model" --data "$DATA")
    [ "$model" = cnn ] && args+=(--limit "$CNN_LIMIT")
    base=""
    for setup in "1 1" "$(nproc) 1" "1 $RANKS"; do
        set -- $setup
        times=()
        for _ in $(seq "$ROUNDS"); do times+=("$(once "$1" "$2" "${args[@]}")"); done
        t=$(printf '%s\n' "${times[@]}" | median)
        [ -z "$base" ] && base=$t
        bytes=$(sed -n 's/.* \([0-9]*\) bytes each.*/\1/p' "$tmp/stats")
        ms=$(sed -n "s/.*ms each (\([0-9.]*\) ms in allreduce.*/\1/p" "$tmp/stats")
        label="1 process x $1 thread$([ "$1" -gt 1 ] && echo s)"
        [ "$2" -gt 1 ] && label="$2 processes x $1 thread"
        printf '%-5s %-24s %10s %9s %14s %14s\n' "$model" "$label" "$t" \
            "$(awk -v a="$base" -v b="$t" 'BEGIN { printf "%.2fx", b / a }')" "${bytes:--}" "${ms:--}"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
