"""Write a copy of an image set with every elongated object turned to the nearest frame axis.

    .venv/bin/python bench/upright_copy.py bench/out/rotated-dev.npz bench/out/rotated-dev-up.npz

A screen for an orientation rule, on copies: the set rules hctree would decide are
applied first; then each image whose foreground (weighed by its distance from the
border's median) is elongated, its second moments' larger eigenvalue at least
``--elongation`` times the smaller, is turned about its centre of mass by the
angle between its major axis and the nearest of the frame's axes (at most 45
degrees either way), so a trouser stays upright and a bag lies flat while a tilt
is undone. Other arrays of the file are copied as they are.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from set_copy import read_set, write_set

from hctree import position, prepare


def tilts(images: np.ndarray, elongation: float) -> np.ndarray:
    """Each image's tilt in radians (major axis against the nearest frame axis, image
    coordinates), 0 where the foreground is not elongated enough; float ``[N]``."""
    n, _, h, w = images.shape
    fg = np.abs(images.astype(np.float64) - position.backgrounds(images)[:, :, None, None]).sum(1)
    mass = np.maximum(fg.sum((1, 2)), 1e-9)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    my = (fg * ys).sum((1, 2)) / mass
    mx = (fg * xs).sum((1, 2)) / mass
    dy, dx = ys[None] - my[:, None, None], xs[None] - mx[:, None, None]
    m20 = (fg * dx * dx).sum((1, 2)) / mass
    m02 = (fg * dy * dy).sum((1, 2)) / mass
    m11 = (fg * dx * dy).sum((1, 2)) / mass
    axis = 0.5 * np.arctan2(2 * m11, m20 - m02)  # major axis from the x axis, y down
    tilt = (axis + np.pi / 4) % (np.pi / 2) - np.pi / 4
    spread = np.sqrt((m20 - m02) ** 2 + 4 * m11**2)
    ratio = (m20 + m02 + spread) / np.maximum(m20 + m02 - spread, 1e-9)
    return np.where(ratio >= elongation, tilt, 0.0)


def turned(images: np.ndarray, tilt: np.ndarray) -> np.ndarray:
    """``images`` (uint8 ``[N, C, H, W]``) turned about the frame's middle by ``-tilt``."""
    cos, sin = torch.from_numpy(np.cos(tilt)), torch.from_numpy(np.sin(tilt))
    theta = torch.zeros(len(images), 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    return position.resampled(images, theta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--elongation", type=float, default=1.5)
    args = parser.parse_args()
    arrays, four = read_set(args.source)
    before = prepare.apply(four, prepare.decide(four, {"orientation": "off"}))  # what it screens
    tilt = tilts(before, args.elongation)
    after = turned(before, tilt)
    write_set(args.target, arrays, after)
    left = tilts(after, args.elongation)
    print(
        f"{args.target}: {np.mean(tilt != 0):.0%} turned; tilt sd {np.degrees(tilt.std()):.1f}"
        f" -> {np.degrees(left.std()):.1f} degrees"
    )


if __name__ == "__main__":
    main()
