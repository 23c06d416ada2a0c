"""A grown tree's splits beside the trunk-alone tree of the same features.

    .venv/bin/python bench/trunk_vs_tree.py TREE.h5 FEATURES.npy --seed S [--subset 10000]

Grows the top-down tree of ``bench/split_screen.py`` (rule ``spectral8-floor``,
the largest leaf next) on cached unit features of the same images, then prints
both trees' splits in their order, each with the class counts of its two
children (images with membership above 0.5 in the grown tree), so that the first
split where they part can be read off. Fashion-MNIST subsets; binary trees.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hctree.data import load_images
from hctree.store import read_tree

sys.path.insert(0, str(Path(__file__).resolve().parent))
import split_screen  # noqa: E402 - a sibling script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree")
    parser.add_argument("features")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", type=int, default=10000)
    args = parser.parse_args()
    labels = load_images("fashion-mnist", subset=args.subset, seed=args.seed).labels
    record = read_tree(args.tree)
    leaves = sum(1 for n in record.nodes.values() if n.split_order < 0)
    feats = np.load(args.features)
    rule = split_screen.RULES["spectral8-floor"]
    members, children = split_screen.grow_members(feats, leaves, rule, args.seed)

    def counts(rows) -> list[int]:
        return np.bincount(labels[rows], minlength=int(labels.max()) + 1).tolist()

    print("trunk alone:")
    for name, kids in children.items():
        print(f"  {name:10s} {len(members[name]):6d}", [counts(members[k]) for k in kids])
    print("tree:")
    split = sorted((n for n in record.nodes.values() if n.split_order >= 0),
                   key=lambda n: n.split_order)  # fmt: skip
    for node in split:
        kids = [record.nodes[node.name + str(j)].membership > 0.5 for j in range(2)]
        print(f"  {node.name:10s} {int((node.membership > 0.5).sum()):6d}",
              [counts(k) for k in kids])  # fmt: skip


if __name__ == "__main__":
    main()
