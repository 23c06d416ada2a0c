"""Replay a tree's root raw split step by step: the seed's targets, then C's partition.

    .venv/bin/python bench/seed_trace.py --data bench/out/digits28.npz --seed 2 --every 200

Builds the root split of ``hctree grow DATA --seed S`` (preset ``cpu`` with any
``--set`` overrides; the same stage seed, so the same computation on the same CPU),
runs its warm-up, prints the class make-up of each child of the seed's targets,
then of C's hard partition of the real images every ``--every`` GAN iterations,
and of the final children. Tells apart a split whose seed was wrong from one that
the GAN phase moved away from a good seed.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from hctree import engine
from hctree.data import load_images
from hctree.engine import derive_seed
from hctree.splitters import hcmgan, make_config
from hctree.splitters.base import MemoryCheckpointer, SplitContext


def make_up(tag: str, assign: np.ndarray, labels: np.ndarray, k: int, classes: int) -> None:
    for j in range(k):
        counts = np.bincount(labels[assign == j], minlength=classes)
        print(
            f"{tag:>10} child {j}: {int((assign == j).sum()):6d} images, by class {counts.tolist()}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", dest="settings", action="append", default=[])
    args = parser.parse_args()
    engine.configure_threads(args.threads)
    data = load_images(args.data, subset=args.subset, seed=args.seed)
    config = make_config(hcmgan.HCMGANSplitter, "cpu", dict(s.split("=", 1) for s in args.settings))
    device = torch.device("cpu")
    images = torch.from_numpy(data.images)
    everyone = torch.ones(len(images))
    ctx = SplitContext(images=images, membership=everyone, previous=None, k=2, config=config,
                       device=device, seed=derive_seed(args.seed, "r", "raw"),
                       checkpoint=MemoryCheckpointer())  # fmt: skip
    attempt = hcmgan.begin_attempt("raw", ctx, 0, None)
    labels, classes = data.labels, int(data.labels.max()) + 1
    ensemble = hcmgan._ensemble(attempt.nets.discriminators, device)
    for i in range(attempt.total):
        attempt.step(i)
        gan_step = i + 1 - attempt.warm
        if gan_step == 1:
            make_up("seed", attempt.targets.numpy(), labels, 2, classes)
        elif gan_step > 1 and gan_step % args.every == 0:
            attempt.nets.discriminators.eval()
            with torch.no_grad():
                probs = engine.predict_in_batches(ensemble, images, config.predict_batch)
            attempt.nets.discriminators.train()
            make_up(f"C@{gan_step}", probs.argmax(1).numpy(), labels, 2, classes)
    result, _ = attempt.finish({})
    make_up("final", result.memberships.argmax(0), labels, 2, classes)


if __name__ == "__main__":
    main()
