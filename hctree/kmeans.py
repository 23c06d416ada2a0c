"""Weighted k-means on the device, seeded from a torch.Generator (deterministic)."""

from __future__ import annotations

import torch


def weighted_kmeans(
    x: torch.Tensor,
    weights: torch.Tensor,
    k: int,
    gen: torch.Generator,
    restarts: int = 4,
    iters: int = 50,
) -> torch.Tensor:
    """Cluster rows of ``x`` float ``[M, F]`` weighted by ``weights`` float ``[M]`` (> 0).

    k-means++ seeding (in proportion to weight times squared distance), Lloyd
    iterations, best of ``restarts`` by weighted inertia. Returns int64 ``[M]`` labels
    in ``0..k-1``, numbered by decreasing cluster weight.
    """
    if x.shape[0] < k:
        raise ValueError(f"cannot make {k} clusters of {x.shape[0]} points")
    best, best_cost = None, float("inf")
    for _ in range(restarts):
        centres = _seed(x, weights, k, gen)
        for _ in range(iters):
            labels = torch.cdist(x, centres).argmin(1)
            onehot = torch.nn.functional.one_hot(labels, k).to(x.dtype) * weights[:, None]
            mass = onehot.sum(0)
            moved = (onehot.T @ x) / mass.clamp_min(1e-12)[:, None]
            moved = torch.where(mass[:, None] > 0, moved, centres)
            if torch.allclose(moved, centres, atol=1e-6):
                break
            centres = moved
        labels = torch.cdist(x, centres).argmin(1)
        cost = float((weights * ((x - centres[labels]) ** 2).sum(1)).sum())
        if cost < best_cost:
            best, best_cost = labels, cost
    mass = torch.zeros(k, dtype=weights.dtype, device=x.device).index_add_(0, best, weights)
    rank = torch.empty(k, dtype=torch.long, device=x.device)
    rank[mass.argsort(descending=True)] = torch.arange(k, device=x.device)
    return rank[best]


def _seed(x: torch.Tensor, weights: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    first = torch.multinomial(weights, 1, generator=gen)
    centres = [x[first[0]]]
    dist = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        pick = torch.multinomial((weights * dist).clamp_min(1e-12), 1, generator=gen)
        centres.append(x[pick[0]])
        dist = torch.minimum(dist, ((x - centres[-1]) ** 2).sum(1))
    return torch.stack(centres)
