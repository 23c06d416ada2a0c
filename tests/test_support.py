"""--leaves auto: the dip test of a node, and a growth loop that keeps unsupported splits."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hctree import schedule
from hctree.check import check_structure
from hctree.data import load_images
from hctree.errors import HCTreeError
from hctree.grow import grow
from hctree.store import read_tree
from hctree.support import (
    Support,
    dip_test_node,
    dip_test_split,
    graph_axes,
    sample_rows,
    split_axis,
    view_mean_features,
)

SETTINGS = {"raw_iters": 30, "refine_iters": 10}


def _halves(x: np.ndarray) -> np.ndarray:
    """Children memberships [2, M] from the sign of the first coordinate."""
    left = (x[:, 0] < np.median(x[:, 0])).astype(np.float64)
    return np.stack([left, 1 - left])


def test_two_separated_blobs_support_their_split():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 1, (600, 40)), rng.normal(3, 1, (600, 40))])
    found = dip_test_split(x, _halves(x))
    assert found.supported and found.p_value < 1e-3


def test_one_blob_does_not_support_a_split_even_when_elongated():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1500, 40)) * np.linspace(5, 0.5, 40)
    found = dip_test_split(x, _halves(x))
    assert not found.supported and found.p_value > 0.1


def _offset_blob(rng: np.random.Generator, centre: float, n: int) -> np.ndarray:
    """An elongated Gaussian blob away from the origin (features compared by cosine)."""
    x = rng.normal(size=(n, 40)) * np.linspace(3, 0.3, 40)
    x[:, 1:] += 20.0
    x[:, 0] += centre
    return x


def test_a_node_of_two_clusters_is_supported_along_its_graph():
    rng = np.random.default_rng(0)
    x = np.concatenate([_offset_blob(rng, -12, 700), _offset_blob(rng, 12, 500)])
    found = dip_test_node(x)
    assert found.supported and found.p_value < 1e-3


def test_a_node_of_one_cluster_is_not_supported_however_elongated():
    for seed in range(3):
        found = dip_test_node(_offset_blob(np.random.default_rng(seed), 0, 1500))
        assert not found.supported and found.p_value > 0.1


def test_a_node_of_three_clusters_is_supported_when_one_axis_fills_the_gap():
    """Three clusters in a row: the leading axis may spread them; the next one separates."""
    rng = np.random.default_rng(2)
    x = np.concatenate([_offset_blob(rng, c, 500) for c in (-14, 0, 14)])
    assert dip_test_node(x).p_value < 1e-3


def test_graph_axes_are_seeded_and_tiny_nodes_are_never_supported():
    x = _offset_blob(np.random.default_rng(4), 0, 300)
    np.testing.assert_array_equal(graph_axes(x, seed=5), graph_axes(x, seed=5))
    assert graph_axes(x).shape == (300, 2)
    assert dip_test_node(x[:20]).p_value == 1.0


def test_averaging_over_views_shrinks_a_colour_cast_the_views_change():
    """Two casts of one image: channel means tell them apart, less so averaged over views."""
    grey = torch.rand(1, 1, 16, 16).expand(40, 3, 16, 16)
    cast = torch.tensor([[1.0, 0.5, 0.5]] * 20 + [[0.5, 0.5, 1.0]] * 20)[:, :, None, None]
    images = (grey * cast * 255).round().to(torch.uint8)

    def channel_means(x):
        return x.mean(dim=(2, 3))

    config = SimpleNamespace(crop_scale_min=0.5, tint=1.0, invert=0.0)
    plain = channel_means(images.float() / 127.5 - 1).numpy()
    viewed = view_mean_features(channel_means, images, config, seed=3, views=16)
    np.testing.assert_array_equal(viewed, view_mean_features(channel_means, images, config, 3, 16))
    gap = lambda f: np.linalg.norm(f[:20].mean(0) - f[20:].mean(0))  # noqa: E731
    assert viewed.shape == (40, 3) and gap(viewed) < 0.5 * gap(plain)


def test_the_axis_joins_the_two_heaviest_children():
    x = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
    children = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0.0]])
    projected = split_axis(x, children)
    assert abs(projected[0] - projected[1]) < 1e-9
    assert abs(abs(projected[2] - projected[0]) - 10) < 1e-9


def test_rows_are_drawn_by_membership_and_seeded():
    parent = np.zeros(10_000)
    parent[:5000] = 1.0
    rows = sample_rows(parent, seed=3, size=1000)
    assert len(rows) == 1000 and rows.max() < 5000 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, sample_rows(parent, seed=3, size=1000))
    assert len(sample_rows(parent[:600], seed=3)) == 600  # fewer than asked: all of them
    soft = np.full(1000, 0.01)
    soft[:300] = 1.0  # a node of mass ~307: a trace of every other image
    rows = sample_rows(soft, seed=0)
    assert len(rows) == 307 and (rows < 300).mean() > 0.9


@pytest.fixture
def three(fmnist, fmnist_classes):
    """Trouser, sneaker and bag, 100 each."""
    return fmnist_classes(fmnist, [1, 7, 8], 100, seed=0)


def only_the_root(monkeypatch):
    """Make the dip test support the root's split and no other."""
    real = schedule.dip_test_node
    calls = []

    def decide(features, seed):
        calls.append(len(calls))
        found = real(features, seed=seed)
        return Support(found.dip, 0.0 if len(calls) == 1 else 1.0, found.alpha)

    monkeypatch.setattr(schedule, "dip_test_node", decide)
    return calls


def test_auto_keeps_unsupported_splits_as_leaves(three, tmp_path, monkeypatch):
    calls = only_the_root(monkeypatch)
    out = tmp_path / "t.h5"
    tree = grow(three, out, "auto", max_leaves=8, preset="tiny", threads=1, overrides=SETTINGS)
    assert tree.leaves == ["r0", "r1"] and len(calls) == 3
    record = read_tree(out)
    assert [record.nodes[n].status for n in ("r", "r0", "r1")] == ["split", "kept", "kept"]
    assert record.nodes["r"].split_attrs["support_p"] == 0.0
    assert record.nodes["r0"].split_attrs["support_p"] == 1.0
    assert check_structure(record) is None
    # rerunning finds nothing left to split and trains nothing
    before = out.read_bytes()
    monkeypatch.setattr(schedule, "run_job", lambda *a, **k: pytest.fail("trained again"))
    again = grow(three, out, "auto", max_leaves=8, threads=1)
    assert again.leaves == ["r0", "r1"] and out.read_bytes() == before


def test_a_fixed_leaf_count_finishes_a_kept_split_without_training(three, tmp_path, monkeypatch):
    only_the_root(monkeypatch)
    out = tmp_path / "t.h5"
    grow(three, out, "auto", max_leaves=8, preset="tiny", threads=1, overrides=SETTINGS)
    kept = read_tree(out).nodes
    heavier = max(("r0", "r1"), key=lambda n: kept[n].mass)
    stored = next(reversed(kept[heavier].stages.values())).memberships
    monkeypatch.setattr(schedule, "run_job", lambda *a, **k: pytest.fail("trained again"))
    tree = grow(three, out, 3, threads=1)
    assert len(tree.leaves) == 3
    record = read_tree(out)
    assert record.nodes[heavier].status == "split"
    for row, child in zip(stored, record.nodes[heavier].children, strict=True):
        np.testing.assert_array_equal(record.nodes[child].membership, row)


def test_the_real_test_supports_splitting_three_distinct_classes(three, tmp_path):
    seeded = {"embed_iters": 100, "raw_iters": 60}  # the default recipe, shortened
    tree = grow(three, tmp_path / "t.h5", 2, preset="cpu", threads=1, overrides=seeded)
    attrs = read_tree(tree.path).nodes["r"].split_attrs
    assert attrs["support_p"] < 0.05 and attrs["support_dip"] > 0


@pytest.mark.parametrize(
    ("leaves", "max_leaves", "message"),
    [("many", 20, "a number or 'auto'"), ("auto", 1, "--max-leaves must be at least 2")],
)
def test_bad_auto_options_are_one_sentence(three, tmp_path, leaves, max_leaves, message):
    with pytest.raises(HCTreeError, match=message):
        grow(three, tmp_path / "t.h5", leaves, max_leaves=max_leaves)
    assert not (tmp_path / "t.h5").exists()


def test_the_command_line_takes_auto(three, tmp_path):
    from click.testing import CliRunner

    from cli.main import cli

    data = tmp_path / "three.npz"
    np.savez(data, images=three.images, labels=three.labels)
    bad = CliRunner().invoke(
        cli, ["grow", str(data), "--leaves", "lots", "-o", str(tmp_path / "t.h5")]
    )
    assert bad.exit_code == 2 and "whole number or 'auto'" in bad.output
    assert load_images(data).fingerprint == three.fingerprint
