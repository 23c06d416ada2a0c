"""Grow a tree whose every split is seeded on one fixed trunk: the root's warm-up.

    .venv/bin/python bench/seed_on_warmup.py --seed 0 --features bench/out/trunk-....npy

A test of a lead, not a setting. In the default tree each split seeds its cut on
the trunk its parent's GAN phase left; here ``hcmgan._seed_targets`` is replaced
by the same spectral cut of the node's rows of ``--features`` (unit features of
every image, in the order ``load_images`` gives them: a warm-up trunk cached by
``bench/split_screen.py`` for the same data and seed), and everything else (the
GANs, C, its fit, the leaf order) runs as usual. Prints one JSON line, as
``bench/tree_quality.py`` does.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hctree.data import load_images
from hctree.evaluate import evaluate
from hctree.grow import grow
from hctree.spectral import spectral_labels
from hctree.splitters import hcmgan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True, help=".npy of unit features [N, F]")
    parser.add_argument("--subset", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--leaves", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", dest="settings", action="append", default=[])
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    data = load_images("fashion-mnist", subset=args.subset, seed=args.seed)
    fixed = torch.from_numpy(np.load(args.features)).float()
    if len(fixed) != len(data):
        raise SystemExit(f"{args.features} has {len(fixed)} rows, the data {len(data)}")

    def seed_on_fixed(disc, ctx, parent, gen) -> torch.Tensor:
        config = ctx.config
        rows = (parent > 0).nonzero().squeeze(1)
        labels = spectral_labels(
            fixed[rows], parent[rows], ctx.k, gen, config.spectral_neighbors,
            config.spectral_parts, config.spectral_floor, {}, config.seed_spread,
        )  # fmt: skip
        targets = torch.zeros(len(parent), dtype=torch.long)
        targets[rows] = labels
        return targets

    hcmgan._seed_targets = seed_on_fixed
    out = Path(args.out)
    out.unlink(missing_ok=True)
    overrides = dict(s.split("=", 1) for s in args.settings)
    start = time.perf_counter()
    tree = grow(data, out, args.leaves, overrides=overrides, seed=args.seed, threads=args.threads)
    scores = evaluate(tree)
    print(json.dumps({
        "features": args.features, "seed": args.seed, "settings": overrides,
        "seconds": round(time.perf_counter() - start, 1),
        **{k: round(float(scores[k]), 4) for k in ("acc", "nmi", "dendrogram_purity")},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
