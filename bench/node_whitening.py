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

import numpy as np
from split_screen import RULES, cached_features, grow_by, run_screen, screen_parser

from hctree import engine


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
    parser = screen_parser(__doc__.splitlines()[0])
    parser.add_argument("--transforms", default="plain,centred,whiten16,whiten32,whiten64")
    args = parser.parse_args()

    def tree(how: str, seed: int, data):
        return grow(cached_features(data, seed), args.leaves, seed, how)

    run_screen(args, "transform", args.transforms.split(","), tree)


if __name__ == "__main__":
    main()
