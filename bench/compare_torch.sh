#!/usr/bin/env bash
# anygrad against PyTorch (Debian python3-torch, CPU) on the issue-8 MLP
# (784-256-128-10 ReLU) workloads and the TF-tutorial CNN, in the same run,
# interleaved round by round.
# Both sides run the same loop: shuffled real Fashion-MNIST images, forward,
# backward, optimizer step, and per step the loss read back and the correct
# predictions counted (anygrad: `anygrad train`'s own epoch time, evaluation
# excluded; PyTorch: bench/torch_mlp.py).
#   epoch-sgd   one epoch over the 60000 training images, batch 128, SGD lr 0.05
#               momentum 0.9
#   epoch-adam  the same with Adam lr 1e-3
#   step1       batch 1 over the first --steps images, SGD lr 0.002 momentum
#               0.9: microseconds per step. (Not one repeated sample: that drives
#               the loss to zero and the gradients into denormal floats, which
#               x86 handles many times slower - bench/mlp_step shows it after a
#               few hundred steps.)
#   cnn-adam    the CNN of `anygrad train --model cnn` (conv 5x5x32 pad 2, pool,
#               conv 5x5x64 pad 2, pool, fc1024, dropout 0.4, fc10) with Adam
#               lr 1e-3, batch 128, over the first --cnn-limit images: seconds a
#               60000-image epoch takes at that speed (PyTorch: bench/torch_cnn.py)
# PyTorch runs at every torch/BLAS thread setting (../shared/baselines.md:
# Debian's torch has an OpenMP pool and a separate OpenBLAS pool that fight over
# the cores) and is compared at its best one per workload. Reported times are
# medians over all timed epochs of all rounds (each run has one warm-up epoch,
# not counted). The machine may be shared and noisy: only ratios from the same
# run mean anything. Peak resident memory (MB) of each side's process is the
# largest over the rounds (PyTorch's MLP process runs all its MLP workloads).
#
# usage: bench/compare_torch.sh [--build DIR] [--rounds R] [--epochs E]
#            [--steps N] [--workloads "W ..."] [--cnn-limit N]
#            [--settings "T/B ..."] [--coretype auto|own|NAME] [--data DIR]
#   --rounds    repeats of the whole set, interleaved (default 2)
#   --epochs    timed epochs per run (default 3)
#   --steps     images in a batch-1 epoch (default 3000)
#   --workloads which to run (default "epoch-sgd epoch-adam step1 cnn-adam")
#   --cnn-limit images in a CNN epoch (default 6400; scaled to 60000)
#   --settings  PyTorch torch-threads/BLAS-threads pairs (default all four)
#   --coretype  OpenBLAS kernels for PyTorch. auto (default): the best the CPU
#               supports (Cooperlake with AVX-512 BF16, SkylakeX with AVX-512,
#               Haswell with AVX2), because OpenBLAS 0.3.21 does not recognise
#               every CPU and then falls back to slow generic kernels (Prescott);
#               own: OpenBLAS's own choice; NAME: that OPENBLAS_CORETYPE.
# anygrad runs with its default threads (every core); set AG_NUM_THREADS to
# change that. On a machine other processes keep busy, fewer threads than cores
# can be faster for both libraries (a barrier waits for a descheduled thread):
# quote ratios from quiet runs, and say which thread counts were used.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=build
ROUNDS=2
EPOCHS=3
STEPS=3000
WORKLOADS="epoch-sgd epoch-adam step1 cnn-adam"
CNN_LIMIT=6400
SETTINGS="1/1 1/2 2/1 2/2"
CORETYPE=auto
DATA=/usr/share/datasets/fashion-mnist
PY=/usr/bin/python3
while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=$2 ;;
    --rounds) ROUNDS=$2 ;;
    --epochs) EPOCHS=$2 ;;
    --steps) STEPS=$2 ;;
    --workloads) WORKLOADS=$2 ;;
    --cnn-limit) CNN_LIMIT=$2 ;;
    --settings) SETTINGS=$2 ;;
    --coretype) CORETYPE=$2 ;;
    --data) DATA=$2 ;;
    -h | --help)
        sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "compare_torch.sh: unknown option $1 (see --help)" >&2
        exit 2
        ;;
    esac
    [ $# -ge 2 ] || { echo "compare_torch.sh: $1 needs a value" >&2; exit 2; }
    shift 2
done
AG=$BUILD/cli/anygrad
for f in "$AG"; do
    [ -x "$f" ] || { echo "compare_torch.sh: $f is not built (ninja -C $BUILD)" >&2; exit 1; }
done
"$PY" -c 'import torch' 2>/dev/null || { echo "compare_torch.sh: $PY cannot import torch (apt-get install python3-torch)" >&2; exit 1; }

. bench/coretype.sh
. bench/peak_rss.sh
CORETYPE=$(openblas_coretype "$CORETYPE")
blas_env=(-u OPENBLAS_L2_SIZE -u OPENBLAS_CORETYPE)
[ "$CORETYPE" != own ] && blas_env+=(OPENBLAS_CORETYPE="$CORETYPE")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MLP_WORKLOADS=""
for w in $WORKLOADS; do
    case "$w" in
    epoch-sgd | epoch-adam | step1) MLP_WORKLOADS+="${MLP_WORKLOADS:+,}$w" ;;
    cnn-adam) ;;
    *)
        echo "compare_torch.sh: unknown workload $w" >&2
        exit 2
        ;;
    esac
done
has() { [[ " $WORKLOADS " == *" $1 "* ]]; }

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# anygrad train's epoch times (all but the first, from its CSV log) in units
# of scale seconds, appended to $tmp/ag.<workload>.
ag_run() { # workload scale train-options...
    local w=$1 scale=$2
    shift 2
    # the process's own peak, from its summary: the device probe's short-lived
    # child (GPU drivers, ~90 MB here) is not the training's memory
    if ! peak_rss "$tmp/agtree.$w" "$AG" train --val-frac 0 --epochs $((EPOCHS + 1)) --log-every 0 \
        --data "$DATA" --log "$tmp/ag.csv" "$@" >"$tmp/ag.out" 2>&1; then
        echo "anygrad train failed:" >&2
        cat "$tmp/ag.out" >&2
        exit 1
    fi
    grep -o 'peak memory [0-9.]*' "$tmp/ag.out" | awk '{ print $3 }' >>"$tmp/agrss.$w"
    local -a t
    mapfile -t t < <(awk -F, -v k="$scale" 'NR > 2 { printf "%.4f\n", ($8 - prev) * k } NR > 1 { prev = $8 }' "$tmp/ag.csv")
    printf '%s\n' "${t[@]}" >>"$tmp/ag.$w"
    echo "  anygrad: $w ${t[*]}; $(grep '^epoch' "$tmp/ag.out" | tail -n 1 | sed 's/^epoch [0-9/]* *//')"
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "PyTorch: $($PY -c 'import torch; print(torch.__version__)'), OPENBLAS_CORETYPE=$CORETYPE; anygrad: AG_NUM_THREADS=${AG_NUM_THREADS:-default (all cores)}"
echo "rounds $ROUNDS, $EPOCHS timed epochs a run (after one warm-up), $STEPS images in a batch-1 epoch, $CNN_LIMIT in a CNN epoch"
# PyTorch's RESULT lines, appended to $tmp/py.<workload>.<t>_<b>
py_run() { # script setting options...
    local script=$1 s=$2 t=${2%/*} b=${2#*/}
    shift 2
    peak_rss "$tmp/pyrss.$script.${t}_$b" env "${blas_env[@]}" OPENBLAS_NUM_THREADS="$b" "$PY" "bench/$script" --threads "$t" \
        --epochs "$EPOCHS" --data "$DATA" "$@" >"$tmp/py.out" 2>&1 ||
        { echo "$script failed:" >&2; cat "$tmp/py.out" >&2; exit 1; }
    [ "$r" = 1 ] && grep -m1 '^INFO torch' "$tmp/py.out" | sed "s|^INFO |  [$s] |"
    while read -r _ w _ vals; do
        printf '%s\n' $vals >>"$tmp/py.$w.${t}_$b"
    done < <(grep '^RESULT' "$tmp/py.out")
    echo "  PyTorch $s: $(grep '^RESULT' "$tmp/py.out" | awk '{ printf "%s %s %s; ", $2, $4, $3 }')"
}
for r in $(seq 1 "$ROUNDS"); do
    echo "== round $r =="
    for s in $SETTINGS; do
        [ -n "$MLP_WORKLOADS" ] && py_run torch_mlp.py "$s" --workloads "$MLP_WORKLOADS" --steps "$STEPS"
        has cnn-adam && py_run torch_cnn.py "$s" --limit "$CNN_LIMIT" --batch 128
    done
    has epoch-sgd && ag_run epoch-sgd 1 --model mlp --optimizer sgd --lr 0.05 --momentum 0.9 --batch 128
    has epoch-adam && ag_run epoch-adam 1 --model mlp --optimizer adam --lr 0.001 --batch 128
    has step1 && ag_run step1 "$(awk -v n="$STEPS" 'BEGIN { print 1e6 / n }')" --model mlp \
        --optimizer sgd --lr 0.002 --momentum 0.9 --batch 1 --limit "$STEPS"
    has cnn-adam && ag_run cnn-adam "$(awk -v n="$CNN_LIMIT" 'BEGIN { print 60000 / n }')" \
        --model cnn --optimizer adam --lr 0.001 --batch 128 --limit "$CNN_LIMIT"
done

# The table: PyTorch's best setting per workload, every setting, anygrad, ratio.
declare -A target=([epoch-sgd]="<= 0.7" [epoch-adam]="" [step1]="<= 0.25" [cnn-adam]="<= 1.0")
echo
echo "== medians (load average now $(cut -d' ' -f1-3 /proc/loadavg)) =="
printf '| workload | PyTorch best (torch/BLAS threads) |'
for s in $SETTINGS; do printf ' PyTorch %s |' "$s"; done
printf ' anygrad | anygrad / PyTorch best | target | peak MB anygrad | peak MB PyTorch best |\n|---|---|'
for s in $SETTINGS; do printf -- '---|'; done
printf -- '---|---|---|---|---|\n'
for w in $WORKLOADS; do
    unit=s
    [[ $w == step* ]] && unit=us
    best=""
    bests=""
    cells=""
    for s in $SETTINGS; do
        f=$tmp/py.$w.${s%/*}_${s#*/}
        m=$(median <"$f" 2>/dev/null)
        cells+=" $(awk -v v="$m" -v u="$unit" 'BEGIN { printf(u == "us" ? "%.0f" : "%.3f", v) }') |"
        if [ "$m" != nan ] && { [ -z "$best" ] || awk -v a="$m" -v b="$best" 'BEGIN { exit !(a < b) }'; }; then
            best=$m
            bests=$s
        fi
    done
    f=$tmp/ag.$w
    agm=$(median <"$f")
    ratio=$(awk -v a="$agm" -v b="$best" 'BEGIN { printf "%.2f", a / b }')
    fmt='%.3f'
    [ "$unit" = us ] && fmt='%.0f'
    # peak resident memory: the largest over the rounds; PyTorch's process runs
    # every MLP workload, so its figure is that process's
    script=torch_mlp.py
    [ "$w" = cnn-adam ] && script=torch_cnn.py
    agrss=$(sort -g "$tmp/agrss.$w" 2>/dev/null | tail -n 1)
    pyrss=$(sort -g "$tmp/pyrss.$script.${bests%/*}_${bests#*/}" 2>/dev/null | tail -n 1)
    printf "| %s (%s) | $fmt (%s) |%s $fmt | %s | %s | %s | %s |\n" "$w" "$unit" "$best" "$bests" \
        "$cells" "$agm" "$ratio" "${target[$w]}" "${agrss:-?}" "${pyrss:-?}"
done
