"""The splitter interface: what the grow loop asks of every way to split a node.

A splitter turns one node's membership vector into ``k`` children's membership
vectors in one or more *stages* (HC-MGAN: ``raw``, ``refine1`` .. ``refineT``; flat
splitters: ``train``). The grow loop commits the tree file after every stage, so a
stage is the unit of durable progress; inside a stage the splitter saves
checkpoints through ``ctx.checkpoint`` so that a killed run resumes mid-stage and
ends bit-identical to an uninterrupted one (on CPU).

The grow loop knows nothing about GANs; a splitter knows nothing about HDF5.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from hctree.errors import HCTreeError
from hctree.statefile import state_from_bytes, state_to_bytes

ModelState = dict[str, dict[str, np.ndarray]]
"""component name -> parameter/buffer name -> array (a state_dict as numpy)."""


class Checkpointer(Protocol):
    """Mid-stage persistence handed to a splitter by the grow loop."""

    def load(self) -> dict[str, Any] | None:
        """The state saved earlier for this node and stage, or None."""

    def due(self) -> bool:
        """True when ``--checkpoint-every`` seconds have passed since the last save."""

    def save(self, state: dict[str, Any]) -> None:
        """Persist ``state`` (tensors, numpy arrays, numbers, strings, nested dicts)."""


class MemoryCheckpointer:
    """Keeps the last saved state in memory, serialised as the sidecar file keeps it.

    For running stages without a tree file (benchmarks, tests). ``due()`` is true on
    every ``due_every``-th call (0: never); ``blob`` restores a state saved earlier.
    """

    def __init__(self, blob: bytes | None = None, due_every: int = 0) -> None:
        self.blob = blob
        self.due_every = due_every
        self.saves = 0
        self._calls = 0

    def load(self) -> dict[str, Any] | None:
        if self.blob is None:
            return None
        return state_from_bytes(self.blob)

    def due(self) -> bool:
        self._calls += 1
        return self.due_every > 0 and self._calls % self.due_every == 0

    def save(self, state: dict[str, Any]) -> None:
        self.blob = state_to_bytes(state)
        self.saves += 1


class Progress(Protocol):
    """Where a stage reports what it is doing (the library never prints)."""

    def start(self, title: str, total: int, done: int = 0) -> None: ...

    def update(self, done: int, losses: dict[str, float] | None = None) -> None: ...

    def finish(self) -> None: ...

    def message(self, text: str) -> None: ...


class NullProgress:
    """A progress hook that reports nothing."""

    def start(self, title: str, total: int, done: int = 0) -> None:
        pass

    def update(self, done: int, losses: dict[str, float] | None = None) -> None:
        pass

    def finish(self) -> None:
        pass

    def message(self, text: str) -> None:
        pass


@dataclass
class SplitContext:
    """Everything a stage may use.

    images:      uint8 ``[N, C, H, W]`` on ``device`` (the whole data set).
    membership:  float32 ``[N]`` on ``device``: the parent node's membership.
    previous:    float32 ``[k, N]`` on ``device``: the previous stage's children
                 memberships (None for the first stage). Rows sum to ``membership``.
    k:           number of children.
    config:      the splitter's validated configuration (a dataclass instance).
    device:      where to train.
    seed:        integer seed for this (node, stage, attempt); derive every random
                 stream from it so a restarted stage repeats itself exactly.
    checkpoint:  mid-stage persistence (see Checkpointer).
    progress:    progress hook.
    should_stop: returns True when the user asked to stop (SIGINT/SIGTERM); the
                 stage then saves a checkpoint and raises ``hctree.errors.Interrupted``.
    node:        name of the node being split (for messages).
    parent_models: the final models of the split that made this node (None at the root).
    child_index: which child of that split this node is.
    stage_models: the models of this split's latest stage that stored any (None before).
    cores:       CPU cores the stage may spread one-thread shards over (hctree.shards);
                 they change its speed, never its result.
    """

    images: torch.Tensor
    membership: torch.Tensor
    previous: torch.Tensor | None
    k: int
    config: Any
    device: torch.device
    seed: int
    checkpoint: Checkpointer
    progress: Progress = field(default_factory=NullProgress)
    should_stop: Callable[[], bool] = lambda: False
    node: str = "r"
    parent_models: ModelState | None = None
    child_index: int = 0
    stage_models: ModelState | None = None
    cores: int = 1


@dataclass
class StageResult:
    """What one stage produced.

    memberships: float32 ``[k, N]`` (numpy or tensor); columns sum to the parent membership.
    models:      the stage's trained networks, component -> state dict as numpy arrays.
    metrics:     scalar diagnostics (final losses, membership change, attempts, ...).
    stop:        True when no further stage is needed (e.g. refinements converged).
    curves:      the losses at the logged iterations (``LossCurve.arrays()``).
    """

    memberships: np.ndarray
    models: ModelState = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    stop: bool = False
    curves: dict[str, np.ndarray] = field(default_factory=dict)


class Splitter(Protocol):
    """A way to split a node into ``k`` children.

    Optional: ``image_sizes``, the square image sizes the networks take (``grow``
    resizes other images to one of them unless a size was asked for); a static
    ``check_images(image_shape)`` that raises HCTreeError when the splitter's networks
    cannot take ``(C, H, W)`` images (``grow`` calls it before it writes a new tree
    file); and ``run_stages_together`` (hctree.splitters.hcmgan).
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    presets: ClassVar[dict[str, dict[str, Any]]]
    max_branching: ClassVar[int | None]

    def stages(self, config: Any) -> list[str]:
        """Names of the stages of one split, in order."""

    def run_stage(self, stage: str, ctx: SplitContext) -> StageResult:
        """Train one stage and return the children's memberships."""


# ---------------------------------------------------------------- configuration


def _coerce(value: Any, like: Any, key: str) -> Any:
    """Convert a ``--set`` string (or JSON value) to the type of the default ``like``."""
    if isinstance(like, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise HCTreeError(f"setting {key} must be true or false, not {value!r}.")
    if isinstance(like, (int, float)) and not isinstance(like, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise HCTreeError(f"setting {key} must be a number, not {value!r}.") from None
        if isinstance(like, int):
            if number != int(number):
                raise HCTreeError(f"setting {key} must be a whole number, not {value!r}.")
            return int(number)
        return number
    if isinstance(like, (tuple, list)):
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        if len(items) != len(like):
            raise HCTreeError(f"setting {key} needs {len(like)} comma-separated values.")
        return tuple(_coerce(v, d, key) for v, d in zip(items, like, strict=True))
    return str(value)


def make_config(splitter: type, preset: str, overrides: dict[str, Any] | None = None) -> Any:
    """Build a splitter's Config from a named preset plus ``key=value`` overrides.

    Unknown presets or keys and values of the wrong type raise HCTreeError.
    """
    presets = splitter.presets
    if preset not in presets:
        names = ", ".join(sorted(presets))
        raise HCTreeError(
            f"unknown preset {preset!r} for splitter {splitter.name}; use one of: {names}."
        )
    defaults = splitter.Config()
    known = {f.name for f in dataclasses.fields(defaults)}
    values = dict(presets[preset])
    for key, value in (overrides or {}).items():
        if key not in known:
            raise HCTreeError(
                f"unknown setting {key!r} for splitter {splitter.name}; see docs/presets.md for the list."
            )
        values[key] = value
    coerced = {k: _coerce(v, getattr(defaults, k), k) for k, v in values.items()}
    config = dataclasses.replace(defaults, **coerced)
    validate = getattr(config, "validate", None)
    if validate is not None:
        validate()
    return config


def config_to_json(config: Any) -> str:
    """A stable JSON text of a Config dataclass (stored in the tree file)."""
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def config_from_json(splitter: type, text: str) -> Any:
    """Rebuild a Config stored by :func:`config_to_json`."""
    values = json.loads(text)
    defaults = splitter.Config()
    known = {f.name for f in dataclasses.fields(defaults)}
    coerced = {k: _coerce(v, getattr(defaults, k), k) for k, v in values.items() if k in known}
    return dataclasses.replace(defaults, **coerced)


# ---------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[[], type]] = {}


def register(name: str, loader: Callable[[], type]) -> None:
    """Make a splitter class available under ``name`` (loaded lazily)."""
    _REGISTRY[name] = loader


def splitter_names() -> list[str]:
    return sorted(_REGISTRY)


def get_splitter(name: str) -> type:
    """The splitter class registered as ``name``; HCTreeError if there is none."""
    if name not in _REGISTRY:
        raise HCTreeError(f"unknown splitter {name!r}; use one of: {', '.join(splitter_names())}.")
    return _REGISTRY[name]()


def stored_splitter(attrs: Mapping[str, Any]) -> tuple[Any, Any]:
    """``(splitter, config)``: the splitter a tree was grown with and its stored settings.

    ``attrs`` are the tree file's attributes (``splitter``, ``config_json``);
    HCTreeError when the splitter is unknown.
    """
    cls = get_splitter(str(attrs["splitter"]))
    return cls(), config_from_json(cls, str(attrs.get("config_json", "{}")))
