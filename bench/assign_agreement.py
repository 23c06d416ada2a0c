"""How often `hctree assign` puts a tree's own training images in their stored leaf.

    .venv/bin/python bench/assign_agreement.py bench/out/hc-cpu.h5

Reloads the tree's images from its stored data spec, routes them down the stored
split classifiers and prints one JSON line: agreement of the argmax leaf and the
largest absolute difference of the soft memberships.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hctree.assign import agreement, assign
from hctree.render import tree_images
from hctree.tree import open_tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", help="a tree file grown by `hctree grow`")
    args = parser.parse_args()
    tree = open_tree(args.tree)
    data = tree_images(tree)
    start = time.perf_counter()
    routed = assign(tree, data, device="cpu")
    print(
        json.dumps(
            {
                "tree": args.tree,
                "n": len(data),
                "leaves": len(tree.leaves),
                "agreement": round(agreement(tree, routed), 5),
                "max_abs_diff": float(np.abs(routed - tree.memberships()).max()),
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
