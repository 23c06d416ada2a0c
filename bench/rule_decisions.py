"""Every set rule's decision on a set, and the orientation rule's statistic.

    .venv/bin/python bench/rule_decisions.py fashion-mnist:10000:0 bench/out/shifted.npz ... [--mode colour=auto]

Each argument is a set file of bench/make_sets.py, or ``NAME[:SUBSET[:SEED]]`` for a
set hctree loads itself. Prints one JSON line per set: its rules' decisions
(``hctree.prepare.decide``, as a new tree would store them), the median pair angle
on the images as the rules before orientation leave them, and the seconds taken.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from set_copy import read_set

from hctree import orientation, prepare
from hctree.data import load_images


def images_of(spec: str) -> np.ndarray:
    """The images a set argument names (see the module docstring)."""
    if spec.endswith(".npz"):
        return read_set(spec)[1]
    name, subset, seed = (spec.split(":") + ["", ""])[:3]
    return load_images(name, subset=int(subset) if subset else None, seed=int(seed or 0)).images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+")
    parser.add_argument("--mode", action="append", default=[], help="RULE=MODE, as grow's")
    args = parser.parse_args()
    modes = dict(item.split("=", 1) for item in args.mode)
    torch.set_num_threads(1)
    for spec in args.sets:
        images = images_of(spec)
        start = time.time()
        decisions = prepare.decide(images, modes)
        seconds = time.time() - start
        upright = prepare.Decisions({**decisions.rules, orientation.NAME: orientation.AS_GIVEN})
        before = prepare.apply(images, upright)  # as the rules before orientation leave them
        line = {"set": spec, "n": len(images), **decisions.rules}
        line["pair_angle_median"] = orientation.fit(before).turn
        line["seconds"] = round(seconds, 1)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
