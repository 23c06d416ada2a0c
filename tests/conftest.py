"""Shared fixtures: Fashion-MNIST loaded once per session, a per-class sampler and a
CPU split context for running one splitter stage."""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable, Iterable
from typing import Any

import h5py
import numpy as np
import pytest
import torch

from hctree.data import FASHION_MNIST_DIR, ImageSet, fingerprint, load_images
from hctree.grow import StopFlag
from hctree.splitters.base import Checkpointer, MemoryCheckpointer, SplitContext
from hctree.store import checkpoint_path

CPU = torch.device("cpu")


def split_context(
    images: torch.Tensor,
    membership: torch.Tensor,
    config: Any,
    *,
    previous: torch.Tensor | None = None,
    k: int = 2,
    seed: int = 7,
    checkpoint: Checkpointer | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    **extra: Any,
) -> SplitContext:
    """A CPU :class:`SplitContext` for one stage of a test split.

    ``checkpoint`` defaults to a fresh :class:`MemoryCheckpointer`; ``extra`` (e.g.
    ``progress``, ``node``) goes to the context unchanged.
    """
    return SplitContext(
        images=images,
        membership=membership,
        previous=previous,
        k=k,
        config=config,
        device=CPU,
        seed=seed,
        checkpoint=MemoryCheckpointer() if checkpoint is None else checkpoint,
        should_stop=should_stop,
        **extra,
    )


def stop_from_poll(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Make grow's stop flag report a stop request from its ``n``-th poll on
    (``monkeypatch.undo()`` lifts it)."""
    polls = {"n": 0}

    def requested(self: StopFlag) -> bool:
        polls["n"] += 1
        return polls["n"] >= n

    monkeypatch.setattr(StopFlag, "__call__", requested)


def fmnist_classes(
    fmnist: ImageSet, classes: Iterable[int], per_class: int, seed: int = 0
) -> ImageSet:
    """The images of ``classes`` only, ``per_class`` of each drawn with ``seed``.

    Rows keep their original order and label values; ``names`` is None and ``spec``
    is the full set's (it cannot express a class selection).
    """
    if fmnist.labels is None:
        raise ValueError("fmnist_classes needs a labelled ImageSet")
    rng = np.random.default_rng(seed)
    picked = []
    for value in sorted(set(classes)):
        rows = np.flatnonzero(fmnist.labels == value)
        if len(rows) < per_class:
            raise ValueError(f"class {value} has {len(rows)} images, fewer than {per_class}")
        picked.append(rng.choice(rows, size=per_class, replace=False))
    keep = np.sort(np.concatenate(picked))
    images = np.ascontiguousarray(fmnist.images[keep])
    return ImageSet(
        images=images,
        labels=fmnist.labels[keep],
        class_names=fmnist.class_names,
        source=fmnist.source,
        names=None,
        spec=dict(fmnist.spec),
        fingerprint=fingerprint(images),
    )


@pytest.fixture(scope="session")
def fmnist() -> ImageSet:
    """All 70,000 Fashion-MNIST images (train then t10k) with labels; do not modify."""
    if not os.path.isdir(FASHION_MNIST_DIR):
        pytest.skip(f"Fashion-MNIST is not installed in {FASHION_MNIST_DIR}")
    return load_images("fashion-mnist")


@pytest.fixture(name="fmnist_classes", scope="session")
def _fmnist_classes_fixture():
    """The :func:`fmnist_classes` function, for tests that take it as a fixture."""
    return fmnist_classes


class _Payload:
    """Unpickling this object creates a file: what a hostile checkpoint would do."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def pickled_sidecar(tree: os.PathLike, marker: str, node: str = "r", stage: str = "raw") -> None:
    """A sidecar in the shape older versions wrote: one dataset of torch.save bytes."""
    buffer = io.BytesIO()
    torch.save({"attempt": _Payload(marker)}, buffer)
    with h5py.File(checkpoint_path(tree), "w") as f:
        f.attrs["format"] = "hctree-checkpoint"
        f.attrs["node"] = node
        f.attrs["stage"] = stage
        f.create_dataset("state", data=np.frombuffer(buffer.getvalue(), dtype=np.uint8))
    assert pickle.loads(pickle.dumps(_Payload(str(marker) + ".probe"))) is not None
    os.remove(str(marker) + ".probe")  # the payload works when unpickled
