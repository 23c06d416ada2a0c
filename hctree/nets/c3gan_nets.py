"""C3-GAN networks: a background/foreground generator and a two-branch discriminator.

The shapes follow the C3-GAN paper (Tables 4 and 5) scaled by width settings so the
same code serves 28/32 px grey images and 64/128 px colour images:

- ``C3Generator``: ``z`` -> background ``x_bg``; ``(z, c)`` -> mask ``m`` and object ``t``;
  the object layer may be moved by a per-image affine matrix before the composite
  ``x = x_bg * (1 - m') + t' * m'``.
- ``C3Discriminator``: a shared encoder, an adversarial head ``r`` (one logit) and a
  semantic head ``h`` (``h_dim`` features), plus the cluster centroids
  ``l = psi_c(I_Y)`` (a linear map of the one-hot codes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SIZES = (28, 32, 64, 128)
"""Image sizes (square, in pixels) the networks are built for."""

_PLANS = {28: (7, 2), 32: (4, 3), 64: (4, 4), 128: (4, 5)}
"""size -> (lowest feature-map size, number of 2x resampling steps)."""

_MIN_CHANNELS = 8


def plan(size: int) -> tuple[int, int]:
    """(lowest feature-map size, number of up/down-sampling steps) for a square ``size``."""
    return _PLANS[size]


class GLU(nn.Module):
    """Gated linear unit over channels: ``[B, 2C, ...] -> [B, C, ...]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * torch.sigmoid(b)


def _conv_glu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, 2 * c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(2 * c_out), GLU()]


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *_conv_glu(c_in, c_out))


class _Res(nn.Module):
    """Residual block ``x + BN(conv(GLU(BN(conv(x)))))``, channels kept."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_glu(ch, ch), nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _project(in_dim: int, ch: int, side: int) -> nn.Sequential:
    """``[B, in_dim] -> [B, ch, side, side]`` through Linear, BN and GLU."""
    out = ch * side * side
    return nn.Sequential(
        nn.Linear(in_dim, 2 * out, bias=False),
        nn.BatchNorm1d(2 * out),
        GLU(),
        nn.Unflatten(1, (ch, side, side)),
    )


def _widths(width: int, steps: int) -> list[int]:
    """Channels after each upsampling step: halve each time, never below 8."""
    return [max(width >> (i + 1), _MIN_CHANNELS) for i in range(steps)]


class _Background(nn.Module):
    def __init__(self, channels: int, size: int, z_dim: int, width: int, res_blocks: int) -> None:
        super().__init__()
        side, steps = plan(size)
        widths = _widths(width, steps)
        ups = [_up(c_in, c_out) for c_in, c_out in zip([width, *widths[:-1]], widths, strict=True)]
        self.net = nn.Sequential(
            _project(z_dim, width, side),
            *ups,
            *[_Res(widths[-1]) for _ in range(res_blocks)],
            nn.Conv2d(widths[-1], channels, 3, 1, 1, bias=False),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class _Foreground(nn.Module):
    def __init__(
        self,
        channels: int,
        size: int,
        n_clusters: int,
        z_dim: int,
        cz_dim: int,
        width: int,
        res_blocks: int,
    ) -> None:
        super().__init__()
        side, steps = plan(size)
        widths = _widths(width, steps)
        last = widths[-1]
        self.side = side
        self.cz_dim = cz_dim
        self.code = nn.Sequential(
            nn.Linear(n_clusters, 4 * cz_dim), nn.BatchNorm1d(4 * cz_dim), GLU()
        )
        self.project = _project(z_dim, width, side)
        ups = [
            _up(c_in, c_out)
            for c_in, c_out in zip([width + cz_dim, *widths[:-1]], widths, strict=True)
        ]
        self.base = nn.Sequential(*ups, *[_Res(last) for _ in range(res_blocks)])
        self.to_mask = nn.Sequential(
            *_conv_glu(last, last), nn.Conv2d(last, 1, 3, 1, 1, bias=False)
        )
        self.to_object = nn.Sequential(
            *_conv_glu(last + n_clusters, last),
            *[_Res(last) for _ in range(max(res_blocks - 1, 0))],
            *_conv_glu(last, last),
            nn.Conv2d(last, channels, 3, 1, 1, bias=False),
            nn.Tanh(),
        )

    def forward(
        self, z: torch.Tensor, eps: torch.Tensor, onehot: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_std = self.code(onehot).chunk(2, dim=1)
        c_prime = mu + log_std.exp() * eps
        grid_code = c_prime[:, :, None, None].expand(-1, -1, self.side, self.side)
        feat = self.base(torch.cat([self.project(z), grid_code], dim=1))
        mask = torch.sigmoid(self.to_mask(feat))
        h, w = feat.shape[2:]
        code_map = onehot[:, :, None, None].to(feat.dtype).expand(-1, -1, h, w)
        return mask, self.to_object(torch.cat([feat, code_map], dim=1))


class C3Generator(nn.Module):
    """Background and foreground generators with the perturbed composite.

    Inputs: ``z`` float ``[B, z_dim]``, ``eps`` float ``[B, cz_dim]`` (noise of the code
    ``c' ~ N(mu_c, sigma_c)``), ``onehot`` float ``[B, Y]``, optional ``theta`` float
    ``[B, 2, 3]`` (affine matrices that move mask and object before composition).
    Output: dict of float ``[B, C, H, W]`` tensors ``bg``, ``mask`` (one channel, in
    [0, 1], after the perturbation), ``object`` and ``image`` (in [-1, 1]).
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        n_clusters: int,
        z_dim: int = 64,
        cz_dim: int = 8,
        width: int = 512,
        res_blocks: int = 3,
    ) -> None:
        super().__init__()
        channels, size = image_shape[0], image_shape[1]
        self.z_dim, self.cz_dim, self.n_clusters = z_dim, cz_dim, n_clusters
        self.bg = _Background(channels, size, z_dim, width, res_blocks)
        self.fg = _Foreground(channels, size, n_clusters, z_dim, cz_dim, width, res_blocks)

    def forward(
        self,
        z: torch.Tensor,
        eps: torch.Tensor,
        onehot: torch.Tensor,
        theta: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        bg = self.bg(z)
        mask, obj = self.fg(z, eps, onehot)
        if theta is not None:  # resampled in float32 whatever the autocast precision
            grid = F.affine_grid(theta.float(), list(mask.shape), align_corners=True)
            mask = F.grid_sample(mask.float(), grid, align_corners=True)
            obj = F.grid_sample(obj.float(), grid, align_corners=True)
        image = bg * (1 - mask) + obj * mask
        return {"bg": bg, "mask": mask, "object": obj, "image": image}


class C3Discriminator(nn.Module):
    """Shared encoder with an adversarial head and a semantic head, plus centroids.

    ``forward(x)``: float ``[B, C, H, W]`` in [-1, 1] -> (``r`` float ``[B]``, ``h`` float
    ``[B, h_dim]``). ``centroids()``: float ``[Y, h_dim]``, the embedded one-hot codes.
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        n_clusters: int,
        width: int = 64,
        h_dim: int = 512,
    ) -> None:
        super().__init__()
        channels, size = image_shape[0], image_shape[1]
        side, steps = plan(size)
        chans = [min(width << i, 8 * width) for i in range(steps)]
        layers: list[nn.Module] = [nn.Conv2d(channels, chans[0], 4, 2, 1, bias=False)]
        layers.append(nn.LeakyReLU(0.2))
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out)]
            layers.append(nn.LeakyReLU(0.2))
        top = chans[-1]
        layers += [nn.Conv2d(top, top, 3, 1, 1, bias=False), nn.BatchNorm2d(top), nn.LeakyReLU(0.2)]
        self.base = nn.Sequential(*layers)
        self.adv = nn.Conv2d(top, 1, side)
        self.sem = nn.Sequential(
            nn.Conv2d(top, top, 3, 1, 1, bias=False),
            nn.BatchNorm2d(top),
            nn.LeakyReLU(0.2),
            nn.Conv2d(top, h_dim, side),
        )
        self.code_embed = nn.Linear(n_clusters, h_dim)
        self.register_buffer("eye", torch.eye(n_clusters), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.base(x)
        return self.adv(feat).flatten(), self.sem(feat).flatten(1)

    def semantic(self, x: torch.Tensor) -> torch.Tensor:
        """Only the semantic features ``h`` float ``[B, h_dim]``."""
        return self.sem(self.base(x)).flatten(1)

    def centroids(self) -> torch.Tensor:
        return self.code_embed(self.eye)


@torch.no_grad()
def init_weights(module: nn.Module, gen: torch.Generator) -> None:
    """Orthogonal convolutions and linear maps, BN scales ~ N(1, 0.02), zero biases.

    All draws come from ``gen`` (a CPU generator), never from the global RNG.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.orthogonal_(m.weight, 1.0, generator=gen)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.weight.normal_(1.0, 0.02, generator=gen)
            m.bias.zero_()
