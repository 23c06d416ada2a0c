"""A training step never reads a tensor back to the host (the GPU issue's first item).

On CUDA every ``.item()``, ``float(t)``, ``if t:`` or boolean-mask index waits for
the queued kernels. The CPU runs the same Python, so :class:`HostReads` lists the
reads the package's own code makes while a split trains; the tests allow them
only in one-off work (seeding, the final re-estimate) and at the logged steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from hctree import engine
from hctree.splitters import make_config
from hctree.splitters.c3gan import C3GANSplitter
from hctree.splitters.hcmgan import HCMGANSplitter
from hctree.splitters.slcgan import SLCGANSplitter
from tests.conftest import fmnist_classes, split_context
from tests.host_reads import HostReads

# the functions that run once per iteration, in every splitter and executor
STEPS = {
    "step", "_train_step", "_embed_step", "embed_step", "batched_train_step",
    "_train_iteration", "_draw",
}  # fmt: skip
NETS = {"width_g": 8, "width_d": 8}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def images(fmnist) -> torch.Tensor:
    """60 images of ten classes: uint8 [60, 1, 28, 28]."""
    return torch.from_numpy(fmnist_classes(fmnist, range(10), per_class=6).images)


def _train(splitter: Any, preset: str, overrides: dict, images: torch.Tensor) -> HostReads:
    """Every stage of one split of ``images``, under a :class:`HostReads`."""
    config = make_config(type(splitter), preset, overrides)
    previous = None
    with HostReads() as reads:
        for stage in splitter.stages(config):
            ctx = split_context(images, torch.ones(len(images)), config, previous=previous,
                                seed=engine.derive_seed(5, stage))  # fmt: skip
            result = splitter.run_stage(stage, ctx)
            previous = torch.from_numpy(result.memberships)
    return reads


def test_host_reads_sees_a_read_in_package_code(images) -> None:
    """The detector itself: a masked prediction sizes its output by the mask."""
    mask = torch.arange(len(images)) % 2 == 0
    with HostReads() as reads:
        engine.predict_in_batches(lambda x: x.flatten(1)[:, :3], images, mask=mask)
    assert [r.name for r in reads.reads] == ["nonzero"]
    assert reads.reads[0].stack[0] == "predict_in_batches"
    assert reads.within({"predict_in_batches"}) == reads.reads
    assert reads.within({"predict_in_batches"}, outside={"predict_in_batches"}) == []


@pytest.mark.parametrize(
    ("splitter", "preset", "overrides"),
    [
        (HCMGANSplitter(), "cpu", {**NETS, "raw_iters": 4, "embed_iters": 3,
                                   "spectral_neighbors": 5, "seed_recolours": 2}),
        (HCMGANSplitter(), "tiny", {**NETS, "raw_iters": 3, "refine_iters": 3, "refinements": 1}),
        (HCMGANSplitter(), "tiny", {**NETS, "raw_iters": 3, "refine_iters": 3, "refinements": 1,
                                    "batch_groups": True}),
        (C3GANSplitter(), "cpu", {"iterations": 4, "embed_iters": 3, "bn_batches": 2}),
        (SLCGANSplitter(), "cpu", {"iters": 4}),
    ],
    ids=["hcmgan-seeded", "hcmgan-refine", "hcmgan-batched-groups", "c3gan", "slcgan"],
)  # fmt: skip
def test_no_step_reads_the_host(images, splitter, preset: str, overrides: dict) -> None:
    reads = _train(splitter, preset, overrides, images)
    assert reads.reads, "the split made no host read at all: the detector is not running"
    assert reads.within(STEPS, outside={"seed_targets"}) == []


def test_splits_trained_together_read_the_host_only_to_seed(images) -> None:
    """The frontier executor (``--batch-splits``): its steps and draws read nothing."""
    config = make_config(HCMGANSplitter, "cpu", {**NETS, "raw_iters": 4, "embed_iters": 0,
                                                 "spectral_neighbors": 5, "collapse_loss": 0.0})  # fmt: skip
    first = torch.from_numpy((np.arange(len(images)) % 2).astype(np.float32))
    contexts = [
        split_context(images, m, config, seed=3 + i, node=f"r{i}")
        for i, m in enumerate([first, 1 - first])
    ]
    with HostReads() as reads:
        HCMGANSplitter().run_stages_together("raw", contexts)
    assert reads.within({"train_together"}, outside={"seed_targets"})  # e.g. the log points
    assert reads.within(STEPS, outside={"seed_targets"}) == []


@pytest.mark.parametrize("stage_iters", ["raw_iters", "refine_iters"])
def test_host_reads_do_not_grow_with_the_iterations(images, stage_iters: str) -> None:
    """The loop around the step too: twice the iterations (same log points, the
    last only) make exactly the same reads."""
    counts = []
    for iters in (3, 6):
        overrides = {**NETS, "raw_iters": 3, "refine_iters": 3, "refinements": 1,
                     "log_every": 1000, stage_iters: iters}  # fmt: skip
        counts.append(len(_train(HCMGANSplitter(), "tiny", overrides, images).reads))
    assert counts[0] == counts[1]
