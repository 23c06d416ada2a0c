"""Time and purity of one C3-GAN split of a Fashion-MNIST subset.

Splits the root (all-ones membership) of the chosen images into ``--k`` children with
one preset and prints the seconds spent, iterations per second, the child masses and
the purity (size-weighted majority-class fraction of the argmax children) and how
well whole classes stay together (``class_kept_together``: the mean over classes of
the largest fraction of the class that one child receives; 1.0 = no class is cut).

    .venv/bin/python bench/c3gan_split.py --preset tiny --classes 1,8 --per-class 900
    .venv/bin/python bench/c3gan_split.py --preset cpu --random 10000
    .venv/bin/python bench/c3gan_split.py --preset fast --device cuda --random 60000 --k 2
    .venv/bin/python bench/c3gan_split.py --preset cpu --random 10000 --set iterations=300

Timings depend on what else runs on the machine; ``--threads`` sets torch's CPU threads.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hctree import engine
from hctree.data import load_images
from hctree.splitters import make_config
from hctree.splitters.base import MemoryCheckpointer, NullProgress, SplitContext
from hctree.splitters.c3gan import C3GANSplitter


def choose_rows(labels: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    rng = np.random.default_rng(args.data_seed)
    if args.classes:
        picked = [
            rng.choice(np.flatnonzero(labels == int(c)), args.per_class, replace=False)
            for c in args.classes.split(",")
        ]
        return np.sort(np.concatenate(picked))
    return np.sort(rng.choice(len(labels), args.random, replace=False))


def purity(assign: np.ndarray, labels: np.ndarray) -> float:
    return sum(np.bincount(labels[assign == j]).max() for j in np.unique(assign)) / len(assign)


def class_shares(assign: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """float ``[classes, k]``: the fraction of each class's images sent to each child."""
    counts = np.stack(
        [np.bincount(labels[assign == j], minlength=labels.max() + 1) for j in range(k)]
    )
    return (counts / np.maximum(counts.sum(0), 1)).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu", choices=sorted(C3GANSplitter.presets))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--classes", default="", help="comma-separated class ids, e.g. 1,8")
    parser.add_argument("--per-class", type=int, default=900)
    parser.add_argument("--random", type=int, default=10000, help="images drawn at random")
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="0: every core")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        engine.configure_threads()
    device = engine.resolve_device(args.device)
    data = load_images("fashion-mnist")
    rows = choose_rows(data.labels, args)
    labels = data.labels[rows]
    images = torch.from_numpy(data.images[rows]).to(device)
    overrides = dict(item.split("=", 1) for item in args.set)
    config = make_config(C3GANSplitter, args.preset, overrides)
    ctx = SplitContext(
        images=images,
        membership=torch.ones(len(rows), device=device),
        previous=None,
        k=args.k,
        config=config,
        device=device,
        seed=args.seed,
        checkpoint=MemoryCheckpointer(),
        progress=NullProgress(),
    )
    start = time.perf_counter()
    result = C3GANSplitter().run_stage("train", ctx)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    assign = result.memberships.argmax(0)
    shares = class_shares(assign, labels, args.k)
    present = np.bincount(labels) > 0
    masses = ", ".join(f"{result.metrics[f'mass_fraction_{j}']:.3f}" for j in range(args.k))
    print(
        f"c3gan preset={args.preset} n={len(rows)} k={args.k} device={device} "
        f"threads={torch.get_num_threads()} iterations={config.iterations}"
    )
    print(
        f"seconds={seconds:.1f} it/s={config.iterations / seconds:.1f} "
        f"purity={purity(assign, labels):.3f} masses=[{masses}] "
        f"class_kept_together={shares[present].max(1).mean():.3f}"
    )
    print("share of each class sent to child 0:", np.round(shares[present, 0], 2).tolist())


if __name__ == "__main__":
    main()
