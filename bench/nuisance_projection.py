"""Re-cut one node of a grown tree with the view-made directions taken out of its features.

    .venv/bin/python bench/nuisance_projection.py TREE NODE --data SET.npz [--rotate DEG]

The node's seeded cut is redone on the features of the trunk it inherited (its
parent's split), as the splitter made it, and again after the directions along
which random views move the features (the principal axes of the differences
between two views of each image; views as configured, optionally turning by up to
``--rotate`` degrees) are projected out (the top 1, 2, 4 or 8) or whitened away.
Each cut's classes and its NMI with the classes and the set's ``nuisance`` are
printed over the images mostly in the node (membership above one half).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from split_screen import nuisance_of

from hctree import prepare
from hctree.assign import load_for_tree
from hctree.engine import make_generator, to_unit
from hctree.invariance import configured_view
from hctree.metrics import nmi
from hctree.spectral import spectral_labels
from hctree.splitters import stored_splitter
from hctree.tree import open_tree

BATCH = 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree")
    parser.add_argument("node")
    parser.add_argument("--data", required=True)
    parser.add_argument("--rotate", type=float, default=None)
    parser.add_argument("--pairs", type=int, default=4, help="pairs of views per image")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tree = open_tree(args.tree)
    splitter, config = stored_splitter(tree.attrs)
    data = load_for_tree(tree, args.data)
    images = torch.from_numpy(prepare.apply(data.images, prepare.stored(tree.record)))
    nuisance = nuisance_of(args.data, tree.n)
    shape = tuple(int(v) for v in tree.attrs["image_shape"])
    trunk = splitter.features(tree.models(args.node[:-1]), config, shape, torch.device("cpu"))
    member = torch.from_numpy(tree.node(args.node).membership)
    rows = (member > 0).nonzero().squeeze(1)
    x = to_unit(images[rows])

    def embed(batch_of: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([trunk(batch_of(x[i : i + BATCH])) for i in range(0, len(x), BATCH)])

    feats = embed(lambda b: b).double()
    views = config if args.rotate is None else dataclasses.replace(config, view_rotate=args.rotate)
    gen = make_generator(7, torch.device("cpu"))
    diffs = [
        embed(lambda b: configured_view(b, views, gen))
        - embed(lambda b: configured_view(b, views, gen))
        for _ in range(args.pairs)
    ]
    d = torch.cat(diffs).double()
    evals, evecs = torch.linalg.eigh(d.T @ d / len(d))
    weights = member[rows]
    heavy = (weights > 0.5).numpy()
    labels, nuis = tree.labels[rows.numpy()][heavy], nuisance[rows.numpy()][heavy]
    centred = feats - feats.mean(0)
    share = float(evals.sum() / 2 / (centred.square().sum() / len(centred)))
    print(
        json.dumps({"node": args.node, "features": feats.shape[1], "view_share": round(share, 3)})
    )

    def cut(f: torch.Tensor, name: str) -> None:
        out = spectral_labels(
            F.normalize(f.float(), dim=1), weights, 2, make_generator(11, torch.device("cpu")),
            config.spectral_neighbors, config.spectral_parts, config.spectral_floor, {},
            config.seed_spread,
        ).numpy()[heavy]  # fmt: skip
        classes = [
            np.bincount(labels[out == j], minlength=labels.max() + 1).tolist() for j in (0, 1)
        ]
        row = {"variant": name, "classes": classes, "class_nmi": round(nmi(labels, out), 3),
               "nuisance_nmi": round(nmi(nuis, out), 3)}  # fmt: skip
        print(json.dumps(row))

    cut(feats, "as trained")
    for r in (1, 2, 4, 8):
        top = evecs[:, -r:]
        cut(feats - feats @ top @ top.T, f"top {r} projected out")
    for eps in (0.1, 1.0):
        lam = evals.clamp_min(0) + eps * evals.clamp_min(0).mean()
        cut(feats @ evecs @ torch.diag(lam.rsqrt()) @ evecs.T, f"whitened, eps {eps}")


if __name__ == "__main__":
    main()
