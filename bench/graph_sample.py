"""Seeding cuts of a stored hcmgan tree's large nodes, by how the graph's rows are chosen.

    .venv/bin/python bench/graph_sample.py bench/out/tree.h5 --seed 1 [--subset 10000]

For every split whose node holds more own images (membership at least half the
largest) than the seeding graph takes (hctree.spectral.MAX_GRAPH), prints one
JSON line: the NMI with the true classes, over the node's own images, of the
default's seeding cut (10 neighbours, 8 parts, floor 0.05) on the trunk the split
started from (its parent's stored trunk, or the warm-up trunk cached by
bench/split_screen.py at the root), with the graph's rows chosen

- ``heaviest``: the heaviest own rows (the default until ``seed_spread``);
- ``spread``: every (own / MAX_GRAPH)-th own row in index order;

and ``agree``, the share of own images on which the two cuts agree. Run on two
trees whose nodes differ a little, a stable choice gives the same NMI in both.
``--by-class`` puts the images in class order first, as a folder of class
sub-folders loads (``--root-only``: the root split alone).
"""

from __future__ import annotations

import json

import numpy as np
import torch
from tree_replay import load_replay, replay_arguments

from hctree import engine
from hctree.metrics import nmi
from hctree.spectral import MAX_GRAPH, spectral_labels


def main() -> None:
    parser = replay_arguments(__doc__.splitlines()[0])
    parser.add_argument("--by-class", action="store_true", help="rows in class order")
    parser.add_argument("--root-only", action="store_true")
    args = parser.parse_args()
    replay = load_replay(args)
    tree = replay.tree
    order = np.argsort(replay.labels, kind="stable") if args.by_class else None
    if order is not None:
        replay.labels, replay.images = replay.labels[order], replay.images[order]
        replay.warm = replay.warm[order]
    labels = replay.labels
    cpu = torch.device("cpu")
    for name in tree.split_sequence[:1] if args.root_only else tree.split_sequence:
        membership = tree.node(name).membership
        membership = membership if order is None else membership[order]
        weights = torch.from_numpy(membership.astype(np.float32))
        own = (weights >= 0.5 * weights.max()).numpy()
        if own.sum() <= MAX_GRAPH:
            continue
        feats = replay.start_trunk(name)
        cuts = {}
        for tag in ("heaviest", "spread"):
            gen = engine.make_generator(0, cpu)
            cut = spectral_labels(feats, weights, 2, gen, 10, 8, 0.05, spread=tag == "spread")
            cuts[tag] = cut.numpy()
        same = float((cuts["heaviest"][own] == cuts["spread"][own]).mean())
        row = {"node": name, "own": int(own.sum())}
        for tag, cut in cuts.items():
            row[tag] = round(nmi(labels[own], cut[own]), 3)
        row["agree"] = round(max(same, 1 - same), 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
