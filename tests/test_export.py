"""Every export format read back with its own reader and checked against the tree."""

from __future__ import annotations

import csv
import hashlib
import json
import re

import networkx as nx
import numpy as np
import pytest
from PIL import Image
from scipy.cluster import hierarchy

from hctree.data import load_images
from hctree.errors import HCTreeError
from hctree.export import export, linkage_matrix, merge_heights, newick, source_names
from hctree.store import NodeRecord, TreeRecord, write_tree
from hctree.tree import Tree, open_tree
from tests.treefactory import make_tree

KWAY = {"r": [[0, 1], [2], [3, 4, 5]], "r0": [[0], [1]], "r2": [[3], [4, 5]], "r21": [[4], [5]]}


@pytest.fixture
def tree(tmp_path) -> Tree:
    """Six classes; a 3-way root split, then binary splits: 6 leaves, 4 splits."""
    return open_tree(make_tree(tmp_path, KWAY, softness=0.15, n_per_class=5, n_classes=6))


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- tables


def test_csv_round_trip(tree, tmp_path):
    with open(export(tree, tmp_path / "out.csv"), newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert header == ["index", "name", "label", "leaf", "probability", *tree.leaves]
    assert len(body) == tree.n
    mem = tree.memberships()
    assign = tree.assignments()
    got = np.array([[float(x) for x in row[5:]] for row in body])
    np.testing.assert_allclose(got, mem.T, rtol=1e-5, atol=1e-6)
    assert [int(row[0]) for row in body] == list(range(tree.n))
    assert all(row[1] == "" for row in body)  # an .npz data set has no per-image names
    assert [int(row[2]) for row in body] == tree.labels.tolist()
    assert [row[3] for row in body] == [tree.leaves[a] for a in assign]
    probability = np.array([float(row[4]) for row in body])
    expected = mem[assign, np.arange(tree.n)] / mem.sum(axis=0)
    np.testing.assert_allclose(probability, expected, rtol=1e-5)
    assert probability.min() > 0.5  # softness 0.15 per split leaves the assigned leaf on top


def image_folder_tree(tmp_path) -> tuple[Tree, list[str]]:
    """A tree over a folder of 4 PNGs in two class folders, with its data spec recorded."""
    folder = tmp_path / "images"
    rng = np.random.default_rng(1)
    for cls in ('cat, "big"', "dog"):
        (folder / cls).mkdir(parents=True)
        for i in range(2):
            pixels = rng.integers(0, 255, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / cls / f"{i}.png")
    data = load_images(folder)
    first = (data.labels == 0).astype(np.float32)
    nodes = {
        "r": NodeRecord("r", None, 0, np.ones(4, np.float32), ["r0", "r1"], "split", 0),
        "r0": NodeRecord("r0", "r", 1, first),
        "r1": NodeRecord("r1", "r", 1, 1 - first),
    }
    attrs = {
        "n": 4,
        "splitter": "hcmgan",
        "image_shape": np.array(data.image_shape),
        "dataset_fingerprint": data.fingerprint,
        "data_spec": json.dumps(data.spec, sort_keys=True),
    }
    path = tmp_path / "folder_tree.h5"
    write_tree(path, TreeRecord(attrs, nodes, labels=data.labels))
    return open_tree(path), data.names


def test_csv_names_come_from_the_image_folder(tmp_path):
    tree, names = image_folder_tree(tmp_path)
    assert names == ['cat, "big"/0.png', 'cat, "big"/1.png', "dog/0.png", "dog/1.png"]
    assert source_names(tree) == names
    with open(export(tree, tmp_path / "out.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["name"] for row in rows] == names
    assert [row["leaf"] for row in rows] == ["r0", "r0", "r1", "r1"]
    assert [float(row["probability"]) for row in rows] == [1.0] * 4
    (tmp_path / "images" / "dog" / "1.png").unlink()  # the data changed: names are unknown
    assert source_names(tree) is None


def test_npz_round_trip(tree, tmp_path):
    with np.load(export(tree, tmp_path / "out.npz"), allow_pickle=False) as f:
        assert sorted(f.files) == ["assignments", "labels", "leaves", "memberships"]
        np.testing.assert_array_equal(f["memberships"], tree.memberships())
        assert f["memberships"].dtype == np.float32
        assert f["leaves"].tolist() == tree.leaves
        np.testing.assert_array_equal(f["assignments"], tree.assignments())
        np.testing.assert_array_equal(f["labels"], tree.labels)


# ---------------------------------------------------------------- graphs


def check_graph(graph: nx.DiGraph, tree: Tree) -> None:
    expected = {(p, c) for p, children in tree.children_map().items() for c in children}
    assert set(graph.edges) == expected
    assert set(graph.nodes) == set(tree.nodes)
    sizes = np.bincount(tree.assignments(), minlength=len(tree.leaves))
    heights = merge_heights(tree)
    for name, attrs in graph.nodes(data=True):
        under = [i for i, leaf in enumerate(tree.leaves) if leaf.startswith(name)]
        assert attrs["images"] == sizes[under].sum()
        assert attrs["leaves"] == len(under)
        assert bool(attrs["leaf"]) == (name in tree.leaves)
        assert attrs["height"] == heights[name]
        assert attrs["mass"] == pytest.approx(tree.node(name).mass)
        assert attrs["depth"] == tree.node(name).depth
    assert graph.graph["n"] == tree.n


def test_graphml_round_trip(tree, tmp_path):
    graph = nx.read_graphml(export(tree, tmp_path / "out.graphml"))
    assert graph.is_directed()
    check_graph(graph, tree)


def test_json_round_trip(tree, tmp_path):
    data = json.loads(export(tree, tmp_path / "out.json").read_text())
    graph = nx.node_link_graph(data, edges="edges")
    assert graph.is_directed()
    check_graph(graph, tree)


# ---------------------------------------------------------------- linkage


def test_linkage_is_a_valid_monotonic_scipy_linkage(tree, tmp_path):
    z = np.load(export(tree, tmp_path / "out.linkage.npy"), allow_pickle=False)
    leaves = tree.leaves
    assert z.shape == (len(leaves) - 1, 4) and z.dtype == np.float64
    np.testing.assert_array_equal(z, linkage_matrix(tree))
    assert hierarchy.is_valid_linkage(z) and hierarchy.is_monotonic(z)
    root = hierarchy.to_tree(z)
    assert root.get_count() == len(leaves) and root.dist == len(tree.split_sequence)
    drawn = hierarchy.dendrogram(z, labels=leaves, no_plot=True)
    assert drawn["ivl"] == leaves  # depth-first order is kept
    # the 3-way root split is two merges at the top height
    assert z[-1, 2] == z[-2, 2] == 4.0 and z[-3, 2] == 3.0


def test_linkage_cuts_reproduce_the_tree_cuts(tree):
    z = linkage_matrix(tree)
    steps = len(tree.split_sequence)
    for m, k in enumerate(tree.cut_sizes()):
        # undoing every split after the m-th leaves the tree with k leaves
        flat = hierarchy.fcluster(z, t=steps - m + 0.5, criterion="distance")
        cut = tree.cut(k)
        groups = [
            next(j for j, c in enumerate(cut.leaves) if leaf.startswith(c)) for leaf in tree.leaves
        ]
        assert len(set(flat)) == k
        pairs = {(int(a), b) for a, b in zip(flat, groups, strict=True)}
        assert len(pairs) == k  # the two partitions of the leaves agree


def test_single_leaf_tree_has_no_linkage(tmp_path):
    tree = open_tree(make_tree(tmp_path, {}))
    with pytest.raises(HCTreeError, match="single leaf"):
        export(tree, tmp_path / "out.linkage.npy")
    assert not (tmp_path / "out.linkage.npy").exists()
    assert newick(tree) == "r;"


# ---------------------------------------------------------------- Newick

TOKEN = re.compile(r"\s*([(),:;]|[^(),:;\s]+)")


def parse_newick(text: str) -> tuple[str, list, float | None]:
    """``(name, children, branch length)`` for a Newick string with names and lengths."""
    tokens = TOKEN.findall(text)
    pos = 0

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def node():
        children = []
        if tokens[pos] == "(":
            take()
            children.append(node())
            while tokens[pos] == ",":
                take()
                children.append(node())
            assert take() == ")"
        name = take() if tokens[pos] not in ",:);" else ""
        length = None
        if tokens[pos] == ":":
            take()
            length = float(take())
        return name, children, length

    root = node()
    assert take() == ";" and pos == len(tokens)
    return root


def test_newick_round_trip(tree, tmp_path):
    text = export(tree, tmp_path / "out.nwk").read_text()
    root = parse_newick(text)
    heights = merge_heights(tree)
    seen = {}

    def walk(node, parent, depth_to_root):
        name, children, length = node
        seen[name] = [child[0] for child in children]
        if parent is None:
            assert length is None
        else:
            assert length == heights[parent] - heights[name] > 0
        if not children:
            assert depth_to_root == len(tree.split_sequence)  # ultrametric: leaves at height 0
        for child in children:
            walk(child, name, depth_to_root + child[2])

    walk(root, None, 0.0)
    assert {name: kids for name, kids in seen.items() if kids} == tree.children_map()
    assert set(seen) == set(tree.nodes)


# ---------------------------------------------------------------- refusals


def test_every_format_leaves_the_tree_file_alone(tree, tmp_path):
    before = digest(tree.path)
    for ext in ("csv", "npz", "graphml", "json", "linkage.npy", "nwk"):
        assert export(tree.cut(4), tmp_path / f"cut.{ext}").stat().st_size > 0
    assert digest(tree.path) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert nx.read_graphml(tmp_path / "cut.graphml").number_of_nodes() == 6


@pytest.mark.parametrize("name", ["out.txt", "out.npy", "out", ".nwk"])
def test_unknown_extension_lists_the_supported_ones(tree, tmp_path, name):
    with pytest.raises(
        HCTreeError, match=r"\.csv, \.npz, \.graphml, \.json, \.linkage\.npy, \.nwk"
    ):
        export(tree, tmp_path / name)


def test_bad_targets_are_refused(tree, tmp_path):
    with pytest.raises(HCTreeError, match="does not exist"):
        export(tree, tmp_path / "missing" / "out.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(HCTreeError, match="is a folder"):
        export(tree, tmp_path / "dir.csv")
    disguised = tmp_path / "tree.json"
    disguised.symlink_to(tree.path)
    with pytest.raises(HCTreeError, match="the tree file itself"):
        export(tree, disguised)
