"""Find the places where training code reads a tensor back to the host.

On a GPU each such read (``.item()``, ``float(t)``, ``if t:``, a boolean mask that
sizes its output, ``.cpu()``) waits for every queued kernel; inside a training step
it serialises the host and the device. The CPU cannot show the wait, but it runs
the same Python, so a :class:`HostReads` mode active while a step runs lists every
read that the step's own code makes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

import hctree

PACKAGE = str(Path(hctree.__file__).parent)
# tensor methods whose result is a host value, or whose output size depends on data
READS = {
    "item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__",
    "__format__", "nonzero", "argwhere", "masked_select", "unique", "unique_consecutive",
    "bincount", "masked_scatter",
}  # fmt: skip


@dataclass(frozen=True)
class Read:
    """One host read: what was called, and the package frames that led to it."""

    name: str
    where: str  # file:line of the package frame that made the call
    stack: tuple[str, ...]  # function names of the package frames, innermost first


def _sizes_by_data(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether this call's output size depends on tensor values (a hidden read)."""
    if name in {"__getitem__", "__setitem__"} and len(args) > 1:
        index = args[1] if isinstance(args[1], tuple) else (args[1],)
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in index)
    if name == "where":
        return len(args) + len(kwargs) == 1
    if name == "repeat_interleave":
        repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
        return isinstance(repeats, torch.Tensor)
    return False


class HostReads(TorchFunctionMode):
    """Records every host read made directly by hctree code while active."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[Read] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in READS or _sizes_by_data(name, args, kwargs):
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(PACKAGE):
                stack, frame = [], caller
                while frame is not None:
                    if frame.f_code.co_filename.startswith(PACKAGE):
                        stack.append(frame.f_code.co_name)
                    frame = frame.f_back
                where = f"{Path(caller.f_code.co_filename).name}:{caller.f_lineno}"
                self.reads.append(Read(name, where, tuple(stack)))
        return func(*args, **kwargs)

    def within(self, functions: set[str], outside: set[str] = frozenset()) -> list[Read]:
        """The reads made under any of ``functions`` and under none of ``outside``."""
        return [
            r for r in self.reads
            if functions.intersection(r.stack) and not outside.intersection(r.stack)
        ]  # fmt: skip
