#!/usr/bin/env bash
# Training on a busy machine: the MLP epoch (Adam, batch 128, `anygrad train`'s
# default model) and the batch-1 step (SGD, microseconds a step), quiet and
# beside 1, 2 and 4 CPU-bound processes (shell busy loops), for anygrad at its
# default thread count, anygrad on one thread, PyTorch at its defaults and
# PyTorch on one thread (torch and BLAS). Each cell is the median of --rounds
# runs (the machine is noisy); a cell with a run longer than --timeout seconds
# is reported as "> T".
#
# What it shows: a parallel region ends in a barrier, so a team whose threads
# get descheduled waits a scheduler time slice per region. anygrad's default
# team shrinks while other work keeps cores busy (backends/cpu/cpu_threads.c);
# the goal is never slower than one thread, and on a quiet machine the speed
# of every core.
#
# usage: bench/contention.sh [--build DIR] [--loads "0 1 2 4"] [--steps N]
#            [--rounds R] [--timeout S] [--data DIR] [--no-torch]
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=build
LOADS="0 1 2 4"
STEPS=2000
TIMEOUT=60
ROUNDS=3
DATA=/usr/share/datasets/fashion-mnist
PY=/usr/bin/python3
TORCH=1
while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=$2 ;;
    --loads) LOADS=$2 ;;
    --steps) STEPS=$2 ;;
    --timeout) TIMEOUT=$2 ;;
    --rounds) ROUNDS=$2 ;;
    --data) DATA=$2 ;;
    --no-torch) TORCH=0; shift; continue ;;
    *) echo "usage: bench/contention.sh [--build DIR] [--loads \"0 1 2 4\"] [--steps N] [--rounds R] [--timeout S] [--data DIR] [--no-torch]" >&2; exit 2 ;;
    esac
    shift 2
done
AG=$BUILD/cli/anygrad
[ -x "$AG" ] || { echo "contention.sh: $AG not built" >&2; exit 1; }
if [ "$TORCH" = 1 ] && ! "$PY" -c 'import torch' 2>/dev/null; then
    echo "contention.sh: no python3-torch; PyTorch columns skipped (apt install python3-torch)" >&2
    TORCH=0
fi
. bench/coretype.sh
CORETYPE=$(openblas_coretype auto)
blas_env=(-u OPENBLAS_L2_SIZE -u OPENBLAS_CORETYPE)
[ "$CORETYPE" != own ] && blas_env+=(OPENBLAS_CORETYPE="$CORETYPE")
tmp=$(mktemp -d)
busy=()
stop_busy() { [ ${#busy[@]} -gt 0 ] && kill "${busy[@]}" 2>/dev/null; wait 2>/dev/null; busy=(); }
trap 'stop_busy; rm -rf "$tmp"' EXIT

# anygrad: seconds of the timed (second) epoch from the CSV log, scaled
ag_time() { # scale env... -- train options...
    local scale=$1
    shift
    local -a envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    rm -f "$tmp/ag.csv"
    if ! env "${envs[@]}" timeout "$TIMEOUT" "$AG" train --device cpu --val-frac 0 --epochs 2 \
        --log-every 0 --data "$DATA" --log "$tmp/ag.csv" "$@" >"$tmp/ag.out" 2>&1; then
        echo "> $TIMEOUT"
        return
    fi
    awk -F, -v k="$scale" 'NR == 3 { printf "%.3f\n", ($8 - prev) * k } NR == 2 { prev = $8 }' "$tmp/ag.csv"
}
# PyTorch: the median of its RESULT samples for one workload
py_time() { # torch-threads blas-threads workload
    if ! env "${blas_env[@]}" OPENBLAS_NUM_THREADS="$2" timeout "$TIMEOUT" "$PY" bench/torch_mlp.py --threads "$1" --epochs 1 \
        --data "$DATA" --workloads "$3" --steps "$STEPS" >"$tmp/py.out" 2>&1; then
        echo "> $TIMEOUT"
        return
    fi
    grep "^RESULT $3 " "$tmp/py.out" | awk '{ for (i = 4; i <= NF; i++) print $i }' | sort -g |
        awk '{ v[NR] = $1 } END { printf(v[1] > 100 ? "%.0f\n" : "%.3f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# the median of ROUNDS runs of a timing function; "> T" if any run timed out
median_of() {
    local v out=()
    for _ in $(seq 1 "$ROUNDS"); do
        v=$("$@")
        [[ $v == ">"* ]] && { echo "$v"; return; }
        out+=("$v")
    done
    printf '%s\n' "${out[@]}" | sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

cores=$(nproc)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $cores cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$TORCH" = 1 ] && echo "PyTorch $("$PY" -c 'import torch; print(torch.__version__)') (default: torch threads = cores, OpenBLAS threads = cores; OPENBLAS_CORETYPE=$CORETYPE as in bench/compare_torch.sh)"
echo "MLP epoch: seconds for 60000 images, Adam, batch 128; batch-1 step: microseconds, SGD, over $STEPS images; medians of $ROUNDS runs"
echo
header='| busy processes | workload | anygrad default | anygrad 1 thread |'
rule='|---|---|---|---|'
if [ "$TORCH" = 1 ]; then
    header+=' PyTorch default | PyTorch 1 thread | anygrad default / PyTorch best |'
    rule+='---|---|---|'
fi
echo "$header"
echo "$rule"
for k in $LOADS; do
    stop_busy
    for _ in $(seq 1 "$k"); do
        sh -c 'while :; do :; done' &
        busy+=($!)
    done
    sleep 1
    for w in epoch step1; do
        if [ $w = epoch ]; then
            opts=(--model mlp --optimizer adam --lr 0.001 --batch 128)
            scale=1
        else
            opts=(--model mlp --optimizer sgd --lr 0.002 --momentum 0.9 --batch 1 --limit "$STEPS")
            scale=$(awk -v n="$STEPS" 'BEGIN { print 1e6 / n }')
        fi
        a=$(median_of ag_time "$scale" -u AG_NUM_THREADS -- "${opts[@]}")
        a1=$(median_of ag_time "$scale" AG_NUM_THREADS=1 -- "${opts[@]}")
        [ $w = step1 ] && a=$(printf '%.0f' "$a" 2>/dev/null || echo "$a") && a1=$(printf '%.0f' "$a1" 2>/dev/null || echo "$a1")
        row="| $k | $w | $a | $a1 |"
        if [ "$TORCH" = 1 ]; then
            pw=epoch-adam
            [ $w = step1 ] && pw=step1
            p=$(median_of py_time "$cores" "$cores" $pw)
            p1=$(median_of py_time 1 1 $pw)
            ratio=$(awk -v a="$a" -v p="$p" -v q="$p1" 'BEGIN { b = p + 0; if (q + 0 > 0 && (b <= 0 || q + 0 < b)) b = q + 0; if (a + 0 > 0 && b > 0 && a !~ />/) printf "%.2f", a / b; else print "-" }')
            row+=" $p | $p1 | $ratio |"
        fi
        echo "$row"
    done
done
stop_busy
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
