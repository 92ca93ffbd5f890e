#!/usr/bin/env bash
# The character-level GPT (examples/char_gpt.c) against its PyTorch twin
# (bench/gpt_twin.py) in one run on this machine: validation loss at 500, 1000
# and 2000 steps (or --steps), median ms per step and peak RSS, PyTorch at each
# thread count given (default 1 and 2; its best is the reference). Prints the
# load average before and after: these machines are noisy.
# usage: bench/compare_gpt.sh [--build DIR] [--steps N] [--threads "1 2"] [--device NAME]
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=build
steps=2000
threads="1 2"
device=cpu
while [ $# -gt 0 ]; do
    case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    *) echo "usage: bench/compare_gpt.sh [--build DIR] [--steps N] [--threads \"1 2\"] [--device NAME]" >&2; exit 2 ;;
    esac
done
PY=${AG_TORCH_PYTHON:-/usr/bin/python3}
every=$((steps < 500 ? steps : 500))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
AG_DEVICE=$device /usr/bin/time -f "peak RSS %M KB" "$BUILD/examples/char_gpt" --steps "$steps" \
    --eval-every "$every" --sample 0 >"$tmp/ag" 2>&1 || { cat "$tmp/ag"; exit 1; }
for t in $threads; do
    "$PY" bench/gpt_twin.py --steps "$steps" --eval-every "$every" --threads "$t" >"$tmp/pt$t" 2>&1 ||
        { cat "$tmp/pt$t"; exit 1; }
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
row() { # label file
    local rss
    rss=$(sed -n 's/^peak RSS \([0-9]*\) KB/\1/p; s/^peak RSS \([0-9]*\) MB/\1000/p' "$2" | head -n 1)
    awk -v l="$1" -v rss="$rss" '/^step/ { s = s sprintf("  %5d: %s", $2, $10); ms = $11 }
        END { printf "%-22s%s   %6s ms/step   %5d MB\n", l, s, ms, rss / 1000 }' "$2"
}
echo "validation loss at step (and median step time, peak RSS):"
row "anygrad ($device)" "$tmp/ag"
for t in $threads; do row "PyTorch ($t threads)" "$tmp/pt$t"; done
head -n 1 "$tmp/ag"
head -n 1 "$tmp/pt${threads%% *}"
