"""What the random views cost against a whole contrastive warm-up step (CPU).

    .venv/bin/python bench/view_cost.py --threads 1

Times making two views of ``embed_batch`` real images (hcmgan's ``_two_views``)
and one full warm-up step (``_embed_step``: the views, the trunk forward and
backward, the Adam step) of the ``cpu`` preset's networks on random images.
"""

from __future__ import annotations

import argparse
import time

import torch

from hctree import engine
from hctree.splitters import hcmgan
from hctree.splitters.base import make_config


def per_call_ms(fn, iters: int) -> float:
    """Mean wall time of ``fn()`` over ``iters`` calls after three warm-up calls."""
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    config = make_config(hcmgan.HCMGANSplitter, "cpu")
    gen = engine.make_generator(0, cpu)
    images = torch.randint(0, 256, (2000, 1, 28, 28), dtype=torch.uint8, generator=gen)
    membership = torch.ones(len(images))
    batch = engine.to_unit(images[: config.embed_batch])
    disc = hcmgan._build_nets(config, 2, False, (1, 28, 28), 0, cpu).discriminators[0]
    opt = torch.optim.Adam(disc.parameters(), config.lr_d)

    views = per_call_ms(lambda: hcmgan._two_views(batch, config, gen), args.iters)
    step = per_call_ms(
        lambda: hcmgan._embed_step(disc, opt, images, membership, config, gen, cpu), args.iters
    )
    print(f"two views of {config.embed_batch} images: {views:.1f} ms; "
          f"a warm-up step: {step:.1f} ms ({views / step:.1%})")  # fmt: skip


if __name__ == "__main__":
    main()
