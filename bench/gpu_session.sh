#!/usr/bin/env bash
# The GPU records in one call of at most about nine and a half minutes, for a machine that
# already has torch and hctree's other dependencies (hctree itself runs from the
# checkout through PYTHONPATH) and Fashion-MNIST copied to DATA (default .gpudata).
#
#     OUT=/tmp/gpu bash bench/gpu_session.sh
#
# Each step has its own time limit, so a slow one cannot take the others' time;
# every step writes its log (JSON lines and the last progress lines) to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/out/gpu}
. bench/gpu_common.sh

: > "$OUT/summary.txt"
machine_summary

# Where a step's time goes (kernels, launches, host waits), width 128.
step profile 90 "$PY" bench/profile_step.py --device cuda --preset fast --warmup 10 --iters 30
# Steps per second and FLOP/s against the DataLoader baseline, eager and CUDA graphs.
step throughput 180 "$PY" bench/throughput.py --device cuda --presets fast --widths 32,128 \
  --warmup 30 --iters 40 --repeats 3 --compile off,cudagraphs
# The k groups of a refinement as one vmapped model against the sequential loop.
step batched 60 "$PY" bench/batched_refine.py --device cuda --preset paper --k 2 \
  --variants sequential,batched
# Several leaves' raw splits as one vmapped step against one after another.
step splits 80 "$PY" bench/batched_splits.py --device cuda --preset fast --leaves 2,4,8 \
  --iters 40
# Refinement collapses: the collapse test in eval and in train BN mode, paper networks.
step collapse 100 "$PY" bench/collapse_check.py --device cuda --preset fast --random 20000 \
  --set embed_iters=0 --set raw_iters=1500 --set refine_iters=700 --set refinements=2
# How far the default fast tree of all 70,000 images gets (its progress lines).
step tree 50 "$PY" -m cli.main grow fashion-mnist --leaves 10 --device cuda -o /tmp/gpu-tree.h5
cat "$OUT/summary.txt"
