"""The set rules take large images a few at a time, with the same results."""

from __future__ import annotations

import numpy as np

from hctree import chunks, levels, position, scale
from tests.test_scale import _shrunk


def test_large_images_come_a_few_at_a_time():
    assert chunks.images_per_chunk(np.zeros((10, 1, 28, 28), np.uint8)) == chunks.MAX_IMAGES
    big = np.zeros((2, 3, 224, 224), np.uint8)
    assert chunks.images_per_chunk(big) == chunks.MAX_VALUES // (3 * 224 * 224)
    assert chunks.images_per_chunk(np.zeros((1, 3, 8192, 8192), np.uint8)) == 1


def _every_rule(images: np.ndarray) -> tuple[np.ndarray, ...]:
    return (
        levels.apply(images, levels.STRETCHED),
        position.apply(images, position.OBJECT_BOXED),
        position.apply(images, position.BOXED),
        position.apply(images, position.CENTRED),
        scale.apply(images, scale.OBJECT_FITTED),
        scale.apply(images, scale.FITTED),
        position.plain_borders(images),
    )


def test_the_rules_give_the_same_images_in_small_chunks(fmnist, monkeypatch):
    images = _shrunk(fmnist.images[:300], seed=5)
    images[::3] //= 3  # some dimmed, for the levels rule
    whole = _every_rule(images)
    monkeypatch.setattr(chunks, "MAX_VALUES", 7 * 28 * 28)  # seven images at a time
    assert chunks.images_per_chunk(images) == 7
    for a, b in zip(whole, _every_rule(images), strict=True):
        np.testing.assert_array_equal(a, b)
