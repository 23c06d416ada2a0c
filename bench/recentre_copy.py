"""Write a copy of an image set with every image recentred, by one of two centres.

    .venv/bin/python bench/recentre_copy.py bench/out/shifted.npz bench/out/shifted-box.npz --centre box

``com``: the foreground's centre of mass in the middle (hctree.position, what
``--position auto`` does); ``box``: the middle of the foreground's bounding box
(pixels more than hctree.position.PLAIN_TOL grey levels from the border median,
in any channel) in the middle. Other arrays of the file (labels, nuisance) are
copied as they are. For comparing the two centres as whole trees on the copies.
"""

from __future__ import annotations

import argparse

import numpy as np

from hctree import position


def box_centres(images: np.ndarray) -> np.ndarray:
    """The middle of each image's foreground bounding box ``(row, column)``, float ``[N, 2]``
    (the frame's middle for an image with no foreground)."""
    n, _, h, w = images.shape
    diff = np.abs(images.astype(np.float32) - position.backgrounds(images)[:, :, None, None])
    mask = (diff > position.PLAIN_TOL).any(1)
    out = np.tile([(h - 1) / 2, (w - 1) / 2], (n, 1))
    rows, cols = mask.any(2), mask.any(1)
    some = rows.any(1)
    first_r, last_r = rows.argmax(1), h - 1 - rows[:, ::-1].argmax(1)
    first_c, last_c = cols.argmax(1), w - 1 - cols[:, ::-1].argmax(1)
    out[some, 0] = (first_r[some] + last_r[some]) / 2
    out[some, 1] = (first_c[some] + last_c[some]) / 2
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--centre", choices=["com", "box"], default="box")
    args = parser.parse_args()
    arrays = dict(np.load(args.source))
    images = arrays["images"]
    four = images if images.ndim == 4 else images[:, None]  # N x H x W: grey
    where = position.centres(four) if args.centre == "com" else box_centres(four)
    moved = position.recentred(four, where)
    arrays["images"] = moved if images.ndim == 4 else moved[:, 0]
    np.savez_compressed(args.target, **arrays)
    print(f"{args.target}: {len(moved)} images recentred by their {args.centre}")


if __name__ == "__main__":
    main()
