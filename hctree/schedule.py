"""Which splits to run next, and the executors that run them.

The tree a single worker grows is fixed by one rule: split the heaviest leaf,
commit, repeat. A split's result depends only on its node (membership, parent's
models, seed), never on other leaves, so several leaves can be split at once as
long as their results are *committed* in the order a single worker would have
committed them. The grow loop asks :func:`frontier` for the leaves to run,
hands their stages to an executor, stores every finished stage in the tree file
(a finished split waits there with status ``ready``) and commits ready splits
when their turn comes. The tree is therefore the same for any number of workers.

Executors: :class:`InlineExecutor` runs one stage at a time in this process (the
default); :class:`hctree.workers.RayExecutor` runs up to W on Ray workers. Only
the process that calls ``grow`` ever writes the tree file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hctree.engine import derive_seed
from hctree.splitters.base import Checkpointer, ModelState, Progress, SplitContext, StageResult
from hctree.store import NodeRecord, TreeRecord
from hctree.support import Support, node_support, sample_rows, view_mean_features
from hctree.tree import CHILD_DIGITS

MASS_TOLERANCE = 1e-4
LEAF_ORDERS = ("mass", "supported")  # which leaf a fixed-count tree splits next
AUTO_MIN_FRACTION = 0.01  # --leaves auto never splits a leaf with less of the images
WAITING = ("leaf", "splitting")  # a leaf whose split has not finished


@dataclass(frozen=True)
class Goal:
    """How far to grow: ``leaves`` leaves, or with ``auto`` at most that many."""

    leaves: int
    auto: bool = False


@dataclass
class StageJob:
    """Everything needed to run one stage of one node's split, anywhere."""

    node: str
    stage: str
    k: int
    membership: np.ndarray  # float32 [N]
    previous: np.ndarray | None  # float32 [k, N]: the previous stage's children
    parent_models: ModelState | None
    stage_models: ModelState | None
    child_index: int
    seed: int  # the tree's seed; the stage's own is derived from it, node and stage
    test_support: bool = True  # after the split's last stage, run the support test


@dataclass
class StageOutcome:
    """A finished stage: its record fields, and the split's support when it was the last."""

    node: str
    stage: str
    k: int
    memberships: np.ndarray
    models: ModelState = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    final: bool = False
    support: Support | None = None


# ---------------------------------------------------------------- the rule


def candidates(record: TreeRecord, auto: bool) -> list[NodeRecord]:
    """Leaves in the order a single worker splits them: heaviest first, ties by name.

    Includes ``ready`` leaves (finished, waiting for their turn). With ``auto``,
    ``kept`` leaves (split refused) and leaves below ``AUTO_MIN_FRACTION`` of the
    images are passed over; otherwise a ``kept`` leaf is a candidate like any other,
    except that with the ``supported`` leaf order (:func:`supported_first`) kept
    leaves come after every other: a split the data do not support is committed
    only when no other leaf's split is left to try.
    """
    nodes = record.nodes.values()
    if auto:
        smallest = AUTO_MIN_FRACTION * int(record.attrs["n"])
        leaves = [n for n in nodes if n.status in (*WAITING, "ready") and n.mass >= smallest]
    else:
        leaves = [n for n in nodes if n.status in (*WAITING, "ready", "kept")]
    last = supported_first(record) and not auto
    return sorted(leaves, key=lambda n: (last and n.status == "kept", -round(n.mass, 3), n.name))


def supported_first(record: TreeRecord) -> bool:
    """Whether the tree splits supported leaves first (its stored ``leaf_order``)."""
    return str(record.attrs.get("leaf_order", "mass")) == "supported"


def leaf_count(record: TreeRecord) -> int:
    return sum(1 for n in record.nodes.values() if n.status != "split")


def children_wanted(record: TreeRecord, goal: Goal, ahead: int = 0) -> int:
    """k for the split ``ahead`` turns from now, if every earlier one splits fully."""
    branching = int(record.attrs["branching"])
    leaves = leaf_count(record) + ahead * (branching - 1)
    return min(branching, goal.leaves - leaves + 1)


def frontier(record: TreeRecord, goal: Goal, slots: int) -> list[tuple[NodeRecord, int]]:
    """Up to ``slots`` unfinished leaves worth splitting now, with their k, in turn order.

    The first is the leaf a single worker would split next. The others are the
    following leaves in turn order, as far as the tree still needs splits if every
    earlier one splits fully; a result that later turns out unneeded stays in the
    file as a ``ready`` leaf, and one whose k turns out wrong is run again.
    """
    out: list[tuple[NodeRecord, int]] = []
    for ahead, node in enumerate(candidates(record, goal.auto)):
        k = children_wanted(record, goal, ahead)
        if len(out) >= slots or k < 2:
            break
        if node.status in WAITING:
            stored = node.split_attrs.get("k")
            out.append((node, int(stored) if node.stages and stored else k))
    return out


def next_job(record: TreeRecord, node: NodeRecord, k: int, stages: list[str],
             models_of: Callable[[str], ModelState | None], goal: Goal) -> StageJob:  # fmt: skip
    """The job for ``node``'s next unfinished stage.

    The split's support test (4-15 s of a CPU per split) runs only where the grow
    rule reads it: ``--leaves auto`` and the ``supported`` leaf order.
    """
    previous = None
    if node.stages:
        previous = next(reversed(node.stages.values())).memberships
    return StageJob(
        node=node.name,
        stage=stages[len(node.stages)],
        k=k,
        membership=node.membership,
        previous=previous,
        parent_models=models_of(node.parent) if node.parent else None,
        stage_models=models_of(node.name) if node.stages else None,
        child_index=CHILD_DIGITS.index(node.name[-1]) if node.parent else 0,
        seed=int(record.attrs["seed"]),
        test_support=support_wanted(record, goal),
    )


def support_wanted(record: TreeRecord, goal: Goal) -> bool:
    """Whether the grow rule reads a finished split's support test."""
    return goal.auto or supported_first(record)


def support_tested(node: NodeRecord) -> bool:
    """Whether a finished split carries a support test (the cut test, or the older dip test)."""
    return "support_cut" in node.split_attrs or "support_p" in node.split_attrs


# ---------------------------------------------------------------- running a stage


def check_result(result: StageResult, parent: np.ndarray, k: int, where: str) -> np.ndarray:
    """The stage's memberships as float32 ``[k, N]``, checked to sum to the parent."""
    memberships = result.memberships
    if isinstance(memberships, torch.Tensor):
        memberships = memberships.detach().cpu().numpy()
    memberships = np.asarray(memberships, dtype=np.float32)
    if memberships.shape != (k, parent.shape[0]):
        raise RuntimeError(f"{where} returned memberships of shape {memberships.shape}")
    if not np.isfinite(memberships).all():
        raise RuntimeError(f"{where} returned non-finite memberships")
    gap = np.abs(memberships.sum(0) - parent).max()
    if gap > MASS_TOLERANCE:
        raise RuntimeError(f"{where}: children do not sum to the parent (max gap {gap:.2e})")
    return np.clip(memberships, 0.0, None)


def job_context(
    job: StageJob,
    images: torch.Tensor,
    config: Any,
    device: torch.device,
    checkpoint: Checkpointer,
    progress: Progress,
    should_stop: Callable[[], bool],
    cores: int = 1,
) -> SplitContext:
    """The splitter's view of ``job``: its tensors on ``device``, its derived seed and
    the CPU cores its shards may use."""
    return SplitContext(
        images=images,
        membership=torch.from_numpy(job.membership).to(device),
        previous=None if job.previous is None else torch.from_numpy(job.previous).to(device),
        k=job.k,
        config=config,
        device=device,
        seed=derive_seed(job.seed, job.node, job.stage),
        checkpoint=checkpoint,
        progress=progress,
        should_stop=should_stop,
        node=job.node,
        parent_models=job.parent_models,
        child_index=job.child_index,
        stage_models=job.stage_models,
        cores=cores,
    )


def run_job(
    job: StageJob,
    images: torch.Tensor,
    splitter: Any,
    config: Any,
    device: torch.device,
    checkpoint: Checkpointer,
    progress: Progress,
    should_stop: Callable[[], bool],
    cores: int = 1,
) -> StageOutcome:
    """Train one stage (its shards on up to ``cores`` cores); after the split's last
    stage also test its support if wanted."""
    ctx = job_context(job, images, config, device, checkpoint, progress, should_stop, cores)
    started = time.monotonic()
    result = splitter.run_stage(job.stage, ctx)
    return job_outcome(job, result, images, splitter, config, device, time.monotonic() - started)


def run_jobs_together(
    jobs: list[StageJob],
    images: torch.Tensor,
    splitter: Any,
    config: Any,
    device: torch.device,
    checkpointer: Callable[[str, str], Checkpointer],
    progress: Progress,
    should_stop: Callable[[], bool],
) -> list[StageOutcome]:
    """The same stage of several nodes' splits, as one batched step where the splitter
    has one (``run_stages_together``); each outcome carries the batch's wall time."""
    stages = {job.stage for job in jobs}
    if len(stages) != 1:
        raise ValueError(f"jobs of one batch must share a stage, not {sorted(stages)}")
    cores = torch.get_num_threads()
    contexts = [
        job_context(
            job,
            images,
            config,
            device,
            checkpointer(job.node, job.stage),
            progress,
            should_stop,
            cores,
        )
        for job in jobs
    ]
    started = time.monotonic()
    if len(jobs) > 1 and hasattr(splitter, "run_stages_together"):
        results = splitter.run_stages_together(jobs[0].stage, contexts)
    else:
        results = [
            splitter.run_stage(job.stage, ctx) for job, ctx in zip(jobs, contexts, strict=True)
        ]
    seconds = time.monotonic() - started
    return [
        job_outcome(job, result, images, splitter, config, device, seconds)
        for job, result in zip(jobs, results, strict=True)
    ]


def job_outcome(
    job: StageJob,
    result: StageResult,
    images: torch.Tensor,
    splitter: Any,
    config: Any,
    device: torch.device,
    seconds: float,
) -> StageOutcome:
    """A trained stage's checked memberships; after the split's last stage, its support
    (if the job wants it)."""
    memberships = check_result(result, job.membership, job.k, f"{job.node} {job.stage}")
    final = bool(result.stop) or job.stage == splitter.stages(config)[-1]
    support = None
    if final and job.test_support:
        # a stage that keeps the previous split (a collapsed refinement) returns no
        # models; the previous stage's networks then stay the split's models
        models = result.models or job.stage_models or {}
        support = split_support(splitter, config, models, images, job, device)
    return StageOutcome(
        node=job.node,
        stage=job.stage,
        k=job.k,
        memberships=memberships,
        models=dict(result.models),
        metrics=dict(result.metrics),
        seconds=seconds,
        curves=dict(result.curves),
        final=final,
        support=support,
    )


def split_support(
    splitter: Any,
    config: Any,
    models: ModelState,
    images: torch.Tensor,
    job: StageJob,
    device: torch.device,
) -> Support:
    """Whether a split node's images support the split: its features averaged over views, or pixels."""
    seed = derive_seed(job.seed, job.node, "support")
    rows = sample_rows(job.membership, seed)
    subset = images[torch.from_numpy(rows).to(images.device)]
    if hasattr(splitter, "features") and models:
        embed = splitter.features(models, config, tuple(images.shape[1:]), device)
        feats = view_mean_features(embed, subset, config, seed)
    else:
        feats = subset.flatten(1).float().cpu().numpy()
    return node_support(feats, seed=seed)


# ---------------------------------------------------------------- in this process


class InlineExecutor:
    """Runs one stage at a time, here, with the grow loop's checkpoints and stop flag."""

    slots = 1

    def __init__(
        self,
        images: torch.Tensor,
        splitter: Any,
        config: Any,
        device: torch.device,
        checkpointer: Callable[[str, str], Checkpointer],
        progress: Progress,
        should_stop: Callable[[], bool],
    ) -> None:
        self.images, self.splitter, self.config, self.device = images, splitter, config, device
        self.checkpointer, self.progress, self.should_stop = checkpointer, progress, should_stop
        self._job: StageJob | None = None

    @property
    def running(self) -> set[str]:
        return set() if self._job is None else {self._job.node}

    def submit(self, job: StageJob, alone: bool = False) -> None:
        """Queue ``job`` (it runs on every thread of this process, alone or not)."""
        if self._job is not None:
            raise RuntimeError("the inline executor runs one stage at a time")
        self._job = job

    def wait(self) -> StageOutcome:
        job, self._job = self._job, None
        if job is None:
            raise RuntimeError("no stage was submitted")
        return run_job(
            job,
            self.images,
            self.splitter,
            self.config,
            self.device,
            self.checkpointer(job.node, job.stage),
            self.progress,
            self.should_stop,
            torch.get_num_threads(),
        )

    def __enter__(self) -> InlineExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._job = None


class TogetherExecutor(InlineExecutor):
    """Runs up to ``slots`` splits here, the same stage of several nodes trained as one
    batched step (``--batch-splits``: one launch per layer for all of them, for a GPU).

    ``wait`` hands back one outcome at a time; when none is left over from the last
    batch, it trains every submitted job of the first job's stage together.
    """

    def __init__(self, *args: Any, slots: int) -> None:
        super().__init__(*args)
        self.slots = slots
        self._jobs: list[StageJob] = []
        self._done: list[StageOutcome] = []

    @property
    def running(self) -> set[str]:
        return {job.node for job in self._jobs} | {outcome.node for outcome in self._done}

    def submit(self, job: StageJob, alone: bool = False) -> None:
        if job.node in self.running:
            raise RuntimeError(f"a stage of {job.node} is already submitted")
        self._jobs.append(job)

    def wait(self) -> StageOutcome:
        if not self._done:
            if not self._jobs:
                raise RuntimeError("no stage was submitted")
            stage = self._jobs[0].stage
            batch = [job for job in self._jobs if job.stage == stage]
            self._jobs = [job for job in self._jobs if job.stage != stage]
            self._done = run_jobs_together(batch, self.images, self.splitter, self.config,
                                           self.device, self.checkpointer, self.progress,
                                           self.should_stop)  # fmt: skip
        return self._done.pop(0)

    def __exit__(self, *exc: object) -> None:
        self._jobs, self._done = [], []
