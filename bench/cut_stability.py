"""Does a split's seeding cut depend on its random draws, or on its floor? Replays stored trees.

    .venv/bin/python bench/cut_stability.py TREE [TREE ...] --data D [--subset N] --seed S [--draws 4]

For every split below the root of each stored hcmgan tree, the node's features
by its parent's stored trunk, as the split was seeded on them (for colour
images averaged over random recolourings, as the `cpu` recipe does). For ``--draws`` generator seeds it recomputes the default
cut's two candidates (hctree.spectral: the direct cut of the leading
eigenvector, and 8 parts merged into 2 under the floor 0.05) and the cut the
default keeps, and the cut kept under higher floors. Prints one JSON line per
node: for each cut its NMI with the true classes over the graph's rows, its
normalised cut, its lightest group's share, and the share of rows it puts on
another side than the default's kept cut.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from hctree import engine, prepare
from hctree.data import load_images
from hctree.kmeans import weighted_kmeans
from hctree.metrics import nmi
from hctree.spectral import (
    graph_rows,
    kept_cut,
    knn_graph,
    merge_parts,
    nearest_rows,
    normalized_cut,
    smallest_share,
    walk_embedding,
)
from hctree.splitters import stored_splitter
from hctree.splitters.hcmgan import seed_embedding
from hctree.store import read_tree
from hctree.tree import Tree

PARTS, FLOOR = 8, 0.05  # the `cpu` recipe's spectral_parts and spectral_floor
FLOORS = (0.05, 0.08, 0.1)  # the kept cut under the default's floor and higher ones
BALANCES = (0.8,)  # ... and under spectral_balance


def cuts(feats: torch.Tensor, weights: torch.Tensor, gen: torch.Generator):
    """The graph's rows and, per candidate, (labels over them, normalised cut, lightest share)."""
    core = graph_rows(weights, spread=True)
    graph = knn_graph(nearest_rows(feats[core], feats[core], 10, skip_self=True).numpy())
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    embedding = torch.from_numpy(walk_embedding(graph, PARTS, seed))
    sizes = weights[core].double().numpy()
    direct = weighted_kmeans(embedding[:, :1], weights[core], 2, gen).numpy()
    pieces = weighted_kmeans(embedding, weights[core], PARTS, gen).numpy()
    found = {"direct": direct, "merged": merge_parts(graph, pieces, 2, sizes, FLOOR)}
    for floor in FLOORS:
        found[f"kept@{floor:g}"] = kept_cut(graph, pieces, direct, 2, sizes, floor)
    for balance in BALANCES:
        found[f"balance@{balance:g}"] = kept_cut(graph, pieces, direct, 2, sizes, FLOOR, balance)
    scored = {
        tag: (cut, normalized_cut(graph, cut), smallest_share(cut, sizes, 2))
        for tag, cut in found.items()
    }
    return core.numpy(), scored


def _moved(a: np.ndarray, b: np.ndarray) -> float:
    """The share of rows two 2-way cuts put apart, up to the order of their sides."""
    differ = float((a != b).mean())
    return min(differ, 1.0 - differ)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=0, help="0: every image")
    parser.add_argument("--seed", type=int, default=0, help="the subset's seed")
    parser.add_argument("--draws", type=int, default=1)
    args = parser.parse_args()
    engine.configure_threads(1)
    cpu = torch.device("cpu")
    data = load_images(args.data, subset=args.subset or None, seed=args.seed)
    labels = np.asarray(data.labels)
    for path in args.trees:
        tree = Tree(read_tree(path), path=Path(path))
        images = torch.from_numpy(prepare.apply(data.images, prepare.stored(tree.record)))
        splitter, config = stored_splitter(tree.attrs)
        shape = tuple(int(v) for v in tree.attrs["image_shape"])
        for name in tree.split_sequence:
            node = tree.node(name)
            if node.parent is None:  # seeded on the warm-up trunk, which is not stored
                continue
            trunk = splitter.features(tree.models(node.parent), config, shape, cpu)
            embed = seed_embedding(trunk, config, shape[0], engine.make_generator(0, cpu))
            weights = torch.from_numpy(node.membership.astype(np.float32))
            rows = torch.nonzero(weights > 0).squeeze(1)
            feats = engine.predict_in_batches(embed, images[rows], config.predict_batch)
            draws = []
            for draw in range(args.draws):
                core, scored = cuts(feats, weights[rows], engine.make_generator(draw, cpu))
                truth = labels[rows.numpy()][core]
                kept = scored[f"kept@{FLOOR:g}"][0]
                draws.append(
                    {
                        tag: [round(nmi(truth, cut), 3), round(ncut, 4), round(share, 3),
                              round(_moved(kept, cut), 4)]
                        for tag, (cut, ncut, share) in scored.items()
                    }
                )  # fmt: skip
            row = {"tree": Path(path).stem, "node": name, "own": len(core), "draws": draws}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
