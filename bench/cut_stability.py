"""Does a split's seeding cut depend on its random draws, or on its floor? Replays stored trees.

    .venv/bin/python bench/cut_stability.py TREE [TREE ...] --data D [--subset N] --seed S [--draws 4] [--resample 4]

For every split below the root of each stored hcmgan tree, the node's features
by its parent's stored trunk, as the split was seeded on them (for colour
images averaged over random recolourings, as the `cpu` recipe does). For ``--draws`` generator seeds it recomputes the default
cut's two candidates (hctree.spectral: the direct cut of the leading
eigenvector, and 8 parts merged into 2 under the floor 0.05) and the cut the
default keeps, and the cut kept under higher floors. Prints one JSON line per
node: for each cut its NMI with the true classes over the graph's rows, its
normalised cut, its lightest group's share, and the share of rows it puts on
another side than the default's kept cut.

With ``--resample R`` each candidate's stability is scored too: the mean share of
rows that the same method, run on R random 80% samples of the graph's rows, puts
on the same sides ("stability"), and the cut a rule keeps that takes the more
stable candidate holding the floor ("stable").
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
from hctree.spectral import cut_candidates, kept_cut, merge_parts, normalized_cut, smallest_share
from hctree.splitters import stored_splitter
from hctree.splitters.hcmgan import seed_embedding
from hctree.store import read_tree
from hctree.tree import Tree

PARTS, FLOOR = 8, 0.05  # the `cpu` recipe's spectral_parts and spectral_floor
FLOORS = (0.05, 0.08, 0.1)  # the kept cut under the default's floor and higher ones
BALANCES = (0.8,)  # ... and under spectral_balance


def cuts(feats: torch.Tensor, weights: torch.Tensor, gen: torch.Generator, resample: int = 0):
    """The graph's rows and, per candidate, (labels over them, normalised cut, lightest share)."""
    found = cut_candidates(feats, weights, 2, gen, parts=PARTS, spread=True)
    graph, pieces, direct, sizes = found.graph, found.pieces, found.direct, found.sizes
    found_cuts = {"direct": direct, "merged": merge_parts(graph, pieces, 2, sizes, FLOOR)}
    for floor in FLOORS:
        found_cuts[f"kept@{floor:g}"] = kept_cut(graph, pieces, direct, 2, sizes, floor)
    for balance in BALANCES:
        found_cuts[f"balance@{balance:g}"] = kept_cut(
            graph, pieces, direct, 2, sizes, FLOOR, balance
        )
    stable = {}
    if resample:
        core_feats, core_weights = feats[found.core], weights[found.core]
        stable = stability(core_feats, core_weights, found_cuts, resample, gen)
        found_cuts["stable"] = more_stable(found_cuts, stable, sizes)
    scored = {
        tag: (cut, normalized_cut(graph, cut), smallest_share(cut, sizes, 2))
        for tag, cut in found_cuts.items()
    }
    return found.core.numpy(), scored, stable


def stability(feats, weights, found_cuts, resample: int, gen: torch.Generator) -> dict[str, float]:
    """How much of each candidate (direct, merged) the same method finds again on
    random 80% samples of the graph's rows: the mean share of the sample's rows it
    puts on the same side, up to the order of the sides."""
    n = feats.shape[0]
    agree = {"direct": [], "merged": []}
    for _ in range(resample):
        pick = torch.randperm(n, generator=gen)[: int(0.8 * n)].sort().values
        sub = cut_candidates(feats[pick], weights[pick], 2, gen, parts=PARTS, spread=True)
        rows = pick[sub.core].numpy()
        again = {
            "direct": sub.direct,
            "merged": merge_parts(sub.graph, sub.pieces, 2, sub.sizes, FLOOR),
        }
        for tag, cut in again.items():
            agree[tag].append(1.0 - _moved(found_cuts[tag][rows], cut))
    return {tag: float(np.mean(values)) for tag, values in agree.items()}


def more_stable(found_cuts, stable: dict[str, float], sizes: np.ndarray) -> np.ndarray:
    """The candidate found again more often, among those that hold the floor (either
    when neither or both do)."""
    held = {tag: smallest_share(found_cuts[tag], sizes, 2) >= FLOOR for tag in stable}
    if held["direct"] != held["merged"]:
        return found_cuts["direct" if held["direct"] else "merged"]
    return found_cuts["merged" if stable["merged"] > stable["direct"] else "direct"]


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
    parser.add_argument(
        "--resample",
        type=int,
        default=0,
        help="also score each candidate's stability on this many 80%% samples",
    )
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
                gen = engine.make_generator(draw, cpu)
                core, scored, stable = cuts(feats, weights[rows], gen, args.resample)
                truth = labels[rows.numpy()][core]
                kept = scored[f"kept@{FLOOR:g}"][0]
                draws.append(
                    {
                        tag: [round(nmi(truth, cut), 3), round(ncut, 4), round(share, 3),
                              round(_moved(kept, cut), 4)]
                        for tag, (cut, ncut, share) in scored.items()
                    }
                    | {"stability": {tag: round(v, 4) for tag, v in stable.items()}}
                )  # fmt: skip
            row = {"tree": Path(path).stem, "node": name, "own": len(core), "draws": draws}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
