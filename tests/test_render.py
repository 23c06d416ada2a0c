"""Tree figures, dendrograms, sampling and grids on factory trees (no training)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hctree.data import load_images
from hctree.errors import HCTreeError
from hctree.render import render_dendrogram, render_tree, tree_images, tree_layout
from hctree.sample import image_grid, node_rng, sample_node, sample_real, save_grid
from hctree.splitters import base
from hctree.store import read_tree, write_tree
from hctree.tree import open_tree
from tests.treefactory import make_tree

SPLITS = {"r": [[0, 1], [2, 3]], "r0": [[0], [1]]}
FULL = {"r": [[0, 1], [2, 3]], "r0": [[0], [1]], "r1": [[2], [3]]}


@dataclass
class FakeConfig:
    spread: int = 20


class FakeSplitter:
    """Generates flat images whose brightness is stored in each child's model."""

    name = "fake"
    Config = FakeConfig
    presets = {"tiny": {}}
    max_branching = None
    calls = 0

    def stages(self, config: FakeConfig) -> list[str]:
        return ["raw"]

    def generate(self, models, config, image_shape, n, seed, device) -> torch.Tensor:
        FakeSplitter.calls += 1
        gen = torch.Generator().manual_seed(seed)
        k = sum(1 for name in models if name.startswith("G"))
        out = []
        for j in range(k):
            level = float(models[f"G{j}"]["level"])
            noise = torch.rand((n, *image_shape), generator=gen) * config.spread
            out.append((noise + level).clamp(0, 255).to(torch.uint8))
        return torch.stack(out)


@pytest.fixture
def fake_tree(tmp_path, monkeypatch) -> Path:
    """A factory tree whose root split stored fake generators (levels 30 and 200)."""
    monkeypatch.setitem(base._REGISTRY, "fake", lambda: FakeSplitter)
    path = make_tree(tmp_path, SPLITS)
    record = read_tree(path)
    record.attrs["splitter"] = "fake"
    models = {"G0": {"level": np.array(30.0)}, "G1": {"level": np.array(200.0)}}
    write_tree(path, record, models={"r": models})
    return path


def png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"), dtype=np.float64)


# ---------------------------------------------------------------- layout


def test_layout_puts_root_on_top_and_parents_over_children(tmp_path):
    tree = open_tree(make_tree(tmp_path, FULL))
    pos = tree_layout(tree)
    assert set(pos) == set(tree.nodes)
    assert pos["r"][1] > max(y for name, (_, y) in pos.items() if name != "r")
    for name, node in tree.nodes.items():
        if node.children:
            xs = [pos[c][0] for c in node.children]
            assert pos[name][0] == pytest.approx((xs[0] + xs[-1]) / 2)
            assert all(pos[c][1] < pos[name][1] for c in node.children)
    leaf_x = [pos[leaf][0] for leaf in tree.leaves]
    assert np.allclose(np.diff(leaf_x), 1.0)


def test_layout_of_a_cut_has_only_its_nodes(tmp_path):
    tree = open_tree(make_tree(tmp_path, FULL))
    assert set(tree_layout(tree.cut(2))) == {"r", "r0", "r1"}
    assert len(tree_layout(tree)) == 7


# ---------------------------------------------------------------- tree figure


@pytest.mark.parametrize(
    "suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")]
)
def test_render_writes_each_format(tmp_path, suffix, magic):
    tree = open_tree(make_tree(tmp_path, SPLITS))
    out = render_tree(tree, tmp_path / f"tree{suffix}", n_images=4)
    assert out == tmp_path / f"tree{suffix}"
    assert out.read_bytes()[:5].startswith(magic)
    assert out.stat().st_size > 2000


def test_png_is_not_blank_and_grows_with_leaves(tmp_path):
    path = make_tree(tmp_path, FULL)
    tree = open_tree(path)
    small = png(render_tree(tree.cut(2), tmp_path / "small.png"))
    large = png(render_tree(tree, tmp_path / "large.png"))
    assert large.std() > 20
    assert large.shape[1] > small.shape[1]  # wider: more leaves
    assert large.shape[0] > small.shape[0]  # taller: one more level
    assert (large < 100).mean() > 0.05  # dark image content, not only white paper


def test_render_is_seeded(tmp_path):
    tree = open_tree(make_tree(tmp_path, SPLITS))
    a = png(render_tree(tree, tmp_path / "a.png", n_images=9, seed=3))
    b = png(render_tree(tree, tmp_path / "b.png", n_images=9, seed=3))
    c = png(render_tree(tree, tmp_path / "c.png", n_images=9, seed=4))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_render_rejects_unknown_format(tmp_path):
    tree = open_tree(make_tree(tmp_path, SPLITS))
    with pytest.raises(HCTreeError, match=r"\.png, \.svg or \.pdf"):
        render_tree(tree, tmp_path / "tree.jpg")


def test_moved_data_needs_data_option(tmp_path):
    path = make_tree(tmp_path, SPLITS)
    moved = tmp_path / "moved.npz"
    shutil.move(tmp_path / "data.npz", moved)
    tree = open_tree(path)
    with pytest.raises(HCTreeError, match="--data"):
        render_tree(tree, tmp_path / "tree.png")
    images = tree_images(tree, moved)
    assert len(images) == tree.n
    assert render_tree(tree, tmp_path / "tree.png", images=images).exists()


def test_other_images_are_refused(tmp_path):
    path = make_tree(tmp_path, SPLITS)
    data = np.load(tmp_path / "data.npz")
    images = data["images"].copy()
    images[0] ^= 1
    np.savez(tmp_path / "other.npz", images=images, labels=data["labels"])
    tree = open_tree(path)
    with pytest.raises(HCTreeError, match="not the ones the tree was grown on"):
        tree_images(tree, tmp_path / "other.npz")
    with pytest.raises(HCTreeError, match="--data"):
        render_tree(tree, tmp_path / "t.png", images=load_images(tmp_path / "other.npz"))


def test_generated_grids_come_from_the_split_models(fake_tree, tmp_path):
    tree = open_tree(fake_tree)
    FakeSplitter.calls = 0
    plain = png(render_tree(tree, tmp_path / "plain.png", n_images=4))
    with_fakes = png(render_tree(tree, tmp_path / "fakes.png", n_images=4, generated=True))
    assert FakeSplitter.calls == 1  # only r stored models; r0 shows real images
    assert with_fakes.shape == plain.shape
    assert not np.array_equal(with_fakes, plain)


# ---------------------------------------------------------------- dendrogram


def test_dendrogram_png(tmp_path):
    tree = open_tree(make_tree(tmp_path, FULL))
    out = render_dendrogram(tree, tmp_path / "d.png")
    pixels = png(out)
    assert pixels.shape[0] > 200 and pixels.std() > 10


def test_dendrogram_needs_two_leaves(tmp_path):
    tree = open_tree(make_tree(tmp_path, SPLITS))
    with pytest.raises(HCTreeError, match="single leaf"):
        render_dendrogram(tree.cut(1), tmp_path / "d.png")


# ---------------------------------------------------------------- sampling and grids


def test_sample_real_follows_membership():
    membership = np.zeros(100, np.float32)
    membership[[3, 7]] = [1.0, 3.0]
    picked = sample_real(membership, 400, node_rng(0, "r0"))
    assert set(picked.tolist()) == {3, 7}
    assert 0.65 < (picked == 7).mean() < 0.85
    assert np.array_equal(picked, sample_real(membership, 400, node_rng(0, "r0")))
    assert sample_real(np.zeros(5), 4, node_rng(0, "r")).size == 0


def test_sample_node_uses_all_children_or_the_parent_generator(fake_tree):
    tree = open_tree(fake_tree)
    both = sample_node(tree, "r", n=7)
    assert both.shape == (7, 1, 28, 28) and both.dtype == np.uint8
    means = both.reshape(7, -1).mean(1)
    assert (means < 60).sum() == 4 and (means > 180).sum() == 3  # 7 shared as 4 + 3
    bright = sample_node(tree, "r1", n=5)
    assert bright.shape == (5, 1, 28, 28) and bright.mean() > 180


def test_sample_node_of_a_split_in_progress(tmp_path, monkeypatch):
    monkeypatch.setitem(base._REGISTRY, "fake", lambda: FakeSplitter)
    path = make_tree(tmp_path, {})
    record = read_tree(path)
    record.attrs["splitter"] = "fake"
    record.nodes["r"].status, record.nodes["r"].split_attrs = "splitting", {"k": 2}
    models = {"G0": {"level": np.array(30.0)}, "G1": {"level": np.array(200.0)}}
    write_tree(path, record, models={"r": models})
    images = sample_node(open_tree(path), "r", n=6)
    assert images.shape == (6, 1, 28, 28)
    assert images[:3].mean() < 60 and images[3:].mean() > 180


def test_sample_node_without_models_is_an_error(fake_tree):
    tree = open_tree(fake_tree)
    with pytest.raises(HCTreeError, match="no stored models"):
        sample_node(tree, "r0")  # r0 was split, but stored no models
    with pytest.raises(HCTreeError, match="no node"):
        sample_node(tree, "r7")


def test_image_grid_and_save_grid(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 3, 8, 6), dtype=np.uint8)
    grid = image_grid(images, nrow=5, pad=1)
    assert grid.shape == (2 * 9 + 1, 5 * 7 + 1, 3)
    assert np.array_equal(grid[1:9, 1:7], images[0].transpose(1, 2, 0))
    out = save_grid(images, tmp_path / "grid.png", nrow=5)
    assert Image.open(out).size == (5 * 8 + 2, 2 * 10 + 2)
    with pytest.raises(HCTreeError, match="PNG"):
        save_grid(images, tmp_path / "grid.jpg")
