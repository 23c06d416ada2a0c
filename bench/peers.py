"""Peer methods scored like an hctree tree, on the same images with the same metrics.

    .venv/bin/python bench/peers.py --subset 10000 --k 10
    .venv/bin/python bench/peers.py --data bench/out/digits28.npz --k 10

- ``kmeans``: k-means on pixels in [0, 1] (k-means++, best of 10 restarts by inertia).
- ``ward``: Ward agglomeration on pixels (scipy), cut at k clusters; its dendrogram
  purity is that of the binary tree the last k-1 merges build over the k clusters,
  the way an hctree tree's is computed over its leaves.
- ``deepect``: ClustPy's DeepECT, when ClustPy is installed (the ``bench`` extra:
  ``pip install -e .[bench]``), with its own binary tree for dendrogram purity;
  skipped with a note otherwise.

Prints one JSON line per method: ACC, NMI, ARI, dendrogram purity (where the method
has a hierarchy) and wall time.
"""

from __future__ import annotations

import argparse
import functools
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


DEEPECT_EPOCHS = (100, 150)  # ClustPy's defaults: autoencoder pre-training, clustering


def deepect(x: np.ndarray, k: int, seed: int, epochs: tuple[int, int] = DEEPECT_EPOCHS):
    """DeepECT's leaves int ``[N]`` (its tree grows to k leaves) and its binary tree."""
    try:
        from clustpy.deep import DeepECT
    except ImportError:
        return None
    model = DeepECT(
        max_n_leaf_nodes=k,
        random_state=seed,
        pretrain_epochs=epochs[0],
        clustering_epochs=epochs[1],
    )
    model.fit(x)
    return _deepect_tree(model.tree_.root_node_, np.asarray(model.labels_))


def _deepect_tree(root, cluster: np.ndarray) -> tuple[np.ndarray, dict]:
    """Leaf index per image and the children map (``r``, inner ``n<id>``, leaves ``c<j>``).

    ``cluster`` is ClustPy's label per image; each leaf lists the labels it holds.
    Leaves are numbered by node id.
    """
    leaves, inner, stack = [], [], [root]
    while stack:
        node = stack.pop()
        if node.is_leaf_node():
            leaves.append(node)
        else:
            inner.append(node)
            stack += [node.left_node_, node.right_node_]
    index = {leaf.node_id_: j for j, leaf in enumerate(sorted(leaves, key=lambda n: n.node_id_))}
    leaf_of = {int(c): index[leaf.node_id_] for leaf in leaves for c in leaf.labels}

    def name(node) -> str:
        if node.is_leaf_node():
            return f"c{index[node.node_id_]}"
        return "r" if node is root else f"n{node.node_id_}"

    children = {name(n): [name(n.left_node_), name(n.right_node_)] for n in inner}
    return np.array([leaf_of[int(c)] for c in cluster]), children


def score(name: str, labels: np.ndarray, assign: np.ndarray, children, k: int, seconds: float):
    row = {"method": name, "k": k, "seconds": round(seconds, 1)}
    row.update({m: round(v, 4) for m, v in metrics.cluster_scores(labels, assign).items()})
    if children is not None:
        named = {c for kids in children.values() for c in kids if c.startswith("c")}
        leaves = sorted(named, key=lambda c: int(c[1:]))
        counts = metrics.contingency(assign, labels, len(leaves), int(labels.max()) + 1)
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
    parser.add_argument(
        "--deepect-epochs",
        default=",".join(map(str, DEEPECT_EPOCHS)),
        help="DeepECT's pre-training and clustering epochs (ClustPy's defaults).",
    )
    args = parser.parse_args()
    data = load_images(args.data, subset=args.subset, seed=args.seed)
    if data.labels is None:
        raise SystemExit("peers.py needs labelled images")
    x = data.images.reshape(len(data), -1).astype(np.float32) / 255.0
    epochs = tuple(int(e) for e in args.deepect_epochs.split(","))
    methods = {"kmeans": kmeans, "ward": ward, "deepect": functools.partial(deepect, epochs=epochs)}
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
