#!/usr/bin/env bash
# Quality against budget on all 70,000 Fashion-MNIST images, in one GPU call of
# about nine minutes: the points of the curve that make the GPU default a
# measured choice. For a machine set up as for bench/gpu_session.sh.
#
#     OUT=/tmp/curve bash bench/gpu_curve.sh
#
# First the `cpu` recipe's tree alone (its wall time is the GPU's cost of today's
# default), then the other arms side by side, each tree its own process with two
# CPU threads (their walls are then upper bounds):
#
#   cpu      the `cpu` preset: 2,000 warm-up steps, 800 GAN steps per split
#   cpu4x    the same networks, four times the steps (8,000 and 3,200)
#   wide4x   four times the steps with trunk and generators twice as wide
#   fast     the `fast` preset (the paper's networks, epoch budgets): how far it
#            gets in the time, from its progress lines
#
# Every tree runs under its own time limit. $OUT gets curve.jsonl (one line per
# finished tree: settings, seed, seconds, ACC, NMI, DP), logs.txt (each arm's
# last progress lines) and summary.txt (each arm's exit status and wall).
# DRY=1 checks the script on a CPU in a few minutes (600 images, 3 leaves,
# a few steps per stage); its scores mean nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out/curve}
. bench/gpu_common.sh
RUNS=${RUNS:-/root/runs/curve}
mkdir -p "$RUNS"
: > "$OUT/summary.txt"
: > "$OUT/curve.jsonl"
: > "$OUT/logs.txt"

DEVICE=cuda SIZE=() SHORT=() SOLO=200 SIDE=330
if [ "${DRY:-0}" = 1 ]; then
  DEVICE=cpu SIZE=(--subset 600 --leaves 3) SOLO=120 SIDE=240
  SHORT=(--set embed_iters=10 --set raw_iters=10 --set raw_epochs=1 --set fit_iters=5
    --set embed_batch=32)
fi
machine_summary

FOUR=(--set embed_iters=8000 --set raw_iters=3200)
WIDE=(--set width_d=64 --set width_g=32)

arm() {  # arm NAME SECONDS SEED ARGS...: one tree under a limit, in the background
  local name=$1 limit=$2 seed=$3
  shift 3
  (
    started=$SECONDS
    timeout "$limit" "$PY" bench/tree_quality.py --device "$DEVICE" --threads 2 --seed "$seed" \
      --out "$RUNS/$name.h5" "${SIZE[@]}" "$@" "${SHORT[@]}" > "$RUNS/$name.full" 2>&1
    echo "$name: rc $? in $((SECONDS - started)) s" >> "$OUT/summary.txt"
  ) &
}

collect() {  # each arm's JSON line and last progress lines into $OUT
  for full in "$RUNS"/*.full; do
    name=$(basename "$full" .full)
    grep '^{"splitter"' "$full" | sed "s/^{/{\"arm\": \"${name%-s*}\", /" >> "$OUT/curve.jsonl"
    { echo "== $name"; tr '\r' '\n' < "$full" | grep -v '^{"splitter"' | tail -n 25; } \
      >> "$OUT/logs.txt"
  done
}

rm -f "$RUNS"/*.full
arm cpu-s0 "$SOLO" 0 --preset cpu
wait
echo "-- side by side" >> "$OUT/summary.txt"
arm cpu-s1 "$SIDE" 1 --preset cpu
arm cpu-s2 "$SIDE" 2 --preset cpu
for seed in 0 1 2; do
  arm "cpu4x-s$seed" "$SIDE" "$seed" --preset cpu "${FOUR[@]}"
done
arm wide4x-s0 "$SIDE" 0 --preset cpu "${FOUR[@]}" "${WIDE[@]}"
arm fast-s0 "$SIDE" 0 --preset fast
wait
collect
cat "$OUT/summary.txt" "$OUT/curve.jsonl"
