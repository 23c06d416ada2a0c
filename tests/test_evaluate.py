"""Tree evaluation against values computed independently here, and labels files."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter

import numpy as np
import pytest

from hctree.errors import HCTreeError
from hctree.evaluate import evaluate, format_report, load_labels
from hctree.tree import Tree, open_tree
from tests.treefactory import make_tree, three_level_record

# ---------------------------------------------------------------- independent references

LABELS = np.array([0, 0, 1, 1, 2, 2])


def hand_tree(labels: np.ndarray | None = LABELS) -> Tree:
    """r -> (r0, r1), then r0 -> (r00, r01); hard leaves of the six images: r00 r00 r01 r1 r1 r1."""
    return Tree(three_level_record(labels, class_names=["a", "b", "c"]))


def brute_accuracy(labels, assign) -> float:
    clusters, classes = sorted(set(assign)), sorted(set(labels))
    best = 0
    for perm in itertools.permutations(classes, min(len(clusters), len(classes))):
        mapping = dict(zip(clusters, perm, strict=False))
        best = max(best, sum(mapping.get(k) == y for k, y in zip(assign, labels, strict=True)))
    return best / len(labels)


def brute_nmi_ari(labels, assign) -> tuple[float, float]:
    n = len(labels)
    joint = Counter(zip(assign, labels, strict=True))
    a, b = Counter(assign), Counter(labels)
    mi = sum(v / n * math.log(n * v / (a[k] * b[c])) for (k, c), v in joint.items())

    def h(counts):
        return -sum(v / n * math.log(v / n) for v in counts.values())

    def pairs(x):
        return x * (x - 1) / 2

    index = sum(pairs(v) for v in joint.values())
    rows, cols = sum(pairs(v) for v in a.values()), sum(pairs(v) for v in b.values())
    expected = rows * cols / pairs(n)
    return mi / ((h(a) + h(b)) / 2), (index - expected) / ((rows + cols) / 2 - expected)


def lca(a: str, b: str) -> str:
    prefix = ""
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        prefix += x
    return prefix


def brute_dendrogram_purity(tree: Tree, labels: np.ndarray, soft: bool) -> float:
    """Average over same-class pairs (i != j) and, when soft, over leaf pairs weighted by s."""
    leaves = tree.leaves
    mem = tree.memberships().astype(np.float64)
    if not soft:
        mem = np.eye(len(leaves))[tree.assignments()].T

    def node_purity(node: str, cls: int) -> float:
        under = [i for i, leaf in enumerate(leaves) if leaf.startswith(node)]
        weights = mem[under].sum(axis=0)
        return weights[labels == cls].sum() / weights.sum()

    total = weighted = 0.0
    for i, j in itertools.permutations(range(len(labels)), 2):
        if labels[i] != labels[j]:
            continue
        for a, b in itertools.product(range(len(leaves)), repeat=2):
            w = mem[a, i] * mem[b, j]
            if w:
                total += w
                weighted += w * node_purity(lca(leaves[a], leaves[b]), labels[i])
    return weighted / total


# ---------------------------------------------------------------- evaluate


def test_hand_built_tree_matches_independent_values():
    tree = hand_tree()
    result = evaluate(tree)
    assign = [0, 0, 1, 2, 2, 2]
    nmi, ari = brute_nmi_ari(LABELS.tolist(), assign)
    assert result["acc"] == pytest.approx(brute_accuracy(LABELS.tolist(), assign)) == 5 / 6
    assert result["nmi"] == pytest.approx(nmi)
    assert result["ari"] == pytest.approx(ari)
    assert result["purity"] == pytest.approx(5 / 6)
    assert result["leaf_purity"] == pytest.approx(5 / 6)
    # soft leaf counts: r00 (1.7, 0.3, 0), r01 (0.3, 0.8, 0), r1 (0, 0.9, 2)
    assert result["soft_leaf_purity"] == pytest.approx((1.7 + 0.8 + 2) / 6, abs=1e-6)
    # pairs: (0,1) in r00 -> 1; (2,3) meet at r -> 2/6; (4,5) in r1 -> 2/3
    assert result["dendrogram_purity"] == pytest.approx((1 + 1 / 3 + 2 / 3) / 3)
    assert result["dendrogram_purity"] == pytest.approx(
        brute_dendrogram_purity(tree, LABELS, False)
    )
    assert result["soft_dendrogram_purity"] == pytest.approx(
        brute_dendrogram_purity(tree, LABELS, True), abs=1e-6
    )
    assert (result["images"], result["classes"], result["leaves"]) == (6, 3, 3)
    assert result["class_names"] == ["a", "b", "c"] and result["labels"] == "tree file"


def test_split_purity_is_over_the_children_at_the_split():
    splits = evaluate(hand_tree())["splits"]
    assert [(s["step"], s["node"], s["children"]) for s in splits] == [
        (1, "r", ["r0", "r1"]),
        (2, "r0", ["r00", "r01"]),
    ]
    # r: argmax over (r0, r1) gives r0 r0 r0 r1 r1 r1 -> r0 {a, a, b}, r1 {b, c, c}
    assert splits[0]["images"] == 6 and splits[0]["purity"] == pytest.approx(4 / 6)
    assert splits[0]["majority"] == ["a", "c"]
    # r0: images whose hard leaf is under r0 are 0, 1, 2 -> r00 r00 r01
    assert splits[1]["images"] == 3 and splits[1]["purity"] == pytest.approx(1.0)
    assert splits[1]["majority"] == ["a", "b"]
    # soft: r0 (2, 1.1, 0) r1 (0, 0.9, 2); r00 (1.7, 0.3, 0) r01 (0.3, 0.8, 0)
    assert splits[0]["soft_purity"] == pytest.approx(4 / 6, abs=1e-6)
    assert splits[1]["soft_purity"] == pytest.approx(2.5 / 3.1, abs=1e-6)


def test_cut_scores_follow_the_split_order():
    result = evaluate(hand_tree())
    assert [row["leaves"] for row in result["cuts"]] == [2, 3]
    two = result["cuts"][0]
    # two leaves r0 {a, a, b}, r1 {b, c, c}
    assert two["acc"] == pytest.approx(brute_accuracy(LABELS.tolist(), [0, 0, 0, 1, 1, 1]))
    assert two["purity"] == pytest.approx(4 / 6)
    assert two["dendrogram_purity"] == pytest.approx(
        brute_dendrogram_purity(hand_tree().cut(2), LABELS, False)
    )
    last = result["cuts"][-1]
    assert {k: last[k] for k in ("acc", "nmi", "ari", "purity", "dendrogram_purity")} == {
        k: result[k] for k in ("acc", "nmi", "ari", "purity", "dendrogram_purity")
    }


def test_perfect_hard_tree_scores_one_everywhere(tmp_path):
    tree = open_tree(make_tree(tmp_path, {"r": [[0], [1], [2], [3]]}, softness=0.0))
    result = evaluate(tree)
    for key in ("acc", "nmi", "ari", "purity", "leaf_purity", "soft_leaf_purity"):
        assert result[key] == pytest.approx(1.0), key
    assert result["dendrogram_purity"] == pytest.approx(1.0)
    assert result["soft_dendrogram_purity"] == pytest.approx(1.0)
    assert result["splits"][0]["purity"] == pytest.approx(1.0)
    assert result["splits"][0]["soft_purity"] == pytest.approx(1.0)
    assert [row["leaves"] for row in result["cuts"]] == [4]


def test_every_cut_is_scored_with_kway_splits(tmp_path):
    splits = {"r": [[0], [1], [2, 3]], "r2": [[2], [3]]}
    tree = open_tree(make_tree(tmp_path, splits, softness=0.2))
    result = evaluate(tree)
    assert tree.cut_sizes() == [1, 3, 4]
    assert [row["leaves"] for row in result["cuts"]] == [3, 4]
    assert result["cuts"][0]["acc"] == pytest.approx(0.75)
    assert result["acc"] == pytest.approx(1.0)
    # classes 0 and 1 keep 0.8 of their mass in their leaf; 2 and 3 keep 0.8 * 0.8
    assert result["soft_leaf_purity"] == pytest.approx((0.8 + 0.8 + 0.64 + 0.64) / 4, abs=1e-5)
    assert len(result["splits"]) == 2
    assert evaluate(tree.cut(3))["cuts"] == result["cuts"][:1]


def test_given_labels_are_renumbered_and_checked():
    tree = hand_tree(labels=None)
    with pytest.raises(HCTreeError, match="holds no labels"):
        evaluate(tree)
    result = evaluate(tree, LABELS * 10 - 7)
    assert result["labels"] == "given" and result["class_names"] == ["-7", "3", "13"]
    assert result["acc"] == pytest.approx(5 / 6)
    with pytest.raises(HCTreeError, match="5 labels but the tree has 6"):
        evaluate(tree, LABELS[:5])
    with pytest.raises(HCTreeError, match="whole-number"):
        evaluate(tree, LABELS + 0.5)


def test_undefined_scores_are_none_and_result_is_json():
    result = evaluate(hand_tree(), np.arange(6))
    assert result["dendrogram_purity"] is None and result["soft_dendrogram_purity"] is None
    assert all(row["dendrogram_purity"] is None for row in result["cuts"])
    assert result["acc"] == pytest.approx(0.5)
    assert json.loads(json.dumps(result)) == result
    full = evaluate(hand_tree())
    assert json.loads(json.dumps(full)) == full


def test_format_report_shows_the_numbers():
    result = evaluate(hand_tree(), np.arange(6))
    text = format_report(result)
    assert "3 leaves, 6 images, 6 classes (labels given)" in text
    assert f"{result['nmi']:.4f}" in text and f"{result['soft_leaf_purity']:.4f}" in text
    lines = text.splitlines()
    dendro = next(line for line in lines if line.startswith("dendrogram purity"))
    assert dendro.split()[-2:] == ["-", "-"]
    assert any(line.split()[:2] == ["2", "r0"] for line in lines)


# ---------------------------------------------------------------- labels files


def test_load_labels_from_each_kind(tmp_path):
    expected = np.array([3, 0, 2, 2])
    np.save(tmp_path / "a.npy", expected.astype(np.int32))
    np.save(tmp_path / "b.npy", expected.astype(np.float64)[:, None])
    (tmp_path / "c.txt").write_text("3\n0\n 2\n2\n\n")
    (tmp_path / "d.csv").write_text("3\n0\n2\n2\n")
    (tmp_path / "e.csv").write_text("class\n3\n0\n2\n2\n")
    (tmp_path / "f.csv").write_text("file,label,note\nx.png,3,\ny.png,0,a\nz.png,2,\nw.png,2,\n")
    for name in ("a.npy", "b.npy", "c.txt", "d.csv", "e.csv", "f.csv"):
        got = load_labels(tmp_path / name)
        assert got.dtype == np.int64, name
        np.testing.assert_array_equal(got, expected, err_msg=name)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("a.npy", np.zeros((2, 3), np.int64), "shape"),
        ("b.npy", np.array([0.5, 1.0]), "whole-number"),
        ("c.npy", b"not an array", "readable .npy"),
        ("d.txt", "1\nabc\n", "line 2 .* 'abc'"),
        ("e.txt", "1\n\n2\n", "line 2 .* empty"),
        ("f.txt", "\n\n", "no labels"),
        ("g.csv", "a,b\n1,2\n", "none named 'label'"),
        ("h.csv", "", "empty"),
        ("i.csv", "label,x\n1,a\n,b\n", "row 3 .* no label"),
        ("j.json", "[1, 2]", "unknown extension"),
    ],
)
def test_bad_labels_files_are_refused(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(HCTreeError, match=message):
        load_labels(path)


def test_missing_labels_file(tmp_path):
    with pytest.raises(HCTreeError, match="does not exist"):
        load_labels(tmp_path / "nope.txt")
