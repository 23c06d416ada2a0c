"""Screen ways to bisect a node on the contrastive trunk alone, without GANs.

    .venv/bin/python bench/split_screen.py --subset 10000 --seed 0 --threads 1

Trains the `cpu` preset's trunk as the root warm-up does (NT-Xent of two views),
caches its unit-length features under bench/out/, then grows 10-leaf trees top
down (the largest leaf is split next) with each bisection rule and prints ACC,
NMI and dendrogram purity per rule, one JSON line each. The rules:

- ``kmeans``: weighted 2-means of the node's features (the seeded split's rule);
- ``spectral``: hctree.spectral.spectral_labels, the 2-means of the Fiedler vector
  of the node's symmetric 10-nearest-neighbour graph (normalised Laplacian);
- ``spectral8``: the same with ``spectral_parts=8`` (the default's seeding);
- ``spectral8-floor``: the same with ``spectral_floor=0.05`` (the default's seeding);
- ``floor-k5``, ``floor-k15``, ``floor-k20``: that rule on a 5-, 15- or 20-nearest-
  neighbour graph;
- ``floor-shared``: that rule with every edge weighted by the Jaccard overlap of its
  ends' neighbourhoods (shared-nearest-neighbour graph).
- ``floor10``, ``floor15``, ``floor20``: that rule with a floor of 10%, 15% or 20%.
- ``cap10k``, ``cap5k``, ``cap2500``: that rule with a graph of at most 10,000, 5,000
  or 2,500 of the node's rows (the default's is 20,000); the rest vote.

``--snapshots 2000,4000`` trains the warm-up once and scores its trunk after each
listed number of iterations (nothing is cached).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from hctree import engine, invariance, spectral
from hctree.data import load_images
from hctree.kmeans import weighted_kmeans
from hctree.metrics import accuracy, dendrogram_purity, nmi
from hctree.spectral import spectral_labels
from hctree.splitters import hcmgan


@dataclass
class WarmUp:
    """What the root's warm-up starts from: the `cpu` preset's config (with any
    overrides), the discriminator and its optimiser as a root split builds them,
    the seeded generator and the images as a tensor."""

    config: hcmgan.Config
    disc: torch.nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator
    x: torch.Tensor


def warm_up_start(images: np.ndarray, seed: int, overrides: dict[str, str] | None = None) -> WarmUp:
    """The root warm-up's starting point for uint8 ``images`` at ``seed``."""
    config = hcmgan.Config(**hcmgan.PRESETS["cpu"])
    for key, value in (overrides or {}).items():
        setattr(config, key, type(getattr(config, key))(value))
    device = torch.device("cpu")
    x = torch.from_numpy(images)
    nets = hcmgan._build_nets(config, 2, False, tuple(x.shape[1:]), seed, device)
    gen = engine.make_generator(seed, device)
    hcmgan._set_beta1(nets.opt_d[0], config.embed_beta1)
    return WarmUp(config, nets.discriminators[0], nets.opt_d[0], gen, x)


def train_trunk(images: np.ndarray, seed: int, overrides: dict[str, str], snapshots: list[int]):
    """Train the root warm-up's trunk; yields ``(iteration, discriminator)`` after each
    of the sorted ``snapshots`` iterations."""
    w = warm_up_start(images, seed, overrides)
    weights = torch.ones(len(w.x))
    wanted = sorted(snapshots or [w.config.embed_iters])
    for i in range(1, wanted[-1] + 1):
        hcmgan._embed_step(w.disc, w.opt, w.x, weights, w.config, w.gen, torch.device("cpu"))
        if i in wanted:
            yield i, w.disc


def unit_features(disc, images: np.ndarray) -> np.ndarray:
    """A trunk's unit-length features of uint8 ``images``, ``[N, F]``."""
    unit = lambda b: F.normalize(disc.features(b).float(), dim=1)  # noqa: E731
    return engine.predict_in_batches(unit, torch.from_numpy(images)).numpy()


def trunk_features(
    images: np.ndarray, seed: int, overrides: dict[str, str], snapshots: list[int] | None = None
) -> dict[int, np.ndarray]:
    """Train the root warm-up's trunk; unit-length features ``[N, F]`` after each of
    ``snapshots`` iterations (default: the configured ``embed_iters``), by iteration."""
    return {
        i: unit_features(disc, images)
        for i, disc in train_trunk(images, seed, overrides, snapshots or [])
    }


def final_features(images: np.ndarray, seed: int, overrides: dict[str, str]) -> np.ndarray:
    """:func:`trunk_features` after the configured ``embed_iters`` alone."""
    (feats,) = trunk_features(images, seed, overrides).values()
    return feats


def kmeans_rule(feats: np.ndarray, seed: int) -> np.ndarray:
    gen = engine.make_generator(seed, torch.device("cpu"))
    x = torch.from_numpy(feats)
    return weighted_kmeans(x, torch.ones(len(x)), 2, gen).numpy()


def graph_rule(
    count: int = 10,
    parts: int = 8,
    floor: float = 0.05,
    shared: bool = False,
    cap: int = spectral.MAX_GRAPH,
):
    """hctree.spectral.spectral_labels, as ``split_init=spectral`` applies it, on a
    ``count``-nearest-neighbour graph (its edges weighted by shared neighbours with
    ``shared``) of at most ``cap`` rows, over-cut into ``parts`` and with ``floor``;
    the defaults are the default's seeding."""

    def rule(feats: np.ndarray, seed: int) -> np.ndarray:
        gen = engine.make_generator(seed, torch.device("cpu"))
        x = torch.from_numpy(feats)
        plain, plain_cap = spectral.knn_graph, spectral.MAX_GRAPH
        if shared:
            spectral.knn_graph = shared_neighbour_graph
        spectral.MAX_GRAPH = cap
        try:
            return spectral_labels(x, torch.ones(len(x)), 2, gen, count, parts, floor).numpy()
        finally:
            spectral.knn_graph, spectral.MAX_GRAPH = plain, plain_cap

    return rule


def shared_neighbour_graph(neighbours: np.ndarray) -> sp.csr_matrix:
    """The symmetric kNN graph with each edge weighted by the share of neighbours its
    ends have in common (Jaccard of the two neighbourhoods, each row counted in its
    own): an edge that bridges two groups shares few neighbours and weighs little."""
    n, k = neighbours.shape
    rows = np.repeat(np.arange(n), k)
    near = sp.csr_matrix((np.ones(rows.size), (rows, neighbours.ravel())), shape=(n, n))
    near = ((near + sp.identity(n, format="csr")) > 0).astype(np.float64)
    shared = (near @ near.T).tocsr()
    edges = ((near + near.T) > 0).astype(np.float64)
    edges.setdiag(0)
    common = edges.multiply(shared).tocsr()
    common.data = common.data / (2 * (k + 1) - common.data)
    return common


spectral8_rule = graph_rule(floor=0.0)  # the over-cut without a floor


RULES = {
    "kmeans": kmeans_rule,
    "spectral": graph_rule(parts=0, floor=0.0),
    "spectral8": spectral8_rule,
    "spectral8-floor": graph_rule(),
    "floor-k5": graph_rule(5),
    "floor-k15": graph_rule(15),
    "floor-k20": graph_rule(20),
    "floor-shared": graph_rule(shared=True),
    "floor10": graph_rule(floor=0.10),
    "floor15": graph_rule(floor=0.15),
    "floor20": graph_rule(floor=0.20),
    "cap10k": graph_rule(cap=10000),
    "cap5k": graph_rule(cap=5000),
    "cap2500": graph_rule(cap=2500),
}


def grow_by(count: int, leaves: int, cut, score=None):
    """Bisect a leaf of a tree over ``count`` rows until ``leaves``: the one with the
    highest ``score(node, rows)`` (default: the most rows; ties to the later name),
    into ``cut(node, rows)``'s sides 0 and 1. Returns (rows of every node, children)."""
    members = {"r": np.arange(count)}
    children: dict[str, list[str]] = {}
    while len(members) - len(children) < leaves:
        open_leaves = [n for n in members if n not in children and len(members[n]) >= 2]
        node = max(
            open_leaves,
            key=lambda n: (len(members[n]) if score is None else score(n, members[n]), n),
        )
        rows_of = members[node]
        side = cut(node, rows_of)
        children[node] = [node + "0", node + "1"]
        for j in (0, 1):
            members[node + str(j)] = rows_of[side == j]
    return members, children


def grow_members(feats: np.ndarray, leaves: int, rule, seed: int):
    """Split the largest leaf until ``leaves``; returns (rows of every node, children)."""
    return grow_by(
        len(feats), leaves, lambda node, rows: rule(feats[rows], engine.derive_seed(seed, node))
    )


def leaves_of(members: dict, children: dict) -> list[str]:
    """The leaves of the tree that ``children`` describe (``members`` may hold more nodes)."""
    return [n for n in members if n not in children and (n == "r" or n[:-1] in children)]


def leaf_assignment(members: dict, children: dict, n: int) -> tuple[np.ndarray, list[str]]:
    """Index into the leaves of each of the ``n`` rows, and the leaf names."""
    leaf_names = leaves_of(members, children)
    assign = np.zeros(n, dtype=np.int64)
    for i, name in enumerate(leaf_names):
        assign[members[name]] = i
    return assign, leaf_names


def top_down(feats: np.ndarray, leaves: int, rule, seed: int):
    """Split the largest leaf until ``leaves``; returns (assignment, children, leaf names)."""
    members, children = grow_members(feats, leaves, rule, seed)
    assign, leaf_names = leaf_assignment(members, children, len(feats))
    return assign, children, leaf_names


def screen_parser(description: str, one_seed: bool = False) -> argparse.ArgumentParser:
    """The options every screen takes: the set, its subset, the seeds (``--seed``
    alone with ``one_seed``), the leaves and the threads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=10000, help="0: every image")
    if one_seed:
        parser.add_argument("--seed", type=int, default=0)
    else:
        parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--leaves", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    return parser


def trunk_cache(data, seed: int, tag: str = "base", suffix: str = ".npy") -> Path:
    """Where the warm-up trunk of ``data`` at ``seed`` is cached under bench/out/
    (``tag`` names its settings; ``.npy``: its unit features, ``.pt``: its weights)."""
    return Path(f"bench/out/trunk-{Path(str(data.source)).stem}-{len(data)}-s{seed}-{tag}{suffix}")


def cached_features(data, seed: int) -> np.ndarray:
    """The unit warm-up features this script (or darkness_switch) cached for ``seed``."""
    return np.load(trunk_cache(data, seed))


def load_or_save(cache: Path, compute) -> np.ndarray:
    """The array cached at ``cache``; when there is none, ``compute()``'s, saved there."""
    if cache.exists():
        return np.load(cache)
    array = compute()
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, array)
    return array


def screen_warm_ups(args, arms: list[str], tag_of, train) -> None:
    """:func:`run_screen` for screens of the root's warm-up: arm ``base`` is the
    default's cached trunk; any other arm's unit features come from
    ``train(images, seed, arm)``, cached under ``tag_of(arm)``; each grows a
    trunk-alone tree by the default's seeding cut ``spectral8-floor``."""

    def tree(arm: str, seed: int, data):
        if arm == "base":
            feats = cached_features(data, seed)
        else:
            cache = trunk_cache(data, seed, tag_of(arm))
            feats = load_or_save(cache, lambda: train(data.images, seed, arm))
        return grow_members(feats, args.leaves, RULES["spectral8-floor"], seed)

    run_screen(args, "arm", arms, tree)


def run_screen(args, key: str, arms: list[str], grow_arm) -> None:
    """For each of ``args.seeds``, load its subset and grow one tree per arm with
    ``grow_arm(arm, seed, data)`` -> (members, children); print one JSON line per
    tree (``key``: the arm) and then each arm's means (:func:`print_means`)."""
    engine.configure_threads(args.threads)
    found: dict[str, list[dict]] = {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        data = load_images(args.data, subset=args.subset or None, seed=seed)
        for arm in arms:
            members, children = grow_arm(arm, seed, data)
            assign, leaf_names = leaf_assignment(members, children, len(data))
            row = {key: arm, "seed": seed}
            row.update(tree_scores(data.labels, assign, children, leaf_names))
            found.setdefault(arm, []).append(row)
            print(json.dumps(row), flush=True)
    print_means(found, key)


def print_means(found: dict[str, list[dict]], key: str) -> None:
    """One JSON line per arm of ``found`` (arm -> its rows of scores): the mean ACC,
    NMI and DP and, over two rows or more, the sample sd of ACC and NMI, under ``key``."""
    for arm, rows in found.items():
        mean = {k: round(float(np.mean([r[k] for r in rows])), 3) for k in ("acc", "nmi", "dp")}
        line = {key: arm, "mean": mean}
        if len(rows) > 1:
            line["sd"] = {
                k: round(float(np.std([r[k] for r in rows], ddof=1)), 3) for k in ("acc", "nmi")
            }
        print(json.dumps(line), flush=True)


def tree_scores(labels: np.ndarray, assign: np.ndarray, children: dict, leaf_names: list) -> dict:
    """ACC, NMI and dendrogram purity of a tree's leaves, rounded to three places."""
    counts = np.zeros((len(leaf_names), int(labels.max()) + 1))
    np.add.at(counts, (assign, labels), 1)
    return {
        "acc": round(accuracy(labels, assign), 3),
        "nmi": round(nmi(labels, assign), 3),
        "dp": round(dendrogram_purity(counts, children, "r", leaf_names), 3),
    }


def cached_trunk(data, seed: int, overrides: dict[str, str]) -> np.ndarray:
    """The warm-up trunk's unit features of ``data``, from bench/out/ when computed before."""
    named = dict(overrides)
    if invariance.ASPECT != (3 / 4, 4 / 3):
        named["aspect"] = f"{invariance.ASPECT[1]:g}"
    tag = "-".join(f"{k}{v}" for k, v in sorted(named.items())) or "base"
    return load_or_save(
        trunk_cache(data, seed, tag),
        lambda: final_features(data.images, seed, overrides),
    )


def main() -> None:
    parser = screen_parser(__doc__.splitlines()[0], one_seed=True)
    parser.add_argument("--set", dest="settings", action="append", default=[])
    parser.add_argument("--rules", default=",".join(RULES), help="comma-separated rule names")
    parser.add_argument(
        "--snapshots",
        default="",
        help="comma-separated warm-up iterations to score, e.g. 2000,4000",
    )
    parser.add_argument(
        "--aspect",
        type=float,
        default=None,
        help="a crop's aspect ratio ranges over [1/A, A] (the default's A is 4/3)",
    )
    args = parser.parse_args()
    if args.aspect is not None:
        invariance.ASPECT = (1 / args.aspect, args.aspect)
    engine.configure_threads(args.threads)
    overrides = dict(s.split("=", 1) for s in args.settings)
    data = load_images(args.data, subset=args.subset or None, seed=args.seed)
    if args.snapshots:
        snapshots = [int(v) for v in args.snapshots.split(",")]
        start = time.perf_counter()
        for iters, feats in trunk_features(data.images, args.seed, overrides, snapshots).items():
            score(feats, data.labels, args, {**overrides, "embed_iters": iters}, start)
        return
    start = time.perf_counter()
    feats = cached_trunk(data, args.seed, overrides)
    shown = {**overrides, "aspect": args.aspect} if args.aspect else overrides
    score(feats, data.labels, args, shown, start, nuisance_of(args.data, len(data)))


def nuisance_of(source: str, n: int, key: str = "nuisance") -> np.ndarray | None:
    """The set's ``key`` array (bench/make_sets.py; by default its ``nuisance``), when
    it has one and every image is used (a subset of all of them keeps their order)."""
    if not source.endswith(".npz"):
        return None
    with np.load(source) as arrays:
        if key not in arrays or len(arrays[key]) != n:
            return None
        return arrays[key]


def score(
    feats: np.ndarray,
    labels: np.ndarray,
    args,
    settings: dict,
    start: float,
    nuisance: np.ndarray | None = None,
) -> None:
    """Grow a tree by every rule on ``feats`` and print one JSON line per rule (with
    ``nuisance_nmi``, how much the leaves tell of the nuisance, where it is known)."""
    trained = time.perf_counter() - start
    for name in args.rules.split(","):
        rule = RULES[name]
        t0 = time.perf_counter()
        assign, children, leaf_names = top_down(feats, args.leaves, rule, args.seed)
        row = {"rule": name, "seed": args.seed, "settings": settings}
        row.update(tree_scores(labels, assign, children, leaf_names))
        if nuisance is not None:
            row["nuisance_nmi"] = round(nmi(nuisance, assign), 3)
        row.update(trunk_s=round(trained, 1), rule_s=round(time.perf_counter() - t0, 1))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
