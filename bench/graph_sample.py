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

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from hctree import engine, prepare
from hctree.data import load_images
from hctree.metrics import nmi
from hctree.spectral import MAX_GRAPH, spectral_labels
from hctree.splitters import get_splitter
from hctree.splitters.base import config_from_json
from hctree.store import read_tree
from hctree.tree import Tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=0, help="0: every image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--by-class", action="store_true", help="rows in class order")
    parser.add_argument("--root-only", action="store_true")
    args = parser.parse_args()
    engine.configure_threads(args.threads)
    tree = Tree(read_tree(args.tree), path=Path(args.tree))
    data = load_images(args.data, subset=args.subset or None, seed=args.seed)
    labels = np.asarray(data.labels)
    cls = get_splitter(str(tree.attrs["splitter"]))
    config = config_from_json(cls, str(tree.attrs["config_json"]))
    splitter = cls()
    images = torch.from_numpy(prepare.apply(data.images, prepare.stored(tree.attrs)))
    stem = Path(str(data.source)).stem
    warm = torch.from_numpy(np.load(f"bench/out/trunk-{stem}-{len(data)}-s{args.seed}-base.npy"))
    shape = tuple(int(v) for v in tree.attrs["image_shape"])
    cpu = torch.device("cpu")
    order = np.argsort(labels, kind="stable") if args.by_class else np.arange(len(labels))
    labels, images, warm = labels[order], images[order], warm[order]

    for name in tree.split_sequence[:1] if args.root_only else tree.split_sequence:
        node = tree.node(name)
        weights = torch.from_numpy(node.membership[order].astype(np.float32))
        own = (weights >= 0.5 * weights.max()).numpy()
        if own.sum() <= MAX_GRAPH:
            continue
        if node.parent is None:
            feats = warm
        else:
            embed = splitter.features(tree.models(node.parent), config, shape, cpu)
            feats = engine.predict_in_batches(embed, images, config.predict_batch)
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
