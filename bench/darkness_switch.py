"""Screen: cut a node on brightness-equalised images where its cut follows darkness.

    .venv/bin/python bench/darkness_switch.py --subset 10000 --seed 0 --threads 1

Trains the `cpu` preset's warm-up trunk as `bench/split_screen.py` does (and shares
its cache of the plain features), then computes the same trunk's features of every
image brightness-equalised: the object's grey levels (pixels above 5% of white)
scaled so that their mean is the set's median object mean. Three trunk-alone
10-leaf trees follow, each node bisected by the default's seeding rule
(``spectral8-floor``):

- ``plain``: on the plain features (the default);
- ``equalised``: on the equalised features, at every node;
- ``switch``: per node, the equalised cut where the plain cut follows the node's
  darkness (NMI with the terciles of the object's mean grey at least ``--bar``) and
  the equalised cut follows it at most half as much; the plain cut elsewhere.

One JSON line per tree, and with ``--nodes`` one per node of the ``switch`` tree
(its size, both cuts' NMI with darkness and with the classes, the cut taken).
"""

from __future__ import annotations

import json

import numpy as np
import torch
from split_screen import (
    RULES,
    grow_by,
    leaf_assignment,
    screen_parser,
    train_trunk,
    tree_scores,
    trunk_cache,
    unit_features,
)

from hctree import engine
from hctree.data import load_images
from hctree.metrics import nmi
from hctree.splitters import hcmgan

OBJECT = 0.05  # a pixel above this share of white belongs to the object


def object_means(images: np.ndarray) -> np.ndarray:
    """Each uint8 image's mean grey over its object pixels, in [0, 1] (0 for a blank one)."""
    u = images.reshape(len(images), -1).astype(np.float64) / 255.0
    inside = u > OBJECT
    total = (u * inside).sum(axis=1)
    count = inside.sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def equalised(images: np.ndarray, target: float) -> np.ndarray:
    """uint8 images with each object's grey levels scaled so their mean is ``target``."""
    means = object_means(images)
    gain = np.where(means > 0, target / np.maximum(means, 1e-6), 1.0)
    u = images.astype(np.float64) / 255.0 * gain[:, None, None, None]
    return np.clip(np.round(u * 255.0), 0, 255).astype(np.uint8)


def rank_equalised(images: np.ndarray) -> np.ndarray:
    """uint8 images with each object's grey levels replaced by their ranks within it,
    spread over [0.2, 1] of white: only the order of an object's grey levels is left."""
    from scipy.stats import rankdata

    u = images.reshape(len(images), -1).astype(np.float64) / 255.0
    out = np.zeros_like(u)
    for i, row in enumerate(u):
        inside = row > OBJECT
        count = int(inside.sum())
        if count > 1:
            ranks = rankdata(row[inside])
            out[i, inside] = 0.2 + 0.8 * (ranks - 1) / (count - 1)
        else:
            out[i] = row
    return np.round(out * 255.0).astype(np.uint8).reshape(images.shape)


def terciles(values: np.ndarray) -> np.ndarray:
    """0, 1 or 2: which third of ``values`` each one falls in."""
    edges = np.quantile(values, [1 / 3, 2 / 3])
    return np.searchsorted(edges, values, side="right")


def grow(plain, equal, dark, labels, leaves, seed, mode, bar, log):
    """Top-down bisection of the largest leaf, as bench/split_screen.py grows."""
    rule = RULES["spectral8-floor"]

    def cut(node: str, rows: np.ndarray) -> np.ndarray:
        node_seed = engine.derive_seed(seed, node)
        if mode == "plain":
            return rule(plain[rows], node_seed)
        cut_equal = rule(equal[rows], node_seed)
        if mode == "equalised":
            return cut_equal
        cut_plain = rule(plain[rows], node_seed)
        dt = terciles(dark[rows])
        d_plain, d_equal = nmi(dt, cut_plain), nmi(dt, cut_equal)
        take = d_plain >= bar and d_equal <= d_plain / 2
        log.append(
            {
                "node": node,
                "size": len(rows),
                "dark_plain": round(d_plain, 3),
                "dark_equal": round(d_equal, 3),
                "class_plain": round(nmi(labels[rows], cut_plain), 3),
                "class_equal": round(nmi(labels[rows], cut_equal), 3),
                "took": "equalised" if take else "plain",
            }
        )
        return cut_equal if take else cut_plain

    return grow_by(len(plain), leaves, cut)


def main() -> None:
    parser = screen_parser(__doc__.splitlines()[0], one_seed=True)
    parser.add_argument("--bar", type=float, default=0.15)
    parser.add_argument("--nodes", action="store_true")
    parser.add_argument("--equalise", choices=("linear", "rank"), default="linear")
    args = parser.parse_args()
    engine.configure_threads(args.threads)
    data = load_images(args.data, subset=args.subset or None, seed=args.seed)
    means = object_means(data.images)
    target = float(np.median(means))
    cache = trunk_cache(data, args.seed)
    weights = trunk_cache(data, args.seed, suffix=".pt")
    if cache.exists() and weights.exists():
        plain = np.load(cache)
        disc = hcmgan._build_nets(
            hcmgan.Config(**hcmgan.PRESETS["cpu"]), 2, False, data.images.shape[1:], args.seed,
            torch.device("cpu"),
        ).discriminators[0]  # fmt: skip
        disc.load_state_dict(torch.load(weights, weights_only=True))
    else:
        ((_, disc),) = train_trunk(data.images, args.seed, {}, [])
        plain = unit_features(disc, data.images)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, plain)
        torch.save(disc.state_dict(), weights)
    if args.equalise == "rank":
        equal = unit_features(disc, rank_equalised(data.images))
    else:
        equal = unit_features(disc, equalised(data.images, target))
    for mode in ("plain", "equalised", "switch"):
        log: list[dict] = []
        members, children = grow(
            plain, equal, means, data.labels, args.leaves, args.seed, mode, args.bar, log
        )
        assign, leaf_names = leaf_assignment(members, children, len(plain))
        row = {"mode": mode, "equalise": args.equalise, "seed": args.seed, "bar": args.bar}
        row.update(tree_scores(data.labels, assign, children, leaf_names))
        row["dark_nmi"] = round(nmi(terciles(means), assign), 3)
        row["switched"] = sum(e["took"] == "equalised" for e in log)
        print(json.dumps(row), flush=True)
        if args.nodes:
            for entry in log:
                print(json.dumps(entry), flush=True)


if __name__ == "__main__":
    main()
