"""Grow a tree with one splitter and preset, then time and score it.

    .venv/bin/python bench/tree_quality.py --subset 10000 --leaves 10 --preset cpu
    .venv/bin/python bench/tree_quality.py --subset 10000 --leaves 10 --splitter c3gan --branching 10
    .venv/bin/python bench/tree_quality.py --leaves 10 --preset fast --device cuda   # all 70,000

Writes the tree to ``--out`` (default bench/out/<splitter>-<preset>-<n>.h5, removed
first unless --resume) and prints one JSON line: wall time, ACC, NMI, ARI, purity,
dendrogram purity and leaf purity. ``--set key=value`` overrides preset fields;
``--scale-spread`` sets the scale rule's threshold for this run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from hctree import scale as scale_rule
from hctree.data import load_images
from hctree.evaluate import evaluate
from hctree.grow import grow
from hctree.progress import TextProgress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--leaves", type=int, default=10)
    parser.add_argument("--splitter", default="hcmgan")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--branching", type=int, default=2)
    parser.add_argument("--leaf-order", default=None, choices=["mass", "supported"])
    parser.add_argument("--polarity", default=None, choices=["auto", "off"])
    parser.add_argument("--levels", default=None, choices=["auto", "off"])
    parser.add_argument("--position", default=None, choices=["auto", "off"])
    parser.add_argument("--scale", default=None, choices=["auto", "off"])
    parser.add_argument("--orientation", default=None, choices=["auto", "off"])
    parser.add_argument("--colour", default=None, choices=["auto", "off"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--set", dest="settings", action="append", default=[])
    parser.add_argument("--out", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument(
        "--scale-spread",
        type=float,
        default=None,
        help="the scale rule's threshold on the spread of object sizes (hctree.scale.MIN_SPREAD)",
    )
    args = parser.parse_args()
    if args.scale_spread is not None:
        scale_rule.MIN_SPREAD = args.scale_spread
    data = load_images(args.data, subset=args.subset, seed=args.seed)
    overrides = dict(s.split("=", 1) for s in args.settings)
    out = Path(args.out or f"bench/out/{args.splitter}-{args.preset}-{len(data)}.h5")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not args.resume:
        out.unlink()
    start = time.perf_counter()
    tree = grow(
        data,
        out,
        args.leaves,
        splitter=args.splitter,
        preset=args.preset,
        overrides=overrides,
        device=args.device,
        seed=args.seed,
        branching=args.branching,
        leaf_order=args.leaf_order,
        polarity=args.polarity,
        levels=args.levels,
        position=args.position,
        scale=args.scale,
        orientation=args.orientation,
        colour=args.colour,
        threads=args.threads,
        progress=None if args.quiet else TextProgress(),
    )
    seconds = time.perf_counter() - start
    scores = evaluate(tree)
    keys = ("acc", "nmi", "ari", "purity", "dendrogram_purity", "leaf_purity")
    print(
        json.dumps(
            {
                "splitter": args.splitter,
                "preset": args.preset,
                "branching": args.branching,
                "leaf_order": args.leaf_order or "mass",
                "polarity": str(tree.attrs.get("polarity", "")),
                "levels": str(tree.attrs.get("levels", "")),
                "position": str(tree.attrs.get("position", "")),
                "scale": str(tree.attrs.get("scale", "")),
                "orientation": str(tree.attrs.get("orientation", "")),
                "colour": str(tree.attrs.get("colour", "")),
                "settings": overrides,
                "n": len(data),
                "leaves": len(tree.leaves),
                "seed": args.seed,
                "seconds": round(seconds, 1),
                "machine": platform.processor() or platform.machine(),
                **{k: round(float(scores[k]), 4) for k in keys if scores.get(k) is not None},
            }
        )
    )


if __name__ == "__main__":
    main()
