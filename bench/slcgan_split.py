"""Time and purity of one slcGAN split of two Fashion-MNIST classes.

    .venv/bin/python bench/slcgan_split.py --preset cpu --classes 1,8 --per-class 1000
    .venv/bin/python bench/slcgan_split.py --preset fast --device cuda --per-class 5000
    .venv/bin/python bench/slcgan_split.py --preset cpu --subset 10000 --k 2

Prints seconds, argmax purity of the children, their mass fractions and, with
``--subset`` (a random subset of all ten classes, a root split), each class's share
in each child.
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import torch

from hctree import engine
from hctree.splitters.base import MemoryCheckpointer, SplitContext, make_config
from hctree.splitters.slcgan import SLCGANSplitter

DATA = Path("/usr/share/datasets/fashion-mnist")


def load_classes(classes: list[int], per_class: int) -> tuple[torch.Tensor, np.ndarray]:
    """uint8 images ``[N, 1, 28, 28]`` and int64 labels ``[N]`` of the chosen classes."""
    with gzip.open(DATA / "train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(DATA / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    idx = np.concatenate([np.nonzero(labels == c)[0][:per_class] for c in classes])
    return torch.from_numpy(images[idx].copy()), labels[idx]


def load_subset(n: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` images drawn at random (without replacement) from the whole training set."""
    with gzip.open(DATA / "train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(DATA / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    idx = np.sort(np.random.default_rng(seed).choice(len(labels), n, replace=False))
    return torch.from_numpy(images[idx].copy()), labels[idx]


def purity(assign: np.ndarray, labels: np.ndarray) -> float:
    return sum(np.bincount(labels[assign == j]).max() for j in np.unique(assign)) / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--classes", default="1,8")
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--subset", type=int, default=0, help="random images of all classes")
    parser.add_argument("--k", type=int, default=2, help="children (with --subset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    parser.add_argument("--set", nargs="*", default=[], help="overrides, key=value")
    args = parser.parse_args()

    device = engine.resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        engine.configure_threads()
    classes = [int(c) for c in args.classes.split(",")]
    if args.subset:
        images, labels = load_subset(args.subset, args.seed)
        k = args.k
    else:
        images, labels = load_classes(classes, args.per_class)
        k = len(classes)
    config = make_config(SLCGANSplitter, args.preset, dict(s.split("=", 1) for s in args.set))
    ctx = SplitContext(
        images=images.to(device),
        membership=torch.ones(len(labels), device=device),
        previous=None,
        k=k,
        config=config,
        device=device,
        seed=args.seed,
        checkpoint=MemoryCheckpointer(),
    )
    start = time.perf_counter()
    result = SLCGANSplitter().run_stage("train", ctx)
    seconds = time.perf_counter() - start
    fractions = [round(result.metrics[f"child{j}_mass_frac"], 3) for j in range(k)]
    print(
        f"preset={args.preset} device={device} n={len(labels)} seconds={seconds:.1f} "
        f"purity={purity(result.memberships.argmax(0), labels):.3f} mass={fractions}"
    )
    if args.subset:
        assign = result.memberships.argmax(0)
        for c in np.unique(labels):
            share = np.bincount(assign[labels == c], minlength=k) / (labels == c).sum()
            print(f"class {c}: " + " ".join(f"{v:.2f}" for v in share))


if __name__ == "__main__":
    main()
