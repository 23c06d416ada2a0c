"""The support test (hctree.support) on every stored split of a tree, beside how well it separates classes.

    .venv/bin/python bench/split_support.py tree.h5 [--data DIR]

For each split in growth order prints its mass, its class separation (the share of
the node's mass in the child holding most of its class: 1 when every class goes
wholly to one side, about 0.5 when classes are cut in half), the classes above 10%
of the node, and the node's test (``node_support``, the one ``--leaves auto``
uses) in the split's own trunk features averaged over views: the thinnest cut of
the node's graph, the Gaussian reference's, and their ratio (supported below
``THRESHOLD``). Needs a labelled tree of a splitter with ``features`` (hcmgan).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from hctree.render import tree_images
from hctree.splitters import stored_splitter
from hctree.store import read_models, read_tree
from hctree.support import node_support, sample_rows, view_mean_features
from hctree.tree import open_tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree")
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    record, tree = read_tree(args.tree), open_tree(args.tree)
    if record.labels is None:
        raise SystemExit("the tree holds no labels to compare its splits with")
    images = torch.from_numpy(tree_images(tree, args.data).images)
    splitter, config = stored_splitter(record.attrs)
    n_classes = int(record.labels.max()) + 1
    tried = sorted(
        (n for n in record.nodes.values() if n.stages),
        key=lambda n: (n.split_order < 0, n.split_order, n.name),
    )
    for node in tried:
        memberships = next(reversed(node.stages.values())).memberships
        rows = sample_rows(node.membership, 0)
        subset = images[torch.from_numpy(rows)]
        embed = splitter.features(
            read_models(args.tree, node.name), config, tuple(images.shape[1:]), torch.device("cpu")
        )
        found = node_support(view_mean_features(embed, subset, config, 0))
        counts = np.stack(
            [np.bincount(record.labels, weights=m, minlength=n_classes) for m in memberships]
        )
        total = counts.sum(0)
        separation = counts.max(0).sum() / total.sum()
        main_classes = [int(c) for c in np.flatnonzero(total / total.sum() > 0.1)]
        print(
            f"{node.name:8s} order {node.split_order:3d} {node.status:6s} mass {node.mass:7.0f} "
            f"separation {separation:.3f} classes {main_classes} "
            f"cut {found.cut:.3f} reference {found.reference:.3f} ratio {found.ratio:.2f}"
        )


if __name__ == "__main__":
    main()
