"""slcGAN networks: a conditional generator, a projection discriminator, a clustering net.

All three follow the BigGAN residual layout scaled down (one residual block per
resolution). A *condition* ``y`` is a float ``[B, K]`` vector: a one-hot pseudo-label
for generated images, the clustering network's softmax for real ones.

- :class:`Generator` ``(z [B, Z], y [B, K]) -> images [B, C, S, S]`` in [-1, 1]; ``y`` enters
  through class-conditional batch norm (gain ``1 + W_g y``, bias ``W_b y``).
- :class:`Discriminator` ``(images, y) -> (u [B], s [B])``: ``u`` is the unary (image
  only) score, ``s`` the joint score ``psi(phi(x)) + <V y, phi(x)>`` of a projection
  discriminator.
- :class:`Clusterer` ``images -> (logits [B, K], features [B, F])``; features are the
  trunk's spatial mean, or with ``flatten`` its whole base-resolution map (F = its channels
  x 7 x 7 at 28 px, x 4 x 4 otherwise), which keeps the image layout.

Spectral normalisation is on every convolution and linear map of G and C (as the
slcGAN paper states) and of D (as in BigGAN, on which the paper builds D); the two
exceptions are the conditional batch-norm maps of G and C's last linear layer, which
must be free to scale the logits so that the softmax can become confident; C's pooled
features pass a (parameter-free, per-image) layer norm before that layer.
Images are float ``[B, C, S, S]`` with S in 28, 32, 64, 128 and C = 1 or 3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from hctree.errors import HCTreeError

SIZES = (28, 32, 64, 128)


def check_image_shape(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """Validate ``(C, H, W)``; returns ``(channels, size)`` or raises HCTreeError."""
    channels, height, width = (int(v) for v in image_shape)
    if height != width or height not in SIZES:
        nearest = min(SIZES, key=lambda s: abs(s - max(height, width)))
        raise HCTreeError(
            f"slcgan networks exist for 28, 32, 64 and 128 px square images, not "
            f"{height}x{width}; pass --size {nearest} to resize the images."
        )
    if channels not in (1, 3):
        raise HCTreeError(f"images must have 1 or 3 channels, not {channels}.")
    return channels, height


def _stages(size: int) -> int:
    """Number of factor-2 resolution changes between the 7x7 / 4x4 base and ``size``."""
    return {28: 2, 32: 3, 64: 4, 128: 5}[size]


def _widths(width: int, stages: int) -> list[int]:
    """Channels from the coarsest map to the finest: ``width * [.., 4, 2, 1]`` capped at 8x."""
    return [width * min(8, 2 ** (stages - i)) for i in range(stages + 1)]


def _sn_conv(c_in: int, c_out: int, kernel: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2))


class CondBatchNorm(nn.Module):
    """Batch norm whose gain and bias are linear functions of the condition ``y [B, K]``."""

    def __init__(self, channels: int, n_cond: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(n_cond, channels, bias=False)
        self.bias = nn.Linear(n_cond, channels, bias=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(y)
        return self.norm(x) * gain[:, :, None, None] + self.bias(y)[:, :, None, None]


class GBlock(nn.Module):
    """Up-sampling residual block of G (BigGAN): CBN-ReLU-up-conv-CBN-ReLU-conv + shortcut."""

    def __init__(self, c_in: int, c_out: int, n_cond: int):
        super().__init__()
        self.bn1 = CondBatchNorm(c_in, n_cond)
        self.conv1 = _sn_conv(c_in, c_out, 3)
        self.bn2 = CondBatchNorm(c_out, n_cond)
        self.conv2 = _sn_conv(c_out, c_out, 3)
        self.skip = _sn_conv(c_in, c_out, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2.0)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2.0))


class DBlock(nn.Module):
    """Down-sampling residual block of D and C: (ReLU)-conv-ReLU-conv-pool + shortcut."""

    def __init__(self, c_in: int, c_out: int, down: bool = True, preactivate: bool = True):
        super().__init__()
        self.conv1 = _sn_conv(c_in, c_out, 3)
        self.conv2 = _sn_conv(c_out, c_out, 3)
        self.skip = _sn_conv(c_in, c_out, 1)
        self.down = down
        self.preactivate = preactivate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivate else x
        h = self.conv2(F.relu(self.conv1(h)))
        s = self.skip(x)
        if self.down:
            h, s = F.avg_pool2d(h, 2), F.avg_pool2d(s, 2)
        return h + s


class Generator(nn.Module):
    """``(z float [B, z_dim], y float [B, K]) -> images float [B, C, S, S]`` in [-1, 1]."""

    def __init__(self, size: int, channels: int, n_cond: int, z_dim: int, width: int):
        super().__init__()
        check_image_shape((channels, size, size))
        widths = _widths(width, _stages(size))
        self.base = 7 if size == 28 else 4
        self.z_dim = z_dim
        self.project = spectral_norm(nn.Linear(z_dim, widths[0] * self.base * self.base))
        self.blocks = nn.ModuleList(
            GBlock(a, b, n_cond) for a, b in zip(widths[:-1], widths[1:], strict=True)
        )
        self.out_norm = nn.BatchNorm2d(widths[-1])
        self.out_conv = _sn_conv(widths[-1], channels, 3)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], -1, self.base, self.base)
        for block in self.blocks:
            h = block(h, y)
        return torch.tanh(self.out_conv(F.relu(self.out_norm(h))))


def _encoder(size: int, channels: int, width: int) -> tuple[nn.Sequential, int]:
    """The shared D/C trunk: images -> feature maps at the base resolution; returns (net, F)."""
    widths = _widths(width, _stages(size))[::-1]
    blocks = [DBlock(channels, widths[0], down=True, preactivate=False)]
    blocks += [DBlock(a, b) for a, b in zip(widths[:-2], widths[1:-1], strict=True)]
    blocks.append(DBlock(widths[-2], widths[-1], down=False))
    return nn.Sequential(*blocks), widths[-1]


class Discriminator(nn.Module):
    """Projection discriminator: ``(images [B, C, S, S], y [B, K]) -> (u [B], s [B])``."""

    def __init__(self, size: int, channels: int, n_cond: int, width: int):
        super().__init__()
        check_image_shape((channels, size, size))
        self.trunk, features = _encoder(size, channels, width)
        self.unary = spectral_norm(nn.Linear(features, 1))
        self.joint = spectral_norm(nn.Linear(features, 1))
        self.embed = spectral_norm(nn.Linear(n_cond, features, bias=False))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.trunk(x)).sum(dim=(2, 3))
        u = self.unary(h).squeeze(1)
        s = self.joint(h).squeeze(1) + (self.embed(y) * h).sum(1)
        return u, s


class Clusterer(nn.Module):
    """Clustering network C: ``images [B, C, S, S] -> (logits [B, K], features [B, F])``."""

    def __init__(
        self,
        size: int,
        channels: int,
        n_clusters: int,
        width: int,
        flatten: bool = False,
    ):
        super().__init__()
        check_image_shape((channels, size, size))
        self.trunk, self.n_features = _encoder(size, channels, width)
        self.flatten = flatten
        if flatten:
            base = 7 if size == 28 else 4
            self.n_features *= base * base
        self.norm = nn.LayerNorm(self.n_features, elementwise_affine=False)
        self.head = nn.Linear(self.n_features, n_clusters)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.trunk(x))
        features = h.flatten(1) if self.flatten else h.mean(dim=(2, 3))
        return self.head(self.norm(features)), features
