"""How much a grown tree's leaves tell of the classes and of a set's nuisance.

    .venv/bin/python bench/leaf_nuisance.py --data bench/out/rotated-dev6.npz TREE [TREE ...]
    .venv/bin/python bench/leaf_nuisance.py --data bench/out/compound.npz --nuisance shrink TREE

For each tree file (grown on every image of ``--data``, in order): the NMI of the
leaves with the classes and with the set's ``nuisance`` array (or the array named
by ``--nuisance``; bench/make_sets.py;
for the rotated sets, the angle's quarter of the range), at the full leaf count
and at every cut, one JSON line per tree.
"""

from __future__ import annotations

import argparse
import json

from split_screen import nuisance_of

from hctree.metrics import nmi
from hctree.tree import open_tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("trees", nargs="+")
    parser.add_argument(
        "--nuisance",
        default="nuisance",
        help="which array of the set (compound: turn, shrink, ...)",
    )
    args = parser.parse_args()
    for path in args.trees:
        tree = open_tree(path)
        nuisance = nuisance_of(args.data, tree.n, args.nuisance)
        if nuisance is None:
            raise SystemExit(f"{args.data} has no {args.nuisance} array for {tree.n} images.")
        cuts = {k: round(nmi(nuisance, tree.cut(k).assignments()), 3) for k in tree.cut_sizes()[1:]}
        row = {
            "tree": path,
            "leaves": len(tree.leaves),
            "class_nmi": round(nmi(tree.labels, tree.assignments()), 3),
            "nuisance_nmi": round(nmi(nuisance, tree.assignments()), 3),
            "nuisance_nmi_by_cut": cuts,
        }
        print(json.dumps(row))


if __name__ == "__main__":
    main()
