"""The tree file: one HDF5 file holding the whole tree, written atomically.

Schema (docs/schema.md is the authority)::

    /                         attrs: format, format_version, hctree_version, created, ...
    /labels                   int64 [N] (optional), attrs class_names
    /prepared/<rule>/<array>  what a set rule fitted (optional; hctree.prepare)
    /nodes/<name>             attrs: parent, children, depth, status, split_order, mass
    /nodes/<name>/membership  float32 [N]
    /nodes/<name>/split       attrs: k, stages_done, final_stage, seed
    /nodes/<name>/split/<stage>/memberships   float32 [k, N], attrs metrics, seconds
    /nodes/<name>/split/models/<component>/<param>

Durability: a commit never edits the file in place. It writes a complete new
file beside it (carrying stored models over with HDF5's object copy), fsyncs it,
and ``os.replace``s it over the old one, so a kill at any instant leaves either
the old or the new tree. Mid-stage state goes to the sidecar ``<tree>.ckpt.h5``
with the same discipline. ``WriterLock`` keeps a second writer out.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hctree import __version__
from hctree.errors import HCTreeError
from hctree.statefile import StateFileError, read_state, write_state

FORMAT = "hctree"
FORMAT_VERSION = 1
STATUSES = ("leaf", "splitting", "ready", "split", "kept")
WORKER_ENV = "HCTREE_RAY_WORKER"  # set in Ray worker processes, which must never write files

ModelState = dict[str, dict[str, np.ndarray]]


@dataclass
class StageRecord:
    """One finished stage of a split: memberships float32 ``[k, N]``."""

    memberships: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    curves: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class NodeRecord:
    """One node. ``membership`` is float32 ``[N]``; ``stages`` is ordered by run."""

    name: str
    parent: str | None
    depth: int
    membership: np.ndarray
    children: list[str] = field(default_factory=list)
    status: str = "leaf"
    split_order: int = -1
    stages: dict[str, StageRecord] = field(default_factory=dict)
    split_attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def mass(self) -> float:
        return float(self.membership.sum(dtype=np.float64))


@dataclass
class TreeRecord:
    """Everything in a tree file except the stored models (read lazily)."""

    attrs: dict[str, Any]
    nodes: dict[str, NodeRecord]
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    prepared: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


# ---------------------------------------------------------------- atomic files


def _fsync_dir(path: Path) -> None:
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reason(exc: Exception) -> str:
    """A short cause of a failed write (h5py hides errno in its message)."""
    if getattr(exc, "strerror", None):
        return exc.strerror.lower()
    text = str(exc).lower()
    for words in ("no space left", "file too large", "permission denied", "read-only"):
        if words in text:
            return words
    return "the write failed"


def _atomic_h5(path: Path, fill) -> None:
    """Write an HDF5 file through ``fill(h5file)`` into a temp file, fsync, rename over ``path``."""
    if os.environ.get(WORKER_ENV):
        raise RuntimeError(f"a worker process tried to write {path}; only the driver writes")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            with h5py.File(tmp, "w", locking=False) as f:
                fill(f)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        except (OSError, RuntimeError) as exc:  # h5py reports a failed write at close
            before = "is unchanged" if path.exists() else "was not created"
            raise HCTreeError(
                f"cannot write {path.name} in {path.parent} ({_reason(exc)}); the file {before}: "
                "free disk space, or choose a writable folder with -o."
            ) from None
        os.replace(tmp, path)
        _fsync_dir(path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _open_read(path: Path) -> h5py.File:
    """Open an existing tree-like HDF5 file read-only, with a clear error if it is not one."""
    if not path.exists():
        raise HCTreeError(f"tree file {path} does not exist; grow one with `hctree grow`.")
    if not h5py.is_hdf5(path):
        raise HCTreeError(f"{path} is not an HDF5 file, so it cannot be an hctree tree file.")
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as exc:
        raise HCTreeError(
            f"{path} cannot be opened as HDF5 ({exc}); the file is damaged."
        ) from None


def check_format(f: h5py.File, path: Path) -> None:
    """Refuse files that are not hctree trees or come from a newer hctree."""
    if f.attrs.get("format") != FORMAT:
        raise HCTreeError(f"{path} is an HDF5 file but not an hctree tree file.")
    version = int(f.attrs.get("format_version", -1))
    if version > FORMAT_VERSION:
        raise HCTreeError(
            f"{path} has format version {version}, newer than this hctree reads ({FORMAT_VERSION}); "
            "upgrade hctree."
        )
    if version < 1:
        raise HCTreeError(f"{path} has an invalid format version {version}.")


# ---------------------------------------------------------------- reading


def _attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def read_tree(path: str | os.PathLike, stages: bool = True) -> TreeRecord:
    """Load a tree file (without its models). ``stages=False`` skips stage memberships."""
    path = Path(path)
    with _open_read(path) as f:
        check_format(f, path)
        try:
            return _read_record(f, stages)
        except (KeyError, ValueError, OSError, json.JSONDecodeError) as exc:
            raise HCTreeError(
                f"{path} is damaged ({exc}); restore it or grow a new tree."
            ) from None


def _read_record(f: h5py.File, stages: bool) -> TreeRecord:
    attrs = {k: _attr(v) for k, v in f.attrs.items()}
    labels = class_names = None
    if "labels" in f:
        labels = f["labels"][...].astype(np.int64)
        names = f["labels"].attrs.get("class_names")
        class_names = json.loads(_attr(names)) if names is not None else None
    prepared = _read_prepared(f)
    nodes: dict[str, NodeRecord] = {}
    for name, g in f["nodes"].items():
        node = NodeRecord(
            name=name,
            parent=_attr(g.attrs["parent"]) or None,
            depth=int(g.attrs["depth"]),
            membership=g["membership"][...],
            children=json.loads(_attr(g.attrs["children"])),
            status=_attr(g.attrs["status"]),
            split_order=int(g.attrs["split_order"]),
        )
        if "split" in g:
            split = g["split"]
            node.split_attrs = {k: _attr(v) for k, v in split.attrs.items()}
            for stage in json.loads(node.split_attrs.get("stages_done", "[]")):
                sg = split[stage]
                node.stages[stage] = StageRecord(
                    memberships=sg["memberships"][...] if stages else np.empty((0, 0), np.float32),
                    metrics=json.loads(_attr(sg.attrs["metrics"])),
                    seconds=float(sg.attrs["seconds"]),
                    curves={k: v[...] for k, v in sg["curves"].items()} if "curves" in sg else {},
                )
        nodes[name] = node
    return TreeRecord(
        attrs=attrs, nodes=nodes, labels=labels, class_names=class_names, prepared=prepared
    )


def _read_prepared(f: h5py.File) -> dict[str, dict[str, np.ndarray]]:
    """The set rules' fitted arrays under ``/prepared`` (ValueError for anything else there)."""
    out: dict[str, dict[str, np.ndarray]] = {}
    top = f.get("prepared", {})
    if not isinstance(top, h5py.Group | dict):
        raise ValueError("/prepared is not a group")
    for rule, group in top.items():
        if not isinstance(group, h5py.Group):
            raise ValueError(f"/prepared/{rule} is not a group")
        out[rule] = {}
        for name, ds in group.items():
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu":
                raise ValueError(f"/prepared/{rule}/{name} is not an array of numbers")
            out[rule][name] = ds[...]
    return out


def read_models(path: str | os.PathLike, node: str) -> ModelState:
    """The final models stored for ``node``'s split (empty dict if none)."""
    path = Path(path)
    with _open_read(path) as f:
        check_format(f, path)
        key = f"nodes/{node}/split/models"
        if key not in f:
            return {}
        return {
            comp: {param: ds[...] for param, ds in group.items()} for comp, group in f[key].items()
        }


# ---------------------------------------------------------------- writing


def _write_record(f: h5py.File, record: TreeRecord) -> None:
    for key, value in record.attrs.items():
        f.attrs[key] = value
    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["hctree_version"] = __version__
    if record.labels is not None:
        ds = f.create_dataset("labels", data=record.labels.astype(np.int64), compression="gzip")
        if record.class_names is not None:
            ds.attrs["class_names"] = json.dumps(list(record.class_names))
    for rule, arrays in record.prepared.items():
        group = f.create_group(f"prepared/{rule}")
        for name, value in arrays.items():
            group.create_dataset(name, data=np.asarray(value), compression="gzip")
    nodes = f.create_group("nodes")
    for node in record.nodes.values():
        _write_node(nodes.create_group(node.name), node)


def _write_node(g: h5py.Group, node: NodeRecord) -> None:
    if node.status not in STATUSES:
        raise ValueError(f"bad node status {node.status!r}")
    g.attrs["parent"] = node.parent or ""
    g.attrs["children"] = json.dumps(node.children)
    g.attrs["depth"] = node.depth
    g.attrs["status"] = node.status
    g.attrs["split_order"] = node.split_order
    g.attrs["mass"] = node.mass
    g.create_dataset("membership", data=node.membership.astype(np.float32), compression="gzip")
    if not node.stages and not node.split_attrs:
        return
    split = g.create_group("split")
    attrs = dict(node.split_attrs)
    attrs["stages_done"] = json.dumps(list(node.stages))
    for key, value in attrs.items():
        split.attrs[key] = value
    for stage, rec in node.stages.items():
        sg = split.create_group(stage)
        sg.create_dataset(
            "memberships", data=rec.memberships.astype(np.float32), compression="gzip"
        )
        sg.attrs["metrics"] = json.dumps(rec.metrics)
        sg.attrs["seconds"] = rec.seconds
        if rec.curves:
            curves = sg.create_group("curves")
            for key, values in rec.curves.items():
                curves.create_dataset(key, data=np.asarray(values))


def _write_models(g: h5py.Group, models: ModelState) -> None:
    for comp, params in models.items():
        cg = g.create_group(comp)
        for param, value in params.items():
            cg.create_dataset(param, data=np.asarray(value))


def write_tree(
    path: str | os.PathLike, record: TreeRecord, models: dict[str, ModelState] | None = None
) -> None:
    """Commit ``record`` to ``path`` atomically.

    ``models`` maps node names to the final models of their split; for every other
    node the models already stored in the current file (if any) are carried over.
    """
    path = Path(path)
    models = models or {}
    old = h5py.File(path, "r", locking=False) if path.exists() else None

    def fill(f: h5py.File) -> None:
        _write_record(f, record)
        for name in record.nodes:
            key = f"nodes/{name}/split"
            if name in models:
                if key not in f:
                    f.create_group(key)
                _write_models(f[key].create_group("models"), models[name])
            elif old is not None and f"{key}/models" in old and key in f:
                old.copy(old[f"{key}/models"], f[key], name="models")

    try:
        _atomic_h5(path, fill)
    finally:
        if old is not None:
            old.close()


# ---------------------------------------------------------------- checkpoints


def checkpoint_path(tree_path: str | os.PathLike, node: str | None = None) -> Path:
    """The sidecar: ``<tree>.ckpt.h5``, or with ``node`` that node's own ``<tree>.ckpt.<node>.h5``.

    One process splitting one node at a time uses the shared sidecar; splits run on
    several workers at once each get their own (still written by the one writer).
    """
    tree_path = Path(tree_path)
    suffix = ".ckpt.h5" if node is None else f".ckpt.{node}.h5"
    return tree_path.with_name(tree_path.name + suffix)


def save_checkpoint(
    tree_path: str | os.PathLike, node: str, stage: str, state: dict, own_file: bool = False
) -> None:
    """Atomically store a stage's mid-training ``state`` as plain HDF5 data (no pickle)."""

    def fill(f: h5py.File) -> None:
        f.attrs["format"] = FORMAT + "-checkpoint"
        f.attrs["node"] = node
        f.attrs["stage"] = stage
        f.attrs["saved"] = time.time()
        write_state(f.create_group("state"), state)

    _atomic_h5(checkpoint_path(tree_path, node if own_file else None), fill)


def load_checkpoint(tree_path: str | os.PathLike, node: str, stage: str) -> dict | None:
    """The checkpoint for ``node``/``stage``, or None if there is none (or it is for another).

    The node's own sidecar is looked at first, then the shared one. A sidecar is read
    as data only. One that is damaged or not in hctree's layout (for instance a
    pickled object) raises :class:`StateFileError`; the grow loop then ignores it,
    which costs only the work since the last commit.
    """
    for path in (checkpoint_path(tree_path, node), checkpoint_path(tree_path)):
        if not path.exists():
            continue
        try:
            with h5py.File(path, "r", locking=False) as f:
                if _attr(f.attrs.get("node")) != node or _attr(f.attrs.get("stage")) != stage:
                    continue
                group = f.get("state")
                if not isinstance(group, h5py.Group):
                    raise StateFileError("it is not in hctree's checkpoint layout")
                state = read_state(group)
        except (OSError, KeyError):
            raise StateFileError("it cannot be read as an HDF5 file") from None
        if not isinstance(state, dict):
            raise StateFileError("it does not hold a stage's state")
        return state
    return None


def clear_checkpoint(tree_path: str | os.PathLike, node: str | None = None) -> None:
    """Remove the shared sidecar; with ``node``, that node's own one too."""
    if node is not None:
        checkpoint_path(tree_path, node).unlink(missing_ok=True)
    checkpoint_path(tree_path).unlink(missing_ok=True)


def checkpoint_nodes(tree_path: str | os.PathLike) -> list[Path]:
    """Every node's own sidecar beside the tree."""
    tree_path = Path(tree_path)
    return sorted(tree_path.parent.glob(tree_path.name + ".ckpt.*.h5"))


# ---------------------------------------------------------------- lock


class WriterLock:
    """An exclusive, non-blocking lock on ``<tree>.lock`` (released when the process dies)."""

    def __init__(self, tree_path: str | os.PathLike):
        self.path = Path(str(tree_path) + ".lock")
        self._fd: int | None = None

    def __enter__(self) -> WriterLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise HCTreeError(
                f"cannot create files in {self.path.parent} ({_reason(exc)}); "
                "choose a writable folder with -o."
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise HCTreeError(
                f"another hctree process is writing {self.path.name[:-5]}; "
                "wait for it to finish or stop it first."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
