#!/usr/bin/env bash
# anygrad against PyTorch (Debian python3-torch, CPU) on the issue-8 MLP
# workloads, in the same run, interleaved round by round:
#   epoch-sgd   one epoch of 784-256-128-10 on the 60000 Fashion-MNIST training
#               images, batch 128, SGD lr 0.05 momentum 0.9 (anygrad: `anygrad
#               train`'s own epoch time, evaluation excluded)
#   epoch-adam  the same with Adam lr 1e-3
#   step1       one training step (fwd + bwd + SGD-momentum), batch 1 (anygrad:
#               bench/mlp_step)
#   step128     the same, batch 128
# PyTorch runs at every torch/BLAS thread setting (../shared/baselines.md:
# Debian's torch has an OpenMP pool and a separate OpenBLAS pool that fight over
# the cores) and is compared at its best one per workload. Reported times are
# medians: epochs pooled over rounds (one warm-up epoch each, not counted), steps
# the median of each round's median. The machine may be shared and noisy: only
# ratios from the same run mean anything.
#
# usage: bench/compare_torch.sh [--build DIR] [--rounds R] [--epochs E]
#            [--steps N] [--settings "T/B ..."] [--coretype auto|own|NAME]
#            [--data DIR]
#   --coretype  OpenBLAS kernels for PyTorch. auto (default): the best the CPU
#               supports (Cooperlake with AVX-512 BF16, SkylakeX with AVX-512,
#               Haswell with AVX2), because OpenBLAS 0.3.21 does not recognise
#               every CPU and then falls back to slow generic kernels (Prescott);
#               own: OpenBLAS's own choice; NAME: that OPENBLAS_CORETYPE.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=build
ROUNDS=2
EPOCHS=3
STEPS=2000
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
AG=$BUILD/src/cli/anygrad
STEP=$BUILD/bench/mlp_step
for f in "$AG" "$STEP"; do
    [ -x "$f" ] || { echo "compare_torch.sh: $f is not built (ninja -C $BUILD)" >&2; exit 1; }
done
"$PY" -c 'import torch' 2>/dev/null || { echo "compare_torch.sh: $PY cannot import torch (apt-get install python3-torch)" >&2; exit 1; }

flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
if [ "$CORETYPE" = auto ]; then
    case "$flags" in
    *avx512_bf16*) CORETYPE=Cooperlake ;;
    *avx512f*) CORETYPE=SkylakeX ;;
    *avx2*) CORETYPE=Haswell ;;
    *) CORETYPE=own ;;
    esac
fi
blas_env=(-u OPENBLAS_L2_SIZE -u OPENBLAS_CORETYPE)
[ "$CORETYPE" != own ] && blas_env+=(OPENBLAS_CORETYPE="$CORETYPE")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
WORKLOADS="epoch-sgd epoch-adam step1 step128"

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# anygrad train's epoch times (all but the first) from its CSV log.
ag_epochs() { # optimizer lr momentum -> appends to $tmp/ag.epoch-<optimizer>
    local opt=$1
    local -a extra=()
    [ "$opt" = sgd ] && extra=(--momentum "$3")
    if ! "$AG" train --model mlp --optimizer "$opt" --lr "$2" "${extra[@]}" --batch 128 \
        --val-frac 0 --epochs $((EPOCHS + 1)) --log-every 0 --data "$DATA" \
        --log "$tmp/ag.csv" >"$tmp/ag.out" 2>&1; then
        echo "anygrad train failed:" >&2
        cat "$tmp/ag.out" >&2
        exit 1
    fi
    grep '^epoch' "$tmp/ag.out" | tail -n 1 | sed "s/^/  anygrad $opt: /"
    awk -F, 'NR > 2 { print $8 - prev } NR > 1 { prev = $8 }' "$tmp/ag.csv" >>"$tmp/ag.epoch-$opt"
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "PyTorch: $($PY -c 'import torch; print(torch.__version__)'), OPENBLAS_CORETYPE=$CORETYPE; anygrad: AG_NUM_THREADS=${AG_NUM_THREADS:-default (all cores)}"
echo "rounds $ROUNDS, $EPOCHS timed epochs a run, $STEPS timed steps a run"
for r in $(seq 1 "$ROUNDS"); do
    echo "== round $r =="
    for s in $SETTINGS; do
        t=${s%/*}
        b=${s#*/}
        env "${blas_env[@]}" OPENBLAS_NUM_THREADS="$b" "$PY" bench/torch_mlp.py --threads "$t" \
            --epochs "$EPOCHS" --steps "$STEPS" --data "$DATA" >"$tmp/py.out" 2>&1 ||
            { echo "torch_mlp.py failed:" >&2; cat "$tmp/py.out" >&2; exit 1; }
        [ "$r" = 1 ] && grep -m1 '^INFO torch' "$tmp/py.out" | sed "s|^INFO |  [$s] |"
        while read -r _ w _ vals; do
            printf '%s\n' $vals >>"$tmp/py.$w.${t}_$b"
        done < <(grep '^RESULT' "$tmp/py.out")
        echo "  PyTorch $s: $(grep '^RESULT' "$tmp/py.out" | awk '{ printf "%s %s %s; ", $2, $4, $3 }')"
    done
    ag_epochs sgd 0.05 0.9
    ag_epochs adam 0.001
    for b in 1 128; do
        n=$STEPS
        [ "$b" -gt 1 ] && n=$((STEPS / 5))
        line=$("$STEP" "$b" "$n" sgd) || { echo "mlp_step failed" >&2; exit 1; }
        echo "  anygrad: $line"
        echo "$line" | sed -n 's/.*median step \([0-9.]*\) us.*/\1/p' >>"$tmp/ag.step$b"
    done
done

# The table: PyTorch's best setting per workload, every setting, anygrad, ratio.
declare -A target=([epoch-sgd]="<= 0.7" [epoch-adam]="" [step1]="<= 0.25" [step128]="")
echo
echo "== medians (load average now $(cut -d' ' -f1-3 /proc/loadavg)) =="
printf '| workload | PyTorch best (torch/BLAS threads) |'
for s in $SETTINGS; do printf ' PyTorch %s |' "$s"; done
printf ' anygrad | anygrad / PyTorch best | target |\n|---|---|'
for s in $SETTINGS; do printf -- '---|'; done
printf -- '---|---|---|\n'
for w in $WORKLOADS; do
    unit=s
    [[ $w == step* ]] && unit=us
    best=""
    bests=""
    cells=""
    for s in $SETTINGS; do
        f=$tmp/py.$w.${s%/*}_${s#*/}
        m=$(median <"$f" 2>/dev/null)
        cells+=" $m |"
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
    printf "| %s (%s) | $fmt (%s) |%s $fmt | %s | %s |\n" "$w" "$unit" "$best" "$bests" "$cells" "$agm" \
        "$ratio" "${target[$w]}"
done
