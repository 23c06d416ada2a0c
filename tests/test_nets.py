"""The HC-MGAN networks: shapes per size and channel count, and the frozen-trunk rule."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from hctree.errors import HCTreeError
from hctree.nets.dcgan import Discriminator, Generator, check_image_shape


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(size: int, channels: int) -> None:
    g = Generator(size, channels, latent_dim=10, width=8)
    d = Discriminator(size, channels, k=3, width=8)
    x = g(torch.randn(5, 10))
    assert x.shape == (5, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    feats = d.features(x)
    assert d.real_logit(feats).shape == (5,)
    assert d.classify(feats).shape == (5, 3)
    probs = d.probabilities(x)
    assert probs.shape == (5, 3)
    torch.testing.assert_close(probs.sum(1), torch.ones(5))


@pytest.mark.parametrize("kernel_g, kernel_d", [(3, 3), (5, 4), (4, 7)])
def test_other_kernels_keep_shapes(kernel_g: int, kernel_d: int) -> None:
    g = Generator(28, 1, latent_dim=4, width=4, kernel=kernel_g)
    d = Discriminator(28, 1, width=4, kernel=kernel_d, norm="spectral_norm")
    x = g(torch.randn(2, 4))
    assert x.shape == (2, 1, 28, 28)
    assert d.probabilities(x).shape == (2, 2)


@pytest.mark.parametrize("shape", [(1, 48, 48), (1, 28, 32), (2, 28, 28)])
def test_unsupported_shapes_are_user_errors(shape: tuple[int, int, int]) -> None:
    with pytest.raises(HCTreeError):
        check_image_shape(shape)


def test_size_error_names_the_fix() -> None:
    with pytest.raises(HCTreeError, match="--size 28, 32 or 64"):
        Generator(48, 1)
    with pytest.raises(HCTreeError, match="--size 28, 32 or 64"):
        Discriminator(16, 3)


def test_classifier_loss_does_not_reach_the_trunk() -> None:
    g = Generator(28, 1, latent_dim=8, width=4)
    d = Discriminator(28, 1, width=4)
    fake = g(torch.randn(6, 8))
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    F.cross_entropy(d.classify_frozen(d.features(fake)), labels).backward()
    assert all(p.grad is None for p in d.trunk.parameters())
    assert all(p.grad is None for p in g.parameters())
    assert d.c_head.weight.grad is not None and d.c_head.weight.grad.abs().sum() > 0


def test_generator_loss_flows_through_trunk_and_heads() -> None:
    g = Generator(28, 1, latent_dim=8, width=4)
    d = Discriminator(28, 1, width=4)
    feats = d.features(g(torch.randn(6, 8)))
    loss = d.real_logit(feats).mean() + d.classify(feats)[:, 0].mean()
    loss.backward(inputs=list(g.parameters()))
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())
    assert all(p.grad is None for p in d.parameters())


def test_discriminator_loss_trains_trunk_not_classifier() -> None:
    d = Discriminator(28, 1, width=4)
    optimised = {id(p) for p in d.head_parameters()}
    assert optimised.isdisjoint(id(p) for p in d.c_head.parameters())
    assert {id(p) for p in d.trunk.parameters()} <= optimised
