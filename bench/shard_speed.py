"""How fast the root's contrastive warm-up steps on one core and on two (CPU).

    .venv/bin/python bench/shard_speed.py --iters 100

Times ``_embed_step`` of the ``cpu`` preset's networks on Fashion-MNIST images:
the whole batch at PyTorch's 1 and 2 threads (``embed_shards=0``), and the batch
in one-thread shards (hctree.shards) run in turn or side by side on two Python
threads. Prints ms per step and whether the shards' weights are the same bits
in turn and side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import json

import torch
from view_cost import per_call_ms  # bench/, beside this script

from hctree import engine
from hctree.data import load_images
from hctree.shards import ShardPool, one_thread
from hctree.splitters import hcmgan
from hctree.splitters.base import make_config

CPU = torch.device("cpu")


def run(images: torch.Tensor, shards: int, threads: int, width: int, iters: int) -> tuple:
    """ms per warm-up step and the trunk's weights after them."""
    config = make_config(hcmgan.HCMGANSplitter, "cpu", {"embed_shards": str(shards)})
    torch.set_num_threads(threads)
    nets = hcmgan._build_nets(config, 2, False, tuple(images.shape[1:]), 0, CPU)
    disc, opt = nets.discriminators[0], nets.opt_d[0]
    gen = engine.make_generator(1, CPU)
    membership = torch.ones(len(images))

    def step(pool):
        hcmgan._embed_step(disc, opt, images, membership, config, gen, CPU, pool)

    threads_inside = one_thread() if shards else contextlib.nullcontext()
    with threads_inside, ShardPool(width) as pool:
        ms = per_call_ms(lambda: step(pool if shards else None), iters)
    return ms, torch.cat([p.detach().flatten() for p in disc.parameters()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--subset", type=int, default=10000)
    args = parser.parse_args()
    data = load_images("fashion-mnist", subset=args.subset, seed=0)
    images = torch.from_numpy(data.images)
    rows = [("whole batch", 0, 1, 1), ("whole batch", 0, 2, 1),
            ("2 shards in turn", 2, 1, 1), ("2 shards side by side", 2, 1, 2),
            ("4 shards in turn", 4, 1, 1), ("4 shards side by side", 4, 1, 2),
            ("8 shards in turn", 8, 1, 1), ("8 shards side by side", 8, 1, 2)]  # fmt: skip
    weights = {}
    for name, shards, threads, width in rows:
        ms, w = run(images, shards, threads, width, args.iters)
        weights[(shards, width)] = w
        same = None
        if width == 2:
            same = bool(torch.equal(w, weights[(shards, 1)]))
        print(json.dumps({"run": name, "torch_threads": threads, "ms_per_step": round(ms, 1),
                          "same_bits_as_in_turn": same}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
