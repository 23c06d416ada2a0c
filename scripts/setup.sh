#!/usr/bin/env bash
# Set up everything hctree needs on a fresh Debian/Ubuntu machine (idempotent):
# Fashion-MNIST from the dataset-fashion-mnist package, a virtual environment in
# .venv, and hctree with its test tools, using the pinned torch pair.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  echo "setup: installing Fashion-MNIST (dataset-fashion-mnist)" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import hctree, torch, torchvision, sklearn, tqdm, pytest, nbclient, ray" 2>/dev/null; then
  # PyTorch's Linux wheels carry CUDA: the environment takes about 6.2 GB, and an
  # install that runs out of disk half-way leaves only a confusing import error
  need_kb=$((6500 * 1024 - $(du -sk .venv | cut -f1)))
  free_kb=$(df -Pk .venv | awk 'NR == 2 {print $4}')
  if [ "$free_kb" -lt "$need_kb" ]; then
    echo "setup: .venv needs $((need_kb / 1024)) MB more disk and only $((free_kb / 1024)) MB is free here" >&2
    exit 1
  fi
  echo "setup: installing hctree and its dependencies into .venv (about a minute)" >&2
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
  # pip's notes about this machine's extra package folders and setuptools' general
  # note on editable installs say nothing about hctree; errors still show
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]" 2>&1 | grep -v \
    -e "is ignored" -e "^ *$" -e "Editable installation" -e "be careful with folders" \
    -e "name as your package" -e "^ *\*\**$" -e "^ *!!$" -e "with strategy, WheelFile" || true
  .venv/bin/python -c "import hctree, torch, torchvision" || { echo "setup: installation failed" >&2; exit 1; }
fi
