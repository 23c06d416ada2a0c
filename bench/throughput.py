"""Training throughput of an HC-MGAN split, against a straightforward baseline.

    .venv/bin/python bench/throughput.py                          # cpu and tiny presets, CPU
    .venv/bin/python bench/throughput.py --presets cpu,fast --widths 32,64,128 --threads 2
    .venv/bin/python bench/throughput.py --device cuda --presets fast,paper
    .venv/bin/python bench/throughput.py --device cuda --presets fast --compile off,inductor,cudagraphs

For each preset (and each ``--widths`` value, which overrides width_g and width_d)
it times raw-split iterations and refinement iterations: ``--warmup`` iterations
first, then ``--repeats`` runs of ``--iters`` iterations, reporting the median
iterations per second and real images per second. On CUDA it also counts the
floating-point operations of one step and reports the achieved FLOP/s as a
fraction of ``--peak-tflops`` (bf16 dense; 989 for an H100 SXM). Presets with a
contrastive warm-up (``cpu``, ``fast``) also time its step (stage ``embed``).
``--compile`` repeats every measurement under each listed ``compile`` setting
(compilation happens during the warm-up iterations, so raise ``--warmup`` to keep
it out of the timed runs).

The baseline is the same step fed the way a straightforward implementation feeds
it: a DataLoader with a WeightedRandomSampler over a CPU dataset, a new iterator
for every batch, a host-to-device copy per batch, fp32 and no channels_last. Both
run in the same process, one after the other, so the ratio is measured, not
assumed. Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import time
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from hctree import engine
from hctree.data import load_images
from hctree.splitters import hcmgan, make_config
from hctree.splitters.hcmgan import HCMGANSplitter


@contextlib.contextmanager
def dataloader_batches(images_u8: torch.Tensor, weights: torch.Tensor) -> Iterator[None]:
    """Make the step draw its real batches through a DataLoader, one iterator per batch."""
    dataset = TensorDataset(images_u8.cpu())
    original = engine.sample_batch

    def sample_batch(images, batch_weights, batch, gen):
        sampler = WeightedRandomSampler(batch_weights.cpu().double(), batch, replacement=True)
        loader = DataLoader(dataset, batch_size=batch, sampler=sampler)
        (x,) = next(iter(loader))
        return engine.to_unit(x.to(images.device))

    engine.sample_batch = sample_batch
    try:
        yield
    finally:
        engine.sample_batch = original


def time_steps(
    config,
    stage: str,
    images: torch.Tensor,
    device: torch.device,
    args,
    fp32: bool = False,
    compile_setting: str = "off",
) -> tuple[float, float | None]:
    """Median iterations/s over the repeats, and FLOPs of one step (CUDA only)."""
    k, refine = 2, stage == "refine"
    nets = hcmgan._build_nets(config, k, refine, tuple(images.shape[1:]), 0, device)
    hcmgan._compile_nets(nets, compile_setting)
    weights = [torch.ones(images.shape[0], device=device)] * (k if refine else 1)
    gen = engine.make_generator(0, device)
    autocast = hcmgan._autocast
    if fp32:
        hcmgan._autocast = lambda d: contextlib.nullcontext()

    def step() -> None:
        if stage == "embed":
            disc, opt = nets.discriminators[0], nets.opt_d[0]
            hcmgan._embed_step(disc, opt, images, weights[0], config, gen, device)
        else:
            hcmgan._train_step(nets, images, weights, config, 0.1, gen, device)

    try:
        for _ in range(args.warmup):
            step()
        rates = []
        for _ in range(args.repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.iters):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates.append(args.iters / (time.perf_counter() - start))
        flops = None
        if device.type == "cuda":
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter:
                step()
            flops = float(counter.get_total_flops())
    finally:
        hcmgan._autocast = autocast
    return statistics.median(rates), flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="tiny,cpu")
    parser.add_argument(
        "--widths", default="", help="comma-separated widths overriding the preset's"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--n", type=int, default=10000, help="images resident on the device")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--compile", default="off", help="compile settings to time, e.g. off,inductor"
    )
    args = parser.parse_args()
    device = engine.resolve_device(args.device)
    threads = engine.configure_threads(args.threads) if device.type == "cpu" else None
    data = load_images("fashion-mnist", subset=args.n, seed=0)
    images = torch.from_numpy(data.images).to(device)
    widths = [int(w) for w in args.widths.split(",") if w] or [None]
    for preset in args.presets.split(","):
        for width in widths:
            overrides = {"width_g": width, "width_d": width} if width else {}
            config = make_config(HCMGANSplitter, preset, overrides)
            stages = ["embed"] if config.embed_iters and config.lambda_contrast else []
            for stage, setting in itertools.product(
                [*stages, "raw", "refine"], args.compile.split(",")
            ):
                rate, flops = time_steps(
                    config, stage, images, device, args, compile_setting=setting
                )
                batch = config.embed_batch if stage == "embed" else config.batch_real
                row = {
                    "preset": preset,
                    "width": config.width_d,
                    "stage": stage,
                    "compile": setting,
                    "device": device.type,
                    "threads": threads,
                    "it_per_s": round(rate, 2),
                    "real_images_per_s": round(rate * batch * (2 if stage == "refine" else 1)),
                }
                if flops:
                    row["tflops"] = round(rate * flops / 1e12, 2)
                    row["fraction_of_peak"] = round(rate * flops / 1e12 / args.peak_tflops, 4)
                if not args.no_baseline and setting == "off":
                    with dataloader_batches(images, torch.ones(len(data))):
                        base, _ = time_steps(config, stage, images, device, args, fp32=True)
                    row["baseline_it_per_s"] = round(base, 2)
                    row["speedup"] = round(rate / base, 2)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
