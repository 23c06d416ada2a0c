"""Group a flat splitter's Y clusters into the node's k children."""

from __future__ import annotations

import numpy as np


def ward_groups(points: np.ndarray, mass: np.ndarray, k: int) -> np.ndarray:
    """Merge ``Y`` weighted points float ``[Y, d]`` (weights ``[Y]``) into ``k`` groups.

    Ward agglomeration: repeatedly merge the two groups whose union least increases
    the weighted within-group sum of squares. Ties go to the lowest indices.
    Deterministic. Returns int64 ``[Y]`` group ids in ``0..k-1``, numbered by first member.
    """
    if len(points) < k:
        raise ValueError(f"cannot group {len(points)} clusters into {k} children")
    centre = points.astype(np.float64).copy()
    weight = mass.astype(np.float64) + 1e-12
    alive = np.ones(len(points), dtype=bool)
    labels = np.arange(len(points))
    while alive.sum() > k:
        dist = ((centre[:, None, :] - centre[None, :, :]) ** 2).sum(-1)
        cost = weight[:, None] * weight[None, :] / (weight[:, None] + weight[None, :]) * dist
        usable = np.triu(alive[:, None] & alive[None, :], k=1)
        a, b = np.unravel_index(np.argmin(np.where(usable, cost, np.inf)), cost.shape)
        centre[a] = (weight[a] * centre[a] + weight[b] * centre[b]) / (weight[a] + weight[b])
        weight[a] += weight[b]
        alive[b] = False
        labels[labels == b] = a
    _, ids = np.unique(labels, return_inverse=True)
    return ids.astype(np.int64)
