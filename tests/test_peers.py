"""bench/peers.py: the peers' trees are scored like an hctree tree."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from peers import _deepect_tree, score, ward  # noqa: E402


@dataclass(eq=False)
class Node:
    """The fields of a ClustPy cluster-tree node that peers.py reads."""

    node_id_: int
    labels: list[int] = field(default_factory=list)
    left_node_: Node | None = None
    right_node_: Node | None = None

    def is_leaf_node(self) -> bool:
        return self.left_node_ is None


def test_a_deepect_tree_becomes_leaves_and_a_children_map():
    a, b, c = Node(7, [4]), Node(3, [1]), Node(5, [9])
    inner = Node(2, [1, 9], b, c)
    root = Node(0, [1, 4, 9], a, inner)
    assign, children = _deepect_tree(root, np.array([9, 4, 1, 1, 9]))
    np.testing.assert_array_equal(assign, [1, 2, 0, 0, 1])  # leaves numbered by node id
    assert children == {"r": ["c2", "n2"], "n2": ["c0", "c1"]}
    labels = np.array([0, 1, 2, 2, 0])
    row = score("deepect", labels, assign, children, 3, 1.0)
    assert row["acc"] == 1.0 and row["dendrogram_purity"] == 1.0


def test_a_tree_that_mixes_classes_has_lower_dendrogram_purity():
    a, b, c = Node(1, [0]), Node(2, [1]), Node(3, [2])
    root = Node(0, [0, 1, 2], a, Node(4, [1, 2], b, c))
    assign, children = _deepect_tree(root, np.array([0, 1, 2, 0, 1, 2]))
    labels = np.array([0, 0, 1, 1, 2, 2])  # every leaf holds two classes
    assert score("deepect", labels, assign, children, 3, 1.0)["dendrogram_purity"] < 0.7


def test_ward_finds_three_separated_groups_and_scores_its_top_tree():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.1, (20, 5)) for c in (0.0, 3.0, 9.0)])
    labels = np.repeat([0, 1, 2], 20)
    assign, children = ward(x, 3, 0)
    row = score("ward", labels, assign, children, 3, 1.0)
    assert row["acc"] == 1.0 and row["dendrogram_purity"] == 1.0
    assert len(children) == 2 and "r" in children
