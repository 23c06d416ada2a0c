#!/usr/bin/env bash
# Set up (if needed), then grow a 10-leaf tree over a 10,000-image Fashion-MNIST
# subset with the cpu preset, render it and print its scores. Rerunning resumes
# an interrupted run; delete runs/quickstart to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=runs/quickstart
mkdir -p "$OUT"
.venv/bin/hctree grow fashion-mnist --subset 10000 --leaves 10 --splitter hcmgan -o "$OUT/tree.h5" "$@"
.venv/bin/hctree render "$OUT/tree.h5" -o "$OUT/tree.png"
.venv/bin/hctree eval "$OUT/tree.h5"
echo "quickstart: tree in $OUT/tree.h5, figure in $OUT/tree.png"
