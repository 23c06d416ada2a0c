"""Where one HC-MGAN training step spends its time: a torch.profiler table.

    .venv/bin/python bench/profile_step.py --preset cpu --threads 1
    .venv/bin/python bench/profile_step.py --preset fast --device cuda

Builds the raw-split and refinement networks of a preset (k = 2) over 10,000 random
images resident on the device, warms up, profiles ``--iters`` steps of each and prints
the operators with the largest self time.
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from hctree import engine
from hctree.splitters import hcmgan
from hctree.splitters.base import make_config


def profile_stage(config, refine: bool, device: torch.device, args) -> str:
    """The profiler table of ``args.iters`` raw (or refinement) steps after a warm-up."""
    k = 2
    images = torch.randint(0, 256, (args.n, 1, 28, 28), dtype=torch.uint8, device=device)
    weights = [torch.rand(args.n, device=device)] * (k if refine else 1)
    nets = hcmgan._build_nets(config, k, refine, (1, 28, 28), 0, device)
    gen = engine.make_generator(0, device)

    def step() -> None:
        hcmgan._train_step(nets, images, weights, config, 0.1, gen, device)

    for _ in range(args.warmup):
        step()
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        for _ in range(args.iters):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=args.rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()

    device = engine.resolve_device(args.device)
    engine.configure_threads(args.threads)
    config = make_config(hcmgan.HCMGANSplitter, args.preset, {})
    for refine in (False, True):
        print(f"== {'refinement' if refine else 'raw split'} step, preset {args.preset}, {device}")
        print(profile_stage(config, refine, device, args))


if __name__ == "__main__":
    main()
