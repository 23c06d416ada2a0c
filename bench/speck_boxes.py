"""How dust moves the position and scale rules: object boxes with and without specks.

    .venv/bin/python bench/speck_boxes.py bench/out/zoomed.npz bench/out/shifted.npz --specks 1,3

Adds ``--specks`` bright single pixels at random background places of every image
(seeded), then prints per set and count: the rules' decisions on the dusted images,
and how many images keep the box of their clean object, with every foreground pixel
in the box (``box-centred``, ``fitted``: trees stored before specks were left out)
and with specks left out (``object-box-centred``, ``object-fitted``: new trees).
One JSON line each. With ``--write DIR`` each dusted set is also written there as
``NAME-specksK.npz`` (its other arrays as they were), for whole trees.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from set_copy import read_set, write_set

from hctree import position, prepare


def dusted(images: np.ndarray, specks: int, seed: int) -> np.ndarray:
    """``images`` (uint8 ``[N, 1, H, W]``) with ``specks`` pixels of 250 set at random
    places that are background (within ``position.PLAIN_TOL`` of it) in each."""
    rng = np.random.default_rng(seed)
    out = images.copy()
    n, _, h, w = images.shape
    background = position.backgrounds(images)[:, 0]
    for _ in range(specks):
        r, c = rng.integers(0, h, n), rng.integers(0, w, n)
        free = np.abs(out[np.arange(n), 0, r, c] - background) <= position.PLAIN_TOL
        out[np.arange(n)[free], 0, r[free], c[free]] = 250
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", help="image sets (.npz, bench/make_sets.py)")
    parser.add_argument("--specks", default="1,3", help="comma-separated specks per image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", default="", help="a folder for the dusted copies")
    args = parser.parse_args()
    for path in args.sets:
        arrays, images = read_set(path)
        clean = position.boxes(images)
        for specks in [0] + [int(v) for v in args.specks.split(",")]:
            dirty = dusted(images, specks, args.seed)
            rules = prepare.decide(dirty, {}).rules
            row = {
                "set": path,
                "specks": specks,
                "position": rules["position"],
                "scale": rules["scale"],
                "same_box_every_pixel": round(
                    float((position.boxes(dirty) == clean).all(1).mean()), 3
                ),
                "same_box_object": round(
                    float((position.boxes(dirty, specks=False) == clean).all(1).mean()), 3
                ),
            }
            print(json.dumps(row), flush=True)
            if args.write and specks:
                out = Path(args.write) / f"{Path(path).stem}-specks{specks}.npz"
                write_set(str(out), arrays, dirty)


if __name__ == "__main__":
    main()
