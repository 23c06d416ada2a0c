"""Splits on Ray workers: ``hctree grow ... --workers N [--ray-address ADDRESS]``.

Each stage of a split is one Ray task. A task gets the images (put once in Ray's
object store), its :class:`~hctree.schedule.StageJob` and the checkpoint to start
from, and returns a :class:`~hctree.schedule.StageOutcome`. Workers never touch the
tree file: their mid-stage checkpoints travel back through a Ray queue as hctree's
own serialised state (plain arrays, never code) and the driver writes them to the
node's sidecar. A task whose worker process dies is retried by Ray from the last
checkpoint the driver handed it; every stage is seeded by node and stage, so a
retried or resumed stage repeats itself.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np
import torch

from hctree.data import ImageSet
from hctree.engine import configure_threads, deterministic_kernels
from hctree.errors import HCTreeError, Interrupted
from hctree.schedule import StageJob, StageOutcome, run_job
from hctree.splitters.base import NullProgress, Progress
from hctree.statefile import StateFileError, state_from_bytes, state_to_bytes
from hctree.store import WORKER_ENV, checkpoint_path, load_checkpoint, save_checkpoint

RETRIES = 3  # a task whose worker process died is run again this many times
POLL_SECONDS = 0.5


def require_ray() -> Any:
    """The ray module, or one sentence on how to get it."""
    try:
        import ray
    except ImportError:
        raise HCTreeError(
            "--workers above 1 runs splits on Ray, which is not installed; "
            "install it with `pip install 'hctree[ray]'`."
        ) from None
    return ray


class _QueueCheckpointer:
    """A worker's checkpointer: starts from the state it was given, sends saves home."""

    def __init__(self, start: bytes | None, queue: Any, node: str, stage: str, every: float):
        self.start, self.queue, self.node, self.stage, self.every = start, queue, node, stage, every
        self.last = time.monotonic()

    def load(self) -> dict[str, Any] | None:
        return None if self.start is None else state_from_bytes(self.start)

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every

    def save(self, state: dict[str, Any]) -> None:
        self.queue.put((self.node, self.stage, state_to_bytes(state)))
        self.last = time.monotonic()


def _run_task(
    job: StageJob,
    start: bytes | None,
    images: np.ndarray,
    splitter_name: str,
    config: Any,
    device: str,
    threads: int,
    cores: int,
    queue: Any,
    every: float,
    deterministic: bool,
) -> StageOutcome:
    """The body of one Ray task (runs in a worker process)."""
    from hctree.splitters import get_splitter

    os.environ[WORKER_ENV] = "1"
    torch_device = torch.device(device)
    if torch_device.type == "cpu":
        configure_threads(threads)
    tensor = torch.from_numpy(np.array(images)).to(torch_device)
    checkpoint = _QueueCheckpointer(start, queue, job.node, job.stage, every)
    splitter = get_splitter(splitter_name)()
    with deterministic_kernels(deterministic):
        return run_job(job, tensor, splitter, config, torch_device, checkpoint, NullProgress(),
                       lambda: False, cores)  # fmt: skip


def largest_node_cpus(ray: Any) -> float:
    """The most CPUs that one living node of the Ray cluster has."""
    return max((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n["Alive"]), default=0.0)


def task_cores(threads: int, slots: int, alone: bool, largest_node: float) -> int:
    """The cores a stage's task uses, and so reserves from Ray: its ``threads``, or,
    for a stage that runs ``alone``, every slot's threads where one node has them.

    A task that used more cores than it reserved would let Ray place other tasks on
    cores already busy, so a task reserves what this returns (at most a node's CPUs).
    """
    spread = threads * slots
    return spread if alone and spread <= largest_node else threads


class RayExecutor:
    """Runs up to ``workers.count`` stages at once as Ray tasks; the driver writes."""

    def __init__(
        self,
        data: ImageSet,
        splitter: Any,
        config: Any,
        device: torch.device,
        out: Any,
        checkpoint_every: float,
        progress: Progress,
        should_stop: Any,
        workers: Any,
    ) -> None:
        ray = require_ray()
        from ray.util.queue import Queue

        self.ray, self.out, self.progress, self.should_stop = ray, out, progress, should_stop
        self.slots = workers.count
        self.every = checkpoint_every
        self.deterministic = workers.deterministic
        cores = len(os.sched_getaffinity(0))
        self.threads = workers.threads or max(1, cores // workers.count)
        self.started_ray = not ray.is_initialized()
        if self.started_ray:
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,  # hctree reports progress itself
            }
            if workers.address:
                options["address"] = workers.address
            else:
                options["num_cpus"] = workers.count * self.threads
            try:
                ray.init(**options)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise HCTreeError(f"cannot start or join Ray ({exc}).") from None
        self.largest_node = largest_node_cpus(ray)
        gpus = 1.0 / workers.count if device.type == "cuda" else 0
        self.task = ray.remote(num_gpus=gpus, max_retries=RETRIES)(_run_task)
        self.queue = Queue(actor_options={"num_cpus": 0})
        self.images = ray.put(data.images)
        self.splitter_name, self.config, self.device = splitter.name, config, device.type
        self.refs: dict[str, Any] = {}  # node -> the running task's result

    @property
    def running(self) -> set[str]:
        return set(self.refs)

    def submit(self, job: StageJob, alone: bool = False) -> None:
        """Start ``job`` on a worker. A job that runs ``alone`` may spread its one-thread
        shards (hctree.shards) over every worker's cores, which leaves its bits as they are."""
        start = self._start_state(job.node, job.stage)
        self.progress.message(f"{job.node} {job.stage}: started on a worker.")
        cores = task_cores(self.threads, self.slots, alone, self.largest_node)
        reserve = min(cores, self.largest_node) or cores  # more would never start
        self.refs[job.node] = self.task.options(num_cpus=reserve).remote(
            job, start, self.images, self.splitter_name, self.config, self.device,
            self.threads, cores, self.queue, self.every, self.deterministic,
        )  # fmt: skip

    def _start_state(self, node: str, stage: str) -> bytes | None:
        try:
            state = load_checkpoint(self.out, node, stage)
        except StateFileError as exc:
            self.progress.message(
                f"warning: ignoring the checkpoint {checkpoint_path(self.out, node)} ({exc}); "
                f"{node} {stage} starts from its beginning."
            )
            return None
        return None if state is None else state_to_bytes(state)

    def wait(self) -> StageOutcome:
        """The next stage to finish; checkpoints arriving meanwhile are written."""
        ray = self.ray
        while True:
            ready, _ = ray.wait(list(self.refs.values()), num_returns=1, timeout=POLL_SECONDS)
            self._drain()
            if self.should_stop():
                raise Interrupted()
            if not ready:
                continue
            node = next(n for n, ref in self.refs.items() if ref == ready[0])
            del self.refs[node]
            try:
                outcome = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                raise exc.as_instanceof_cause() from None
            self.progress.message(
                f"{outcome.node} {outcome.stage}: done ({outcome.seconds:.0f} s)."
            )
            return outcome

    def _drain(self) -> None:
        """Write every checkpoint the workers have sent, newest last."""
        while not self.queue.empty():
            node, stage, blob = self.queue.get_nowait()
            if node in self.refs:  # a finished stage's late checkpoint is not wanted
                save_checkpoint(self.out, node, stage, state_from_bytes(blob), own_file=True)

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for ref in self.refs.values():
            self.ray.cancel(ref, force=True)
        self.refs.clear()
        self.ray.kill(self.queue.actor)
        if self.started_ray:
            self.ray.shutdown()
