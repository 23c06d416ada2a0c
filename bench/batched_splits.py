"""Time W leaves' raw splits trained one after another against all W as one batched step.

    .venv/bin/python bench/batched_splits.py --threads 1 --preset cpu --leaves 2
    .venv/bin/python bench/batched_splits.py --device cuda --preset fast --leaves 2,4,8

The W leaves are disjoint random parts of a Fashion-MNIST subset (no warm-up, as
for every split below the root; the collapse test off, so nothing is retried).
Prints one JSON line per W: split-iterations per second both ways (W x iterations
over the wall time, after one untimed round that builds and warms everything) and
the largest membership difference between the two.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from hctree import engine
from hctree.data import load_images
from hctree.splitters import make_config
from hctree.splitters.base import MemoryCheckpointer, SplitContext
from hctree.splitters.hcmgan import HCMGANSplitter


def _contexts(images: torch.Tensor, leaves: int, config, device: torch.device):
    part = torch.randint(leaves, (len(images),), generator=torch.Generator().manual_seed(0))
    return [
        SplitContext(
            images=images,
            membership=(part == w).float().to(device),
            previous=None,
            k=2,
            config=config,
            device=device,
            seed=engine.derive_seed(0, f"r{w}", "raw"),
            checkpoint=MemoryCheckpointer(),
            node=f"r{w}",
        )
        for w in range(leaves)
    ]


def _timed(fn) -> tuple[float, list]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--leaves", default="2", help="comma-separated values of W")
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--subset", type=int, default=4000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], help="key=value preset override")
    args = parser.parse_args()
    device = engine.resolve_device(args.device)
    threads = engine.configure_threads(args.threads) if device.type == "cpu" else None
    overrides = {"raw_iters": args.iters, "embed_iters": 0, "collapse_loss": 0.0,
                 **dict(item.split("=", 1) for item in args.set)}  # fmt: skip
    config = make_config(HCMGANSplitter, args.preset, overrides)
    data = load_images("fashion-mnist", subset=args.subset, seed=0)
    images = torch.from_numpy(data.images).to(device)
    splitter = HCMGANSplitter()
    for leaves in [int(w) for w in args.leaves.split(",")]:

        def alone(w=leaves):
            return [splitter.run_stage("raw", c) for c in _contexts(images, w, config, device)]

        def together(w=leaves):
            return splitter.run_stages_together("raw", _contexts(images, w, config, device))

        alone(), together()  # build, compile and warm the caches
        seconds_alone, a = _timed(alone)
        seconds_together, b = _timed(together)
        gap = max(
            float(np.abs(x.memberships - y.memberships).max()) for x, y in zip(a, b, strict=True)
        )
        work = leaves * config.raw_iters
        print(json.dumps({
            "preset": args.preset, "leaves": leaves, "iters": config.raw_iters,
            "device": device.type, "threads": threads,
            "machine": platform.processor() or platform.machine(),
            "alone_it_s": round(work / seconds_alone, 2),
            "together_it_s": round(work / seconds_together, 2),
            "speedup": round(seconds_alone / seconds_together, 3),
            "max_membership_gap": round(gap, 5),
        }))  # fmt: skip


if __name__ == "__main__":
    main()
