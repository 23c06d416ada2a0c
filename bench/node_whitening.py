"""Screen: a node's features centred (and whitened) on the node before its cut.

    .venv/bin/python bench/node_whitening.py --subset 10000 --seeds 0,1,2,3,4,5

Reads the unit trunk features `bench/split_screen.py` cached for each seed and
grows trunk-alone 10-leaf trees (the heaviest leaf next, the default's seeding cut
``spectral8-floor``), each node's rows first transformed by one of:

- ``plain``: as they are (the default);
- ``centred``: minus the node's mean, then unit length again, so that what every
  image of the node shares no longer makes them all alike;
- ``whitenD``: centred, projected on the node's top D principal axes, each scaled
  to unit variance, then unit length: no single direction (a garment's darkness,
  say) outweighs the others in the neighbour graph.

One JSON line per transform and seed, then each transform's mean and sample sd.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from split_screen import RULES, grow_by, leaf_assignment, print_means, tree_scores

from hctree import engine
from hctree.data import load_images


def transformed(feats: np.ndarray, how: str) -> np.ndarray:
    """The node's rows under ``how`` (see the module docstring), float32."""
    if how == "plain":
        return feats
    x = feats - feats.mean(0)
    if how.startswith("whiten"):
        dims = min(int(how[len("whiten") :]), len(x) - 1, x.shape[1])
        _, s, vt = np.linalg.svd(x, full_matrices=False)
        x = x @ vt[:dims].T / (s[:dims] / np.sqrt(len(x)) + 1e-8)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def grow(feats: np.ndarray, leaves: int, seed: int, how: str):
    """Bisect the heaviest leaf, its rows transformed, until ``leaves``."""
    rule = RULES["spectral8-floor"]
    return grow_by(
        len(feats),
        leaves,
        lambda node, rows: rule(transformed(feats[rows], how), engine.derive_seed(seed, node)),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=10000, help="0: every image")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--leaves", type=int, default=10)
    parser.add_argument("--transforms", default="plain,centred,whiten16,whiten32,whiten64")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    engine.configure_threads(args.threads)
    found: dict[str, list[dict]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        data = load_images(args.data, subset=args.subset or None, seed=seed)
        stem = Path(str(data.source)).stem
        feats = np.load(f"bench/out/trunk-{stem}-{len(data)}-s{seed}-base.npy")
        for how in args.transforms.split(","):
            members, children = grow(feats, args.leaves, seed, how)
            assign, leaf_names = leaf_assignment(members, children, len(feats))
            row = {"transform": how, "seed": seed}
            row.update(tree_scores(data.labels, assign, children, leaf_names))
            found.setdefault(how, []).append(row)
            print(json.dumps(row), flush=True)
    print_means(found, "transform")


if __name__ == "__main__":
    main()
