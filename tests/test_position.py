"""Position: which sets count as having objects at varying places, what recentring
does to an image, and that a tree of such a set is the tree of its recentred images."""

from __future__ import annotations

import numpy as np
import pytest

from hctree import position, prepare
from hctree.data import ImageSet
from hctree.errors import HCTreeError
from hctree.grow import grow
from hctree.store import read_tree
from tests.rule_trees import grows_the_tree_of_its_prepared_images, with_images


def _moved(images: np.ndarray, seed: int = 0, most: int = 4) -> np.ndarray:
    """Each image moved by a random whole number of pixels in ``[-most, most]`` per
    axis, the background (0) coming in at the edges and the rest cut off."""
    rng = np.random.default_rng(seed)
    n, _, h, w = images.shape
    canvas = np.zeros((n, images.shape[1], h + 2 * most, w + 2 * most), np.uint8)
    canvas[:, :, most : most + h, most : most + w] = images
    out = np.empty_like(images)
    for i, (dy, dx) in enumerate(rng.integers(0, 2 * most + 1, size=(n, 2))):
        out[i] = canvas[i, :, dy : dy + h, dx : dx + w]
    return out


def _squares(n: int, seed: int = 0) -> np.ndarray:
    """``n`` 28x28 images of a 6x6 square (200 on a background of 10) at random places."""
    rng = np.random.default_rng(seed)
    out = np.full((n, 1, 28, 28), 10, np.uint8)
    for i, (y, x) in enumerate(rng.integers(0, 23, size=(n, 2))):
        out[i, 0, y : y + 6, x : x + 6] = 200
    return out


@pytest.fixture(scope="module")
def pair(fmnist, fmnist_classes) -> ImageSet:
    return fmnist_classes(fmnist, [1, 7], per_class=60, seed=3)


def test_fashion_mnist_is_centred_and_used_as_given(fmnist):
    images = fmnist.images[:10000]
    assert position.spread(images) < position.MIN_SPREAD
    assert position.decide(images) == position.AS_GIVEN
    assert position.apply(images, position.AS_GIVEN) is images


def test_moved_objects_are_recentred(fmnist):
    moved = _moved(fmnist.images[:2000], seed=1)
    assert position.spread(moved) >= position.MIN_SPREAD
    assert position.decide(moved) == position.OBJECT_BOXED
    assert position.decide(moved, "off") == position.AS_GIVEN
    centred = position.apply(moved, position.OBJECT_BOXED)
    assert position.decide(centred) == position.AS_GIVEN
    middle = np.array([13.5, 13.5])
    off = np.abs(position.box_middles(centred) - middle)
    # whole-pixel moves: a box of an odd width ends half a pixel off the middle; an
    # object pushed partly out of the frame grows its box when it comes back in
    assert np.percentile(off, 90) <= 0.5 and off.max() <= 2.5
    by_mass = position.apply(moved, position.CENTRED)  # files made before the box
    assert position.spread(by_mass) < 0.02
    assert np.percentile(np.abs(position.centres(by_mass) - middle), 90) <= 0.5
    with pytest.raises(ValueError):
        position.decide(moved, "on")
    with pytest.raises(ValueError):
        position.apply(moved, "shifted")


def test_a_square_anywhere_ends_in_the_middle_with_the_background_around_it():
    squares = _squares(50)
    centred = position.apply(squares, position.BOXED)
    expected = np.full((1, 28, 28), 10, np.uint8)
    expected[0, 11:17, 11:17] = 200  # the square's centre, 2.5 px in, at 13.5
    assert (centred == expected).all()
    np.testing.assert_array_equal(position.apply(squares, position.OBJECT_BOXED), centred)
    blank = np.full((3, 3, 28, 28), 40, np.uint8)  # no foreground: left where it is
    np.testing.assert_array_equal(position.apply(blank, position.BOXED), blank)
    np.testing.assert_array_equal(position.apply(blank, position.CENTRED), blank)
    colour = np.repeat(squares, 3, axis=1) // np.array([1, 2, 4], np.uint8)[None, :, None, None]
    out = position.apply(colour, position.BOXED)
    np.testing.assert_array_equal(out[:, 0], centred[:, 0])  # one move for all channels
    np.testing.assert_array_equal(out[:, 2, 11:17, 11:17], np.full((50, 6, 6), 50))


def test_the_box_not_the_mass_goes_to_the_middle():
    """A 6x6 square with a bright 2x6 band along its top: the box's middle goes to
    the middle of the frame, where the centre of mass, pulled up by the band, would
    leave the square a pixel lower."""
    image = np.full((2, 1, 28, 28), 10, np.uint8)
    image[0, 0, 3:9, 17:23] = 60
    image[0, 0, 3:5, 17:23] = 250
    image[1, 0, 20:26, 1:7] = 60  # the plain square elsewhere
    image[1, 0, 20:22, 1:7] = 250
    np.testing.assert_array_equal(position.box_middles(image), [[5.5, 19.5], [22.5, 3.5]])
    assert position.centres(image)[0, 0] < 5.0  # the band pulls the mass up
    boxed, by_mass = position.apply(image, position.BOXED), position.apply(image, position.CENTRED)
    expected = np.full((1, 28, 28), 10, np.uint8)
    expected[0, 11:17, 11:17] = 60
    expected[0, 11:13, 11:17] = 250
    assert (boxed == expected).all()
    np.testing.assert_array_equal(by_mass[0], np.roll(expected, 1, axis=1))


def test_a_speck_is_left_out_of_the_object_box_and_older_trees_keep_theirs():
    """A 6x6 square and one bright pixel in a corner: the object's box leaves the
    speck out and the square goes to the middle, as it would without the speck; the
    box of every foreground pixel (trees stored as ``box-centred``) spans both and
    leaves the square off the middle. Pieces larger than a speck stay in the box, and
    an image that holds only specks keeps them."""
    squares = _squares(20, seed=3)
    specked = squares.copy()
    top, left = position.boxes(squares)[:, :2].T
    corner = np.where((top < 14) & (left < 14), 27, 0)  # a corner far from the square
    specked[np.arange(20), 0, corner, corner] = 250
    clean = position.apply(squares, position.OBJECT_BOXED)
    object_boxed = position.apply(specked, position.OBJECT_BOXED)
    square = object_boxed[:, :, 11:17, 11:17]
    np.testing.assert_array_equal(square, clean[:, :, 11:17, 11:17])
    assert (square == 200).all()
    np.testing.assert_array_equal(position.boxes(specked, specks=False), position.boxes(squares))
    old = position.apply(specked, position.BOXED)
    assert not (old[:, :, 11:17, 11:17] == 200).all(axis=(1, 2, 3)).any()
    rows = np.arange(20)
    near = np.where(corner == 0, 1, 26)  # the pixel beside the corner, inwards
    block = squares.copy()  # a 2x2 block in the corner: four pixels, still a speck
    for y, x in ((corner, corner), (corner, near), (near, corner), (near, near)):
        block[rows, 0, y, x] = 250
    np.testing.assert_array_equal(position.boxes(block, specks=False), position.boxes(squares))
    piece = block.copy()  # and one pixel more: a piece of the object
    piece[rows, 0, np.where(corner == 0, 2, 25), corner] = 250
    np.testing.assert_array_equal(position.boxes(piece, specks=False), position.boxes(piece))
    dust = np.full((1, 1, 28, 28), 10, np.uint8)
    dust[0, 0, 2, 3] = dust[0, 0, 20, 25] = 250  # nothing but specks: they are the object
    np.testing.assert_array_equal(position.boxes(dust, specks=False), [[2, 3, 19, 23]])


def test_a_tree_stored_with_an_older_way_of_acting_resumes_under_auto():
    """``--position auto`` on a tree stored ``box-centred`` (or ``centred``) is no
    conflict: both act; it is one only where the tree acts and the mode would not."""
    squares = _squares(200, seed=1)
    for older in (position.BOXED, position.CENTRED):
        have = prepare.decide(squares, {"position": "off"})
        have.rules["position"] = older
        assert prepare.conflicts(squares, have, {"position": "auto"}) == []
        assert prepare.conflicts(squares, have, {"position": "off"}) == ["position"]


def test_only_objects_on_plain_backgrounds_are_judged():
    """Squares scattered over a plain background are recentred; the same squares in
    heavy noise, and crops of photographs, have no plain border and stay as given."""
    squares = _squares(200, seed=1)
    assert position.spread(squares) >= position.MIN_SPREAD
    assert position.decide(squares) == position.OBJECT_BOXED
    noise = np.random.default_rng(2).normal(0, 40, squares.shape)
    noisy = np.clip(squares + noise, 0, 255).astype(np.uint8)
    assert position.plain_borders(noisy).mean() < position.MIN_PLAIN
    assert position.decide(noisy) == position.AS_GIVEN
    from sklearn.datasets import load_sample_images

    photos, rng = load_sample_images().images, np.random.default_rng(0)
    crops = []
    for which, y, x in zip(rng.integers(0, 2, 500), rng.integers(0, 390, 500),
                           rng.integers(0, 600, 500), strict=True):  # fmt: skip
        crops.append(photos[which][y : y + 32, x : x + 32].transpose(2, 0, 1))
    crops = np.stack(crops)
    assert position.spread(crops) >= position.MIN_SPREAD  # a "centre" that is no object's
    assert position.decide(crops) == position.AS_GIVEN


def test_a_moved_set_grows_the_tree_of_its_recentred_images(pair, tmp_path):
    moved = with_images(pair, _moved(pair.images, seed=4))
    assert prepare.decide(moved.images, {})["position"] == position.OBJECT_BOXED
    centred = with_images(pair, position.apply(moved.images, position.OBJECT_BOXED))
    assert position.decide(centred.images) == position.AS_GIVEN
    phrase = "moved to the middle"
    grows_the_tree_of_its_prepared_images(
        moved, centred, "position", position.OBJECT_BOXED, phrase, tmp_path
    )

    out = tmp_path / "position.h5"  # the tree of moved images
    before = out.read_bytes()
    with pytest.raises(HCTreeError, match="position"):
        grow(moved, out, 3, position="off", threads=1)
    assert out.read_bytes() == before
    assert read_tree(out).attrs["position"] == position.OBJECT_BOXED
