"""Read an image set's ``.npz`` as ``[N, C, H, W]`` and write a changed copy in its layout.

Shared by the bench scripts that write copies of a set (recentre_copy, scale_copy,
upright_copy): grey sets are stored ``[N, H, W]``, colour sets ``[N, H, W, 3]``
(bench/make_sets.py); every other array of the file is copied as it is.
"""

from __future__ import annotations

import numpy as np


def read_set(path: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The file's arrays and its images as uint8 ``[N, C, H, W]``."""
    arrays = dict(np.load(path))
    images = arrays["images"]
    return arrays, images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)


def write_set(path: str, arrays: dict[str, np.ndarray], images: np.ndarray) -> None:
    """Write ``arrays`` with ``images`` (``[N, C, H, W]``) in place of the file's own,
    in the layout those had."""
    grey = arrays["images"].ndim == 3
    out = dict(arrays, images=images[:, 0] if grey else images.transpose(0, 2, 3, 1))
    np.savez_compressed(path, **out)
