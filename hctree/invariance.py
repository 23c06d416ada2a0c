"""Random views of real images, and the losses that make a network agree across them.

A view keeps what an image shows and changes what should not matter for it:
framing (crop, flip), brightness and contrast, and for colour images saturation,
an optional colour cast and sometimes all colour. ``nt_xent`` asks features of two
views of one image to be closer than those of other images; ``view_agreement``
asks a classifier to give two views of one image the same confident class.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

ASPECT = (3 / 4, 4 / 3)  # range of a crop's aspect ratio (width over height)


def augment(
    x: torch.Tensor,
    crop_scale_min: float,
    gen: torch.Generator,
    tint: float = 0.0,
    invert: float = 0.0,
    flip: float = 0.5,
    shift: float = 0.0,
    rotate: float = 0.0,
    gain: float = 0.4,
) -> torch.Tensor:
    """A random view of real images float ``[B,C,H,W]`` in [-1, 1] (same shape).

    Random resized crop (area in ``[crop_scale_min, 1]``, aspect ratio in ``ASPECT``),
    a left-right mirror with probability ``flip``, and with probability 0.8 a
    brightness gain drawn from ``[1 - gain, 1 + gain]`` and contrast (and, for
    colour, saturation) jitter of 0.4; colour views turn grey with probability
    0.2. With ``tint`` > 0, colour views are also multiplied channel by channel by gains drawn
    from ``[1 - tint, 1 + tint]`` and, half of the time, get their channels in a
    random order, so a colour cast is something a view may change. With ``invert``
    > 0, a view's grey levels are inverted with that probability (drawn after
    everything else, so ``invert=0`` leaves the views of earlier versions as they were).
    With ``shift`` > 0, the crop also moves by up to that fraction of the image's
    side each way, past the edge (whose pixels extend the image), so an object's
    position is something a view may change. With ``rotate`` > 0, the crop also turns
    about its middle by an angle drawn from ``[-rotate, rotate]`` degrees, so a tilt
    is something a view may change.
    """
    b, c = x.shape[:2]
    u = torch.rand(b, 10, generator=gen, device=x.device)
    area = crop_scale_min + (1 - crop_scale_min) * u[:, 0]
    low, high = math.log(ASPECT[0]), math.log(ASPECT[1])
    log_ratio = low + (high - low) * u[:, 1]
    sx = (area * log_ratio.exp()).sqrt().clamp(max=1)
    sy = (area / log_ratio.exp()).sqrt().clamp(max=1)
    cx = (1 - sx) * (2 * u[:, 2] - 1)
    cy = (1 - sy) * (2 * u[:, 3] - 1)
    if shift > 0:  # drawn only then, so shift=0 keeps earlier versions' views
        move = 2 * shift * (2 * torch.rand(b, 2, generator=gen, device=x.device) - 1)
        cx, cy = cx + move[:, 0], cy + move[:, 1]
    mirror = torch.where(u[:, 4] < flip, -1.0, 1.0)
    cos, sin = torch.ones_like(sx), torch.zeros_like(sx)
    if rotate > 0:  # drawn only then, so rotate=0 keeps earlier versions' views
        turn = torch.rand(b, generator=gen, device=x.device)
        angle = math.radians(rotate) * (2 * turn - 1)
        cos, sin = angle.cos(), angle.sin()
    theta = torch.stack(
        [
            torch.stack([sx * mirror * cos, -sy * sin, cx], 1),
            torch.stack([sx * mirror * sin, sy * cos, cy], 1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    view = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    img = (view + 1) / 2
    jitter = (u[:, 5] < 0.8).float()[:, None, None, None]
    bright = 1 + gain * (2 * u[:, 6] - 1)[:, None, None, None] * jitter
    contrast = 1 + 0.4 * (2 * u[:, 7] - 1)[:, None, None, None] * jitter
    img = img * bright
    grey = img.mean(dim=1, keepdim=True)
    img = (img - grey.mean(dim=(2, 3), keepdim=True)) * contrast + grey.mean(
        dim=(2, 3), keepdim=True
    )
    if c == 3:
        img = _recolour_step(img, u[:, 8], jitter, u[:, 9], tint, gen)
    img = img.clamp(0, 1)
    if invert > 0:
        flip = (torch.rand(b, generator=gen, device=x.device) < invert)[:, None, None, None]
        img = torch.where(flip, 1 - img, img)
    return img * 2 - 1


# The view settings a splitter's config may carry, by the augment argument each sets.
VIEW_SETTINGS = {
    "tint": "tint",
    "invert": "invert",
    "flip": "flip",
    "view_shift": "shift",
    "view_rotate": "rotate",
    "view_gain": "gain",
}
CROP_SCALE_MIN = 0.4  # the crop of a config that names none


def configured_view(x: torch.Tensor, config: object, gen: torch.Generator) -> torch.Tensor:
    """:func:`augment` with the view settings a splitter's ``config`` carries
    (``crop_scale_min`` and :data:`VIEW_SETTINGS`); a setting it lacks takes
    augment's own default (a crop of ``CROP_SCALE_MIN``)."""
    given = {
        arg: float(getattr(config, field))
        for field, arg in VIEW_SETTINGS.items()
        if hasattr(config, field)
    }
    return augment(x, float(getattr(config, "crop_scale_min", CROP_SCALE_MIN)), gen, **given)


def view_mean(
    embed: Callable[[torch.Tensor], torch.Tensor],
    view: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    views: int,
) -> torch.Tensor:
    """``embed`` of ``views`` random ``view``s of ``x`` (float ``[B,C,H,W]`` in [-1, 1]),
    averaged: what the views vary is averaged out of the features, float ``[B, F]``.
    """
    total = sum(embed(view(x)).float() for _ in range(views))
    return total / views


def colour_view(x: torch.Tensor, tint: float, gen: torch.Generator) -> torch.Tensor:
    """A random recolouring of colour images float ``[B,3,H,W]`` in [-1, 1]: the colour
    part of :func:`augment` alone (saturation jitter of 0.4, a cast of strength ``tint``
    with channel reordering, grey with probability 0.2), no framing or brightness change.
    """
    u = torch.rand(x.shape[0], 2, generator=gen, device=x.device)
    img = _recolour_step((x + 1) / 2, u[:, 0], 1.0, u[:, 1], tint, gen)
    return img.clamp(0, 1) * 2 - 1


def _recolour_step(
    img: torch.Tensor,
    u_sat: torch.Tensor,
    jitter: torch.Tensor | float,
    u_grey: torch.Tensor,
    tint: float,
    gen: torch.Generator,
) -> torch.Tensor:
    """The colour part of a view, on colour images ``[B,3,H,W]`` in [0, 1]: saturation
    scaled by ``1 + 0.4 (2 u_sat - 1) jitter``, a cast of strength ``tint``, and grey
    where ``u_grey < 0.2`` (``u_*`` uniform ``[B]``)."""
    sat = 1 + 0.4 * (2 * u_sat - 1)[:, None, None, None] * jitter
    grey = img.mean(dim=1, keepdim=True)
    img = (img - grey) * sat + grey
    if tint > 0:
        img = _cast(img, tint, gen)
    to_grey = (u_grey < 0.2).float()[:, None, None, None]
    return img * (1 - to_grey) + img.mean(dim=1, keepdim=True) * to_grey


def _cast(img: torch.Tensor, tint: float, gen: torch.Generator) -> torch.Tensor:
    """Colour images ``[B,3,H,W]`` in [0, 1] with per-image channel gains in
    ``[1 - tint, 1 + tint]`` and, half of the time, their channels in a random order."""
    b = img.shape[0]
    gains = 1 + tint * (2 * torch.rand(b, 3, generator=gen, device=img.device) - 1)
    img = img * gains[:, :, None, None]
    order = torch.rand(b, 3, generator=gen, device=img.device).argsort(dim=1)
    keep = torch.rand(b, generator=gen, device=img.device) < 0.5
    order = torch.where(keep[:, None], torch.arange(3, device=img.device), order)
    return img.gather(1, order[:, :, None, None].expand_as(img))


def recolour(x: torch.Tensor, tint: float, gen: torch.Generator) -> torch.Tensor:
    """A random colour cast of images float ``[B,C,H,W]`` in [-1, 1]; grey images pass.

    For a splitter that learns clusters from generated images: seen through a random
    cast, a generator cannot tell its cluster code by colour alone.
    """
    if x.shape[1] != 3 or tint <= 0:
        return x
    return (_cast((x + 1) / 2, tint, gen).clamp(0, 1) * 2 - 1).to(x.dtype)


def nt_xent(h1: torch.Tensor, h2: torch.Tensor, tau: float) -> torch.Tensor:
    """Contrastive loss of two views ``[B, d]``: each row's positive is its other view."""
    feats = F.normalize(torch.cat([h1, h2]).float(), dim=1)
    sim = feats @ feats.T / tau
    n = h1.shape[0]
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=sim.device), float("-inf"))
    target = torch.arange(2 * n, device=sim.device).roll(n)
    return F.cross_entropy(sim, target)


def view_agreement(logits1: torch.Tensor, logits2: torch.Tensor) -> torch.Tensor:
    """How much two views' class distributions disagree: ``-mean log <p1, p2>``.

    Logits float ``[B, k]``. Zero only when both views put all their probability on
    the same class, so it rewards classes that are both confident and invariant.
    """
    p1 = logits1.float().softmax(dim=1)
    p2 = logits2.float().softmax(dim=1)
    return -(p1 * p2).sum(dim=1).clamp_min(1e-8).log().mean()


def imbalance(logits: torch.Tensor) -> torch.Tensor:
    """``log k - H(mean p)``, float: zero when the batch uses the k classes evenly."""
    p_bar = logits.float().softmax(dim=1).mean(dim=0)
    return math.log(p_bar.numel()) + (p_bar * p_bar.clamp_min(1e-12).log()).sum()
