"""Grey levels: which sets count as varying in exposure, what stretching restores, and
that a tree of such a set is the tree of its stretched images."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from hctree import levels, prepare
from hctree.assign import assign
from hctree.check import check_tree
from hctree.data import ImageSet
from hctree.errors import HCTreeError
from hctree.grow import grow
from hctree.store import read_tree
from hctree.tree import open_tree
from tests.rule_trees import FAST, grows_the_tree_of_its_prepared_images, with_images

GAINS = np.array([1.0, 0.75, 0.5, 0.3])


def _dimmed(images: np.ndarray, seed: int = 0, gain=None, offset: float = 0.0) -> np.ndarray:
    """Each image times a random gain of ``GAINS`` (or ``gain``), plus ``offset``."""
    rng = np.random.default_rng(seed)
    if gain is None:
        g = GAINS[rng.integers(len(GAINS), size=len(images))]
    else:
        g = np.full(len(images), gain)
    out = images.astype(np.float64) * g[:, None, None, None] + offset
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pair(fmnist, fmnist_classes) -> ImageSet:
    return fmnist_classes(fmnist, [1, 7], per_class=60, seed=3)


def test_fashion_mnist_spans_the_range_and_is_used_as_given(fmnist):
    images = fmnist.images[:10000]
    assert levels.decide(images) == levels.AS_GIVEN
    assert levels.apply(images, levels.AS_GIVEN) is images
    decisions = prepare.decide(images, {})
    assert decisions.rules == {
        "colour": "as-given",
        "polarity": "as-given",
        "levels": "as-given",
        "position": "as-given",
        "scale": "as-given",
        "orientation": "as-given",
    }
    assert decisions.arrays == {}
    assert prepare.apply(images, decisions) is images


def test_gains_offsets_and_contrast_are_undone_up_to_rounding(pair):
    original = pair.images
    for dim in (_dimmed(original), _dimmed(original, gain=0.5, offset=60)):
        assert levels.decide(dim) == levels.STRETCHED
        restored = levels.apply(dim, levels.STRETCHED).astype(int)
        err = np.abs(restored - original.astype(int))
        assert err.max() <= 5 and err.mean() < 0.5  # gain 0.3 keeps 77 grey levels of 256
        assert (restored.reshape(len(dim), -1).max(1) == 255).all()
        assert (restored.reshape(len(dim), -1).min(1) == 0).all()
    assert levels.decide(_dimmed(original), "off") == levels.AS_GIVEN
    with pytest.raises(ValueError):
        levels.decide(original, "on")


def test_a_few_dim_images_flat_images_and_colour(pair):
    few = pair.images.copy()
    few[:5] = _dimmed(few[:5], gain=0.3)  # 5 of 120: under MIN_SHARE
    assert levels.decide(few) == levels.AS_GIVEN
    flat = np.full((4, 1, 8, 8), 90, np.uint8)
    flat[:, :, 0, 0] = 93  # a range of 3 levels: too flat to stretch
    assert levels.decide(flat) == levels.STRETCHED
    np.testing.assert_array_equal(levels.apply(flat, levels.STRETCHED), flat)
    rgb = np.stack([pair.images[:, 0], pair.images[:, 0] // 2, pair.images[:, 0] // 4], axis=1)
    dim = _dimmed(rgb, gain=0.5)
    out = levels.apply(dim, levels.STRETCHED)
    np.testing.assert_array_equal(out.reshape(len(out), -1).max(1), 255)
    # one gain for all channels: the blue channel stays a quarter of the red one
    ratio = out[:, 2].sum() / out[:, 0].sum()
    assert 0.23 < ratio < 0.27


def test_a_dimmed_set_grows_the_tree_of_its_stretched_images(pair, tmp_path):
    dim = with_images(pair, _dimmed(pair.images, seed=4))
    stretched = with_images(pair, levels.apply(dim.images, levels.STRETCHED))
    assert levels.decide(stretched.images) == levels.AS_GIVEN
    phrase = "stretched from black to white"
    grows_the_tree_of_its_prepared_images(
        dim, stretched, "levels", levels.STRETCHED, phrase, tmp_path, absent="stretched"
    )


def test_resuming_with_other_levels_is_refused_and_changes_nothing(pair, tmp_path):
    dim = with_images(pair, _dimmed(pair.images, seed=4))
    out = tmp_path / "t.h5"
    grow(dim, out, 2, preset="tiny", overrides=FAST, seed=2, threads=1)
    before = out.read_bytes()
    with pytest.raises(HCTreeError, match="levels"):
        grow(dim, out, 3, levels="off", threads=1)
    assert out.read_bytes() == before
    grow(dim, out, 2, levels="auto", polarity="auto", threads=1)  # agrees: accepted
    with pytest.raises(HCTreeError, match="--levels must be"):
        grow(dim, tmp_path / "u.h5", 2, levels="stretch")
    assert read_tree(out).attrs["levels"] == levels.STRETCHED


def test_a_stored_decision_no_rule_makes_is_a_problem(pair, tmp_path):
    out = tmp_path / "t.h5"
    grow(pair, out, 2, preset="tiny", overrides=FAST, seed=2, threads=1)
    assert check_tree(out) is None
    with h5py.File(out, "r+") as f:
        f.attrs["levels"] = "sharpened"
    assert "levels decision 'sharpened'" in check_tree(out)
    with pytest.raises(HCTreeError, match="sharpened"):
        assign(open_tree(out), pair, device="cpu")


def test_cli_rejects_unknown_levels(tmp_path):
    result = CliRunner().invoke(cli, ["grow", "fashion-mnist", "--levels", "flat"])
    assert result.exit_code == 2
    assert "levels" in result.output
