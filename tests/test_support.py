"""--leaves auto: a node's thinnest graph cut against a Gaussian's, and a growth loop that keeps unsupported splits."""

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
from hctree.store import StageRecord, read_tree
from hctree.support import (
    MIN_ROWS,
    Support,
    gaussian_like,
    node_support,
    sample_rows,
    thinnest_cut,
    view_mean_features,
)

SETTINGS = {"raw_iters": 30, "refine_iters": 10}


def _offset_blob(rng: np.random.Generator, centre: float, n: int) -> np.ndarray:
    """An elongated Gaussian blob away from the origin (features compared by cosine)."""
    x = rng.normal(size=(n, 40)) * np.linspace(3, 0.3, 40)
    x[:, 1:] += 20.0
    x[:, 0] += centre
    return x


def test_a_node_of_two_clusters_is_supported():
    rng = np.random.default_rng(0)
    x = np.concatenate([_offset_blob(rng, -12, 700), _offset_blob(rng, 12, 500)])
    found = node_support(x)
    assert found.supported and found.ratio < 0.2


def test_a_node_of_one_cluster_is_not_supported_however_elongated():
    for seed in range(3):
        found = node_support(_offset_blob(np.random.default_rng(seed), 0, 1500), seed=seed)
        assert not found.supported and found.ratio > 0.7


def test_a_node_of_one_cluster_stays_unsupported_as_it_shrinks():
    """A kNN graph's cuts thicken as a node shrinks; the reference thickens with it."""
    x = _offset_blob(np.random.default_rng(5), 0, 1500)
    for size in (1500, 400, 100):
        assert not node_support(x[:size], seed=1).supported
    assert thinnest_cut(x[:100]) > thinnest_cut(x)


def test_a_node_of_three_clusters_in_a_row_is_supported():
    rng = np.random.default_rng(2)
    x = np.concatenate([_offset_blob(rng, c, 500) for c in (-14, 0, 14)])
    assert node_support(x).supported


def test_a_small_cluster_beside_a_large_one_is_found():
    """A tenth of the images apart: above the balance floor, so the sweep can cut it off."""
    rng = np.random.default_rng(3)
    x = np.concatenate([_offset_blob(rng, 0, 1350), _offset_blob(rng, 25, 150)])
    assert node_support(x).supported


def test_the_thinnest_cut_is_a_conductance():
    """Two cliques of ten neighbours joined by nothing: the cut between them costs nothing."""
    rng = np.random.default_rng(4)
    x = np.concatenate([_offset_blob(rng, -40, 300), _offset_blob(rng, 40, 300)])
    assert thinnest_cut(x) == 0.0
    assert 0.0 < thinnest_cut(_offset_blob(rng, 0, 600)) < 1.0


def test_the_reference_has_the_features_mean_and_covariance():
    x = _offset_blob(np.random.default_rng(6), 3, 4000)
    (like,) = gaussian_like(x, np.random.default_rng(0), draws=1)
    assert like.shape == x.shape
    np.testing.assert_allclose(like.mean(0), x.mean(0), atol=0.2)
    np.testing.assert_allclose(np.cov(like.T), np.cov(x.T), atol=0.35)


def test_the_test_is_seeded_and_tiny_nodes_are_never_supported():
    x = _offset_blob(np.random.default_rng(4), 0, 300)
    assert node_support(x, seed=5) == node_support(x, seed=5)
    tiny = node_support(np.concatenate([x[: MIN_ROWS // 2] - 50, x[: MIN_ROWS // 2 - 1] + 50]))
    assert not tiny.supported and tiny.ratio == 1.0
    assert Support(0.1, 0.3).supported and not Support(0.2, 0.3).supported


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
    """Make the support test support the root's split and no other."""
    real = schedule.node_support
    calls = []

    def decide(features, seed):
        calls.append(len(calls))
        found = real(features, seed=seed)
        return Support(0.0 if len(calls) == 1 else found.reference, found.reference)

    monkeypatch.setattr(schedule, "node_support", decide)
    return calls


def test_auto_keeps_unsupported_splits_as_leaves(three, tmp_path, monkeypatch):
    calls = only_the_root(monkeypatch)
    out = tmp_path / "t.h5"
    tree = grow(three, out, "auto", max_leaves=8, preset="tiny", threads=1, overrides=SETTINGS)
    assert tree.leaves == ["r0", "r1"] and len(calls) == 3
    record = read_tree(out)
    assert [record.nodes[n].status for n in ("r", "r0", "r1")] == ["split", "kept", "kept"]
    assert record.nodes["r"].split_attrs["support_cut"] == 0.0
    r0 = record.nodes["r0"].split_attrs
    assert r0["support_cut"] == r0["support_reference"] > 0
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
    tree = grow(three, tmp_path / "t.h5", 2, preset="cpu", threads=1, overrides=seeded,
                leaf_order="supported")  # fmt: skip
    attrs = read_tree(tree.path).nodes["r"].split_attrs
    assert attrs["support_cut"] < 0.5 * attrs["support_reference"]


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


def test_a_ready_split_from_before_the_cut_test_keeps_its_dip_decision():
    from hctree.grow import _support
    from hctree.store import NodeRecord

    def node(**attrs):
        return NodeRecord("r0", "r", 1, np.ones(4, np.float32), split_attrs=attrs)

    assert _support(node(support_dip=0.05, support_p=0.001)).supported
    assert not _support(node(support_dip=0.01, support_p=0.4)).supported
    assert _support(node(support_cut=0.02, support_reference=0.1)).ratio == pytest.approx(0.2)


def test_a_fixed_count_in_mass_order_skips_the_support_test(three, tmp_path, monkeypatch):
    monkeypatch.setattr(schedule, "node_support", lambda *a, **k: pytest.fail("tested"))
    out = tmp_path / "t.h5"
    grow(three, out, 3, preset="tiny", threads=1, overrides=SETTINGS)
    record = read_tree(out)
    assert all(not schedule.support_tested(n) for n in record.nodes.values())


def test_a_split_run_without_the_test_is_run_again_when_auto_needs_it(three, tmp_path):
    from hctree.grow import _commit_turns
    from hctree.splitters.base import NullProgress

    out = tmp_path / "t.h5"
    grow(three, out, 2, preset="tiny", threads=1, overrides=SETTINGS)
    record = read_tree(out)
    r0 = record.nodes["r0"]  # as a split run ahead by a fixed count leaves it: untested
    r0.stages["raw"] = StageRecord(np.stack([r0.membership / 2] * 2))
    r0.status = "ready"
    r0.split_attrs.update(k=2, final_stage="raw")
    r1 = record.nodes["r1"]
    r1.status, r1.membership = "leaf", r1.membership * 0  # r0 is the leaf in turn
    _commit_turns(record, out, schedule.Goal(3, auto=True), NullProgress(), write=False)
    assert r0.status == "leaf" and not r0.stages and not r0.split_attrs
    assert [n.name for n, _ in schedule.frontier(record, schedule.Goal(3, auto=True), 1)] == ["r0"]
