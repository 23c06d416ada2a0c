"""Write a copy of an image set with every object enlarged to fill the frame.

    .venv/bin/python bench/scale_copy.py bench/out/zoomed-dev.npz bench/out/zoomed-dev-fit.npz

The set rules hctree would decide for the set (polarity, levels, position) are
applied first, then hctree.scale's ``fitted`` resampling, whatever the scale rule
would decide; other arrays of the file (labels, nuisance) are copied as they are.
For screening the scale rule on copies before it decides anything.
"""

from __future__ import annotations

import argparse

import numpy as np

from hctree import prepare, scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    args = parser.parse_args()
    arrays = dict(np.load(args.source))
    images = arrays["images"]
    four = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    decisions = prepare.decide(four, {})
    before = prepare.apply(four, decisions)
    print(f"{args.source}: {decisions}, size spread {scale.spread(before):.3f}")
    moved = scale.apply(before, scale.FITTED)
    arrays["images"] = moved[:, 0] if images.ndim == 3 else moved.transpose(0, 2, 3, 1)
    np.savez_compressed(args.target, **arrays)
    print(f"{args.target}: {len(moved)} images, size spread {scale.spread(moved):.3f}")


if __name__ == "__main__":
    main()
