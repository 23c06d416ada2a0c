"""A step cut into shards that each run on one thread: the same bits on any number of cores.

PyTorch splits a reduction between its threads, so a gradient computed on two
threads differs in its last bits from one computed on one (docs/benchmarks.md,
"Concurrent splits"), and a tree grown on more cores is another tree. A batch cut
into a fixed number of shards, each shard's forward and backward run at one
thread and the shards' gradients summed in a fixed order, gives the same bits
whether the shards run one after another or side by side: how many cores a stage
gets then changes its speed, never its result. PyTorch releases the GIL inside
its kernels, so shards on Python threads do run at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


def _one_thread() -> None:
    torch.set_num_threads(1)


@contextmanager
def one_thread() -> Iterator[None]:
    """PyTorch at one intra-op thread inside the block; the count before it afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ShardPool:
    """Runs shards at one thread each, on up to ``width`` threads at once.

    Use it as a context manager around the steps that use it; ``map`` keeps the
    shards' order, so the result does not depend on ``width``.
    """

    def __init__(self, width: int) -> None:
        self.width = max(1, int(width))
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> ShardPool:
        if self.width > 1:
            self._pool = ThreadPoolExecutor(self.width, initializer=_one_thread)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``fn`` of every item, in order (side by side when the pool is wider than one)."""
        if self._pool is None or len(items) < 2:
            with one_thread():
                return [fn(item) for item in items]
        return list(self._pool.map(fn, items))


def sharded_backward(
    pool: ShardPool,
    forward: Callable[[torch.Tensor], torch.Tensor],
    shards: Sequence[torch.Tensor],
    loss_of: Callable[[torch.Tensor], torch.Tensor],
    params: Sequence[torch.Tensor],
) -> torch.Tensor:
    """Set ``params``' gradients of ``loss_of(cat(forward(shard) for each shard))``.

    ``forward`` must treat rows independently (no batch statistics), so that a
    shard's outputs are those rows' outputs whatever the shards. The loss couples
    the rows as it likes: it is computed once, on the joined outputs, and its
    gradient is sent back through each shard's graph; the shards' gradients are
    summed in shard order. Gradients are replaced, not accumulated; a parameter no
    shard reaches keeps ``None``. Returns the detached loss.
    """

    def run_forward(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            return forward(x)

    outputs = pool.map(run_forward, shards)
    with one_thread():
        joined = [out.detach().requires_grad_() for out in outputs]
        loss = loss_of(torch.cat(joined))
        upstream = torch.autograd.grad(loss, joined)

    def run_backward(pair: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor | None, ...]:
        return torch.autograd.grad(pair[0], params, pair[1], allow_unused=True)

    grads = pool.map(run_backward, list(zip(outputs, upstream, strict=True)))
    with one_thread():
        for param, total in zip(params, sum_in_order(grads), strict=True):
            param.grad = total
    return loss.detach()


def sum_in_order(
    per_shard: Sequence[Sequence[torch.Tensor | None]],
) -> list[torch.Tensor | None]:
    """Per parameter, the shards' gradients summed in shard order (None where no
    shard has one): the fixed order that makes the sum's bits the same however the
    shards ran."""
    totals: list[torch.Tensor | None] = []
    for grads in zip(*per_shard, strict=True):
        total = None
        for g in grads:
            if g is not None:
                total = g if total is None else total + g
        totals.append(total)
    return totals
