#!/usr/bin/env bash
# Checkpoints load in PyTorch: train the MLP and the CNN briefly with
# `anygrad train --save`, evaluate each checkpoint with `anygrad eval` and with
# PyTorch (tests/torch_interop.py: own safetensors parser, nn.Sequential with
# anygrad's names, load_state_dict(strict=True), Adam state loaded into
# torch.optim.Adam), and compare the test loss (relative 1e-4) and the number of
# correct test images (within 2 of 10000: float differences may flip a near tie);
# then attention modules against PyTorch's (outputs and gradients).
# Needs Debian's python3-torch; without it prints "skipped" and exits 77.
# Usage: tests/torch_interop.sh [BUILD_DIR]
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-${BUILD:-build}}
AG=$BUILD/cli/anygrad
PY=${AG_TORCH_PYTHON:-/usr/bin/python3}
DATA=${AG_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
    echo "torch_interop: skipped ($PY has no torch: apt-get install python3-torch)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
check() { # model limit
    local m=$1 limit=$2 ours theirs
    if ! AG_DEVICE=cpu "$AG" train --model "$m" --limit "$limit" --epochs 1 --data "$DATA" \
        --save "$tmp/$m.st" >"$tmp/train.out" 2>&1 ||
        ! ours=$(AG_DEVICE=cpu "$AG" eval "$tmp/$m.st" --data "$DATA" 2>&1) ||
        ! theirs=$(OMP_NUM_THREADS=1 "$PY" tests/torch_interop.py "$tmp/$m.st" "$DATA" 2>&1); then
        echo "FAIL  $m: a run failed"
        cat "$tmp/train.out"
        echo "$ours"
        echo "$theirs"
        fail=$((fail + 1))
        return
    fi
    local l1 c1 l2 c2
    l1=$(sed -n 's/^test loss \([0-9.e+-]*\).*/\1/p' <<<"$ours")
    c1=$(sed -n 's/^test accuracy \([0-9.]*\) (\([0-9]*\) images).*/\1 \2/p' <<<"$ours")
    l2=$(sed -n 's/.* loss=\([0-9.e+-]*\) .*/\1/p' <<<"$theirs")
    c2=$(sed -n 's/.* correct=\([0-9]*\).*/\1/p' <<<"$theirs")
    read -r acc n <<<"$c1"
    c1=$(awk -v a="$acc" -v n="$n" 'BEGIN { printf "%d", a * n + 0.5 }')
    if [ -n "$l1" ] && [ -n "$l2" ] && awk -v a="$l1" -v b="$l2" -v x="$c1" -v y="$c2" \
        'BEGIN { d = a - b; if (d < 0) d = -d; e = x - y; if (e < 0) e = -e;
                 exit !(d <= 1e-4 * b + 1e-4 && e <= 2) }'; then
        echo "ok    $m: anygrad loss $l1, $c1 correct; PyTorch loss $l2, $c2 correct"
        pass=$((pass + 1))
    else
        echo "FAIL  $m: anygrad loss '$l1', '$c1' correct; PyTorch loss '$l2', '$c2' correct"
        echo "$ours"
        echo "$theirs"
        fail=$((fail + 1))
    fi
}
check mlp 3000
check cnn 300
# attention: a causal nn.MultiheadAttention and a pre-LN nn.TransformerEncoderLayer
# loaded from anygrad's modules (strict=True) give the same outputs and
# parameter gradients (tests/attention_twin.c, tests/torch_attention.py)
# computed on every backend built
# ... and a GPT (bench/gpt_twin.py's), and a checkpoint of anygrad train --model
# gpt loaded strictly into it gives anygrad's logits
"$AG" train --model gpt --text /usr/share/common-licenses/GPL-3 --blocks 1 --heads 2 --width 16 \
    --context 16 --batch 4 --steps 20 --eval-every 20 --eval-batches 2 --device cpu \
    --save "$tmp/gpt.st" >"$tmp/gpt.out" 2>&1 || { echo "FAIL  training the gpt checkpoint:"; cat "$tmp/gpt.out"; fail=$((fail + 1)); }
for dev in cpu opencl vulkan; do
    "$AG" devices 2>/dev/null | grep -qE "^[ *] [0-9]+ +$dev " || continue
    rm -f "$tmp"/*.safetensors
    if AG_DEVICE=$dev "$BUILD/tests/attention-twin" "$tmp" "$tmp/gpt.st" >"$tmp/twin.out" 2>&1 &&
        (cd tests && OMP_NUM_THREADS=1 "$PY" torch_attention.py "$tmp" "$tmp/gpt.st") >"$tmp/twin.py" 2>&1; then
        sed "s/^/[$dev] /" "$tmp/twin.py"
        pass=$((pass + 1))
    else
        echo "FAIL  attention on $dev against PyTorch:"
        cat "$tmp/twin.out" "$tmp/twin.py"
        fail=$((fail + 1))
    fi
done
echo "torch_interop: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
