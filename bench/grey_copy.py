"""A copy of a colour set with each image's single colour taken away: a screen for a
colour rule.

    .venv/bin/python bench/grey_copy.py bench/out/tinted10-dev.npz bench/out/tinted10-dev-grey.npz

Each image is what ``hctree.colour`` trains on (``--colour auto``): its pixels
projected onto its own main colour direction ``v``, times ``v``'s largest
component, in all three channels. Prints how much of each image's pixel energy its main
direction holds (median and 5th percentile over the set) and how far the images'
directions spread (the mean resultant length of the unit directions: 1 when every
image has the same colour).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from set_copy import read_set, write_set

from hctree import colour


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target", nargs="?")
    args = parser.parse_args()
    arrays, images = read_set(args.source)
    directions, share = colour.main_colours(images)
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
        write_set(args.target, arrays, colour.apply(images, colour.GREY))


if __name__ == "__main__":
    main()
