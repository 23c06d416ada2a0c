"""Colour: which sets count as one colour per image, and what taking it away does."""

from __future__ import annotations

import numpy as np
import pytest

from hctree import colour, prepare
from hctree.data import ImageSet
from tests.rule_trees import grows_the_tree_of_its_prepared_images, with_images

CASTS = np.array([[1.0, 0.35, 0.35], [0.35, 1.0, 0.35], [0.35, 0.45, 1.0], [1.0, 0.9, 0.3]])


def _cast(grey: np.ndarray, seed: int) -> np.ndarray:
    """Grey images (uint8 ``[N, 1, H, W]``) each multiplied by a cast drawn at random."""
    rgb = grey.astype(np.float64) * _casts(len(grey), seed)[:, :, None, None]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _casts(n: int, seed: int) -> np.ndarray:
    """The casts :func:`_cast` draws for ``n`` images with ``seed``, float ``[n, 3]``."""
    return CASTS[np.random.default_rng(seed).integers(len(CASTS), size=n)]


def test_each_image_loses_its_cast_and_keeps_its_picture(fmnist):
    grey = fmnist.images[:300]
    tinted = _cast(grey, seed=0)
    directions, shares = colour.main_colours(tinted)
    assert shares.min() > 0.9999
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1.0)
    out = colour.apply(tinted, colour.GREY)
    assert out.shape == tinted.shape
    assert (out[:, 0] == out[:, 1]).all() and (out[:, 1] == out[:, 2]).all()
    # the picture as its brightest channel shows it: the grey image times the cast's peak
    peak = _casts(300, seed=0).max(1)
    expected = np.clip(np.rint(grey[:, 0] * peak[:, None, None]), 0, 255)
    assert np.abs(out[:, 0].astype(int) - expected).max() <= 1
    # a grey set stored in colour stays as it is, bit for bit
    three = np.repeat(grey, 3, axis=1)
    np.testing.assert_array_equal(colour.apply(three, colour.GREY), three)


def test_only_sets_of_single_colour_images_that_differ_in_colour_are_decided_grey(fmnist):
    grey = fmnist.images[:300]
    tinted = _cast(grey, seed=1)
    assert colour.decide(tinted) == colour.GREY
    assert colour.decide(tinted, "off") == colour.AS_GIVEN
    assert colour.decide(grey) == colour.AS_GIVEN  # one channel
    assert colour.decide(np.repeat(grey, 3, axis=1)) == colour.AS_GIVEN  # grey in colour
    one_cast = np.clip(np.rint(grey * CASTS[0][None, :, None, None]), 0, 255).astype(np.uint8)
    assert colour.decide(one_cast) == colour.AS_GIVEN  # every image the same colour
    # two colours in every image: a light object on a coloured backdrop
    backdrop = tinted.copy()
    backdrop[:, :, :, :] = np.maximum(backdrop, np.array([0, 90, 160], np.uint8)[:, None, None])
    assert colour.decide(backdrop) == colour.AS_GIVEN
    assert colour.apply(tinted, colour.AS_GIVEN) is tinted
    with pytest.raises(ValueError):
        colour.decide(tinted, "on")
    with pytest.raises(ValueError):
        colour.apply(tinted, "sepia")


@pytest.fixture(scope="module")
def pair(fmnist, fmnist_classes) -> ImageSet:
    return fmnist_classes(fmnist, [1, 7], per_class=60, seed=3)


def test_a_tinted_set_grows_the_tree_of_its_grey_pictures(pair, tmp_path):
    tinted = with_images(pair, _cast(pair.images, seed=2))
    assert prepare.decide(tinted.images, {})["colour"] == colour.AS_GIVEN  # off unless asked
    asked = {"colour": "auto"}
    assert prepare.decide(tinted.images, asked)["colour"] == colour.GREY
    only_colour = {rule.NAME: rule.AS_GIVEN for rule in prepare.RULES} | {"colour": colour.GREY}
    plain = with_images(pair, prepare.apply(tinted.images, prepare.Decisions(only_colour)))
    assert prepare.decide(plain.images, asked)["colour"] == colour.AS_GIVEN
    phrase = "single colour taken away"
    grows_the_tree_of_its_prepared_images(
        tinted, plain, "colour", colour.GREY, phrase, tmp_path, modes=asked
    )
