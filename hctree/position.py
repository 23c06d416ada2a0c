"""Position: recentre every image of a set whose objects sit at varying places.

A set whose objects were photographed or cropped off-centre by different amounts
lets a network split it by where the object sits. Views that move the object do
not teach that away (docs/benchmarks.md, "Position as a nuisance"), so hctree
settles the position before training instead:

- An image's *centre* is the centre of mass of its foreground, each pixel weighed
  by its distance from the image's background (the median of its border pixels,
  per channel, summed over channels). The decision below is made on centres.
- Only a set of objects on plain backgrounds is judged: at least ``MIN_PLAIN`` of
  its images must have a *plain border* (at least ``PLAIN_SHARE`` of the border
  pixels within ``PLAIN_TOL`` grey levels of its median, in every channel). Crops of
  natural scenes (about a quarter of them plain) and very noisy images are left
  alone: their "foreground" is not an object.
- The set's positions *vary* when the standard deviation of those centres, along
  the axis where it is larger, is at least ``MIN_SPREAD`` of the image's side.
  Sets whose objects are centred by construction (Fashion-MNIST, digit sets) stay
  at about 0.04-0.06 of the side, the shape of each class moving the centre a
  little; objects moved by up to a seventh of the side each way reach 0.09-0.1.
- In such a set every image is moved by whole pixels so that the middle of its
  foreground's *bounding box* (the pixels more than ``PLAIN_TOL`` grey levels from
  the background in some channel) sits at the middle of the frame; what comes in
  at the edges is the image's background. The box, not the centre of mass, is
  where a set's objects sit when they were framed by hand: the centre of mass
  moves with each object's shape (a slanted 1, an open 4), and trees of digits
  placed by it scored 0.55 ACC against 0.90 placed by the box
  (docs/benchmarks.md, "Position settled before training"). Trees made before
  that change (``centred``) keep the centre of mass.
- A *speck* (a piece of foreground of at most ``MAX_SPECK`` pixels, its pixels
  joined through edges or corners, in an image that also holds a larger piece) is
  dust, not object: the object's box leaves it out (``object-box-centred``). A
  lone speck in a corner would otherwise stretch the box to the corner and move
  the object away from the middle. Trees made before that change (``box-centred``)
  keep the box of every foreground pixel.

A set whose positions do not vary is used exactly as given, so ordinary sets are
unaffected bit for bit. The decision is made once, when a tree is created, and
stored with it (``position``): training, resuming and ``assign`` apply the same
rule, after the polarity and levels rules (hctree.prepare).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from hctree.chunks import spans

NAME = "position"
AS_GIVEN = "as-given"
OBJECT_BOXED = "object-box-centred"  # each object's box, specks left out, in the middle
BOXED = "box-centred"  # each foreground's bounding box in the middle: files before OBJECT_BOXED
CENTRED = "centred"  # each foreground's centre of mass in the middle: files before BOXED
DECISIONS = (AS_GIVEN, OBJECT_BOXED, BOXED, CENTRED)
MODES = ("auto", "off")

MIN_SPREAD = 0.075  # spread of the centres, as a share of the side, for positions to vary
PLAIN_TOL, PLAIN_SHARE = 8, 0.75  # a plain border: this share of its pixels this close
MIN_PLAIN = 0.5  # share of images with a plain border for the set to be judged
MAX_SPECK = 4  # a piece of foreground this small, beside a larger one, is dust


def _border(images: np.ndarray) -> np.ndarray:
    """Each image's border pixels, uint8 ``[N, C, 2H + 2W - 4]``."""
    return np.concatenate(
        [images[:, :, 0, :], images[:, :, -1, :], images[:, :, 1:-1, 0], images[:, :, 1:-1, -1]],
        axis=2,
    )


def backgrounds(images: np.ndarray) -> np.ndarray:
    """Each image's background: the median of its border pixels per channel, float ``[N, C]``.

    images: uint8 ``[N, C, H, W]``.
    """
    return np.median(_border(images), axis=2).astype(np.float32)


def resampled(images: np.ndarray, theta: torch.Tensor) -> np.ndarray:
    """``images`` (uint8 ``[N, C, H, W]``) resampled (bilinear) through the affine maps
    ``theta`` (float64 ``[N, 2, 3]``, output to input in grid_sample's normalised
    coordinates), each image's background coming in at the edges; uint8."""
    background = torch.from_numpy(backgrounds(images)).double()[:, :, None, None]
    x = torch.from_numpy(images).double() - background
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    moved = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (moved + background).round().clamp(0, 255).to(torch.uint8).numpy()


def plain_borders(images: np.ndarray) -> np.ndarray:
    """Which images have a plain border (see the module docstring), bool ``[N]``."""
    out = np.empty(len(images), bool)
    for rows in spans(images):
        part = images[rows]
        close = np.abs(_border(part) - backgrounds(part)[:, :, None]) <= PLAIN_TOL
        out[rows] = close.all(1).mean(1) >= PLAIN_SHARE
    return out


def objects_on_plain_backgrounds(images: np.ndarray) -> bool:
    """Whether a set is judged by the position and scale rules: two images or more, at
    least ``MIN_PLAIN`` of them with a plain border (see the module docstring)."""
    return len(images) >= 2 and plain_borders(images).mean() >= MIN_PLAIN


def centres(images: np.ndarray) -> np.ndarray:
    """Each image's foreground centre of mass ``(row, column)`` in pixels, float ``[N, 2]``
    (the middle of the frame for an image with no foreground)."""
    n, _, h, w = images.shape
    out = np.empty((n, 2), np.float64)
    row_index, col_index = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    for rows in spans(images):
        part = images[rows]
        fg = np.abs(part.astype(np.float32) - backgrounds(part)[:, :, None, None]).sum(1)
        mass = fg.sum((1, 2), dtype=np.float64)
        empty = mass <= 0
        mass[empty] = 1.0
        out[rows, 0] = fg.sum(2, dtype=np.float64) @ row_index / mass
        out[rows, 1] = fg.sum(1, dtype=np.float64) @ col_index / mass
        out[rows][empty] = ((h - 1) / 2, (w - 1) / 2)
    return out


def foreground(images: np.ndarray) -> np.ndarray:
    """The pixels more than ``PLAIN_TOL`` grey levels from the image's background in
    some channel, bool ``[N, H, W]``; images: uint8 ``[N, C, H, W]``."""
    diff = np.abs(images.astype(np.float32) - backgrounds(images)[:, :, None, None])
    return (diff > PLAIN_TOL).any(1)


def without_specks(mask: np.ndarray) -> np.ndarray:
    """``mask`` (bool ``[N, H, W]``) without its specks: pieces (8-connected) of at most
    ``MAX_SPECK`` pixels in an image that also holds a larger piece."""
    joined = np.zeros((3, 3, 3), bool)
    joined[1] = True  # neighbours within one image, through edges and corners
    labels, _ = ndimage.label(mask, structure=joined)
    sizes = np.bincount(labels.ravel())
    small = sizes <= MAX_SPECK
    small[0] = False
    speck = small[labels]
    kept = mask & ~speck
    alone = ~kept.any((1, 2))  # only specks: they are all the image holds
    kept[alone] = mask[alone]
    return kept


def boxes(images: np.ndarray, specks: bool = True) -> np.ndarray:
    """Each image's foreground bounding box ``(top, left, height, width)`` in pixels,
    int ``[N, 4]`` (all zero for an image with no foreground). The foreground is
    :func:`foreground`; without ``specks`` its specks are left out (the object's box).

    images: uint8 ``[N, C, H, W]``.
    """
    n, _, h, w = images.shape
    out = np.zeros((n, 4), np.int64)
    for rows in spans(images):
        mask = foreground(images[rows])
        if not specks:
            mask = without_specks(mask)
        for axis, (lines, side) in enumerate(((mask.any(2), h), (mask.any(1), w))):
            some = np.flatnonzero(lines.any(1))
            first = lines[some].argmax(1)
            last = side - 1 - lines[some, ::-1].argmax(1)
            out[rows.start + some, axis] = first
            out[rows.start + some, 2 + axis] = last - first + 1
    return out


def box_middles(images: np.ndarray, specks: bool = True) -> np.ndarray:
    """The middle of each image's foreground bounding box ``(row, column)`` in pixels
    (without ``specks``: of its object's box), float ``[N, 2]`` (the middle of the
    frame for an image with no foreground)."""
    _, _, h, w = images.shape
    box = boxes(images, specks)
    out = box[:, :2] + (box[:, 2:] - 1) / 2
    out[box[:, 2] == 0] = ((h - 1) / 2, (w - 1) / 2)
    return out


def spread(images: np.ndarray) -> float:
    """The standard deviation of the images' centres along the axis where it is larger,
    as a share of the image's side (see the module docstring)."""
    if len(images) < 2:
        return 0.0
    return float(centres(images).std(0).max() / max(images.shape[2:]))


def stored(attrs: dict) -> str:
    """A tree's stored decision (files written before the rule: ``AS_GIVEN``)."""
    return str(attrs.get(NAME, AS_GIVEN))


def decide(images: np.ndarray, mode: str = "auto") -> str:
    """``OBJECT_BOXED`` when ``mode`` is auto, the set shows objects on plain
    backgrounds and their positions vary.

    images: uint8 ``[N, C, H, W]``. Returns one of ``DECISIONS``.
    """
    if mode not in MODES:
        raise ValueError(f"position mode must be one of {MODES}, not {mode!r}")
    if mode == "off" or not objects_on_plain_backgrounds(images):
        return AS_GIVEN
    return OBJECT_BOXED if spread(images) >= MIN_SPREAD else AS_GIVEN


def apply(images: np.ndarray, decision: str) -> np.ndarray:
    """The images the networks see under ``decision``, uint8 ``[N, C, H, W]``.

    ``AS_GIVEN`` returns ``images`` itself; the others return a copy in which every
    image is moved by whole pixels to put at the middle of the frame: the middle of
    its object's box (``OBJECT_BOXED``), of its foreground's box (``BOXED``) or its
    foreground's centre of mass (``CENTRED``).
    """
    if decision not in DECISIONS:
        raise ValueError(f"unknown position decision {decision!r}")
    if decision == AS_GIVEN or len(images) == 0:
        return images
    if decision == CENTRED:
        return recentred(images, centres(images))
    return recentred(images, box_middles(images, specks=decision == BOXED))


def recentred(images: np.ndarray, where: np.ndarray) -> np.ndarray:
    """A copy of ``images`` (uint8 ``[N, C, H, W]``) with each moved by whole pixels so
    that the point ``where`` (float ``[N, 2]``, row and column) sits at the middle of
    the frame; the image's background fills what comes in at the edges."""
    _, _, h, w = images.shape
    middle = np.array([(h - 1) / 2, (w - 1) / 2])
    moves = np.rint(middle - where).astype(np.int64)
    fill = np.rint(backgrounds(images)).astype(np.uint8)[:, :, None, None]
    out = np.broadcast_to(fill, images.shape).copy()
    for dy, dx in np.unique(moves, axis=0):
        which = np.flatnonzero((moves[:, 0] == dy) & (moves[:, 1] == dx))
        y0, y1, x0, x1 = max(0, dy), min(h, h + dy), max(0, dx), min(w, w + dx)
        if y0 < y1 and x0 < x1:
            out[which, :, y0:y1, x0:x1] = images[which, :, y0 - dy : y1 - dy, x0 - dx : x1 - dx]
    return out
