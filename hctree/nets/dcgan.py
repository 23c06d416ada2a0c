"""DCGAN-style networks of HC-MGAN: a generator and a discriminator with two heads.

Sizes 28 and 32 follow the HC-MGAN reference (a linear layer to a 7x7 / 8x8 map,
two stride-2 transposed convolutions; a three-layer stride-2 convolutional trunk);
64 adds one stage to each. Images are float ``[B, C, H, W]`` in [-1, 1], C is 1 or 3.

The discriminator owns a shared convolutional *trunk*, a real/fake head ``D`` and
a k-way classifier head ``C``. C is trained on trunk features with the trunk frozen:
:meth:`Discriminator.classify_frozen` detaches the features, so C's loss never
updates the trunk (only D's loss does), while a generator's loss still flows
through the trunk into the generator via :meth:`Discriminator.classify`.
"""

from __future__ import annotations

import torch
from torch import nn

from hctree.errors import HCTreeError

SIZES = (28, 32, 64)
NORMS = ("layer_norm", "spectral_norm", "none")
G_NORMS = ("none", "batch_norm")

# size -> (side of the generator's first map, number of stride-2 stages)
_LAYOUT = {28: (7, 2), 32: (8, 2), 64: (8, 3)}


def check_image_shape(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """Validate ``(C, H, W)``; returns ``(channels, size)`` or raises HCTreeError."""
    channels, height, width = (int(v) for v in image_shape)
    if height != width or height not in SIZES:
        raise HCTreeError(
            f"HC-MGAN networks exist for 28x28, 32x32 and 64x64 images, not {height}x{width};"
            " pass --size 28, 32 or 64 to resize the images."
        )
    if channels not in (1, 3):
        raise HCTreeError(f"images must have 1 or 3 channels, not {channels}.")
    return channels, height


def _up_padding(kernel: int) -> tuple[int, int]:
    """(padding, output_padding) that make a stride-2 transposed conv exactly double a map."""
    output_padding = kernel % 2
    return (kernel - 2 + output_padding) // 2, output_padding


class Generator(nn.Module):
    """Latent float ``[B, latent_dim]`` -> image float ``[B, C, S, S]`` in [-1, 1] (tanh).

    ``norm`` "none" is the reference; "batch_norm" adds BatchNorm after each hidden
    transposed convolution (DCGAN's choice, faster to learn on short budgets).
    """

    def __init__(
        self,
        size: int,
        channels: int,
        latent_dim: int = 100,
        width: int = 128,
        kernel: int = 4,
        norm: str = "none",
    ):
        super().__init__()
        check_image_shape((channels, size, size))
        if norm not in G_NORMS:
            raise HCTreeError(f"unknown generator norm {norm!r}; use one of {', '.join(G_NORMS)}.")
        first, stages = _LAYOUT[size]
        top = width * 2 ** (stages - 1)
        self.latent_dim = latent_dim
        self.first_shape = (top, first, first)
        self.project = nn.Sequential(nn.Linear(latent_dim, top * first * first), nn.ReLU(True))
        padding, output_padding = _up_padding(kernel)
        layers: list[nn.Module] = []
        for stage in range(stages):
            c_in = top // 2**stage
            last = stage == stages - 1
            c_out = channels if last else c_in // 2
            layers.append(
                nn.ConvTranspose2d(c_in, c_out, kernel, 2, padding, output_padding=output_padding)
            )
            if not last and norm == "batch_norm":
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.Tanh() if last else nn.ReLU(True))
        self.upsample = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(z.shape[0], *self.first_shape)
        return self.upsample(x)


def _conv_out(side: int, kernel: int) -> int:
    return (side + 2 * ((kernel - 1) // 2) - kernel) // 2 + 1


class Trunk(nn.Module):
    """Image float ``[B, C, S, S]`` -> flat features float ``[B, features]``.

    Stride-2 convolutions with widths ``width * 2**i``, each followed by the chosen
    normalisation (LayerNorm over the whole map, spectral norm on the weight, or none)
    and LeakyReLU(0.2).
    """

    def __init__(
        self, size: int, channels: int, width: int = 128, kernel: int = 5, norm: str = "layer_norm"
    ):
        super().__init__()
        check_image_shape((channels, size, size))
        if norm not in NORMS:
            raise HCTreeError(
                f"unknown discriminator norm {norm!r}; use one of {', '.join(NORMS)}."
            )
        depth = _LAYOUT[size][1] + 1
        layers: list[nn.Module] = []
        c_in, side = channels, size
        for i in range(depth):
            c_out = width * 2**i
            side = _conv_out(side, kernel)
            conv = nn.Conv2d(c_in, c_out, kernel, 2, (kernel - 1) // 2)
            if norm == "spectral_norm":
                conv = nn.utils.parametrizations.spectral_norm(conv)
            layers.append(conv)
            if norm == "layer_norm":
                layers.append(nn.LayerNorm([c_out, side, side]))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.features = c_in * side * side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).flatten(1)


class Discriminator(nn.Module):
    """A trunk shared by a real/fake head (one logit) and a k-way classifier head.

    With ``proj_dim`` > 0 the trunk also feeds a projection head ``p_head`` (two
    linear layers) whose outputs a contrastive loss compares across views.
    """

    def __init__(
        self,
        size: int,
        channels: int,
        k: int = 2,
        width: int = 128,
        kernel: int = 5,
        norm: str = "layer_norm",
        proj_dim: int = 0,
    ):
        super().__init__()
        self.trunk = Trunk(size, channels, width, kernel, norm)
        self.d_head = nn.Linear(self.trunk.features, 1)
        self.c_head = nn.Linear(self.trunk.features, k)
        self.p_head = (
            nn.Sequential(
                nn.Linear(self.trunk.features, 4 * proj_dim),
                nn.ReLU(True),
                nn.Linear(4 * proj_dim, proj_dim),
            )
            if proj_dim > 0
            else None
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, S, S]`` -> trunk features ``[B, F]``."""
        return self.trunk(x)

    def real_logit(self, feats: torch.Tensor) -> torch.Tensor:
        """Features ``[B, F]`` -> real/fake logits ``[B]``."""
        return self.d_head(feats).squeeze(1)

    def classify(self, feats: torch.Tensor) -> torch.Tensor:
        """Features ``[B, F]`` -> class logits ``[B, k]`` (gradient reaches the trunk)."""
        return self.c_head(feats)

    def classify_frozen(self, feats: torch.Tensor) -> torch.Tensor:
        """Class logits ``[B, k]`` whose gradient stops at the trunk (C's own training)."""
        return self.c_head(feats.detach())

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, S, S]`` -> class probabilities float ``[B, k]`` (rows sum to 1)."""
        return torch.softmax(self.c_head(self.trunk(x)).float(), dim=1)

    def project(self, feats: torch.Tensor) -> torch.Tensor:
        """Features ``[B, F]`` -> projections ``[B, proj_dim]`` (needs ``proj_dim`` > 0)."""
        if self.p_head is None:
            raise RuntimeError("this discriminator was built without a projection head")
        return self.p_head(feats)

    def head_parameters(self) -> list[nn.Parameter]:
        """What D's optimiser updates: the trunk, the real/fake head and the projection."""
        extra = [] if self.p_head is None else list(self.p_head.parameters())
        return [*self.trunk.parameters(), *self.d_head.parameters(), *extra]
