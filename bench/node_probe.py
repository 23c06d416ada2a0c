"""Does a trunk know a node's classes? A linear probe against unsupervised cuts.

    .venv/bin/python bench/node_probe.py tree.h5 NODE --trunk PARENT --classes 2,4,6

Takes the images of ``NODE`` (membership above 0.5) of a labelled hcmgan tree
whose label is in ``--classes``, embeds them with the trunk of the split stored
at ``--trunk`` (default: the node's parent, whose trunk the node's own split
starts from), and prints, as one JSON line: the 3-fold accuracy of a logistic
regression on the unit-length features (what a linear cut could do if it knew
the classes), the NMI of k-means with as many clusters as classes on the same
features, on the features averaged over eight views, and on pixels. A high probe
with a low k-means NMI means the classes are in the features but are not their
largest clusters.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import normalized_mutual_info_score
from sklearn.model_selection import cross_val_score

from hctree import engine
from hctree.render import tree_images
from hctree.splitters import stored_splitter
from hctree.store import read_models, read_tree
from hctree.support import view_mean_features
from hctree.tree import open_tree


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def scores(feats: np.ndarray, labels: np.ndarray, k: int) -> tuple[float, float]:
    """Probe accuracy (3-fold) and k-means NMI of ``feats`` against ``labels``."""
    probe = cross_val_score(LogisticRegression(max_iter=2000), feats, labels, cv=3).mean()
    found = KMeans(k, n_init=5, random_state=0).fit_predict(feats)
    return float(probe), float(normalized_mutual_info_score(labels, found))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree")
    parser.add_argument("node")
    parser.add_argument("--trunk", default=None, help="the split whose trunk embeds [parent]")
    parser.add_argument("--classes", default=None, help="comma-separated labels [all]")
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    record, tree = read_tree(args.tree), open_tree(args.tree)
    if record.labels is None:
        raise SystemExit("the tree holds no labels to probe with")
    node = record.nodes[args.node]
    trunk = args.trunk or node.parent or node.name
    splitter, config = stored_splitter(record.attrs)
    labels = np.asarray(record.labels)
    rows = node.membership > 0.5
    if args.classes:
        rows &= np.isin(labels, [int(c) for c in args.classes.split(",")])
    labels = labels[rows]
    k = len(np.unique(labels))
    images = torch.from_numpy(tree_images(tree, args.data).images[rows])
    shape = tuple(images.shape[1:])
    embed = splitter.features(read_models(args.tree, trunk), config, shape, torch.device("cpu"))
    feats = unit(engine.predict_in_batches(embed, images, config.predict_batch).numpy())
    probe, kmeans = scores(feats, labels, k)
    _, views = scores(unit(view_mean_features(embed, images, config, 0)), labels, k)
    pixel_probe, pixels = scores(images.flatten(1).float().numpy() / 255, labels, k)
    print(json.dumps({
        "tree": args.tree, "node": args.node, "trunk": trunk, "images": int(rows.sum()),
        "classes": np.unique(labels).tolist(), "probe": round(probe, 3),
        "kmeans_nmi": round(kmeans, 3), "view_mean_kmeans_nmi": round(views, 3),
        "pixel_probe": round(pixel_probe, 3), "pixel_kmeans_nmi": round(pixels, 3),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
