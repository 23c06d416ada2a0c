"""The growth loop: pick the heaviest leaf, run the splitter's stages, commit.

The tree file is committed after every stage, and each stage saves mid-stage
checkpoints, so rerunning the same command after any interruption continues
where the last run stopped and ends with the same tree.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hctree.data import ImageSet
from hctree.engine import configure_threads, derive_seed, predict_in_batches, resolve_device
from hctree.errors import HCTreeError, Interrupted
from hctree.report import mix_text
from hctree.splitters import get_splitter, make_config
from hctree.splitters.base import (
    NullProgress,
    Progress,
    SplitContext,
    StageResult,
    config_from_json,
    config_to_json,
)
from hctree.store import (
    NodeRecord,
    StageRecord,
    StateFileError,
    TreeRecord,
    WriterLock,
    checkpoint_path,
    clear_checkpoint,
    load_checkpoint,
    read_models,
    read_tree,
    save_checkpoint,
    write_tree,
)
from hctree.support import Support, dip_test_split, sample_rows
from hctree.tree import CHILD_DIGITS, Tree, child_name

MASS_TOLERANCE = 1e-4
AUTO = "auto"
AUTO_MIN_FRACTION = 0.01  # --leaves auto never splits a leaf with less of the images


@dataclass
class FileCheckpointer:
    """Mid-stage checkpoints of one (node, stage) in the tree's sidecar file."""

    tree_path: Path
    node: str
    stage: str
    every: float
    progress: Progress = field(default_factory=NullProgress)
    last: float = 0.0

    def __post_init__(self) -> None:
        self.last = time.monotonic()

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None; an unreadable sidecar is ignored with a warning."""
        try:
            return load_checkpoint(self.tree_path, self.node, self.stage)
        except StateFileError as exc:
            self.progress.message(
                f"warning: ignoring the checkpoint {checkpoint_path(self.tree_path)} ({exc}); "
                f"{self.node} {self.stage} starts from its beginning."
            )
            return None

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every

    def save(self, state: dict[str, Any]) -> None:
        save_checkpoint(self.tree_path, self.node, self.stage, state)
        self.last = time.monotonic()


class StopFlag:
    """Set by SIGINT/SIGTERM while growing; stages poll it and checkpoint before stopping."""

    def __init__(self) -> None:
        self.raised = False

    def __call__(self) -> bool:
        return self.raised

    @contextmanager
    def installed(self) -> Iterator[None]:
        def handler(signum: int, frame: Any) -> None:
            self.raised = True

        try:
            previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: no signal handling
            yield
            return
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)


# ---------------------------------------------------------------- the tree record


def _new_record(
    data: ImageSet, splitter: str, preset: str, config: Any, seed: int, branching: int
) -> TreeRecord:
    c, h, w = data.image_shape
    attrs = {
        "dataset_fingerprint": data.fingerprint,
        "dataset_source": str(data.source),
        "data_spec": json.dumps(_absolute_spec(data.spec), sort_keys=True),
        "n": len(data),
        "image_shape": np.array([c, h, w], dtype=np.int64),
        "splitter": splitter,
        "preset": preset,
        "config_json": config_to_json(config),
        "seed": seed,
        "branching": branching,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "splits_done": 0,
    }
    root = NodeRecord(name="r", parent=None, depth=0, membership=np.ones(len(data), np.float32))
    return TreeRecord(
        attrs=attrs, nodes={"r": root}, labels=data.labels, class_names=data.class_names
    )


def _absolute_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The load spec with a path that still works from another folder (names stay names)."""
    if not spec.get("path"):
        return dict(spec)  # images given in memory: there is no path to record
    path = Path(str(spec["path"]))
    if path.exists():
        return {**spec, "path": str(path.resolve())}
    return dict(spec)


def _check_same(
    record: TreeRecord,
    path: Path,
    data: ImageSet,
    splitter: str,
    preset: str | None,
    overrides: dict[str, Any],
    seed: int | None,
    branching: int | None,
) -> Any:
    """Refuse options that contradict the stored tree; return the stored config."""
    attrs = record.attrs
    if seed is not None and int(attrs["seed"]) != seed:
        raise HCTreeError(f"{path} was grown with --seed {attrs['seed']}, not {seed}.")
    if attrs["dataset_fingerprint"] != data.fingerprint:
        raise HCTreeError(
            f"{path} was grown on different data ({attrs['dataset_source']}); "
            "pass the same data, or choose another output file with -o."
        )
    if attrs["splitter"] != splitter:
        raise HCTreeError(
            f"{path} was grown with --splitter {attrs['splitter']}, not {splitter}; "
            "choose another output file with -o to use a different splitter."
        )
    cls = get_splitter(splitter)
    stored = config_from_json(cls, attrs["config_json"])
    if preset is not None or overrides:
        wanted = make_config(cls, preset or attrs["preset"], overrides)
        if config_to_json(wanted) != config_to_json(stored):
            raise HCTreeError(
                f"{path} was grown with preset {attrs['preset']} and other settings than these; "
                "rerun without --preset/--set to continue it, or choose another output file with -o."
            )
    if branching is not None and int(attrs["branching"]) != branching:
        raise HCTreeError(
            f"{path} was grown with --branching {attrs['branching']}, not {branching}."
        )
    return stored


def _next_node(record: TreeRecord, auto: bool) -> NodeRecord | None:
    """A split in progress, else the leaf with the largest mass (ties by name).

    With ``auto``, leaves whose split the data did not support (status ``kept``) and
    leaves below ``AUTO_MIN_FRACTION`` of the images are passed over (None when no
    leaf is left); otherwise a ``kept`` leaf is a candidate like any other.
    """
    nodes = record.nodes.values()
    for node in nodes:
        if node.status == "splitting":
            return node
    if auto:
        smallest = AUTO_MIN_FRACTION * int(record.attrs["n"])
        leaves = [n for n in nodes if n.status == "leaf" and n.mass >= smallest]
    else:
        leaves = [n for n in nodes if n.status in ("leaf", "kept")]
    if not leaves:
        return None
    return min(leaves, key=lambda n: (-round(n.mass, 3), n.name))


def _leaf_count(record: TreeRecord) -> int:
    return sum(1 for n in record.nodes.values() if n.status != "split")


def _check_result(result: StageResult, parent: np.ndarray, k: int, where: str) -> np.ndarray:
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


def describe_split(record: TreeRecord, node: NodeRecord, top: int = 3) -> str:
    """One line per child: mass and, where labels exist, the classes holding most of it."""
    lines = [f"split {node.name} -> {', '.join(node.children)}"]
    for name in node.children:
        child = record.nodes[name]
        text = f"  {name}: mass {child.mass:,.0f} ({child.mass / max(node.mass, 1e-9):.0%})"
        if record.labels is not None:
            text += "  " + mix_text(record.labels, record.class_names, child.membership, top)
        lines.append(text)
    return "\n".join(lines)


# ---------------------------------------------------------------- the loop


def grow(
    data: ImageSet,
    out: str | os.PathLike,
    leaves: int | str,
    splitter: str = "hcmgan",
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
    device: str = "auto",
    seed: int | None = None,
    branching: int | None = None,
    checkpoint_every: float = 60.0,
    progress: Progress | None = None,
    threads: int | None = None,
    max_leaves: int = 20,
) -> Tree:
    """Grow (or resume growing) the tree in ``out`` until it has ``leaves`` leaves.

    ``leaves="auto"`` splits while the data support it (hctree.support: a split whose
    children do not form two modes keeps its node as a leaf), up to ``max_leaves``.

    A new file is created when ``out`` does not exist; otherwise the stored tree is
    continued, and options that contradict it raise HCTreeError. SIGINT/SIGTERM stop
    after a checkpoint (``hctree.errors.Interrupted``); rerunning resumes. ``threads``
    sets PyTorch's CPU threads (default: ``$HCTREE_THREADS`` or every core).
    """
    out = Path(out)
    progress = progress or NullProgress()
    overrides = dict(overrides or {})
    cls = get_splitter(splitter)
    torch_device = resolve_device(device)
    auto = leaves == AUTO
    if auto:
        leaves = max_leaves
    elif isinstance(leaves, str):
        raise HCTreeError(f"--leaves takes a number or 'auto', not {leaves!r}.")
    flag = "--max-leaves" if auto else "--leaves"
    if leaves < 2:
        raise HCTreeError(f"{flag} must be at least 2 (a tree needs a split), not {leaves}.")
    if leaves > len(data):
        raise HCTreeError(
            f"{flag} {leaves} is more than the {len(data)} images; ask for fewer leaves."
        )
    if branching is not None and branching < 2:
        raise HCTreeError(f"--branching must be at least 2, not {branching}.")
    if branching is not None and cls.max_branching is not None and branching > cls.max_branching:
        raise HCTreeError(
            f"splitter {splitter} splits into at most {cls.max_branching} children, not {branching}."
        )
    if checkpoint_every < 0:
        raise HCTreeError("--checkpoint-every must be zero or more seconds.")
    if torch_device.type == "cpu":
        configure_threads(threads)
    with WriterLock(out):
        if out.exists():
            record = read_tree(out)
            config = _check_same(record, out, data, splitter, preset, overrides, seed, branching)
            if leaves < _leaf_count(record) and not auto:
                raise HCTreeError(
                    f"{out} already has {_leaf_count(record)} leaves, more than --leaves {leaves}; "
                    "use `hctree eval --cut` or `render --cut` to look at fewer."
                )
        else:
            preset = preset or ("fast" if torch_device.type == "cuda" else "cpu")
            config = make_config(cls, preset, overrides)
            record = _new_record(data, splitter, preset, config, seed or 0, branching or 2)
            out.parent.mkdir(parents=True, exist_ok=True)
            write_tree(out, record)
        if _leaf_count(record) < leaves:
            progress.message(data.describe())
            goal = (
                f"at most {leaves} leaves, while the data support a split"
                if auto
                else (f"{leaves} leaves")
            )
            progress.message(f"growing {out} to {goal} on {torch_device.type}")
        _grow_loop(
            record,
            out,
            data,
            cls(),
            config,
            _Goal(leaves, auto),
            torch_device,
            checkpoint_every,
            progress,
        )
    return Tree(read_tree(out), out)


def _grow_loop(
    record: TreeRecord,
    out: Path,
    data: ImageSet,
    splitter: Any,
    config: Any,
    goal: _Goal,
    device: torch.device,
    checkpoint_every: float,
    progress: Progress,
) -> None:
    target = goal.leaves
    if _leaf_count(record) >= target:
        return
    images = torch.from_numpy(data.images).to(device)
    seed = int(record.attrs["seed"])
    stop = StopFlag()
    with stop.installed():
        while _leaf_count(record) < target:
            node = _next_node(record, goal.auto)
            if node is None:
                progress.message(
                    f"no leaf left whose split the data support: {_leaf_count(record)} leaves."
                )
                return
            if node.status == "kept":  # a split refused by an auto run, now wanted
                final = node.split_attrs["final_stage"]
                _finish_split(record, node, node.stages[final].memberships, final)
                write_tree(out, record)
                progress.message(describe_split(record, node))
                continue
            if node.status == "leaf":
                k = min(int(record.attrs["branching"]), target - _leaf_count(record) + 1)
            else:
                k = int(node.split_attrs["k"])
            _split(
                record,
                out,
                node,
                k,
                images,
                splitter,
                config,
                seed,
                device,
                checkpoint_every,
                progress,
                stop,
                goal.auto,
            )


def _split(
    record: TreeRecord,
    out: Path,
    node: NodeRecord,
    k: int,
    images: torch.Tensor,
    splitter: Any,
    config: Any,
    seed: int,
    device: torch.device,
    checkpoint_every: float,
    progress: Progress,
    stop: StopFlag,
    auto: bool = False,
) -> None:
    """Run the remaining stages of ``node``'s split, committing after each.

    After the final stage the split's support is tested (and stored); with ``auto``
    an unsupported split leaves the node a leaf, status ``kept``.
    """
    if node.mass <= 0:
        raise HCTreeError(f"node {node.name} has no mass left to split; grow fewer leaves.")
    stages = splitter.stages(config)
    parent = torch.from_numpy(node.membership).to(device)
    parent_models = read_models(out, node.parent) if node.parent else None
    for stage in stages[len(node.stages) :]:
        previous = None
        if node.stages:
            last = next(reversed(node.stages.values()))
            previous = torch.from_numpy(last.memberships).to(device)
        ctx = SplitContext(
            images=images,
            membership=parent,
            previous=previous,
            k=k,
            config=config,
            device=device,
            seed=derive_seed(seed, node.name, stage),
            checkpoint=FileCheckpointer(out, node.name, stage, checkpoint_every, progress),
            progress=progress,
            should_stop=stop,
            node=node.name,
            parent_models=parent_models,
            child_index=CHILD_DIGITS.index(node.name[-1]) if node.parent else 0,
            stage_models=read_models(out, node.name) if node.stages else None,
        )
        started = time.monotonic()
        result = splitter.run_stage(stage, ctx)
        memberships = _check_result(result, node.membership, k, f"{node.name} {stage}")
        node.stages[stage] = StageRecord(
            memberships, dict(result.metrics), time.monotonic() - started, dict(result.curves)
        )
        node.status = "splitting"
        node.split_attrs.update(k=k)
        final = result.stop or stage == stages[-1]
        kept = False
        if final:
            models = result.models or read_models(out, node.name)
            found = _support(splitter, config, models, images, node, memberships, seed, device)
            node.split_attrs.update(support_dip=found.dip, support_p=found.p_value)
            kept = auto and not found.supported
            if kept:
                node.status = "kept"
                node.split_attrs["final_stage"] = stage
            else:
                _finish_split(record, node, memberships, stage)
        # a stage that keeps the previous split (e.g. a collapsed refinement) returns no
        # models; the previous stage's networks then stay the split's models
        write_tree(out, record, models={node.name: result.models} if result.models else None)
        clear_checkpoint(out)
        if final:
            progress.message(
                f"{node.name} stays a leaf: its split has one mode (dip test p = "
                f"{node.split_attrs['support_p']:.2f})."
                if kept
                else describe_split(record, node)
            )
            return
        if stop():
            raise Interrupted()


@dataclass(frozen=True)
class _Goal:
    """How far to grow: ``leaves`` leaves, or with ``auto`` at most that many."""

    leaves: int
    auto: bool = False


def _support(
    splitter: Any,
    config: Any,
    models: dict[str, dict[str, np.ndarray]],
    images: torch.Tensor,
    node: NodeRecord,
    memberships: np.ndarray,
    seed: int,
    device: torch.device,
) -> Support:
    """The dip test of a finished split, in the splitter's features (pixels if it has none)."""
    rows = sample_rows(node.membership, derive_seed(seed, node.name, "support"))
    subset = images[torch.from_numpy(rows).to(images.device)]
    if hasattr(splitter, "features") and models:
        embed = splitter.features(models, config, tuple(images.shape[1:]), device)
    else:
        embed = lambda x: x.flatten(1)  # noqa: E731
    feats = predict_in_batches(embed, subset, 1024).cpu().numpy()
    return dip_test_split(feats, memberships[:, rows])


def _finish_split(
    record: TreeRecord, node: NodeRecord, memberships: np.ndarray, stage: str
) -> None:
    node.children = [child_name(node.name, i) for i in range(memberships.shape[0])]
    for name, row in zip(node.children, memberships, strict=True):
        record.nodes[name] = NodeRecord(
            name=name, parent=node.name, depth=node.depth + 1, membership=row.copy()
        )
    node.status = "split"
    node.split_order = int(record.attrs.get("splits_done", 0))
    node.split_attrs["final_stage"] = stage
    record.attrs["splits_done"] = node.split_order + 1
