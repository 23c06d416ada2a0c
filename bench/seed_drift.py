"""Per split of a stored hcmgan tree: the seeding cut against the children C made.

    .venv/bin/python bench/seed_drift.py bench/out/tree.h5 --seed 1 [--subset 10000]

For every split, in the order it was made, prints one JSON line: the NMI with the
true classes (over the node's own images: membership at least half the largest) of

- ``inherited``: the default's seeding cut (hctree.spectral.spectral_labels, 10
  neighbours, 8 parts, floor 0.05) on the trunk the split started from: the
  stored trunk of its parent's split, or the warm-up trunk at the root;
- ``warmup``: the same cut on the root's warm-up trunk (cached by
  bench/split_screen.py, which must have been run for this data, subset and seed);
- ``C``: the children the split made (C's argmax);

and ``agree``, the share of own images on which C's children and the
``inherited`` cut agree (up to the children's order). The cut is recomputed here
with its own random generator (seeded 0), so it can differ from the split's own seeding in
a few images. A split whose ``C`` is well below ``inherited`` did not learn its
own seed: the GAN phase moved away from it.
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
from hctree.spectral import spectral_labels
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

    def trunk_of(name: str) -> torch.Tensor:
        embed = splitter.features(tree.models(name), config, shape, cpu)
        return engine.predict_in_batches(embed, images, config.predict_batch)

    for name in tree.split_sequence:
        node = tree.node(name)
        weights = torch.from_numpy(node.membership.astype(np.float32))
        own = (weights >= 0.5 * weights.max()).numpy()
        cuts = {}
        for tag, feats in (
            ("inherited", warm if node.parent is None else trunk_of(node.parent)),
            ("warmup", warm),
        ):
            gen = engine.make_generator(0, cpu)
            cuts[tag] = spectral_labels(feats, weights, 2, gen, 10, 8, 0.05).numpy()
        children = np.stack([tree.node(c).membership for c in node.children]).argmax(0)
        same = float((children[own] == cuts["inherited"][own]).mean())
        row = {"node": name, "own": int(own.sum())}
        for tag, cut in (*cuts.items(), ("C", children)):
            row[tag] = round(nmi(labels[own], cut[own]), 3)
        row["agree"] = round(max(same, 1 - same), 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
