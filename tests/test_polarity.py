"""Contrast polarity: which sets count as mixed, what is inverted, and that a tree of a
mixed set is the tree of the same images all on a dark background."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from hctree import polarity
from hctree.data import ImageSet
from hctree.errors import HCTreeError
from hctree.grow import grow
from hctree.store import read_tree
from tests.rule_trees import FAST, grows_the_tree_of_its_prepared_images, with_images


def _half_inverted(
    data: ImageSet, seed: int = 0, share: float = 0.5
) -> tuple[ImageSet, np.ndarray]:
    flip = np.random.default_rng(seed).random(len(data)) < share
    images = data.images.copy()
    images[flip] = 255 - images[flip]
    return with_images(data, images), flip


@pytest.fixture(scope="module")
def pair(fmnist, fmnist_classes) -> ImageSet:
    return fmnist_classes(fmnist, [1, 7], per_class=60, seed=3)


def test_fashion_mnist_is_not_mixed_and_is_used_as_given(fmnist):
    images = fmnist.images[:10000]
    assert polarity.decide(images) == polarity.AS_GIVEN
    assert polarity.apply(images, polarity.AS_GIVEN) is images


def test_a_half_inverted_set_is_mixed_and_is_restored_exactly(pair):
    mixed, flip = _half_inverted(pair)
    assert polarity.decide(mixed.images) == polarity.DARK
    np.testing.assert_array_equal(polarity.apply(mixed.images, polarity.DARK), pair.images)
    assert (polarity.corner_levels(mixed.images) > 0.5).tolist() == flip.tolist()
    assert polarity.decide(mixed.images, "off") == polarity.AS_GIVEN


def test_a_few_negatives_photographs_and_colour_sets(pair):
    few, _ = _half_inverted(pair, share=0.05)
    assert polarity.decide(few.images) == polarity.AS_GIVEN  # under MIN_SHARE light
    noise = np.random.default_rng(1).integers(0, 256, size=(200, 3, 32, 32), dtype=np.uint8)
    assert polarity.decide(noise) == polarity.AS_GIVEN  # corners of every level
    mixed, flip = _half_inverted(pair)
    rgb = np.repeat(mixed.images, 3, axis=1)
    assert polarity.decide(rgb) == polarity.DARK
    np.testing.assert_array_equal(
        polarity.apply(rgb, polarity.DARK), np.repeat(pair.images, 3, axis=1)
    )
    with pytest.raises(ValueError):
        polarity.decide(rgb, "on")


def test_a_mixed_set_grows_the_tree_of_its_dark_background_images(pair, tmp_path):
    mixed, _ = _half_inverted(pair)
    phrase = "light backgrounds inverted"
    grows_the_tree_of_its_prepared_images(
        mixed, pair, "polarity", polarity.DARK, phrase, tmp_path, absent="inverted"
    )


def test_resuming_with_another_polarity_is_refused_and_changes_nothing(pair, tmp_path):
    mixed, _ = _half_inverted(pair)
    out = tmp_path / "t.h5"
    grow(mixed, out, 2, preset="tiny", overrides=FAST, seed=2, threads=1)
    before = out.read_bytes()
    with pytest.raises(HCTreeError, match="polarity"):
        grow(mixed, out, 3, polarity="off", threads=1)
    assert out.read_bytes() == before
    with pytest.raises(HCTreeError, match="--polarity must be"):
        grow(mixed, tmp_path / "u.h5", 2, polarity="invert")
    assert read_tree(out).attrs["polarity"] == polarity.DARK


def test_cli_rejects_an_unknown_polarity(tmp_path):
    result = CliRunner().invoke(cli, ["grow", "fashion-mnist", "--polarity", "flip"])
    assert result.exit_code == 2
    assert "polarity" in result.output
