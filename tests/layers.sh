#!/usr/bin/env bash
# No include or call from a lower layer into a higher one (docs/architecture.md; the layer
# map and the known exceptions are in scripts/check_layers.py).
set -eu
cd "$(dirname "$0")/.."
python3 scripts/check_layers.py "${1:-build}"
