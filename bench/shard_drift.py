"""How far the sharded warm-up moves from the whole batch's: one step, then many.

    .venv/bin/python bench/shard_drift.py --steps 300

On the ``cpu`` preset's trunk and Fashion-MNIST images, one thread: the relative
gap between the sharded (``embed_shards=2``) and the whole batch's gradients of
one warm-up step, per parameter; then ``--steps`` warm-up steps of each from the
same start and random stream, printing their mean losses over windows of ten
steps and how far apart the trunks' weights end (relative).
"""

from __future__ import annotations

import argparse
import json

import torch

from hctree import engine
from hctree.data import load_images
from hctree.shards import ShardPool, one_thread
from hctree.splitters import hcmgan
from hctree.splitters.base import make_config

CPU = torch.device("cpu")


def warm_up(images: torch.Tensor, shards: int, steps: int) -> tuple[list[float], list]:
    """Losses of ``steps`` warm-up steps and the trunk's parameters after them."""
    config = make_config(hcmgan.HCMGANSplitter, "cpu", {"embed_shards": str(shards)})
    nets = hcmgan._build_nets(config, 2, False, tuple(images.shape[1:]), 0, CPU)
    hcmgan._set_beta1(nets.opt_d[0], config.embed_beta1)
    disc, opt = nets.discriminators[0], nets.opt_d[0]
    gen = engine.make_generator(1, CPU)
    membership = torch.ones(len(images))
    losses = []
    with one_thread(), ShardPool(1) as pool:
        for _ in range(steps):
            out = hcmgan._embed_step(disc, opt, images, membership, config, gen, CPU,
                                     pool if shards else None)  # fmt: skip
            losses.append(float(out["embed"]))
    return losses, list(disc.trunk.parameters())


def first_step_gaps(images: torch.Tensor) -> dict[str, float]:
    """Per trunk parameter, |sharded - whole| / |whole| of the first step's gradient."""
    grads = {}
    for shards in (0, 2):
        config = make_config(hcmgan.HCMGANSplitter, "cpu", {"embed_shards": str(shards)})
        nets = hcmgan._build_nets(config, 2, False, tuple(images.shape[1:]), 0, CPU)
        disc, opt = nets.discriminators[0], nets.opt_d[0]
        opt.step = lambda: None  # keep the gradients, move nothing
        with one_thread(), ShardPool(1) as pool:
            hcmgan._embed_step(disc, opt, images, torch.ones(len(images)), config,
                               engine.make_generator(1, CPU), CPU, pool if shards else None)  # fmt: skip
        grads[shards] = {n: p.grad.clone() for n, p in disc.trunk.named_parameters()}
    return {n: float((grads[2][n] - g).norm() / g.norm()) for n, g in grads[0].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--subset", type=int, default=10000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = torch.from_numpy(load_images("fashion-mnist", subset=args.subset, seed=0).images)
    gaps = first_step_gaps(images)
    print(json.dumps({"first_step_largest_relative_gap": max(gaps.values())}), flush=True)
    whole, w_whole = warm_up(images, 0, args.steps)
    sharded, w_sharded = warm_up(images, 2, args.steps)
    for start in range(0, args.steps, max(10, args.steps // 4)):
        window = slice(start, start + 10)
        print(json.dumps({"steps": f"{start + 1}-{start + 10}",
                          "whole": round(sum(whole[window]) / 10, 4),
                          "sharded": round(sum(sharded[window]) / 10, 4)}))  # fmt: skip
    flat = lambda ps: torch.cat([p.detach().flatten() for p in ps])  # noqa: E731
    drift = float((flat(w_whole) - flat(w_sharded)).norm() / flat(w_whole).norm())
    print(json.dumps({"trunk_weights_relative_gap": round(drift, 4)}))


if __name__ == "__main__":
    main()
