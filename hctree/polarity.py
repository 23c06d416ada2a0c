"""Contrast polarity: put every image of a mixed-polarity set on a dark background.

A set whose images show objects on a plain background sometimes mixes dark
backgrounds with light ones (negatives, scans, a second source). A network then
splits the set by polarity before anything else, since nothing in an image looks
more different than its negative. Views that invert an image could teach the
networks to ignore it, but they cost ordinary sets accuracy (docs/benchmarks.md,
"Contrast polarity"), so hctree settles polarity before training instead:

- The set is *mixed* when its images' corners (four 3x3 patches) are nearly
  black or nearly white in at least ``PLAIN_SHARE`` of the images, and each of the
  two kinds holds at least ``MIN_SHARE``: plain backgrounds of both polarities.
  Photographs (corners of every level) and sets of one polarity are not mixed.
- In a mixed set, every image whose corners are light is inverted (``255 - x``,
  every channel), so each image shows its object light on dark.

A set that is not mixed is used exactly as given, so ordinary sets are unaffected
bit for bit. The decision is made once, when a tree is created, and stored with it
(``polarity``): training, resuming and ``assign`` apply the same rule.
"""

from __future__ import annotations

import numpy as np

NAME = "polarity"
AS_GIVEN = "as-given"
DARK = "dark-background"
DECISIONS = (AS_GIVEN, DARK)
MODES = ("auto", "off")

CORNER = 3  # side of each corner patch
DARK_LEVEL, LIGHT_LEVEL = 0.3, 0.7  # a corner mean below / above this is plain dark / light
PLAIN_SHARE = 0.9  # share of images whose corners are plain, of either polarity
MIN_SHARE = 0.1  # share each polarity needs for the set to count as mixed


def corner_levels(images: np.ndarray) -> np.ndarray:
    """Mean grey level of each image's four corner patches, float ``[N]`` in [0, 1].

    images: uint8 ``[N, C, H, W]``.
    """
    c = min(CORNER, images.shape[2] // 2, images.shape[3] // 2)
    corners = [images[:, :, :c, :c], images[:, :, :c, -c:], images[:, :, -c:, :c],
               images[:, :, -c:, -c:]]  # fmt: skip
    total = sum(p.reshape(len(images), -1).astype(np.float64).mean(1) for p in corners)
    return total / (4 * 255.0)


def is_light(images: np.ndarray) -> np.ndarray:
    """Which images have light corners (mean above one half), bool ``[N]``."""
    return corner_levels(images) > 0.5


def stored(attrs: dict) -> str:
    """A tree's stored decision (files written before the rule: ``AS_GIVEN``)."""
    return str(attrs.get(NAME, AS_GIVEN))


def decide(images: np.ndarray, mode: str = "auto") -> str:
    """``DARK`` when ``mode`` is auto and the set mixes plain dark and light backgrounds.

    images: uint8 ``[N, C, H, W]``. Returns one of ``DECISIONS``.
    """
    if mode not in MODES:
        raise ValueError(f"polarity mode must be one of {MODES}, not {mode!r}")
    if mode == "off" or len(images) == 0:
        return AS_GIVEN
    level = corner_levels(images)
    dark, light = float((level < DARK_LEVEL).mean()), float((level > LIGHT_LEVEL).mean())
    mixed = dark + light >= PLAIN_SHARE and min(dark, light) >= MIN_SHARE
    return DARK if mixed else AS_GIVEN


def apply(images: np.ndarray, decision: str) -> np.ndarray:
    """The images the networks see under ``decision``, uint8 ``[N, C, H, W]``.

    ``AS_GIVEN`` returns ``images`` itself; ``DARK`` returns a copy in which every
    image with light corners (mean above one half) is inverted.
    """
    if decision not in DECISIONS:
        raise ValueError(f"unknown polarity decision {decision!r}")
    if decision == AS_GIVEN:
        return images
    light = is_light(images)
    out = images.copy()
    out[light] = 255 - out[light]
    return out
