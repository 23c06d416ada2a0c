"""A copy of a colour set with each image's single colour taken away: a screen for a
colour rule.

    .venv/bin/python bench/grey_copy.py bench/out/tinted10-dev.npz bench/out/tinted10-dev-grey.npz

Each image's pixels (RGB vectors) are projected onto the image's own main colour
direction ``v`` (the top right singular vector of its ``[H*W, 3]`` pixels, signed
to be positive), times ``v``'s largest component, and the result, clipped to
0-255, is written to all three channels. For an image that is a grey picture
multiplied by one colour (a cast) this is the picture as its brightest channel
shows it; a grey image stored in colour stays as it is. Prints how much of each image's pixel energy its main
direction holds (median and 5th percentile over the set) and how far the images'
directions spread (the mean resultant length of the unit directions: 1 when every
image has the same colour).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from set_copy import read_set, write_set


def main_colours(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's main colour direction float ``[N, 3]`` (unit, positive sum) and the
    share of its pixel energy that direction holds, float ``[N]``."""
    x = images.reshape(len(images), 3, -1).astype(np.float64)
    gram = x @ x.transpose(0, 2, 1)  # [N, 3, 3]
    values, vectors = np.linalg.eigh(gram)
    top = vectors[:, :, -1]
    top *= np.where(top.sum(1, keepdims=True) < 0, -1.0, 1.0)
    share = values[:, -1] / np.maximum(values.sum(1), 1e-12)
    return top, share


def projected(images: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """``images`` (uint8 ``[N, 3, H, W]``) projected onto ``directions`` times their
    largest component, repeated over three channels."""
    grey = np.einsum("nchw,nc->nhw", images.astype(np.float64), directions)
    grey *= directions.max(1)[:, None, None]
    grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, None], 3, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target", nargs="?")
    args = parser.parse_args()
    arrays, images = read_set(args.source)
    directions, share = main_colours(images)
    resultant = float(np.linalg.norm(directions.mean(0)))
    print(
        json.dumps(
            {
                "set": args.source,
                "share_median": round(float(np.median(share)), 5),
                "share_p5": round(float(np.percentile(share, 5)), 5),
                "resultant": round(resultant, 4),
            }
        )
    )
    if args.target:
        write_set(args.target, arrays, projected(images, directions))


if __name__ == "__main__":
    main()
