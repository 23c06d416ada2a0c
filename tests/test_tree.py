"""The Tree view: leaves, cuts, assignments, networkx export."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hctree.errors import HCTreeError
from hctree.store import TreeRecord, write_tree
from hctree.tree import Tree, child_name, open_tree
from tests.treefactory import three_level_record

LABELS = np.array([0, 0, 1, 2, 2, 2])


def record() -> TreeRecord:
    """The three-level hand tree (r -> r0, r1; r0 -> r00, r01) with one label per image."""
    return three_level_record(LABELS)


def test_leaves_and_assignments():
    tree = Tree(record())
    assert tree.leaves == ["r00", "r01", "r1"]
    assert tree.memberships().shape == (3, 6)
    np.testing.assert_array_equal(tree.assignments(), [0, 0, 1, 2, 2, 2])
    assert tree.split_sequence == ["r", "r0"]
    assert tree.cut_sizes() == [1, 2, 3]
    assert tree.root.children == ("r0", "r1")
    assert tree.node("r00").depth == 2 and tree.node("r00").is_leaf


def test_cut_follows_split_order():
    tree = Tree(record())
    two = tree.cut(2)
    assert two.leaves == ["r0", "r1"]
    assert two.node("r0").is_leaf and two.node("r0").status == "leaf"
    np.testing.assert_array_equal(two.assignments(), [0, 0, 0, 1, 1, 1])
    assert tree.cut(1).leaves == ["r"]
    with pytest.raises(HCTreeError, match="never had exactly 5 leaves"):
        tree.cut(5)


def test_networkx_export():
    graph = Tree(record()).to_networkx()
    assert sorted(graph.edges) == [("r", "r0"), ("r", "r1"), ("r0", "r00"), ("r0", "r01")]
    assert graph.nodes["r1"]["leaf"] and not graph.nodes["r0"]["leaf"]
    assert graph.nodes["r0"]["mass"] == pytest.approx(3.1)


def test_open_tree_from_file(tmp_path):
    path = tmp_path / "t.h5"
    write_tree(path, record())
    tree = open_tree(path)
    assert tree.leaves == ["r00", "r01", "r1"] and tree.n == 6
    with pytest.raises(HCTreeError, match="no node"):
        tree.node("r7")


def test_child_names_sort_depth_first():
    names = [child_name("r", i) for i in range(12)]
    assert names[:3] == ["r0", "r1", "r2"] and names[10] == "ra"
    assert sorted(names) == names


def test_the_tree_module_needs_none_of_the_modules_that_use_it():
    code = (
        "import sys, hctree.tree; "
        "print(sorted(m for m in ('hctree.assign', 'hctree.evaluate', 'hctree.render') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    import hctree
    from hctree.evaluate import evaluate

    assert hctree.evaluate_tree is evaluate
