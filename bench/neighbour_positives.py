"""Screen: the root warm-up with a neighbour, not only a second view, as positive.

    .venv/bin/python bench/neighbour_positives.py --subset 10000 --seeds 0,1,2,3,4,5

The warm-up's NT-Xent pulls two views of one image together. Here, from iteration
``--start`` on, each view's positive may instead be the nearest *other* image in a
bank of every image's last projection (the bank is filled as images are drawn),
so that images which already look alike are pulled together: a trunk whose classes
are tighter should give the seeding graph fewer edges between classes. Arms:

- ``base``: the default's warm-up (its features cached by ``bench/split_screen.py``);
- ``nn``: after ``--start``, only the neighbour positive (each view's bank
  neighbour against the other view's batch, both ways);
- ``mix``: after ``--start``, the plain loss plus the neighbour term, halved.

Trunks cached and trees grown by ``split_screen.screen_warm_ups``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from split_screen import screen_parser, screen_warm_ups, unit_features, warm_up_start

from hctree import engine
from hctree.invariance import nt_xent
from hctree.splitters import hcmgan


def neighbour_loss(anchor: torch.Tensor, other: torch.Tensor, near: torch.Tensor, tau: float):
    """Cross-view loss whose positive for row i is ``near[i]`` (a bank neighbour of
    ``anchor[i]``, no gradient) against ``other``'s rows: ``CE(near @ other.T / tau)``."""
    logits = F.normalize(near, dim=1) @ F.normalize(other, dim=1).T / tau
    return F.cross_entropy(logits, torch.arange(len(other)))


def nearest_other(bank: torch.Tensor, filled: torch.Tensor, z: torch.Tensor, idx: torch.Tensor):
    """For each row of unit ``z`` (images ``idx``), the nearest filled bank row that is
    not its own image."""
    sim = F.normalize(z, dim=1) @ bank.T
    sim[:, ~filled] = -2.0
    sim[torch.arange(len(idx)), idx] = -2.0
    return bank[sim.argmax(dim=1)]


def train_trunk(images: np.ndarray, seed: int, arm: str, start: int) -> np.ndarray:
    """The `cpu` warm-up with ``arm``'s loss from iteration ``start``; unit features."""
    w = warm_up_start(images, seed)
    config, disc, opt, gen, x = w.config, w.disc, w.opt, w.gen, w.x
    bank = torch.zeros(len(x), config.proj_dim)
    filled = torch.zeros(len(x), dtype=torch.bool)
    b, tau = config.embed_batch, config.contrast_tau
    for i in range(1, config.embed_iters + 1):
        idx = torch.randint(len(x), (b,), generator=gen)
        clean = engine.to_unit(x.index_select(0, idx))
        views = hcmgan._two_views(clean, config, gen)
        proj = disc.project(disc.features(views)).float()
        za, zb = proj[:b], proj[b:]
        plain = nt_xent(za, zb, tau)
        if i <= start:
            loss = plain
        else:
            with torch.no_grad():
                near_a = nearest_other(bank, filled, za.detach(), idx)
                near_b = nearest_other(bank, filled, zb.detach(), idx)
            near = 0.5 * (neighbour_loss(za, zb, near_a, tau) + neighbour_loss(zb, za, near_b, tau))
            loss = near if arm == "nn" else 0.5 * (plain + near)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            bank[idx] = F.normalize(za.detach(), dim=1)
            filled[idx] = True
    return unit_features(disc, images)


def main() -> None:
    parser = screen_parser(__doc__.splitlines()[0])
    parser.add_argument("--arms", default="base,nn,mix")
    parser.add_argument("--start", type=int, default=500, help="iterations of plain warm-up first")
    args = parser.parse_args()

    screen_warm_ups(
        args,
        args.arms.split(","),
        lambda arm: f"{arm}-start{args.start}",
        lambda images, seed, arm: train_trunk(images, seed, arm, args.start),
    )


if __name__ == "__main__":
    main()
