"""Write a copy of an image set with every object enlarged to fill the frame.

    .venv/bin/python bench/scale_copy.py bench/out/zoomed-dev.npz bench/out/zoomed-dev-fit.npz

The set rules hctree would decide for the set (polarity, levels, position) are
applied first, then hctree.scale's ``fitted`` resampling, whatever the scale rule
would decide; other arrays of the file (labels, nuisance) are copied as they are.
For screening the scale rule on copies before it decides anything.
"""

from __future__ import annotations

import argparse

from set_copy import read_set, write_set

from hctree import prepare, scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    args = parser.parse_args()
    arrays, four = read_set(args.source)
    # the rule on screen, and the orientation rule after it, are left off
    decisions = prepare.decide(four, {"scale": "off", "orientation": "off"})
    before = prepare.apply(four, decisions)
    print(f"{args.source}: {decisions}, size spread {scale.spread(before):.3f}")
    moved = scale.apply(before, scale.FITTED)
    write_set(args.target, arrays, moved)
    print(f"{args.target}: {len(moved)} images, size spread {scale.spread(moved):.3f}")


if __name__ == "__main__":
    main()
