"""Time and judge one split of a splitter on a Fashion-MNIST subset.

Runs the stages of one split of the root (all-ones membership) directly, without a
tree file, and prints per stage: seconds, iterations per second, child masses,
purity (share of each child's mass held by its majority class, mass-weighted) and
for every class the fraction of its mass that went to child 0 (a good root split
sends whole classes one way: values near 0 or 1) and *whole*, the mass-weighted
share of each class that went to its main child (1.0: no class was cut).

    .venv/bin/python bench/split_quality.py --preset cpu --random 10000
    .venv/bin/python bench/split_quality.py --preset tiny --classes 1,8 --per-class 1000
    .venv/bin/python bench/split_quality.py --preset cpu --set raw_iters=600 --set width_d=48

Timings depend on what else runs on the machine; ``--threads`` sets torch's CPU threads.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hctree import engine
from hctree.data import load_images
from hctree.splitters import get_splitter, make_config
from hctree.splitters.base import MemoryCheckpointer, NullProgress, SplitContext


class Rate(NullProgress):
    """Remembers how many iterations the last stage ran."""

    def __init__(self) -> None:
        self.total = 0
        self.messages: list[str] = []

    def start(self, title: str, total: int, done: int = 0) -> None:
        self.total = total - done

    def message(self, text: str) -> None:
        self.messages.append(text)


def pick(labels: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    rng = np.random.default_rng(args.data_seed)
    if args.classes:
        wanted = [int(c) for c in args.classes.split(",")]
        rows = [
            rng.choice(np.flatnonzero(labels == c), args.per_class, replace=False) for c in wanted
        ]
        return np.sort(np.concatenate(rows))
    return np.sort(rng.choice(len(labels), args.random, replace=False))


def describe(children: np.ndarray, labels: np.ndarray, n_classes: int) -> str:
    """children float [k, N]; labels int [N] -> purity, masses and per-class share to child 0."""
    per = np.stack([np.bincount(labels, weights=c, minlength=n_classes) for c in children])
    purity = per.max(1).sum() / per.sum()
    hard = np.stack(
        [
            np.bincount(labels[children.argmax(0) == j], minlength=n_classes)
            for j in range(len(children))
        ]
    )
    hard_purity = hard.max(1).sum() / max(hard.sum(), 1)
    to_first = per[0] / np.maximum(per.sum(0), 1e-9)
    whole = per.max(0).sum() / per.sum()  # share of each class's mass in its main child
    present = per.sum(0) > 0
    shares = " ".join(f"{c}:{to_first[c]:.2f}" for c in range(n_classes) if present[c])
    masses = " ".join(f"{m:.0f}" for m in children.sum(1))
    return f"purity {purity:.3f} (hard {hard_purity:.3f})  whole {whole:.3f}  masses {masses}  to child 0: {shares}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splitter", default="hcmgan")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--classes", default="", help="comma-separated class ids, e.g. 1,8")
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--random", type=int, default=10000, help="random subset size")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = engine.resolve_device(args.device)
    data = load_images("fashion-mnist")
    rows = pick(data.labels, args)
    labels = data.labels[rows]
    images = torch.from_numpy(np.ascontiguousarray(data.images[rows])).to(device)
    cls = get_splitter(args.splitter)
    overrides = dict(item.split("=", 1) for item in args.set)
    config = make_config(cls, args.preset, overrides)
    splitter = cls()
    parent = torch.ones(len(rows), device=device)
    previous = None
    print(f"{args.splitter}/{args.preset} {overrides} on {len(rows)} images, k={args.k}")
    total = 0.0
    for stage in splitter.stages(config):
        progress = Rate()
        ctx = SplitContext(
            images=images,
            membership=parent,
            previous=previous,
            k=args.k,
            config=config,
            device=device,
            seed=engine.derive_seed(args.seed, "r", stage),
            checkpoint=MemoryCheckpointer(),
            progress=progress,
        )
        started = time.perf_counter()
        result = splitter.run_stage(stage, ctx)
        seconds = time.perf_counter() - started
        total += seconds
        children = np.asarray(result.memberships)
        rate = progress.total / seconds
        metrics = " ".join(f"{k}={v:.3g}" for k, v in result.metrics.items())
        print(f"{stage:8s} {seconds:6.1f}s {rate:6.1f} it/s  {describe(children, labels, 10)}")
        print(f"         {metrics}")
        for text in progress.messages:
            print(f"         {text}")
        previous = torch.as_tensor(children, device=device)
        if result.stop:
            break
    print(f"total {total:.1f}s")


if __name__ == "__main__":
    main()
