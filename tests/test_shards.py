"""One-thread shards: the same gradient bits on any number of cores (hctree.shards)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hctree.errors import HCTreeError
from hctree.invariance import nt_xent
from hctree.shards import ShardPool, one_thread, sharded_backward
from hctree.splitters import make_config
from hctree.splitters.hcmgan import HCMGANSplitter, begin_attempt
from tests.conftest import split_context


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(8 * 14 * 14, 16)
    )


def _grads(width: int, shards: int, threads: int = 1) -> tuple[torch.Tensor, list]:
    net, unused = _net(), nn.Parameter(torch.ones(3))
    x = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    params = [*net.parameters(), unused]
    torch.set_num_threads(threads)
    with ShardPool(width) as pool:
        loss = sharded_backward(
            pool, net, x.chunk(shards), lambda h: nt_xent(h[:32], h[32:], 0.5), params
        )
    return loss, [p.grad for p in params]


def test_shards_side_by_side_give_the_bits_of_shards_in_turn():
    loss1, grads1 = _grads(width=1, shards=4)
    loss2, grads2 = _grads(width=2, shards=4, threads=2)
    assert torch.equal(loss1, loss2)
    assert grads1[-1] is None and grads2[-1] is None  # a parameter no shard reaches
    for a, b in zip(grads1[:-1], grads2[:-1], strict=True):
        assert torch.equal(a, b)
    assert torch.get_num_threads() == 2  # the caller's thread count is left as it was


def test_sharded_gradients_are_the_whole_batch_gradients():
    _, sharded = _grads(width=2, shards=4)
    net = _net()
    x = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    h = net(x)
    nt_xent(h[:32], h[32:], 0.5).backward()
    for a, p in zip(sharded[:-1], net.parameters(), strict=True):
        torch.testing.assert_close(a, p.grad, rtol=1e-4, atol=1e-6)
        assert not torch.equal(a, torch.zeros_like(a))


def test_one_thread_restores_the_count_after_an_error():
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError), one_thread():
        assert torch.get_num_threads() == 1
        raise RuntimeError("inside")
    assert torch.get_num_threads() == 2


def _warm_up(images: torch.Tensor, cores: int, threads: int, steps: int = 3) -> list:
    """The discriminator after ``steps`` sharded warm-up iterations of a root split's
    own training loop, its shards given ``cores`` cores."""
    settings = {"width_d": 8, "embed_batch": 16, "embed_shards": 2, "embed_iters": steps}
    config = make_config(HCMGANSplitter, "cpu", settings)
    torch.set_num_threads(threads)
    ctx = split_context(images, torch.ones(len(images)), config, cores=cores)
    attempt = begin_attempt("raw", ctx, 0, None)
    attempt.gan_iters = 0  # the warm-up alone: the GAN phase's bits follow the threads
    attempt.train()
    return [p.detach().clone() for p in attempt.nets.discriminators[0].parameters()]


def test_the_cpu_warm_up_is_the_same_on_one_core_and_on_two(fmnist):
    images = torch.from_numpy(fmnist.images[:200])
    one = _warm_up(images, cores=1, threads=1)
    two = _warm_up(images, cores=2, threads=2)
    assert torch.get_num_threads() == 2  # the warm-up gave the caller its threads back
    moved = _warm_up(images, cores=1, threads=1, steps=0)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, s) for a, s in zip(one, moved, strict=True))


def test_embed_shards_is_a_checked_setting_off_by_default():
    assert make_config(HCMGANSplitter, "cpu").embed_shards == 0  # the whole batch
    assert make_config(HCMGANSplitter, "cpu", {"embed_shards": "2"}).embed_shards == 2
    for bad in ("-1", "257"):  # cpu's embed_batch is 128: at most 256 views to cut
        with pytest.raises(HCTreeError, match="embed_shards"):
            make_config(HCMGANSplitter, "cpu", {"embed_shards": bad})
