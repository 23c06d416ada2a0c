# Shared by the one-call GPU scripts (bench/gpu_session.sh, bench/gpu_curve.sh):
# source it from the repository root with OUT set. It puts Fashion-MNIST where
# hctree looks for it (copied from DATA, default .gpudata, on a machine without
# it), runs hctree from the checkout, and defines `step` and `machine_summary`.
DATA=${DATA:-.gpudata}
mkdir -p "$OUT"
if [ -d "$DATA" ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then
  mkdir -p /usr/share/datasets/fashion-mnist && cp "$DATA"/* /usr/share/datasets/fashion-mnist/
fi
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

step() {  # step NAME SECONDS COMMAND...: run with a limit, keep the log's tail
  local name=$1 limit=$2
  shift 2
  local started=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.full" 2>&1
  local rc=$?
  tail -c 20000 "$OUT/$name.full" | tr '\r' '\n' | tail -n 60 > "$OUT/$name.log"
  rm -f "$OUT/$name.full"
  echo "$name: rc $rc in $((SECONDS - started)) s" | tee -a "$OUT/summary.txt"
}

machine_summary() {  # the GPU, its driver and torch's CUDA, appended to $OUT/summary.txt
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$OUT/summary.txt" 2>&1
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
    >> "$OUT/summary.txt"
}
