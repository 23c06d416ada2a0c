"""Screen growing past the leaf count and pruning back, on the contrastive trunk alone.

    .venv/bin/python bench/prune_screen.py --subset 10000 --seed 0 --threads 1 --over 15,20

Uses bench/split_screen.py's trunk (cached under bench/out/) and its top-down tree
(the heaviest leaf split next by the default's ``spectral8`` rule). Each row grows
``--over`` leaves, then undoes splits until ``--leaves`` remain: always a split whose
two children are both leaves (a cherry), the one whose cut is least supported by
the node's nearest-neighbour graph (the highest two-way normalised cut). Prints
ACC, NMI and dendrogram purity per row, one JSON line each (``over`` equal to
``leaves`` is the plain tree).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from split_screen import (
    cached_trunk,
    grow_members,
    leaf_assignment,
    leaves_of,
    spectral8_rule,
    tree_scores,
)

from hctree import engine
from hctree.data import load_images
from hctree.spectral import knn_graph, nearest_rows, normalized_cut


def cut_score(feats: np.ndarray, members: dict, node: str, neighbours: int = 10) -> float:
    """The two-way normalised cut of ``node``'s split on its own kNN graph."""
    rows = members[node]
    labels = np.isin(rows, members[node + "1"]).astype(np.int64)
    x = torch.from_numpy(feats[rows])
    near = nearest_rows(x, x, neighbours, skip_self=True).numpy()
    return normalized_cut(knn_graph(near), labels)


def prune(feats: np.ndarray, members: dict, children: dict, leaves: int, weigh: bool):
    """Undo the least supported cherry until ``leaves`` remain; returns the kept splits.

    ``weigh``: the cherry with the least ``mass * (1 - ncut)`` goes first, not the
    highest normalised cut.
    """
    children = dict(children)
    scores = {n: cut_score(feats, members, n) for n in children}
    value = (lambda n: len(members[n]) * (1 - scores[n])) if weigh else (lambda n: -scores[n])
    while len(children) + 1 > leaves:
        cherries = [n for n, kids in children.items() if not any(c in children for c in kids)]
        worst = min(cherries, key=lambda n: (value(n), n))
        del children[worst]
    return children


def greedy(feats: np.ndarray, leaves: int, seed: int):
    """Top down, the leaf whose candidate cut gains most (``mass * (1 - ncut)``) first."""
    members = {"r": np.arange(len(feats))}
    children: dict[str, list[str]] = {}
    gain: dict[str, float] = {}
    while len(children) + 1 < leaves:
        open_leaves = leaves_of(members, children)
        for node in [n for n in open_leaves if n not in gain]:
            rows = members[node]
            if len(rows) < 50:
                gain[node] = -1.0
                continue
            side = spectral8_rule(feats[rows], engine.derive_seed(seed, node))
            for j in (0, 1):
                members[node + str(j)] = rows[side == j]
            gain[node] = len(rows) * (1 - cut_score(feats, members, node))
        node = max(open_leaves, key=lambda n: (gain[n], n))
        children[node] = [node + "0", node + "1"]
    return members, children


def score(members: dict, children: dict, labels: np.ndarray) -> dict:
    assign, leaf_names = leaf_assignment(members, children, len(labels))
    return tree_scores(labels, assign, children, leaf_names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--leaves", type=int, default=10)
    parser.add_argument("--over", default="10,15,20")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    engine.configure_threads(args.threads)
    data = load_images(args.data, subset=args.subset, seed=args.seed)
    feats = cached_trunk(data, args.seed, {})
    name = Path(str(args.data)).stem
    t0 = time.perf_counter()
    members, children = greedy(feats, args.leaves, args.seed)
    row = {"data": name, "seed": args.seed, "rule": "greedy"}
    row.update(score(members, children, data.labels), s=round(time.perf_counter() - t0, 1))
    print(json.dumps(row), flush=True)
    for over in (int(v) for v in args.over.split(",")):
        t0 = time.perf_counter()
        members, children = grow_members(feats, over, spectral8_rule, args.seed)
        for weigh in (False, True):
            kept = prune(feats, members, children, args.leaves, weigh)
            row = {"data": name, "seed": args.seed, "over": over, "weigh": weigh}
            row.update(score(members, kept, data.labels), s=round(time.perf_counter() - t0, 1))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
