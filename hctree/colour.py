"""Colour: train on the pictures of a set whose images each hold a single colour, without it.

A set whose every image is a grey picture multiplied by one colour (a cast: a
tinted scan, a monochrome print, a set recoloured at random) carries one number
per image in its colour, and that number cannot describe the object. Left in, it
widens the seed spread of every split that meets it. The rule:

- An image's *main colour* is the top right singular vector ``v`` of its pixels
  (``[H*W, 3]``, uncentred), signed to have a positive sum; its *share* is the part
  of the pixels' energy ``v`` holds (1 for one colour).
- A colour set's images *each hold a single colour* when the ``1 - COVER`` quantile
  of the shares is at least ``MIN_SHARE`` and the images do not all hold the same
  colour (the mean of their unit ``v`` is shorter than ``MAX_RESULTANT``: a grey set
  stored in colour, or one whose every image has the same cast, is left as it is).
  Tinted sets measure 0.99999; patches of natural photographs 0.90-0.96.
- In such a set every image becomes the projection of its pixels on its ``v``,
  times ``v``'s largest component, in all three channels: the picture as its
  brightest channel shows it.

A set that does not qualify, and every grey set, is used exactly as given, bit
for bit. The rule is off unless asked for (``--colour auto``): it gained on the
set it was developed on but not on the held-out tinted sets. The decision is
made once, when a tree is created, and stored with it (``colour``): training,
resuming and ``assign`` apply the same rule, image by image, before every other
rule (hctree.prepare).
"""

from __future__ import annotations

import numpy as np

from hctree.chunks import spans

NAME = "colour"
AS_GIVEN = "as-given"
GREY = "grey"
DECISIONS = (AS_GIVEN, GREY)
MODES = ("auto", "off")
DEFAULT = "off"  # opt-in: it did not pay on held-out sets (docs/benchmarks.md)

MIN_SHARE = 0.999  # an image this close to one colour holds a single colour
COVER = 0.95  # the share of images that must
MAX_RESULTANT = 0.999  # the images' colours differ when their mean direction is shorter


def main_colours(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's main colour float64 ``[N, 3]`` (unit, positive sum) and the share
    of its pixel energy that colour holds, float64 ``[N]``.

    images: uint8 ``[N, 3, H, W]``.
    """
    directions, shares = np.empty((len(images), 3)), np.empty(len(images))
    for rows in spans(images):
        x = images[rows].reshape(len(images[rows]), 3, -1).astype(np.float64)
        values, vectors = np.linalg.eigh(x @ x.transpose(0, 2, 1))
        top = vectors[:, :, -1]
        directions[rows] = top * np.where(top.sum(1, keepdims=True) < 0, -1.0, 1.0)
        shares[rows] = values[:, -1] / np.maximum(values.sum(1), 1e-12)
    return directions, shares


def stored(attrs: dict) -> str:
    """A tree's stored decision (files written before the rule: ``AS_GIVEN``)."""
    return str(attrs.get(NAME, AS_GIVEN))


def decide(images: np.ndarray, mode: str = "auto") -> str:
    """``GREY`` when ``mode`` is auto and the colour images of the set each hold a
    single colour, not all the same one (see the module docstring).

    images: uint8 ``[N, C, H, W]``. Returns one of ``DECISIONS``.
    """
    if mode not in MODES:
        raise ValueError(f"colour mode must be one of {MODES}, not {mode!r}")
    if mode == "off" or images.shape[1] != 3 or len(images) < 2:
        return AS_GIVEN
    directions, shares = main_colours(images)
    single = np.quantile(shares, 1 - COVER) >= MIN_SHARE
    differ = np.linalg.norm(directions.mean(0)) < MAX_RESULTANT
    return GREY if single and differ else AS_GIVEN


def apply(images: np.ndarray, decision: str) -> np.ndarray:
    """The images the networks see under ``decision``, uint8 ``[N, C, H, W]``.

    ``AS_GIVEN`` returns ``images`` itself; ``GREY`` returns a copy in which every
    image is its picture without its colour (see the module docstring).
    """
    if decision not in DECISIONS:
        raise ValueError(f"unknown colour decision {decision!r}")
    if decision == AS_GIVEN or len(images) == 0:
        return images
    out = np.empty_like(images)
    for rows in spans(images):
        v = main_colours(images[rows])[0]
        grey = np.einsum("nchw,nc->nhw", images[rows].astype(np.float64), v)
        grey *= v.max(1)[:, None, None]
        out[rows] = np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, None]
    return out
