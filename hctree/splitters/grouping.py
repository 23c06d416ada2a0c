"""Group a flat splitter's Y clusters into the node's k children."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def split_by_clusters(
    probs: torch.Tensor, features: torch.Tensor, membership: torch.Tensor, k: int
) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    """Children memberships from cluster probabilities, grouping the clusters by Ward.

    probs: float ``[N, Y]`` cluster probabilities; features: float ``[N, F]`` unit-length
    features; membership: float ``[N]`` of the node. Each cluster gets a mass (summed
    probability times membership) and a prototype (the mass-weighted mean feature); the
    prototypes are merged into ``k`` groups by :func:`ward_groups`. A child's membership
    is its group's summed probability times the parent's, so children sum to the parent.
    Returns memberships float ``[k, N]``, cluster_to_child int64 ``[Y]``, mass float ``[Y]``.
    """
    weights = probs * membership[:, None]
    mass = weights.sum(0)
    prototypes = (weights.T @ features) / mass.clamp_min(1e-12)[:, None]
    groups = ward_groups(prototypes.double().cpu().numpy(), mass.double().cpu().numpy(), k)
    to_child = F.one_hot(torch.as_tensor(groups, device=probs.device), k).float()
    memberships = ((probs @ to_child) * membership[:, None]).T.contiguous()
    if not torch.allclose(memberships.sum(0), membership, atol=1e-5, rtol=1e-5):
        raise AssertionError("children do not sum to the parent membership")
    return memberships, groups, mass


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
