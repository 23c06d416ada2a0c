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

import json

import numpy as np
import torch
from tree_replay import load_replay, replay_arguments

from hctree import engine
from hctree.metrics import nmi
from hctree.spectral import spectral_labels


def main() -> None:
    args = replay_arguments(__doc__.splitlines()[0]).parse_args()
    replay = load_replay(args)
    tree, labels = replay.tree, replay.labels
    cpu = torch.device("cpu")
    for name in tree.split_sequence:
        node = tree.node(name)
        weights = torch.from_numpy(node.membership.astype(np.float32))
        own = (weights >= 0.5 * weights.max()).numpy()
        cuts = {}
        for tag, feats in (("inherited", replay.start_trunk(name)), ("warmup", replay.warm)):
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
