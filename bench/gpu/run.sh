#!/usr/bin/env bash
# The prepared run for a real GPU (../shared/gpu/README.md): builds nothing, fits in
# about 8 minutes, writes every log to $OUT (else bench/gpu/logs) and prints one
# table last. On the GPU machine, from the project root:
#   source .gpu/env.sh; bash bench/gpu/run.sh BUILD_DIR
# Per API (Vulkan, OpenCL): the device list, `anygrad check --quick` (every op against
# the fp64 reference on the GPU, and the MLP agreement), the SGEMM sweep (n = 1024,
# 2048, 4096), the 784-256-128-10 MLP Adam step at batch 128 and the TF-tutorial CNN
# Adam step at batch 128 and 1024, and the character GPT of issue 19 in its bigger
# configuration (6 blocks, width 384, 6 heads, context 256, batch 64: tokens per
# second, with PyTorch's twin on CUDA beside it when python3 has torch with CUDA).
# --quick shrinks every size, to rehearse the script on lavapipe and PoCL. Targets on
# an H200 (issue 16): SGEMM n=4096 >= 30 TFLOP/s, MLP step <= 780 us, CNN step
# <= 2300 us (128) and <= 5100 us (1024).
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${1:-build}
quick=${2:-}
logs=${OUT:-bench/gpu/logs}
mkdir -p "$logs"
if [ "$quick" = --quick ]; then
    gemm_n=(128 256) mlp_steps=10 cnn_batches=(8 16) cnn_steps=2
    gpt=(--layers 1 --width 32 --heads 2 --context 16 --batch 4) gpt_steps=6
else
    gemm_n=(1024 2048 4096) mlp_steps=200 cnn_batches=(128 1024) cnn_steps=20
    gpt=(--layers 6 --width 384 --heads 6 --context 256 --batch 64) gpt_steps=40
fi
# tokens a GPT step: batch x context
gpt_tokens=$((${gpt[7]} * ${gpt[9]}))
# median ms per step of a char_gpt / gpt_twin log -> tokens per second
tok_s() { sed -n 's/.* \([0-9.]*\) ms\/step (median).*/\1/p' "$1" | tail -n 1 |
          awk -v t="$gpt_tokens" '{ if ($1 > 0) printf "%.0f", t * 1000 / $1 }'; }
gpt_run=(--steps "$gpt_steps" --eval-every "$gpt_steps" --eval-batches 2 "${gpt[@]}")
# step name, timeout in seconds, log file, command...
step() {
    local name=$1 limit=$2 log=$3
    shift 3
    local t0=$SECONDS
    timeout "$limit" "$@" >"$logs/$log" 2>&1
    local rc=$?
    echo "[$name] exit $rc in $((SECONDS - t0)) s" | tee -a "$logs/summary.txt"
    return $rc
}
: >"$logs/summary.txt"
"$BUILD/cli/anygrad" devices -v >"$logs/devices.txt" 2>&1
cat "$logs/devices.txt"
rows=()
for api in vulkan opencl; do
    if ! grep -qE "^[ *] [0-9]+ +$api " "$logs/devices.txt"; then
        rows+=("$api|no device|-|-|-|-|-")
        continue
    fi
    step "$api check" 120 "check_$api.txt" "$BUILD/cli/anygrad" check --device "$api" --quick
    check=$(grep -oE '[0-9]+ cases, [0-9]+ failed' "$logs/check_$api.txt" | tail -n 1)
    step "$api sgemm" 60 "gemm_$api.txt" env AG_DEVICE="$api" "$BUILD/bench/gemm_sweep" "${gemm_n[@]}"
    gemm=$(sed -n 's/^sgemm n=\([0-9]*\):.* \([0-9.]*\) TFLOP\/s$/\1: \2/p' "$logs/gemm_$api.txt" | tr '\n' ' ')
    step "$api mlp" 30 "mlp_$api.txt" env AG_DEVICE="$api" "$BUILD/bench/mlp_step" 128 "$mlp_steps" adam
    mlp=$(sed -n 's/.*median step \([0-9]*\) us.*/\1 us/p' "$logs/mlp_$api.txt")
    cnn=()
    for b in "${cnn_batches[@]}"; do
        step "$api cnn $b" 60 "cnn${b}_$api.txt" "$BUILD/bench/cnn_step" --batch "$b" --steps "$cnn_steps" \
            --device "$api"
        cnn+=("$(sed -n 's/.*median step \([0-9.]*\) ms.*/\1 ms/p' "$logs/cnn${b}_$api.txt")")
    done
    step "$api gpt" 120 "gpt_$api.txt" env AG_DEVICE="$api" "$BUILD/examples/char_gpt" "${gpt_run[@]}" --sample 0
    gtok=$(tok_s "$logs/gpt_$api.txt")
    name=$(sed -n 's/^device \(.*\) ([a-z]*)$/\1/p' "$logs/gemm_$api.txt" | cut -c1-40)
    rows+=("$api|$name|${check:-failed}|${gemm:--}|${mlp:--}|${cnn[0]:--}|${cnn[1]:--}|${gtok:--}")
done
# PyTorch's twin of the same GPT on CUDA (fp32, TF32 off), where there is one
py=${AG_TORCH_PYTHON:-python3}
if "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
    step "torch gpt" 120 gpt_torch.txt "$py" bench/gpt_twin.py --device cuda "${gpt_run[@]}"
    rows+=("torch|PyTorch CUDA (gpt only)|-|-|-|-|-|$(tok_s "$logs/gpt_torch.txt")")
else
    rows+=("torch|no PyTorch with CUDA|-|-|-|-|-|-")
fi
{
    echo
    printf '%-7s | %-40s | %-22s | %-32s | %-9s | %-10s | %-10s | %-9s\n' api device check \
        "sgemm TFLOP/s (n: rate)" "mlp b128" "cnn b${cnn_batches[0]}" "cnn b${cnn_batches[1]}" "gpt tok/s"
    for r in "${rows[@]}"; do
        IFS='|' read -r a d c g m c1 c2 t <<<"$r"
        printf '%-7s | %-40s | %-22s | %-32s | %-9s | %-10s | %-10s | %-9s\n' "$a" "$d" "$c" "$g" "$m" "$c1" "$c2" "$t"
    done
} | tee "$logs/table.txt"
