"""Group a flat splitter's Y clusters into the node's k children.

Two ways: ``ward`` merges the clusters' mean features by Ward agglomeration;
``graph`` cuts the node's images on their k-nearest-neighbour graph
(:func:`hctree.spectral.spectral_labels`) and gives each cluster to the part that
holds most of its mass. Ward on means joins clusters whose centres are close, so a
class whose images spread in feature space (bags with and without handles) is
shared out among its neighbours; the graph follows the thin places between classes
(docs/benchmarks.md, "c3gan: grouping on the graph").
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hctree.spectral import spectral_labels

GROUPINGS = ("ward", "graph")


def split_by_clusters(
    probs: torch.Tensor,
    features: torch.Tensor,
    membership: torch.Tensor,
    k: int,
    method: str = "ward",
    gen: torch.Generator | None = None,
    parts: int = 0,
) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    """Children memberships from cluster probabilities, grouping the clusters by ``method``.

    probs: float ``[N, Y]`` cluster probabilities; features: float ``[N, F]`` unit-length
    features; membership: float ``[N]`` of the node. Each cluster gets a mass (summed
    probability times membership). ``ward``: each cluster's prototype (the mass-weighted
    mean feature) is merged into ``k`` groups by :func:`ward_groups`. ``graph``: see
    :func:`graph_groups` (``gen`` seeds it; ``parts`` as in :func:`spectral_labels`).
    A child's membership is its group's summed probability times the parent's, so
    children sum to the parent.
    Returns memberships float ``[k, N]``, cluster_to_child int64 ``[Y]``, mass float ``[Y]``.
    """
    weights = probs * membership[:, None]
    mass = weights.sum(0)
    if method == "graph":
        if gen is None:
            raise ValueError("graph grouping needs a generator")
        groups = graph_groups(probs, features, membership, k, gen, parts)
    elif method == "ward":
        prototypes = (weights.T @ features) / mass.clamp_min(1e-12)[:, None]
        groups = ward_groups(prototypes.double().cpu().numpy(), mass.double().cpu().numpy(), k)
    else:
        raise ValueError(f"grouping must be one of {', '.join(GROUPINGS)}, not {method!r}")
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


def graph_groups(
    probs: torch.Tensor,
    features: torch.Tensor,
    membership: torch.Tensor,
    k: int,
    gen: torch.Generator,
    parts: int = 0,
) -> np.ndarray:
    """Give each of ``Y`` clusters to the graph part holding most of its mass.

    The node's images (rows with membership > 0) are cut into ``k`` parts by
    :func:`spectral_labels` on ``features`` (over-cut into ``parts`` and merged
    where that cut is the better one); cluster ``y``'s vote for part ``j`` is
    ``sum_i s_i q_iy [part_i = j]``. A part that wins no cluster takes, from a group
    of two or more, the cluster whose mass lies most in it, so every child is used.
    Returns int64 ``[Y]`` group ids in ``0..k-1``, numbered by first member.
    """
    n_clusters = probs.shape[1]
    if n_clusters < k:
        raise ValueError(f"cannot group {n_clusters} clusters into {k} children")
    rows = (membership > 0).nonzero().squeeze(1)
    cut = spectral_labels(features[rows].float(), membership[rows].float(), k, gen, parts=parts)
    weights = (probs[rows] * membership[rows, None]).double()
    votes = torch.zeros(k, n_clusters, dtype=torch.float64, device=probs.device)
    votes.index_add_(0, cut, weights)
    votes = votes.T.cpu().numpy()  # [Y, k]
    share = votes / np.maximum(votes.sum(1, keepdims=True), 1e-12)
    groups = votes.argmax(1)
    for part in range(k):
        if (groups == part).any():
            continue
        sizes = np.bincount(groups, minlength=k)
        movable = sizes[groups] > 1
        candidate = np.where(movable, share[:, part], -np.inf)
        groups[int(np.argmax(candidate))] = part
    _, first = np.unique(groups, return_index=True)
    order = np.argsort(first)
    renumber = np.empty(k, dtype=np.int64)
    renumber[groups[first[order]]] = np.arange(k)
    return renumber[groups].astype(np.int64)
