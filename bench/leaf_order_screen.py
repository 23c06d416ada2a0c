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

import numpy as np
from split_screen import RULES, cached_features, grow_by, run_screen, screen_parser

from hctree import engine


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
    parser = screen_parser(__doc__.splitlines()[0])
    parser.add_argument("--orders", default="mass,scatter,gain")
    args = parser.parse_args()

    def tree(order: str, seed: int, data):
        return grow(cached_features(data, seed), args.leaves, seed, order)

    run_screen(args, "order", args.orders.split(","), tree)


if __name__ == "__main__":
    main()
