"""Screen which leaf a fixed-count tree splits next, on the warm-up trunk alone.

    .venv/bin/python bench/leaf_order_screen.py --subset 10000 --seeds 0,1,2,3,4,5

Reads the unit features `bench/split_screen.py` (or `bench/darkness_switch.py`)
cached for each seed, and grows 10-leaf trees top down, every node bisected by the
default's seeding rule (``spectral8-floor``), choosing the next leaf by:

- ``mass``: the most images (the default's order);
- ``scatter``: the largest total scatter of its unit features, ``n (1 - |mean|^2)``
  (bisecting k-means' rule: the leaf that holds most spread);
- ``gain``: the largest drop in total scatter that its own cut would bring (each
  leaf's cut is computed before the choice; a node's cut does not depend on when
  it is made).

One JSON line per order and seed, then the mean of each order.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from split_screen import RULES, grow_by, leaf_assignment, print_means, tree_scores

from hctree import engine
from hctree.data import load_images


def scatter(feats: np.ndarray) -> float:
    """Total scatter of unit rows about their mean: ``n (1 - |mean|^2)``."""
    if len(feats) == 0:
        return 0.0
    mean = feats.mean(0)
    return float(len(feats) * (1.0 - mean @ mean))


def grow(feats: np.ndarray, leaves: int, seed: int, order: str):
    """Bisect the leaf ``order`` picks until ``leaves``; (members, children)."""
    rule = RULES["spectral8-floor"]
    cuts: dict[str, np.ndarray] = {}

    def cut(node: str, rows: np.ndarray) -> np.ndarray:
        if node not in cuts:
            cuts[node] = rule(feats[rows], engine.derive_seed(seed, node))
        return cuts[node]

    def score(node: str, rows: np.ndarray) -> float:
        if order == "mass":
            return len(rows)
        if order == "scatter":
            return scatter(feats[rows])
        side = cut(node, rows)
        return scatter(feats[rows]) - sum(scatter(feats[rows[side == j]]) for j in (0, 1))

    return grow_by(len(feats), leaves, cut, score)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=10000, help="0: every image")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--leaves", type=int, default=10)
    parser.add_argument("--orders", default="mass,scatter,gain")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    engine.configure_threads(args.threads)
    rows: dict[str, list[dict]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        data = load_images(args.data, subset=args.subset or None, seed=seed)
        stem = Path(str(data.source)).stem
        feats = np.load(f"bench/out/trunk-{stem}-{len(data)}-s{seed}-base.npy")
        for order in args.orders.split(","):
            members, children = grow(feats, args.leaves, seed, order)
            assign, leaf_names = leaf_assignment(members, children, len(feats))
            row = {"order": order, "seed": seed}
            row.update(tree_scores(data.labels, assign, children, leaf_names))
            rows.setdefault(order, []).append(row)
            print(json.dumps(row), flush=True)
    print_means(rows, "order")


if __name__ == "__main__":
    main()
