"""Orientation: which sets count as tilted, how well their tilts are estimated, and
what a turned tree stores and does with new images."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from hctree import orientation, prepare
from hctree.check import check_tree
from hctree.data import ImageSet
from hctree.errors import HCTreeError
from hctree.grow import grow
from hctree.store import read_tree
from tests.rule_trees import FAST, grows_the_tree_of_its_prepared_images, with_images
from tests.test_cli import assert_user_error, run


def _tilted(images: np.ndarray, seed: int, most: float = 25.0) -> tuple[np.ndarray, np.ndarray]:
    """``images`` each turned by an angle drawn from ``[-most, most]`` degrees, and the angles."""
    angles = np.random.default_rng(seed).uniform(-most, most, len(images))
    return orientation.turned_back(images, -angles), angles


def _within_class_corr(estimate: np.ndarray, true: np.ndarray, labels: np.ndarray) -> list[float]:
    return [
        float(np.corrcoef(estimate[labels == c], true[labels == c])[0, 1])
        for c in np.unique(labels)
    ]


@pytest.fixture(scope="module")
def garments(fmnist, fmnist_classes) -> ImageSet:
    """Trousers, coats and bags, 200 of each."""
    return fmnist_classes(fmnist, [1, 4, 8], per_class=200, seed=5)


def test_turning_back_undoes_a_turn_and_keeps_the_background():
    images = np.full((2, 3, 28, 28), 40, np.uint8)
    images[:, :, 6:22, 12:16] = 220  # an upright bar
    there, back = orientation.turned_back(images, np.array([-30.0, 0.0]))
    assert np.array_equal(back, images[1])  # no turn: the same pixels
    assert there[0, 0, 0] == 40  # the background comes in at the corners
    bar_there = there[0] > 130
    assert not bar_there[6:22, 12:16].all()  # turned away from upright
    again = orientation.turned_back(there[None], np.array([30.0]))[0]
    assert np.abs(again.astype(int) - images[0]).mean() < 6  # blurred, but upright again


def test_a_tilted_set_is_turned_and_an_upright_one_is_kept(garments):
    images = garments.images
    tilted, _ = _tilted(images, seed=1)
    assert orientation.fit(images).turn < orientation.MIN_TURN
    assert orientation.decide(images) == orientation.AS_GIVEN
    assert orientation.fit(tilted).turn >= orientation.MIN_TURN
    assert orientation.decide(tilted) == orientation.TURNED
    assert orientation.decide(tilted, "off") == orientation.AS_GIVEN
    assert orientation.apply(images, orientation.AS_GIVEN, {}) is images
    with pytest.raises(ValueError):
        orientation.decide(tilted, "on")
    with pytest.raises(ValueError):
        orientation.apply(tilted, "upright", {})


def test_tilts_follow_the_true_angle_and_turned_back_images_count_as_upright(garments):
    tilted, angles = _tilted(garments.images, seed=2)
    decision, arrays = orientation.decide_fitted(tilted)
    assert decision == orientation.TURNED
    corr = _within_class_corr(arrays["tilts"], angles, garments.labels)
    assert min(corr[:2]) > 0.9 and corr[2] > 0.6  # bags, nearly square, are the hardest
    back = orientation.apply(tilted, orientation.TURNED, arrays)
    assert orientation.decide(back) == orientation.AS_GIVEN
    # what is left of the tilt within trousers and coats is far smaller than what was there
    left = arrays["tilts"] - angles
    spread = [left[garments.labels == c].std() for c in (1, 4)]
    assert max(spread) < 0.4 * angles.std()


def test_new_images_are_placed_against_the_landmarks_as_the_training_images_were(garments):
    tilted, angles = _tilted(garments.images, seed=3)
    arrays = orientation.decide_fitted(tilted[:400])[1]
    placed = orientation.place(tilted[:400], arrays["landmarks"], arrays["landmark_tilts"])
    np.testing.assert_allclose(placed, arrays["tilts"], atol=1e-4)
    new = {k: arrays[k] for k in orientation.ARRAYS}
    np.testing.assert_array_equal(
        orientation.apply(tilted[:400], orientation.TURNED, new),
        orientation.apply(tilted[:400], orientation.TURNED, arrays),
    )
    # images the landmarks never saw are placed by their tilt as well
    unseen = orientation.place(tilted[400:], arrays["landmarks"], arrays["landmark_tilts"])
    assert np.mean(_within_class_corr(unseen, angles[400:], garments.labels[400:])) > 0.7


def test_landmarks_of_large_colour_images_are_grey_and_small():
    assert orientation.working_size(28, 28) == (28, 28)
    assert orientation.working_size(64, 48) == (32, 24)
    rng = np.random.default_rng(4)
    images = np.zeros((30, 3, 64, 64), np.uint8)
    for i, angle in enumerate(rng.uniform(-25, 25, 30)):
        images[i, :, 16:48, 28:36] = 200  # a bar, then turned
        images[i] = orientation.turned_back(images[i : i + 1], np.array([angle]))[0]
    learned = orientation.fit(images)
    assert learned.landmarks.shape == (30, 1, 32, 32)
    assert learned.turn >= orientation.MIN_TURN
    arrays = orientation.decide_fitted(images)[1]
    assert orientation.invalid_arrays(arrays, 30, (3, 64, 64)) is None
    assert "do not match" in orientation.invalid_arrays(arrays, 30, (3, 28, 28))


@pytest.fixture(scope="module")
def pair(fmnist, fmnist_classes) -> ImageSet:
    return fmnist_classes(fmnist, [1, 8], per_class=60, seed=6)


def test_a_tilted_set_grows_the_tree_of_its_turned_back_images(pair, tmp_path):
    tilted = with_images(pair, _tilted(pair.images, seed=7)[0])
    # the position rule, before this one, would recentre the turned-back images again
    modes = {"position": "off"}
    decisions = prepare.decide(tilted.images, modes)
    assert decisions["orientation"] == orientation.TURNED
    back = with_images(pair, prepare.apply(tilted.images, decisions))
    assert prepare.decide(back.images, modes)["orientation"] == orientation.AS_GIVEN
    phrase = "turned back by its tilt"
    grows_the_tree_of_its_prepared_images(
        tilted, back, "orientation", orientation.TURNED, phrase, tmp_path, modes=modes
    )
    out = tmp_path / "orientation.h5"  # the tree of tilted images
    stored = read_tree(out).prepared["orientation"]
    np.testing.assert_array_equal(stored["tilts"], decisions.arrays["orientation"]["tilts"])
    assert stored["landmarks"].shape == (120, 1, 28, 28)

    before = out.read_bytes()
    with pytest.raises(HCTreeError, match="orientation"):
        grow(tilted, out, 3, orientation="off", threads=1)
    assert out.read_bytes() == before
    # resuming grows on the stored tilts: the same tree as one grown in one go
    kw = {"preset": "tiny", "overrides": FAST, "seed": 2, "threads": 1, **modes}
    grown = grow(tilted, out, 3, **kw)
    whole = grow(tilted, tmp_path / "whole.h5", 3, **kw)
    np.testing.assert_array_equal(grown.memberships(), whole.memberships())


def test_a_turned_tree_without_its_landmarks_is_reported(pair, tmp_path):
    tilted = with_images(pair, _tilted(pair.images, seed=8)[0])
    out = tmp_path / "t.h5"
    grow(tilted, out, 2, preset="tiny", overrides=FAST, seed=0, threads=1)
    assert check_tree(out) is None
    with h5py.File(out, "r+") as f:
        del f["prepared/orientation/landmark_tilts"]
    assert "landmarks are missing" in check_tree(out)
    with pytest.raises(HCTreeError, match="landmarks are missing"):
        grow(tilted, out, 3, threads=1)
    with h5py.File(out, "r+") as f:
        f["prepared/orientation/landmark_tilts"] = np.zeros(5)
    assert "do not match" in check_tree(out)
    with h5py.File(out, "r+") as f:
        del f["prepared/orientation/landmark_tilts"]
        f["prepared/orientation/landmark_tilts"] = np.array([b"x"] * 120)
    with pytest.raises(HCTreeError, match="damaged"):
        read_tree(out)
    with h5py.File(out, "r+") as f:
        del f["prepared"]
        f["prepared"] = np.zeros(3)
    with pytest.raises(HCTreeError, match="damaged"):
        read_tree(out)


def test_the_command_line_refuses_to_change_a_stored_orientation(pair, tmp_path):
    data = tmp_path / "tilted.npz"
    np.savez(data, images=_tilted(pair.images, seed=9)[0][:, 0], labels=pair.labels)
    out = tmp_path / "t.h5"
    common = ("--preset", "tiny", "--set", "raw_iters=30", "--set", "refinements=0")
    grown = run("grow", str(data), "--leaves", "2", "-o", str(out), "-q", *common)
    assert grown.exit_code == 0, grown.output
    assert "turned back by its tilt" in run("info", str(out)).output
    before = out.read_bytes()
    refused = run("grow", str(data), "--leaves", "3", "-o", str(out), "--orientation", "off")
    assert_user_error(refused, "orientation turned", "--orientation off")
    assert out.read_bytes() == before
    assert run("grow", str(data), "--orientation", "sideways").exit_code == 2
