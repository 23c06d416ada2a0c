"""Build real tree files for tests without training: memberships follow class groups.

``make_tree(tmp_path, splits)`` writes an ``.npz`` data set of small random images
with labels, and a tree file whose splits divide the classes as given, e.g.
``{"r": [[0, 1], [2, 3]], "r0": [[0], [1]]}``: node ``r`` sends classes 0-1 to
``r0`` and 2-3 to ``r1``, then ``r0`` splits 0 from 1. ``softness`` moves that
fraction of each image's mass to the other children, so memberships are soft.

``three_level_record()`` is a small hand-written record (six images, three leaves)
for tests that check values computed by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hctree.data import load_images
from hctree.store import NodeRecord, StageRecord, TreeRecord, write_tree
from hctree.tree import child_name


def make_dataset(
    path: Path, n_per_class: int = 20, n_classes: int = 4, size: int = 28, seed: int = 0
) -> Path:
    """An .npz of uint8 images [N, size, size] whose brightness pattern depends on the class."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    images = rng.integers(0, 60, (labels.size, size, size)).astype(np.uint8)
    for c in range(n_classes):
        rows = slice(c * size // n_classes, (c + 1) * size // n_classes)
        images[labels == c, rows, :] += 180
    np.savez(path, images=images, labels=labels)
    return path


def make_tree(
    tmp_path: Path,
    splits: dict[str, list[list[int]]],
    softness: float = 0.1,
    n_per_class: int = 20,
    n_classes: int = 4,
    name: str = "tree.h5",
) -> Path:
    """Write a dataset and a tree file (see module docstring); returns the tree path."""
    data_path = make_dataset(tmp_path / "data.npz", n_per_class, n_classes)
    data = load_images(data_path)
    labels = data.labels
    root = NodeRecord("r", None, 0, np.ones(len(labels), np.float32))
    nodes = {"r": root}
    for order, (parent_name, groups) in enumerate(splits.items()):
        parent = nodes[parent_name]
        k = len(groups)
        share = np.full((k, len(labels)), softness / max(k - 1, 1), np.float32)
        for j, classes in enumerate(groups):
            share[j, np.isin(labels, classes)] = 1.0 - softness
        share[:, share.sum(0) == 0] = 1.0 / k  # classes outside every group split evenly
        share /= share.sum(0, keepdims=True)
        memberships = share * parent.membership
        parent.children = [child_name(parent_name, j) for j in range(k)]
        parent.status, parent.split_order = "split", order
        parent.stages["raw"] = StageRecord(memberships, {"loss": 0.1}, 1.0)
        parent.split_attrs = {"k": k, "final_stage": "raw"}
        for j, child in enumerate(parent.children):
            nodes[child] = NodeRecord(child, parent_name, parent.depth + 1, memberships[j].copy())
    attrs = {
        "dataset_fingerprint": data.fingerprint,
        "dataset_source": str(data_path),
        "data_spec": json.dumps(data.spec, sort_keys=True),
        "n": len(labels),
        "image_shape": np.array(data.image_shape),
        "splitter": "hcmgan",
        "preset": "tiny",
        "config_json": "{}",
        "seed": 0,
        "branching": 2,
        "created": "2026-01-01T00:00:00+00:00",
        "splits_done": len(splits),
    }
    record = TreeRecord(
        attrs, nodes, labels=labels, class_names=[f"c{i}" for i in range(n_classes)]
    )
    path = tmp_path / name
    write_tree(path, record)
    return path


THREE_LEVEL_MEMBERSHIPS = {
    "r": [1, 1, 1, 1, 1, 1],
    "r0": [1, 1, 0.9, 0.2, 0, 0],
    "r1": [0, 0, 0.1, 0.8, 1, 1],
    "r00": [0.7, 1, 0.1, 0.2, 0, 0],
    "r01": [0.3, 0, 0.8, 0, 0, 0],
}
"""The memberships of :func:`three_level_record`'s nodes over its six images."""


def three_level_record(
    labels: np.ndarray | None = None, class_names: list[str] | None = None
) -> TreeRecord:
    """r -> (r0, r1), then r0 -> (r00, r01) as the second split: 3 leaves, 6 images.

    Hard leaves of the six images: r00 r00 r01 r1 r1 r1 (see THREE_LEVEL_MEMBERSHIPS).
    """
    mem = {k: np.array(v, np.float32) for k, v in THREE_LEVEL_MEMBERSHIPS.items()}
    nodes = {
        "r": NodeRecord("r", None, 0, mem["r"], ["r0", "r1"], "split", 0),
        "r0": NodeRecord("r0", "r", 1, mem["r0"], ["r00", "r01"], "split", 1),
        "r1": NodeRecord("r1", "r", 1, mem["r1"]),
        "r00": NodeRecord("r00", "r0", 2, mem["r00"]),
        "r01": NodeRecord("r01", "r0", 2, mem["r01"]),
    }
    attrs = {"n": 6, "splitter": "hcmgan", "image_shape": np.array([1, 28, 28])}
    return TreeRecord(attrs, nodes, labels=labels, class_names=class_names)
