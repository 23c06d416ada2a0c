"""Grey levels: stretch every image of a set whose exposure varies to the full range.

A set whose images were taken or scanned at different exposures (or dimmed, or
lightened, or flattened in contrast) lets a network split it by brightness
before anything else. Views that change brightness teach the networks some
indifference, but only within the views' range (docs/benchmarks.md, "Held-out
nuisances"), so hctree settles the levels before training instead:

- An image *spans the range* when its darkest value is at most ``LOW`` and its
  brightest at least ``HIGH`` (uint8). The set's exposure *varies* when at least
  ``MIN_SHARE`` of its images do not span it.
- In such a set every image is stretched, ``255 (x - min) / (max - min)`` over
  all its pixels and channels (hue is kept), so any change of gain, offset or
  contrast of a whole image, ``a x + b`` with ``a > 0``, is undone up to rounding.
  A nearly flat image (range below ``MIN_RANGE``) is left as it is.

A set whose images span the range is used exactly as given, so ordinary sets are
unaffected bit for bit. The decision is made once, when a tree is created, and
stored with it (``levels``): training, resuming and ``assign`` apply the same rule,
after the polarity rule (hctree.polarity).
"""

from __future__ import annotations

import numpy as np

from hctree.chunks import spans

NAME = "levels"
AS_GIVEN = "as-given"
STRETCHED = "stretched"
DECISIONS = (AS_GIVEN, STRETCHED)
MODES = ("auto", "off")

LOW, HIGH = 25, 230  # an image spans the range when its min <= LOW and max >= HIGH
MIN_SHARE = 0.1  # share of images not spanning it for the set's exposure to vary
MIN_RANGE = 8  # an image with a smaller range is too flat to stretch


def ranges(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's darkest and brightest value over all pixels and channels, uint8 ``[N]``.

    images: uint8 ``[N, C, H, W]``.
    """
    flat = images.reshape(len(images), -1)
    return flat.min(1), flat.max(1)


def narrow(images: np.ndarray) -> np.ndarray:
    """Which images do not span the range (see the module docstring), bool ``[N]``."""
    low, high = ranges(images)
    return (low > LOW) | (high < HIGH)


def stored(attrs: dict) -> str:
    """A tree's stored decision (files written before the rule: ``AS_GIVEN``)."""
    return str(attrs.get(NAME, AS_GIVEN))


def decide(images: np.ndarray, mode: str = "auto") -> str:
    """``STRETCHED`` when ``mode`` is auto and the set's exposure varies.

    images: uint8 ``[N, C, H, W]``. Returns one of ``DECISIONS``.
    """
    if mode not in MODES:
        raise ValueError(f"levels mode must be one of {MODES}, not {mode!r}")
    if mode == "off" or len(images) == 0:
        return AS_GIVEN
    return STRETCHED if float(narrow(images).mean()) >= MIN_SHARE else AS_GIVEN


def apply(images: np.ndarray, decision: str) -> np.ndarray:
    """The images the networks see under ``decision``, uint8 ``[N, C, H, W]``.

    ``AS_GIVEN`` returns ``images`` itself; ``STRETCHED`` returns a copy in which
    every image that is not nearly flat runs from 0 to 255.
    """
    if decision not in DECISIONS:
        raise ValueError(f"unknown levels decision {decision!r}")
    if decision == AS_GIVEN:
        return images
    out = np.empty_like(images)
    for rows in spans(images):
        part = images[rows]
        low, high = ranges(part)
        span = (high.astype(np.float32) - low)[:, None, None, None]
        flat = span < MIN_RANGE
        lowest = low[:, None, None, None].astype(np.float32)
        scaled = (part - lowest) * (255.0 / np.maximum(span, 1))
        stretched = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        out[rows] = np.where(flat, part, stretched)
    return out
