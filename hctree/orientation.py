"""Orientation: turn back the objects of a set whose objects come tilted by varying angles.

An object's own axis is not its tilt (a coat's axis is its length, whatever its
lean), but how far it must turn to line up with the objects most like it is. The
rule estimates each image's tilt that way (angular synchronisation):

- *Landmarks*: up to ``LANDMARKS`` evenly spaced images, as grey images with their
  background (``position.backgrounds``) taken away, at most ``WORK_SIDE`` pixels
  on a side.
- For every pair of landmarks the angle of a grid (``-MOST`` to ``MOST`` degrees in
  steps of ``STEP``) that best turns one onto the other; each landmark keeps its
  ``NEIGHBOURS`` closest landmarks under those angles.
- The landmarks' tilts solve ``tilt_i - tilt_j = angle_ij`` over the kept pairs in
  least squares, with mean zero.
- Every image (a landmark too) is then *placed*: its tilt is the median, over its
  ``NEIGHBOURS`` closest landmarks under their best angles, of landmark tilt plus
  angle.

The set's objects *come tilted* when the median of ``|angle_ij|`` over the kept
pairs is at least ``MIN_TURN`` degrees: how far an image must turn to line up with
the images most like it. Only a set of objects on plain backgrounds is judged (as
for position and scale). In such a set every image is turned back by its tilt
about the frame's middle (bilinear; what comes in at the edges is the image's
background).

The landmarks, their tilts and the training images' own tilts are stored with the
tree (``/prepared/orientation``): training and resuming turn the training images
by their stored tilts, and ``assign`` places new images against the stored
landmarks, so they are turned as the training images were. A set whose objects
do not come tilted is used exactly as given, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
import torch.nn.functional as F

from hctree import position
from hctree.chunks import spans

NAME = "orientation"
AS_GIVEN = "as-given"
TURNED = "turned"
DECISIONS = (AS_GIVEN, TURNED)
MODES = ("auto", "off")
ARRAYS = ("landmarks", "landmark_tilts")  # stored for every turned tree; "tilts" for training

LANDMARKS = 2000  # images synchronised on; every other image is placed against them
NEIGHBOURS = 10  # closest landmarks kept per image
MOST, STEP = 36.0, 3.0  # the angle grid, degrees
MIN_TURN = 6.0  # median pair angle (degrees) from which a set's objects come tilted
WORK_SIDE = 32  # larger images are searched at this size (area average)
PLACE_CHUNK = 256  # images placed at a time


@dataclass(frozen=True)
class Fit:
    """What the rule learns on a set: landmarks float32 ``[M, 1, h, w]`` with their
    tilts float64 ``[M]`` (degrees), and the median pair angle (degrees)."""

    landmarks: np.ndarray
    landmark_tilts: np.ndarray
    turn: float


def stored(attrs: dict) -> str:
    """A tree's stored decision (files written before the rule: ``AS_GIVEN``)."""
    return str(attrs.get(NAME, AS_GIVEN))


def grid(most: float = MOST, step: float = STEP) -> np.ndarray:
    """The angles tried, ``-most`` to ``most`` in steps of ``step``: degrees float64 ``[A]``."""
    return np.arange(-most, most + step / 2, step)


def working(images: np.ndarray) -> torch.Tensor:
    """``images`` (uint8 ``[N, C, H, W]``) as the search sees them: grey, background
    taken away, in [-1, 1], at most ``WORK_SIDE`` on a side; float32 ``[N, 1, h, w]``."""
    size = working_size(images.shape[2], images.shape[3])
    out = torch.empty(len(images), 1, *size)
    for rows in spans(images):
        part = images[rows]
        background = torch.from_numpy(position.backgrounds(part)).mean(1)[:, None, None, None]
        x = (torch.from_numpy(part).float().mean(1, keepdim=True) - background) / 255
        out[rows] = F.interpolate(x, size=size, mode="area") if size != x.shape[2:] else x
    return out


def working_size(height: int, width: int) -> tuple[int, int]:
    """The height and width at which images of ``height`` x ``width`` are searched."""
    side = max(height, width)
    if side <= WORK_SIDE:
        return int(height), int(width)
    return max(1, round(height * WORK_SIDE / side)), max(1, round(width * WORK_SIDE / side))


def rotations(degrees: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    """Affine maps ``[n, 2, 3]`` that turn images about their middle by ``degrees``
    (``[n]`` or one value for all), in grid_sample's normalised coordinates."""
    r = torch.deg2rad(degrees.to(dtype)).expand(n)
    theta = torch.zeros(n, 2, 3, dtype=dtype)
    theta[:, 0, 0], theta[:, 0, 1] = r.cos(), -r.sin()
    theta[:, 1, 0], theta[:, 1, 1] = r.sin(), r.cos()
    return theta


def turned(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Images float ``[N, C, H, W]`` turned about their middle by ``degrees`` (``[N]``
    or one value for all); zeros come in at the edges."""
    sampled = F.affine_grid(rotations(degrees, len(x), x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, sampled, mode="bilinear", padding_mode="zeros", align_corners=False)


def _turns(x: torch.Tensor, angles: np.ndarray) -> torch.Tensor:
    """Every image of ``x`` under every one of ``angles``, flat float ``[A, N, P]``."""
    return torch.stack([turned(x, torch.tensor(d)).reshape(len(x), -1) for d in angles])


def pair_angles(
    x: torch.Tensor, angles: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared distance ``d[i, j]`` between image i and image j turned by its best
    angle ``a[i, j]`` (degrees, one of ``angles``, by default the :func:`grid`),
    float ``[N, N]`` each; the diagonal's distance is infinite."""
    angles = grid() if angles is None else angles
    n = len(x)
    flat = x.reshape(n, -1)
    sq = flat.square().sum(1)
    best = torch.full((n, n), float("inf"))
    angle = torch.zeros(n, n)
    for degrees, moved in zip(angles, _turns(x, angles), strict=True):
        d = sq[:, None] + moved.square().sum(1)[None, :] - 2 * flat @ moved.T
        better = d < best
        best = torch.where(better, d, best)
        angle = torch.where(better, torch.tensor(float(degrees)), angle)
    best.fill_diagonal_(float("inf"))
    return best, angle


def synchronise(rows: np.ndarray, cols: np.ndarray, angles: np.ndarray, n: int) -> np.ndarray:
    """Tilts ``t`` float64 ``[n]`` with ``t[rows] - t[cols] ~ angles`` in least squares,
    mean 0."""
    m = len(rows)
    edge = np.arange(m)
    diff = sp.csr_matrix(
        (np.r_[np.ones(m), -np.ones(m)], (np.r_[edge, edge], np.r_[rows, cols])), shape=(m, n)
    )
    system = sp.vstack([diff, sp.csr_matrix(np.ones((1, n)))])
    return spla.lsqr(system, np.r_[angles, 0.0], atol=1e-8, btol=1e-8, iter_lim=5000)[0]


def fit(images: np.ndarray) -> Fit:
    """Landmarks of ``images`` (uint8 ``[N, C, H, W]``, at least two) and their
    synchronised tilts (see the module docstring)."""
    n = len(images)
    marks = np.linspace(0, n - 1, min(n, LANDMARKS)).round().astype(int)
    x = working(images[marks])
    dist, angle = pair_angles(x)
    keep = min(NEIGHBOURS, len(x) - 1)
    near = dist.topk(keep, largest=False).indices
    rows = np.repeat(np.arange(len(x)), keep)
    cols = near.reshape(-1).numpy()
    pairs = angle[rows, cols].numpy().astype(np.float64)
    tilts = synchronise(rows, cols, pairs, len(x))
    return Fit(x.numpy(), tilts, float(np.median(np.abs(pairs))))


def place(images: np.ndarray, landmarks: np.ndarray, landmark_tilts: np.ndarray) -> np.ndarray:
    """Tilts of ``images`` (uint8 ``[N, C, H, W]``) against stored landmarks: the median,
    over the closest landmarks under their best angles, of landmark tilt plus angle;
    degrees float64 ``[N]``."""
    marks = torch.from_numpy(landmarks)
    moved = _turns(marks, grid())  # [A, M, P]
    moved_sq = moved.square().sum(2)
    angles = torch.from_numpy(grid()).float()
    tilts = torch.from_numpy(landmark_tilts).float()
    keep = min(NEIGHBOURS, len(marks))
    out = np.empty(len(images))
    for start in range(0, len(images), PLACE_CHUNK):
        part = images[start : start + PLACE_CHUNK]
        flat = working(part).reshape(len(part), -1)
        d = flat.square().sum(1)[None, :, None] + moved_sq[:, None, :]
        d = d - 2 * flat @ moved.transpose(1, 2)  # [A, B, M]
        best, which = d.min(0)
        near = best.topk(keep, largest=False).indices
        chosen = tilts[near] + angles[which.gather(1, near)]
        out[start : start + len(part)] = chosen.double().median(1).values.numpy()
    return out


def decide(images: np.ndarray, mode: str = "auto") -> str:
    """``TURNED`` when ``mode`` is auto, the set shows objects on plain backgrounds and
    they come tilted (median pair angle at least ``MIN_TURN``).

    images: uint8 ``[N, C, H, W]``. Returns one of ``DECISIONS``.
    """
    learned = _judged(images, mode)
    return TURNED if learned is not None and learned.turn >= MIN_TURN else AS_GIVEN


def decide_fitted(images: np.ndarray, mode: str = "auto") -> tuple[str, dict[str, np.ndarray]]:
    """:func:`decide`, and for ``TURNED`` the arrays the tree stores: the landmarks, their
    tilts, and the ``tilts`` of ``images`` themselves (its training images)."""
    learned = _judged(images, mode)
    if learned is None or learned.turn < MIN_TURN:
        return AS_GIVEN, {}
    tilts = place(images, learned.landmarks, learned.landmark_tilts)
    return TURNED, {
        "landmarks": learned.landmarks.astype(np.float32),
        "landmark_tilts": learned.landmark_tilts.astype(np.float64),
        "tilts": tilts.astype(np.float32),
    }


def _judged(images: np.ndarray, mode: str) -> Fit | None:
    """The set's fit when ``mode`` lets the rule judge it (auto, objects on plain
    backgrounds), else None."""
    if mode not in MODES:
        raise ValueError(f"orientation mode must be one of {MODES}, not {mode!r}")
    if mode == "off" or len(images) < 2 or not position.objects_on_plain_backgrounds(images):
        return None
    return fit(images)


def apply(images: np.ndarray, decision: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The images the networks see under ``decision``, uint8 ``[N, C, H, W]``.

    ``AS_GIVEN`` returns ``images`` itself. ``TURNED`` returns a copy in which every
    image is turned back by its tilt: ``arrays["tilts"]`` where given (the training
    images), else placed against ``arrays``' landmarks.
    """
    if decision not in DECISIONS:
        raise ValueError(f"unknown orientation decision {decision!r}")
    if decision == AS_GIVEN or len(images) == 0:
        return images
    tilts = arrays.get("tilts")
    if tilts is None:
        tilts = place(images, arrays["landmarks"], arrays["landmark_tilts"])
    out = np.empty_like(images)
    for rows in spans(images):
        out[rows] = turned_back(images[rows], np.asarray(tilts[rows], np.float64))
    return out


def turned_back(images: np.ndarray, tilts: np.ndarray) -> np.ndarray:
    """``images`` (uint8 ``[N, C, H, W]``) turned about the frame's middle by ``-tilts``
    degrees, their background coming in at the edges."""
    return position.resampled(
        images, rotations(-torch.from_numpy(tilts), len(images), torch.float64)
    )


def invalid_arrays(
    arrays: dict[str, np.ndarray], n: int | None, image_shape: tuple[int, ...] | None
) -> str | None:
    """One phrase on what is wrong with a turned tree's stored ``arrays`` (``n``: its
    training images, when their ``tilts`` are there to check; ``image_shape``:
    ``[C, H, W]``, to check the landmarks' size), or None."""
    marks, tilts = arrays.get("landmarks"), arrays.get("landmark_tilts")
    if marks is None or tilts is None:
        return "its landmarks are missing."
    size = working_size(*image_shape[1:]) if image_shape is not None else marks.shape[2:]
    if marks.shape[1:] != (1, *size) or len(marks) < 1 or tilts.shape != (len(marks),):
        return "its landmarks and their tilts do not match the images."
    if not (np.isfinite(marks).all() and np.isfinite(tilts).all()):
        return "its landmarks hold numbers that are not finite."
    own = arrays.get("tilts")
    if own is not None and ((n is not None and own.shape != (n,)) or not np.isfinite(own).all()):
        return f"its training images' tilts are not {n} finite numbers."
    return None
