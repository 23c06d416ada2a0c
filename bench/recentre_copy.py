"""Write a copy of an image set with every image recentred, by one of two centres.

    .venv/bin/python bench/recentre_copy.py bench/out/shifted.npz bench/out/shifted-box.npz --centre box

``com``: the foreground's centre of mass in the middle (hctree.position.centres,
what ``--position auto`` did before 2026-12-07); ``box``: the middle of the
foreground's bounding box in the middle (hctree.position.box_middles, what it has
done since). Other arrays of the file (labels, nuisance) are copied as they are.
For comparing the two centres as whole trees on the copies.
"""

from __future__ import annotations

import argparse

from set_copy import read_set, write_set

from hctree import position


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--centre", choices=["com", "box"], default="box")
    args = parser.parse_args()
    arrays, four = read_set(args.source)
    where = position.centres(four) if args.centre == "com" else position.box_middles(four)
    moved = position.recentred(four, where)
    write_set(args.target, arrays, moved)
    print(f"{args.target}: {len(moved)} images recentred by their {args.centre}")


if __name__ == "__main__":
    main()
