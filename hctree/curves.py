"""Training curves: a stage's losses at its logging steps, kept with the stage and drawn.

A splitter records its losses every ``log_every`` iterations into a ``LossCurve``,
saves the curve with its checkpoints (so a resumed stage keeps its history) and
returns it with the stage's result; the grow loop stores it in the tree file under
``/nodes/<name>/split/<stage>/curves``; ``hctree.render_curves`` draws them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

STEP = "step"


class LossCurve:
    """Scalar losses of one stage, one row per logged iteration."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.values: dict[str, list[float]] = {}

    def record(self, step: int, losses: Mapping[str, Any]) -> dict[str, float]:
        """Append ``losses`` (floats or 0-d tensors) at iteration ``step``; returns them as floats.

        A loss absent at some steps (a warm-up has other losses than the GAN phase) is
        NaN there.
        """
        row = {name: float(value) for name, value in losses.items()}
        for name in row:
            if name not in self.values:
                self.values[name] = [math.nan] * len(self.steps)
        for name, column in self.values.items():
            column.append(row.get(name, math.nan))
        self.steps.append(int(step))
        return row

    def arrays(self) -> dict[str, np.ndarray]:
        """``{"step": int64 [T], <loss>: float32 [T], ...}``."""
        out = {STEP: np.asarray(self.steps, dtype=np.int64)}
        out.update({n: np.asarray(v, dtype=np.float32) for n, v in self.values.items()})
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any] | None) -> LossCurve:
        """The inverse of ``arrays`` (also accepts tensors; None gives an empty curve)."""
        curve = cls()
        if not arrays or STEP not in arrays:
            return curve
        curve.steps = [int(s) for s in np.asarray(arrays[STEP]).reshape(-1)]
        for name, values in arrays.items():
            if name != STEP:
                curve.values[name] = [float(v) for v in np.asarray(values).reshape(-1)]
        return curve
