"""How many images a set rule takes at a time, so that its float copies stay small."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

MAX_IMAGES = 4096  # at most this many images at a time
MAX_VALUES = 1 << 24  # and at most this many pixel values (128 MB as float64)


def images_per_chunk(images: np.ndarray) -> int:
    """The images of ``images`` (``[N, ...]``) to take at a time: ``MAX_IMAGES``, fewer
    for images so large that those would hold more than ``MAX_VALUES`` values."""
    per_image = max(1, int(np.prod(images.shape[1:])))
    return max(1, min(MAX_IMAGES, MAX_VALUES // per_image))


def spans(images: np.ndarray) -> Iterator[slice]:
    """Consecutive slices of ``images`` (``[N, ...]``), :func:`images_per_chunk` at a time."""
    chunk = images_per_chunk(images)
    for start in range(0, len(images), chunk):
        yield slice(start, start + chunk)
