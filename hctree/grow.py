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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hctree import prepare
from hctree.data import ImageSet, resized
from hctree.engine import configure_threads, deterministic_kernels, resolve_device
from hctree.errors import HCTreeError, Interrupted
from hctree.report import mix_text
from hctree.schedule import (
    LEAF_ORDERS,
    Goal,
    InlineExecutor,
    StageOutcome,
    TogetherExecutor,
    candidates,
    children_wanted,
    frontier,
    leaf_count,
    next_job,
    support_tested,
    support_wanted,
)
from hctree.splitters import get_splitter, make_config
from hctree.splitters.base import NullProgress, Progress, config_from_json, config_to_json
from hctree.store import (
    NodeRecord,
    StageRecord,
    StateFileError,
    TreeRecord,
    WriterLock,
    checkpoint_nodes,
    checkpoint_path,
    clear_checkpoint,
    load_checkpoint,
    read_models,
    read_tree,
    save_checkpoint,
    write_tree,
)
from hctree.support import Support
from hctree.tree import Tree, child_name

AUTO = "auto"


@dataclass(frozen=True)
class Workers:
    """How many splits run at once (``count`` > 1: on Ray), and where."""

    count: int = 1
    address: str | None = None  # an existing Ray cluster; None starts one here
    threads: int | None = None  # CPU threads per worker (default: cores / count)
    deterministic: bool = False  # deterministic kernels only (engine.deterministic_kernels)
    together: int = 1  # splits trained as one batched step in this process (count == 1)


@dataclass
class FileCheckpointer:
    """Mid-stage checkpoints of one (node, stage) in the tree's sidecar file (the
    node's own sidecar with ``own_file``, when several nodes train at once)."""

    tree_path: Path
    node: str
    stage: str
    every: float
    progress: Progress = field(default_factory=NullProgress)
    last: float = 0.0
    own_file: bool = False

    def __post_init__(self) -> None:
        self.last = time.monotonic()

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None; an unreadable sidecar is ignored with a warning."""
        try:
            return load_checkpoint(self.tree_path, self.node, self.stage)
        except StateFileError as exc:
            sidecar = checkpoint_path(self.tree_path, self.node if self.own_file else None)
            self.progress.message(
                f"warning: ignoring the checkpoint {sidecar} ({exc}); "
                f"{self.node} {self.stage} starts from its beginning."
            )
            return None

    def due(self) -> bool:
        return time.monotonic() - self.last >= self.every

    def save(self, state: dict[str, Any]) -> None:
        save_checkpoint(self.tree_path, self.node, self.stage, state, own_file=self.own_file)
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
    data: ImageSet,
    splitter: str,
    preset: str,
    config: Any,
    seed: int,
    branching: int,
    leaf_order: str,
    decisions: prepare.Decisions,
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
        "leaf_order": leaf_order,
        **decisions.rules,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "splits_done": 0,
    }
    root = NodeRecord(name="r", parent=None, depth=0, membership=np.ones(len(data), np.float32))
    return TreeRecord(
        attrs=attrs,
        nodes={"r": root},
        labels=data.labels,
        class_names=data.class_names,
        prepared=decisions.arrays,
    )


def _absolute_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The load spec with a path that still works from another folder (names stay names)."""
    if not spec.get("path"):
        return dict(spec)  # images given in memory: there is no path to record
    path = Path(str(spec["path"]))
    if path.exists():
        return {**spec, "path": str(path.resolve())}
    return dict(spec)


def _a_size_the_networks_take(data: ImageSet, cls: Any, progress: Progress) -> ImageSet:
    """``data`` resized to a size the splitter's networks take (``cls.image_sizes``,
    square) when they cannot take it as it is and no size was asked for: the smallest
    that is not smaller, else the largest. A note says so; the spec records the size,
    so the same command resumes and other commands reload the same images."""
    sizes = getattr(cls, "image_sizes", ())
    _, height, width = data.image_shape
    if not sizes or data.spec.get("size") is not None or (height == width and height in sizes):
        return data
    size = min((s for s in sizes if s >= max(height, width)), default=max(sizes))
    progress.message(
        f"{cls.name} networks take {', '.join(map(str, sizes))} px square images: "
        f"resizing the {height}x{width} images to {size}x{size} (--size chooses another)."
    )
    return resized(data, size)


def _check_same(
    record: TreeRecord,
    path: Path,
    data: ImageSet,
    splitter: str,
    preset: str | None,
    overrides: dict[str, Any],
    seed: int | None,
    branching: int | None,
    leaf_order: str | None = None,
) -> Any:
    """Refuse options that contradict the stored tree; return the stored config."""
    attrs = record.attrs
    stored_order = str(attrs.get("leaf_order", "mass"))
    if leaf_order is not None and leaf_order != stored_order:
        raise HCTreeError(f"{path} was grown with --leaf-order {stored_order}, not {leaf_order}.")
    if seed is not None and int(attrs["seed"]) != seed:
        raise HCTreeError(f"{path} was grown with --seed {attrs['seed']}, not {seed}.")
    if attrs["dataset_fingerprint"] != data.fingerprint:
        stored_shape = "x".join(str(int(v)) for v in attrs["image_shape"])
        shape = "x".join(str(int(v)) for v in data.image_shape)
        if stored_shape != shape:
            raise HCTreeError(
                f"{path} was grown on {stored_shape} images ({attrs['dataset_source']}), not "
                f"{shape}; pass the same --size and --channels, or choose another output file "
                "with -o."
            )
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


def _check_rules(record: TreeRecord, path: Path, data: ImageSet, modes: dict) -> None:
    """Refuse a set rule's option (``--polarity``, ``--orientation`` ...) that would decide
    otherwise than the stored tree (hctree.prepare)."""
    have = prepare.stored(record)
    clashes = prepare.conflicts(data.images, have, modes)
    if clashes:
        name = clashes[0]
        raise HCTreeError(
            f"{path} was grown with its images' {name} {have[name]}, "
            f"which --{name} {modes[name]} would change; rerun without --{name} to continue it."
        )


def training_images(record: TreeRecord, data: ImageSet) -> tuple[ImageSet, dict[str, int]]:
    """The images the splitters see under the tree's stored decisions (hctree.prepare),
    and how many images each acting rule changed (``data`` itself when none acts)."""
    images, counts = prepare.apply_counted(data.images, prepare.stored(record))
    if images is data.images:
        return data, {}
    return replace(data, images=images), counts


_RULE_MESSAGES = {
    "colour": "colour: each image holds a single colour, which differs between images; {n} "
    "images are trained on without it, as grey pictures (--colour off keeps them as given)",
    "polarity": "polarity: the images mix dark and light backgrounds; the {n} on a light one "
    "are inverted for training (--polarity off keeps them as given)",
    "levels": "levels: the images' exposure varies; {n} of them are stretched from black to "
    "white for training (--levels off keeps them as given)",
    "position": "position: the objects sit at varying places; {n} images are moved to put "
    "each object's bounding box in the middle for training (--position off keeps them as given)",
    "scale": "scale: the objects come at varying sizes; {n} images are resampled so that each "
    "object fills the frame for training (--scale off keeps them as given)",
    "orientation": "orientation: the objects come tilted by varying angles; {n} images are "
    "turned back by the tilt that lines each up with the images most like it, for training "
    "(--orientation off keeps them as given)",
}


def describe_split(record: TreeRecord, node: NodeRecord, where: str = "", top: int = 3) -> str:
    """One line per child: mass and, where labels exist, the classes holding most of it;
    ``where`` (how far the tree has grown, say) follows the first line in brackets."""
    lines = [f"split {node.name} -> {', '.join(node.children)}" + (f" ({where})" if where else "")]
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
    workers: int = 1,
    ray_address: str | None = None,
    deterministic: bool = False,
    leaf_order: str | None = None,
    polarity: str | None = None,
    levels: str | None = None,
    position: str | None = None,
    scale: str | None = None,
    batch_splits: int = 1,
    orientation: str | None = None,
    colour: str | None = None,
) -> Tree:
    """Grow (or resume growing) the tree in ``out`` until it has ``leaves`` leaves.

    ``leaves="auto"`` splits while the data support it (hctree.support: a split whose
    children do not form two modes keeps its node as a leaf), up to ``max_leaves``.
    A fixed count splits the heaviest leaf next (``leaf_order="mass"``, the default);
    ``"supported"`` passes over a leaf whose split the data do not support while
    another leaf's split is left to try (stored with the tree).

    A new file is created when ``out`` does not exist; otherwise the stored tree is
    continued, and options that contradict it raise HCTreeError. SIGINT/SIGTERM stop
    after a checkpoint (``hctree.errors.Interrupted``); rerunning resumes. ``threads``
    sets PyTorch's CPU threads (default: ``$HCTREE_THREADS`` or every core).

    ``workers`` > 1 runs that many splits at once on Ray workers (``ray_address``: an
    existing cluster; default a local one), each with ``threads`` threads (default:
    cores / workers); only this process writes the file, and with the same
    ``threads`` the tree is the one a single worker grows (hctree.schedule).
    ``deterministic`` trains with deterministic kernels only, so that a CUDA run
    repeats itself exactly (CPU runs do already). ``polarity`` ("auto", the default
    for a new tree, or "off"): whether a set that mixes dark and light plain
    backgrounds is trained on with every image on a dark one (hctree.polarity); the
    decision is stored with the tree. ``levels`` (the same choices): whether a set
    whose exposure varies is trained on with every image stretched from black to
    white (hctree.levels), after the polarity rule. ``position`` (the same choices):
    whether a set whose objects sit at varying places is trained on with every image
    moved to put its object's bounding box in the middle (hctree.position), after the levels
    rule. ``scale`` (the same choices): whether a set whose objects come at varying
    sizes is trained on with every object resampled to fill the frame (hctree.scale),
    after the position rule. ``orientation`` (the same choices): whether a set whose
    objects come tilted by varying angles is trained on with every image turned back
    by its tilt (hctree.orientation), after the scale rule. ``colour`` (the same
    choices, decided first; None is off): whether a colour set whose images each
    hold a single colour is trained on without it (hctree.colour). ``batch_splits`` > 1 trains up
    to that many leaves' splits at once in this process, the same stage of several
    nodes as one batched step (a GPU option; the same computation up to float
    rounding, hctree.splitters.hcmgan_frontier).
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
    modes = {
        "colour": colour,
        "polarity": polarity,
        "levels": levels,
        "position": position,
        "scale": scale,
        "orientation": orientation,
    }
    prepare.check_modes(modes)
    if leaf_order is not None and leaf_order not in LEAF_ORDERS:
        raise HCTreeError(
            f"--leaf-order must be one of {', '.join(LEAF_ORDERS)}, not {leaf_order!r}."
        )
    if branching is not None and cls.max_branching is not None and branching > cls.max_branching:
        raise HCTreeError(
            f"splitter {splitter} splits into at most {cls.max_branching} children, not {branching}."
        )
    if checkpoint_every < 0:
        raise HCTreeError("--checkpoint-every must be zero or more seconds.")
    data = _a_size_the_networks_take(data, cls, progress)
    if hasattr(cls, "check_images"):  # before a new file is written
        cls.check_images(tuple(data.image_shape))
    if not isinstance(workers, int) or workers < 1:
        raise HCTreeError(f"--workers must be at least 1, not {workers}.")
    if not isinstance(batch_splits, int) or batch_splits < 1:
        raise HCTreeError(f"--batch-splits must be at least 1, not {batch_splits}.")
    if batch_splits > 1 and workers > 1:
        raise HCTreeError("--batch-splits runs splits in this process; use it without --workers.")
    if workers > 1:
        from hctree.workers import require_ray

        require_ray()
    if torch_device.type == "cpu" and workers == 1:
        configure_threads(threads)
    with WriterLock(out):
        if out.exists():
            record = read_tree(out)
            config = _check_same(
                record, out, data, splitter, preset, overrides, seed, branching, leaf_order
            )
            _check_rules(record, out, data, modes)
            if leaves < leaf_count(record) and not auto:
                raise HCTreeError(
                    f"{out} already has {leaf_count(record)} leaves, more than --leaves {leaves}; "
                    "use `hctree eval --cut` or `render --cut` to look at fewer."
                )
        else:
            preset = preset or ("fast" if torch_device.type == "cuda" else "cpu")
            config = make_config(cls, preset, overrides)
            decisions = prepare.decide(data.images, modes)
            record = _new_record(data, splitter, preset, config, seed or 0, branching or 2,
                                 leaf_order or "mass", decisions)  # fmt: skip
            out.parent.mkdir(parents=True, exist_ok=True)
            write_tree(out, record)
        if leaf_count(record) < leaves:
            progress.message(data.describe())
            goal = (
                f"at most {leaves} leaves, while the data support a split"
                if auto
                else (f"{leaves} leaves")
            )
            progress.message(f"growing {out} to {goal} on {torch_device.type}")
        seen, changed = training_images(record, data)
        if leaf_count(record) < leaves:
            for name, count in changed.items():
                progress.message(_RULE_MESSAGES[name].format(n=count))
        _grow_loop(
            record,
            out,
            seen,
            cls(),
            config,
            Goal(leaves, auto),
            torch_device,
            checkpoint_every,
            progress,
            Workers(workers, ray_address, threads, deterministic, batch_splits),
        )
    return Tree(read_tree(out), out)


def _grow_loop(
    record: TreeRecord,
    out: Path,
    data: ImageSet,
    splitter: Any,
    config: Any,
    goal: Goal,
    device: torch.device,
    checkpoint_every: float,
    progress: Progress,
    workers: Workers,
) -> None:
    """Run the splits the tree needs, up to ``workers.count`` at once, committing in turn.

    Every finished stage is written to the file at once (a finished split waits
    as ``ready``); a ready split is committed when the single-worker rule reaches
    it, so the tree is the same for any number of workers (hctree.schedule).
    """
    if leaf_count(record) >= goal.leaves:
        return
    stop = StopFlag()
    stages = splitter.stages(config)
    models_of = lambda name: read_models(out, name)  # noqa: E731
    with (
        deterministic_kernels(workers.deterministic),
        stop.installed(),
        _executor(
            data, splitter, config, device, out, checkpoint_every, progress, stop, workers
        ) as executor,
    ):
        _commit_turns(record, out, goal, progress)
        while leaf_count(record) < goal.leaves:
            todo = frontier(record, goal, executor.slots)
            if not todo and not executor.running:
                progress.message(
                    f"no leaf left whose split the data support: {leaf_count(record)} leaves."
                )
                return
            new = [(node, k) for node, k in todo if node.name not in executor.running]
            alone = len(new) == 1 and not executor.running  # its shards may use every core
            for node, k in new:
                if node.mass <= 0:
                    raise HCTreeError(
                        f"node {node.name} has no mass left to split; grow fewer leaves."
                    )
                executor.submit(next_job(record, node, k, stages, models_of, goal), alone)
            outcome = executor.wait()
            node = record.nodes[outcome.node]
            _store_stage(node, outcome)
            _commit_turns(record, out, goal, progress, write=False)
            write_tree(out, record, models={node.name: outcome.models} if outcome.models else None)
            clear_checkpoint(out, node.name)
            if stop():
                raise Interrupted()
    for sidecar in checkpoint_nodes(out):  # splits run ahead that the goal did not need
        sidecar.unlink(missing_ok=True)


def _executor(
    data: ImageSet,
    splitter: Any,
    config: Any,
    device: torch.device,
    out: Path,
    checkpoint_every: float,
    progress: Progress,
    stop: StopFlag,
    workers: Workers,
) -> Any:
    """The executor for ``workers``: this process, or Ray workers."""
    if workers.count > 1:
        from hctree.workers import RayExecutor

        return RayExecutor(data, splitter, config, device, out, checkpoint_every, progress,
                           stop, workers)  # fmt: skip
    images = torch.from_numpy(data.images).to(device)

    def checkpointer(node: str, stage: str) -> FileCheckpointer:
        own_file = workers.together > 1  # nodes trained at once keep their own sidecars
        return FileCheckpointer(out, node, stage, checkpoint_every, progress, own_file=own_file)

    if workers.together > 1:
        return TogetherExecutor(images, splitter, config, device, checkpointer, progress, stop,
                                slots=workers.together)  # fmt: skip
    return InlineExecutor(images, splitter, config, device, checkpointer, progress, stop)


def _store_stage(node: NodeRecord, outcome: StageOutcome) -> None:
    """Record a finished stage; after the split's last one the node is ``ready``."""
    node.stages[outcome.stage] = StageRecord(
        outcome.memberships, outcome.metrics, outcome.seconds, outcome.curves
    )
    node.status = "splitting"
    node.split_attrs.update(k=outcome.k)
    if outcome.final:
        node.status = "ready"
        node.split_attrs["final_stage"] = outcome.stage
        if outcome.support is not None:
            node.split_attrs.update(
                support_cut=outcome.support.cut, support_reference=outcome.support.reference
            )


def _commit_turns(
    record: TreeRecord, out: Path, goal: Goal, progress: Progress, write: bool = True
) -> None:
    """Commit finished splits while the next leaf in turn has one."""
    changed = False
    while leaf_count(record) < goal.leaves:
        waiting = candidates(record, goal.auto)
        if not waiting or waiting[0].status not in ("ready", "kept"):
            break
        node = waiting[0]
        final = node.split_attrs["final_stage"]
        changed = True
        if node.status == "ready" and int(node.split_attrs["k"]) != children_wanted(record, goal):
            _split_again(node)  # run ahead of its turn with another k
            break
        judged = support_wanted(record, goal)
        if judged and node.status == "ready" and not support_tested(node):
            # run without the test (a fixed count ran it ahead); now the rule reads it
            progress.message(f"{node.name}: split again, with the support test it was run without.")
            _split_again(node)
            break
        support = _support(node) if node.status == "ready" and judged else None
        if support is not None and not support.supported:
            node.status = "kept"
            later = "" if goal.auto else "; other leaves first"
            progress.message(
                f"{node.name} stays a leaf{later}: its images form one cluster (its thinnest cut "
                f"is {support.ratio:.2f} of a like Gaussian's; a split needs < {support.threshold})."
            )
            continue
        _finish_split(record, node, node.stages[final].memberships, final)
        of = f"at most {goal.leaves}" if goal.auto else str(goal.leaves)
        progress.message(describe_split(record, node, f"{leaf_count(record)} of {of} leaves"))
    if changed and write:
        write_tree(out, record)


def _split_again(node: NodeRecord) -> None:
    """Forget a finished split that cannot be committed as it is: the node is a leaf
    to be split again."""
    node.stages.clear()
    node.split_attrs.clear()
    node.status = "leaf"


def _support(node: NodeRecord) -> Support:
    """The stored support test of a ready split, judged by the one rule in hctree.support."""
    attrs = node.split_attrs
    if "support_cut" not in attrs:  # written before the cut test: keep its dip decision
        return Support(0.0 if float(attrs.get("support_p", 0.0)) < 0.05 else 1.0, 1.0)
    return Support(float(attrs["support_cut"]), float(attrs["support_reference"]))


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
