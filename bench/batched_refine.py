"""Speed of one HC-MGAN refinement step: sequential groups, batched groups, torch.compile.

    .venv/bin/python bench/batched_refine.py --threads 1                 # tiny preset, k=2
    .venv/bin/python bench/batched_refine.py --device cuda --preset paper --k 4

Variants, each on its own copy of the same freshly built refinement networks
(``_build_nets`` with the preset's config, the splitter's builder):

- ``sequential``: the splitter's own step, ``hcmgan._train_step``;
- ``batched``: the k groups' parameters stacked and run under ``torch.func.vmap``
  (``hctree.splitters.hcmgan_batched``; tests/test_batched_refine.py checks that it
  computes the same losses, gradients and updates);
- ``compiled``: ``torch.compile(hcmgan._train_step)`` (default mode);
- ``compiled_nets``: the sequential step with only the networks compiled
  (``Module.compile()`` on each generator and each discriminator trunk), leaving the
  random draws and the optimisers eager.

For the compiled variants the wall time of the warm-up iterations, which include
compiling, is reported separately.

After ``--warmup`` iterations per variant, ``--repeats`` rounds time ``--iters``
iterations of each variant in turn (A, B, C, A, B, C, ...); instance noise decays over
the run as in training. Prints one line per variant: median, min and max iterations
per second over the rounds and the median's ratio to ``sequential``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from hctree import engine
from hctree.splitters import hcmgan, make_config
from hctree.splitters.hcmgan import Config, HCMGANSplitter
from hctree.splitters.hcmgan_batched import batched_train_step, stack_groups

VARIANTS = ("sequential", "batched", "compiled", "compiled_nets")
Step = Callable[[float], None]


@dataclass
class Timing:
    """One variant's step and what was measured of it."""

    step: Step
    rates: list[float] = field(default_factory=list)
    warmup_s: float = 0.0
    error: str = ""


def _setup(config: Config, args, device: torch.device):
    """Fresh refinement networks, a seeded RNG, resident images and per-group weights."""
    nets = hcmgan._build_nets(config, args.k, True, (1, 28, 28), seed=0, device=device)
    gen = engine.make_generator(1, device)
    images = torch.randint(
        0, 256, (args.n, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(2)
    ).to(device)
    weights = [torch.ones(args.n, device=device)] * args.k
    return nets, gen, images, weights


def make_step(variant: str, config: Config, args, device: torch.device) -> Step:
    """fn(sigma) running one iteration of ``variant`` on its own networks."""
    nets, gen, images, weights = _setup(config, args, device)
    if variant == "batched":
        groups = stack_groups(nets, config, device)
        return lambda sigma: batched_train_step(groups, images, weights, config, sigma, gen, device)
    if variant == "compiled_nets":
        for module in [*nets.generators, *(d.trunk for d in nets.discriminators)]:
            module.compile()
    train = torch.compile(hcmgan._train_step) if variant == "compiled" else hcmgan._train_step
    return lambda sigma: train(nets, images, weights, config, sigma, gen, device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _run(step: Step, first: int, count: int, total: int, noise: float, device) -> float:
    """Seconds for ``count`` iterations starting at iteration ``first`` of ``total``."""
    _sync(device)
    start = time.perf_counter()
    for i in range(first, first + count):
        step(noise * (1.0 - (i + 1) / total))
    _sync(device)
    return time.perf_counter() - start


def measure(timings: dict[str, Timing], config: Config, args, device: torch.device) -> None:
    """Warm every variant up, then time them in interleaved rounds."""
    total = args.warmup + args.repeats * args.iters
    for name, timing in timings.items():
        try:
            timing.warmup_s = _run(timing.step, 0, args.warmup, total, config.noise, device)
        except Exception as exc:  # inductor may be unusable on a machine (no compiler, ...)
            timing.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
            print(f"{name}: failed during warm-up: {timing.error}", flush=True)
    live = {name: t for name, t in timings.items() if not t.error}
    for r in range(args.repeats):
        first = args.warmup + r * args.iters
        for timing in live.values():
            seconds = _run(timing.step, first, args.iters, total, config.noise, device)
            timing.rates.append(args.iters / seconds)


def report(timings: dict[str, Timing], args) -> None:
    """One line per variant: median, min, max it/s and the median's ratio to sequential."""
    base = timings.get("sequential")
    base_rate = statistics.median(base.rates) if base and base.rates else None
    for name, timing in timings.items():
        if timing.error:
            print(f"{name:<13} failed: {timing.error}")
            continue
        median = statistics.median(timing.rates)
        ratio = f"{median / base_rate:.2f}x" if base_rate else "n/a"
        line = (
            f"{name:<13} it/s median {median:7.2f}  min {min(timing.rates):7.2f}"
            f"  max {max(timing.rates):7.2f}  vs sequential {ratio}"
        )
        if name.startswith("compiled"):
            line += f"  (warm-up incl. compile: {timing.warmup_s:.1f} s for {args.warmup} it)"
        print(line, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--k", type=int, default=2, help="groups (children) per refinement")
    parser.add_argument("--n", type=int, default=10000, help="resident images (random)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", default="sequential,batched,compiled")
    parser.add_argument("--set", action="append", default=[], help="config key=value")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = engine.resolve_device(args.device)
    threads = engine.configure_threads(args.threads) if device.type == "cpu" else None
    if threads is not None:  # inductor's compile workers stay within the same budget
        os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", str(threads))
    overrides = dict(item.split("=", 1) for item in args.set)
    config = make_config(HCMGANSplitter, args.preset, overrides)
    if config.uses_views:
        raise SystemExit(
            "the batched step has no view losses; use tiny or paper (or --set them off)"
        )
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; use {', '.join(VARIANTS)}")
    print(
        f"preset {args.preset} k={args.k} device {device.type} threads {threads}"
        f" torch {torch.__version__}; {args.warmup} warm-up, {args.repeats} x {args.iters} it",
        flush=True,
    )
    timings = {v: Timing(make_step(v, config, args, device)) for v in variants}
    measure(timings, config, args, device)
    report(timings, args)


if __name__ == "__main__":
    main()
