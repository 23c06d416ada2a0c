"""Scale: which sets count as having objects of varying sizes, and what fitting an
object to the frame does to an image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hctree import position, prepare, scale
from hctree.data import ImageSet
from hctree.errors import HCTreeError
from hctree.grow import grow
from tests.rule_trees import grows_the_tree_of_its_prepared_images, with_images
from tests.test_position import _moved


def _shrunk(images: np.ndarray, seed: int = 0, low: float = 0.6) -> np.ndarray:
    """Each image shrunk about its centre by a factor drawn from [low, 1] (bilinear)."""
    factor = np.random.default_rng(seed).uniform(low, 1.0, len(images))
    theta = torch.zeros(len(images), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = torch.from_numpy(1 / factor).float()
    x = torch.from_numpy(images).float()
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8).numpy()


def test_boxes_measure_the_foreground():
    images = np.full((3, 1, 28, 28), 10, np.uint8)
    images[0, 0, 3:9, 17:23] = 200
    images[1, 0, 10:24, 5:12] = 200
    images[1, 0, 12, 8] = 15  # within the tolerance of the background: not foreground
    np.testing.assert_array_equal(
        position.boxes(images), [[3, 17, 6, 6], [10, 5, 14, 7], [0, 0, 0, 0]]
    )
    np.testing.assert_array_equal(scale.sizes(images), [6, 14, 0])


def test_a_small_object_is_enlarged_to_fill_the_frame_in_the_middle():
    images = np.full((3, 1, 28, 28), 10, np.uint8)
    images[0, 0, 3:9, 17:23] = 200  # a 6x6 square near a corner
    images[1, 0, 10:24, 5:12] = 200  # 14 tall, 7 wide
    images[2, 0, 20:22, 3:5] = 200  # below MIN_SIDE: left as it is
    out = scale.apply(images, scale.FITTED)
    np.testing.assert_array_equal(scale.apply(images, scale.OBJECT_FITTED), out)  # no specks
    top, left, height, width = position.boxes(out).T
    assert height[0] == 28 and width[0] == 28
    assert out[0, 0, 2:26, 2:26].min() == 200  # the square's inside stays flat
    assert height[1] == 28 and 14 <= width[1] <= 16  # the aspect ratio is kept
    assert left[1] + width[1] / 2 == pytest.approx(14, abs=1)  # in the middle
    np.testing.assert_array_equal(out[2], images[2])
    colour = np.repeat(images, 3, axis=1) // np.array([1, 2, 4], np.uint8)[None, :, None, None]
    np.testing.assert_array_equal(scale.apply(colour, scale.FITTED)[:, 0], out[:, 0])


def test_a_speck_does_not_keep_an_object_small():
    """A 6x6 square with one bright pixel in the far corner: fitting the object's box
    (specks left out) enlarges the square to fill the frame, as without the speck;
    fitting the box of every pixel (trees stored as ``fitted``) spans the speck and
    leaves the square about as small as it was."""
    image = np.full((2, 1, 28, 28), 10, np.uint8)
    image[:, 0, 3:9, 4:10] = 200
    image[1, 0, 27, 27] = 250  # the speck
    clean, specked = scale.apply(image, scale.OBJECT_FITTED)
    np.testing.assert_array_equal(position.boxes(specked[None]), [[0, 0, 28, 28]])
    assert (specked[0, 2:26, 2:26] == 200).all()  # the square fills the frame
    np.testing.assert_array_equal(specked[0, 2:26, 2:26], clean[0, 2:26, 2:26])
    old = scale.apply(image[1:], scale.FITTED)[0]
    assert (old[0] == 200).sum() < 2 * 36  # the square was hardly enlarged
    assert scale.sizes(image).tolist() == [6, 6]


def test_fashion_mnist_keeps_its_sizes_and_shrunk_objects_are_fitted(fmnist):
    images = fmnist.images[:2000]
    assert scale.spread(images) < 0.02
    assert scale.decide(images) == scale.AS_GIVEN
    assert scale.apply(images, scale.AS_GIVEN) is images
    shrunk = _shrunk(images, seed=1)
    assert scale.spread(shrunk) >= scale.MIN_SPREAD
    assert scale.decide(shrunk) == scale.OBJECT_FITTED
    assert scale.decide(shrunk, "off") == scale.AS_GIVEN
    fitted = scale.apply(shrunk, scale.OBJECT_FITTED)
    assert scale.spread(fitted) < 0.02
    assert scale.decide(fitted) == scale.AS_GIVEN
    # fitted images are nearer the originals again (the two resamplings blur them)
    error = np.abs(fitted.astype(np.float32) - images).mean((1, 2, 3))
    assert np.median(error) < 0.6 * np.median(
        np.abs(shrunk.astype(np.float32) - images).mean((1, 2, 3))
    )
    with pytest.raises(ValueError):
        scale.decide(shrunk, "on")
    with pytest.raises(ValueError):
        scale.apply(shrunk, "zoomed")


def test_objects_shrunk_by_up_to_a_quarter_are_fitted_and_cropped_ones_are_not(fmnist):
    """The bar lies between a set whose objects were shrunk by a factor from [0.75, 1]
    and one whose crops moved the objects and cut some of them (hctree.scale)."""
    images = fmnist.images[:2000]
    mild = _shrunk(images, seed=4, low=0.75)
    assert 0.06 <= scale.spread(mild) < 0.1
    assert scale.decide(mild) == scale.OBJECT_FITTED
    cropped = _moved(images, seed=5, most=4)
    assert scale.spread(cropped) < scale.MIN_SPREAD
    assert scale.decide(cropped) == scale.AS_GIVEN


def test_only_objects_on_plain_backgrounds_are_judged(fmnist):
    shrunk = _shrunk(fmnist.images[:500], seed=2).astype(np.float64)
    noisy = np.clip(shrunk + np.random.default_rng(3).normal(0, 40, shrunk.shape), 0, 255)
    assert scale.decide(noisy.astype(np.uint8)) == scale.AS_GIVEN


@pytest.fixture(scope="module")
def pair(fmnist, fmnist_classes) -> ImageSet:
    return fmnist_classes(fmnist, [1, 7], per_class=60, seed=3)


def test_a_shrunk_set_grows_the_tree_of_its_fitted_images(pair, tmp_path):
    shrunk = with_images(pair, _shrunk(pair.images, seed=4))
    decisions = prepare.decide(shrunk.images, {})
    assert decisions["scale"] == scale.OBJECT_FITTED  # after the levels rule stretched them
    fitted = with_images(pair, prepare.apply(shrunk.images, decisions))
    assert prepare.decide(fitted.images, {})["scale"] == scale.AS_GIVEN
    phrase = "enlarged to fill the frame"
    grows_the_tree_of_its_prepared_images(
        shrunk, fitted, "scale", scale.OBJECT_FITTED, phrase, tmp_path
    )

    out = tmp_path / "scale.h5"  # the tree of shrunk images
    before = out.read_bytes()
    with pytest.raises(HCTreeError, match="scale"):
        grow(shrunk, out, 3, scale="off", threads=1)
    assert out.read_bytes() == before
