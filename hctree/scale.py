"""Scale: enlarge every object of a set whose objects come at varying sizes to fill the frame.

A set whose objects were photographed from different distances, or cropped
loosely by different amounts, lets a network split it by how large the object is.
hctree settles the size before training, as it settles the position
(hctree.position):

- An image's *object* is the bounding box of its foreground (``position.boxes``:
  the pixels more than ``position.PLAIN_TOL`` grey levels from the median of its
  border, in some channel), its specks left out (``position.MAX_SPECK``: a lone
  speck would stretch the box and leave the object as small as it was); its
  *size* is the box's larger side. Trees made before specks were left out
  (``fitted``) keep the box of every foreground pixel.
- Only a set of objects on plain backgrounds is judged (``position.MIN_PLAIN``,
  as for position). The set's sizes *vary* when their standard deviation is at
  least ``MIN_SPREAD`` of the frame's side. Sets whose objects fill the frame
  (Fashion-MNIST, digit sets) stay below 0.01, and objects cropped off-centre,
  some cut by the frame, at 0.047; objects shrunk by a factor drawn from
  [0.75, 1] reach 0.076, from [0.6, 1] 0.12. Fitting pays from the former on
  (docs/benchmarks.md, "The scale rule's threshold").
- In such a set every image is resampled (bilinear) so that its object's box,
  keeping its aspect ratio, fills the frame along its larger side and sits in the
  middle; what comes in at the edges is the image's background. An object whose
  box is smaller than ``MIN_SIDE`` pixels is left as it is.

A set whose sizes do not vary is used exactly as given, so ordinary sets are
unaffected bit for bit. The decision is made once, when a tree is created, and
stored with it (``scale``): training, resuming and ``assign`` apply the same rule,
after the position rule (hctree.prepare).
"""

from __future__ import annotations

import numpy as np
import torch

from hctree import position
from hctree.chunks import spans

NAME = "scale"
AS_GIVEN = "as-given"
OBJECT_FITTED = "object-fitted"  # each object's box, specks left out, fills the frame
FITTED = "fitted"  # each foreground's box fills the frame: files before OBJECT_FITTED
DECISIONS = (AS_GIVEN, OBJECT_FITTED, FITTED)
MODES = ("auto", "off")

MIN_SPREAD = 0.06  # spread of the objects' sizes, as a share of the side, for sizes to vary
MIN_SIDE = 4  # a smaller box is left as it is: too small to be an object


def sizes(images: np.ndarray) -> np.ndarray:
    """Each image's object size: its object box's larger side in pixels, int ``[N]``."""
    return position.boxes(images, specks=False)[:, 2:].max(1)


def spread(images: np.ndarray) -> float:
    """The standard deviation of the objects' sizes, as a share of the frame's larger side."""
    if len(images) < 2:
        return 0.0
    return float(sizes(images).std() / max(images.shape[2:]))


def stored(attrs: dict) -> str:
    """A tree's stored decision (files written before the rule: ``AS_GIVEN``)."""
    return str(attrs.get(NAME, AS_GIVEN))


def decide(images: np.ndarray, mode: str = "auto") -> str:
    """``OBJECT_FITTED`` when ``mode`` is auto, the set shows objects on plain
    backgrounds and their sizes vary.

    images: uint8 ``[N, C, H, W]``. Returns one of ``DECISIONS``.
    """
    if mode not in MODES:
        raise ValueError(f"scale mode must be one of {MODES}, not {mode!r}")
    if mode == "off" or not position.objects_on_plain_backgrounds(images):
        return AS_GIVEN
    return OBJECT_FITTED if spread(images) >= MIN_SPREAD else AS_GIVEN


def apply(images: np.ndarray, decision: str) -> np.ndarray:
    """The images the networks see under ``decision``, uint8 ``[N, C, H, W]``.

    ``AS_GIVEN`` returns ``images`` itself; ``OBJECT_FITTED`` returns a copy in which
    every object's box fills the frame (see the module docstring), ``FITTED`` one in
    which every foreground's box, specks and all, does.
    """
    if decision not in DECISIONS:
        raise ValueError(f"unknown scale decision {decision!r}")
    if decision == AS_GIVEN or len(images) == 0:
        return images
    out = np.empty_like(images)
    for rows in spans(images):
        part = images[rows]
        out[rows] = fitted(part, position.boxes(part, specks=decision == FITTED))
    return out


def fitted(images: np.ndarray, box: np.ndarray) -> np.ndarray:
    """``images`` (uint8 ``[N, C, H, W]``) resampled so that each box (int ``[N, 4]``,
    top, left, height, width) fills the frame along its larger side, in the middle."""
    n, _, h, w = images.shape
    top, left, bh, bw = (box[:, i].astype(np.float64) for i in range(4))
    factor = np.minimum(h / np.maximum(bh, 1), w / np.maximum(bw, 1))
    keep = np.maximum(bh, bw) < MIN_SIDE
    factor[keep] = 1.0
    middle_y = np.where(keep, (h - 1) / 2, top + (bh - 1) / 2)
    middle_x = np.where(keep, (w - 1) / 2, left + (bw - 1) / 2)
    # output pixel (y, x) reads input (middle + (y - frame middle) / factor), in the
    # normalised coordinates of grid_sample (align_corners=False)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = theta[:, 1, 1] = torch.from_numpy(1 / factor)
    theta[:, 0, 2] = torch.from_numpy((2 * middle_x + 1) / w - 1)
    theta[:, 1, 2] = torch.from_numpy((2 * middle_y + 1) / h - 1)
    out = position.resampled(images, theta)
    out[keep] = images[keep]
    return out
