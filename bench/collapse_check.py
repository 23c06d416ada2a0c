"""Why does an HC-MGAN stage count as collapsed? The collapse test, in both BN modes.

Runs one split of a Fashion-MNIST subset (raw, then the refinements) and prints,
for every training attempt of every stage, the fake-label BCE that D gives each
generator's images as the collapse test computes it, with the generators in
*eval* mode (BatchNorm's running statistics), and the same loss with the
generators in *train* mode (the batch statistics they were trained with). A generator whose eval-mode loss is
under ``collapse_loss`` while its train-mode loss is not was flagged by the
test's BN mode, not by its training.

    .venv/bin/python bench/collapse_check.py --preset fast --random 5000 \
        --set embed_iters=0 --set raw_iters=600 --set refine_iters=300 --set refinements=2

After each stage it prints the children's masses and the NMI of the split (each
image to its likelier child) with the classes. ``--threads`` sets torch's CPU threads.
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import torch
from bn_modes import fake_loss

from hctree import engine
from hctree.data import load_images
from hctree.metrics import nmi
from hctree.splitters import get_splitter, hcmgan, make_config
from hctree.splitters.base import MemoryCheckpointer, NullProgress, SplitContext

RECORDS: list[dict[str, list[float]]] = []


def _fake_losses(nets, config, gen, device, train: bool) -> list[float]:
    """Each generator's fake-label BCE, with its BN layers in the given mode."""
    out = []
    for j, g in enumerate(nets.generators):
        g = copy.deepcopy(g).train(train)
        z = torch.randn(config.batch_gen, config.latent_dim, generator=gen, device=device)
        out.append(fake_loss(nets.discriminators[int(nets.owner[j])], g, z))
    return out


def _recording(original):
    """Wrap hcmgan's collapse-test losses: also record the train-mode ones."""

    @torch.no_grad()
    def wrapped(nets, config, gen, device):
        side = torch.Generator(device=device).manual_seed(1234)
        RECORDS.append(
            {
                "eval": _fake_losses(nets, config, side, device, train=False),
                "train": _fake_losses(nets, config, side, device, train=True),
            }
        )
        return original(nets, config, gen, device)

    return wrapped


class Messages(NullProgress):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--random", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = engine.resolve_device(args.device)
    data = load_images("fashion-mnist")
    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.choice(len(data), args.random, replace=False))
    images = torch.from_numpy(np.ascontiguousarray(data.images[rows])).to(device)
    labels = np.asarray(data.labels)[rows]
    cls = get_splitter("hcmgan")
    config = make_config(cls, args.preset, dict(s.split("=", 1) for s in args.set))
    hcmgan._generator_losses = _recording(hcmgan._generator_losses)
    parent = torch.ones(len(rows), device=device)
    previous = None
    splitter = cls()
    for stage in splitter.stages(config):
        RECORDS.clear()
        progress = Messages()
        ctx = SplitContext(
            images=images,
            membership=parent,
            previous=previous,
            k=2,
            config=config,
            device=device,
            seed=engine.derive_seed(args.seed, "r", stage),
            checkpoint=MemoryCheckpointer(),
            progress=progress,
        )
        result = splitter.run_stage(stage, ctx)
        for attempt, rec in enumerate(RECORDS):
            ev = " ".join(f"{v:.2e}" for v in rec["eval"])
            tr = " ".join(f"{v:.2e}" for v in rec["train"])
            print(f"{stage:8s} attempt {attempt + 1}: fake BCE eval [{ev}]  train [{tr}]")
        members = np.asarray(result.memberships)
        masses = " ".join(f"{m:.0f}" for m in members.sum(1))
        score = nmi(labels, members.argmax(0))
        print(
            f"{stage:8s} masses {masses}  NMI {score:.3f}  collapsed={result.metrics.get('collapsed')}"
        )
        for line in progress.lines:
            print(f"         {line}")
        previous = torch.as_tensor(np.asarray(result.memberships), device=device)
        if result.stop:
            break


if __name__ == "__main__":
    main()
