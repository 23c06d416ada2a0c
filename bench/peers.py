"""Peer methods scored like an hctree tree, on the same images with the same metrics.

    .venv/bin/python bench/peers.py --subset 10000 --k 10
    .venv/bin/python bench/peers.py --data bench/out/digits28.npz --k 10

- ``kmeans``: k-means on pixels in [0, 1] (k-means++, best of 10 restarts by inertia).
- ``ward``: Ward agglomeration on pixels (scipy), cut at k clusters; its dendrogram
  purity is that of the binary tree the last k-1 merges build over the k clusters,
  the way an hctree tree's is computed over its leaves.
- ``deepect``: ClustPy's DeepECT, when ClustPy is installed (``pip install clustpy``,
  an optional extra); skipped with a note otherwise.

Prints one JSON line per method: ACC, NMI, ARI, dendrogram purity (where the method
has a hierarchy) and wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kmeans_baseline import kmeans_pp, lloyd  # noqa: E402

from hctree import metrics  # noqa: E402
from hctree.data import load_images  # noqa: E402


def kmeans(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, None]:
    rng = np.random.default_rng(seed)
    best = min((lloyd(x, kmeans_pp(x, k, rng)) for _ in range(10)), key=lambda r: r[1])
    return best[0], None


def ward(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, dict]:
    """Ward clusters int ``[N]`` and the top of its dendrogram over them."""
    z = linkage(x, method="ward")
    assign = fcluster(z, k, criterion="maxclust") - 1
    return assign, _top_tree(z, assign, len(x), k)


def _top_tree(z: np.ndarray, assign: np.ndarray, n: int, k: int) -> dict:
    """children map of the tree the last k-1 merges of linkage ``z`` make over k clusters."""
    members: dict[int, np.ndarray] = {}
    names: dict[int, str] = {}
    top = z[-(k - 1) :] if k > 1 else z[:0]
    ids = {int(a) for row in top for a in row[:2]} - {
        n + len(z) - (k - 1) + i for i in range(k - 1)
    }
    for node in ids:  # the k subtrees below the cut
        cluster = _cluster_of(z, node, n, assign)
        names[node] = f"c{cluster}"
        members[node] = np.array([cluster])
    children: dict[str, list[str]] = {}
    for i, row in enumerate(top):
        node = n + len(z) - (k - 1) + i
        a, b = int(row[0]), int(row[1])
        names[node] = "r" if i == len(top) - 1 else f"m{i}"
        children[names[node]] = [names[a], names[b]]
    return children


def _cluster_of(z: np.ndarray, node: int, n: int, assign: np.ndarray) -> int:
    while node >= n:
        node = int(z[node - n][0])
    return int(assign[node])


def deepect(x: np.ndarray, k: int, seed: int):
    try:
        from clustpy.deep import DeepECT
    except ImportError:
        return None
    model = DeepECT(max_n_leaf_nodes=k, random_state=seed)
    model.fit(x)
    return np.asarray(model.flat_clustering(k)), None


def score(name: str, labels: np.ndarray, assign: np.ndarray, children, k: int, seconds: float):
    row = {"method": name, "k": k, "seconds": round(seconds, 1)}
    row.update({m: round(v, 4) for m, v in metrics.cluster_scores(labels, assign).items()})
    if children is not None:
        leaves = [f"c{j}" for j in range(k)]
        counts = metrics.contingency(assign, labels, k, int(labels.max()) + 1)
        row["dendrogram_purity"] = round(
            metrics.dendrogram_purity(counts, children, "r", leaves), 4
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default="kmeans,ward,deepect")
    args = parser.parse_args()
    data = load_images(args.data, subset=args.subset, seed=args.seed)
    if data.labels is None:
        raise SystemExit("peers.py needs labelled images")
    x = data.images.reshape(len(data), -1).astype(np.float32) / 255.0
    methods = {"kmeans": kmeans, "ward": ward, "deepect": deepect}
    for name in args.methods.split(","):
        start = time.perf_counter()
        result = methods[name](x, args.k, args.seed)
        if result is None:
            print(json.dumps({"method": name, "skipped": "ClustPy is not installed"}))
            continue
        assign, children = result
        row = score(name, data.labels, assign, children, args.k, time.perf_counter() - start)
        print(json.dumps({"data": str(args.data), "n": len(data), **row}), flush=True)


if __name__ == "__main__":
    main()
