"""Screen: the root warm-up with small local crops matched to the whole image's views.

    .venv/bin/python bench/local_views.py --subset 10000 --seeds 0,1,2,3,4,5

What tells a coat from a pullover or a shirt (an opening down the middle, a
collar, buttons) is a small part of the image, and the warm-up's two views each
keep at least 40% of it. Here each image also gets ``--locals`` views cropped to
``--local-area`` of its area (resized to the full frame, with the views' usual
jitter), and NT-Xent pulls each towards one of the two large views (the first
local view to the first large view, the second to the second, and so on), so the
trunk must recognise an image from a part of it (the multi-crop of SwAV and
DINO). The loss is the mean of the plain term and the local terms. Arms:

- ``base``: the default's warm-up (its features cached by ``bench/split_screen.py``);
- ``local``: the warm-up with the local views.

Trunks cached and trees grown by ``split_screen.screen_warm_ups``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from split_screen import screen_parser, screen_warm_ups, unit_features, warm_up_start

from hctree import engine
from hctree.invariance import configured_view, nt_xent


def local_crop(x: torch.Tensor, area: tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    """A random crop of images ``[B,C,H,W]`` covering ``area`` of each (aspect 3/4-4/3),
    resized to the full frame."""
    b = x.shape[0]
    u = torch.rand(b, 4, generator=gen)
    share = area[0] + (area[1] - area[0]) * u[:, 0]
    ratio = (math.log(3 / 4) + math.log(16 / 9) * u[:, 1]).exp()
    sx, sy = (share * ratio).sqrt().clamp(max=1), (share / ratio).sqrt().clamp(max=1)
    cx, cy = (1 - sx) * (2 * u[:, 2] - 1), (1 - sy) * (2 * u[:, 3] - 1)
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, cx], 1), torch.stack([zero, sy, cy], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def train_trunk(
    images: np.ndarray, seed: int, locals_: int, area: tuple[float, float]
) -> np.ndarray:
    """The `cpu` warm-up with ``locals_`` local views per image; unit features."""
    w = warm_up_start(images, seed)
    config, disc, opt, gen, x = w.config, w.disc, w.opt, w.gen, w.x
    b, tau = config.embed_batch, config.contrast_tau
    weights = torch.ones(len(x))
    for _ in range(config.embed_iters):
        clean = engine.sample_batch(x, weights, b, gen)
        large = [configured_view(clean, config, gen) for _ in "ab"]
        small = [configured_view(local_crop(clean, area, gen), config, gen) for _ in range(locals_)]
        proj = disc.project(disc.features(torch.cat(large + small))).float()
        parts = proj.split(b)
        loss = nt_xent(parts[0], parts[1], tau)
        for i, part in enumerate(parts[2:]):
            loss = loss + nt_xent(part, parts[i % 2], tau)
        loss = loss / (1 + locals_)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return unit_features(disc, images)


def main() -> None:
    parser = screen_parser(__doc__.splitlines()[0])
    parser.add_argument("--arms", default="base,local")
    parser.add_argument("--locals", dest="locals_", type=int, default=2)
    parser.add_argument("--local-area", default="0.1,0.35", help="smallest,largest share")
    args = parser.parse_args()
    lo, hi = (float(v) for v in args.local_area.split(","))

    screen_warm_ups(
        args,
        args.arms.split(","),
        lambda arm: f"local{args.locals_}-{lo:g}-{hi:g}",
        lambda images, seed, arm: train_trunk(images, seed, args.locals_, (lo, hi)),
    )


if __name__ == "__main__":
    main()
