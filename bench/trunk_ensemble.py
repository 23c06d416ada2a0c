"""Screen: seed every cut on two warm-up trunks side by side instead of one.

    .venv/bin/python bench/trunk_ensemble.py --subset 10000 --seed 0 --threads 1

The same subset's images get a second warm-up trunk, trained like the first
(`bench/split_screen.py`'s, whose features it reads from the cache) from another
seed (``--second``, default the subset's seed + 100; cached beside the first).
Three trunk-alone 10-leaf trees follow (the heaviest leaf next, the default's
seeding cut ``spectral8-floor``): on the first trunk's unit features, on the
second's, and on both side by side (each unit row weighing half), so that what one
trunk's training happened to stress weighs half as much. One JSON line per tree.
"""

from __future__ import annotations

import json

import numpy as np
from split_screen import (
    RULES,
    cached_trunk,
    final_features,
    load_or_save,
    screen_parser,
    top_down,
    tree_scores,
    trunk_cache,
)

from hctree import engine
from hctree.data import load_images


def main() -> None:
    parser = screen_parser(__doc__.splitlines()[0], one_seed=True)
    parser.add_argument("--second", type=int, default=None, help="the second trunk's seed")
    args = parser.parse_args()
    engine.configure_threads(args.threads)
    second = args.seed + 100 if args.second is None else args.second
    data = load_images(args.data, subset=args.subset or None, seed=args.seed)
    first = cached_trunk(data, args.seed, {})
    other = load_or_save(
        trunk_cache(data, args.seed, f"base-t{second}"),
        lambda: final_features(data.images, second, {}),
    )
    both = np.concatenate([first, other], axis=1) / np.sqrt(2.0)
    for name, feats in (("first", first), ("second", other), ("both", both)):
        assign, children, leaf_names = top_down(
            feats.astype(np.float32), args.leaves, RULES["spectral8-floor"], args.seed
        )
        row = {"trunks": name, "seed": args.seed, "second": second}
        row.update(tree_scores(data.labels, assign, children, leaf_names))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
