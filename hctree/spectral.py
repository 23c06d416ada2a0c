"""Spectral clustering of a node's features on its k-nearest-neighbour graph.

A k-means of embedding vectors cuts along the direction of largest spread; the
graph's leading eigenvectors cut where the data are thinnest, which is where
classes meet (docs/benchmarks.md, "Spectral seeding"). Neighbours are found on
the device in chunks; the eigenvectors of the sparse graph come from ARPACK.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import eigsh

from hctree.kmeans import weighted_kmeans

MAX_GRAPH = 20000  # rows in the graph at most; the rest vote with their neighbours in it


def nearest_rows(query: torch.Tensor, base: torch.Tensor, k: int, skip_self: bool) -> torch.Tensor:
    """Indices ``[Q, k]`` of each query row's nearest rows of ``base`` (unit rows, cosine)."""
    out = []
    for start in range(0, query.shape[0], 2048):
        sims = query[start : start + 2048] @ base.T
        if skip_self:
            rows = torch.arange(sims.shape[0], device=sims.device)
            sims[rows, rows + start] = -float("inf")
        out.append(sims.topk(k, dim=1).indices)
    return torch.cat(out)


def knn_graph(neighbours: np.ndarray) -> sp.csr_matrix:
    """The symmetric 0/1 graph joining each row to its ``neighbours`` ``[M, k]`` (either way)."""
    n = neighbours.shape[0]
    rows = np.repeat(np.arange(n), neighbours.shape[1])
    graph = sp.csr_matrix((np.ones(rows.size), (rows, neighbours.ravel())), shape=(n, n))
    return ((graph + graph.T) > 0).astype(np.float64)


def walk_embedding(graph: sp.csr_matrix, k: int, seed: int) -> np.ndarray:
    """The ``k - 1`` leading non-trivial random-walk eigenvectors of a symmetric graph."""
    n = graph.shape[0]
    degree = np.asarray(graph.sum(1)).ravel()
    scale = sp.diags(1.0 / np.sqrt(degree))
    start = np.random.default_rng(seed).standard_normal(n)
    values, vectors = eigsh(scale @ graph @ scale, k=k, which="LA", v0=start)
    order = np.argsort(values)[::-1]
    walk = vectors[:, order] / np.sqrt(degree)[:, None]
    return walk[:, 1:].astype(np.float32)


def group_links(graph: sp.csr_matrix, labels: np.ndarray) -> np.ndarray:
    """Edge weights between groups: float ``[g, g]`` for ``labels`` int ``[M]`` in ``0..g-1``."""
    g = int(labels.max()) + 1
    rows = np.arange(len(labels))
    onehot = sp.csr_matrix((np.ones(len(labels)), (rows, labels)), shape=(len(labels), g))
    return (onehot.T @ graph @ onehot).toarray()


def merge_parts(graph: sp.csr_matrix, parts: np.ndarray, k: int) -> np.ndarray:
    """Merge the graph's ``parts`` (int ``[M]`` in ``0..m-1``) into ``k`` groups.

    Repeatedly joins the two groups most strongly linked: the most edges between
    them relative to the smaller one's edges. A class cut into several parts is
    joined back before two classes are, so the final cut runs between classes
    rather than through one. Deterministic. Returns int64 ``[M]`` in ``0..k-1``.
    """
    links = group_links(graph, parts)
    group = np.arange(len(links))
    while len(np.unique(group)) > k:
        ids = np.unique(group)
        member = (group[:, None] == ids[None, :]).astype(np.float64)  # [m, g]
        between = member.T @ links @ member  # [g, g]
        volume = member.T @ links.sum(1)  # [g]
        score = between / np.minimum(volume[:, None], volume[None, :]).clip(min=1e-12)
        score[np.tril_indices(len(ids))] = -np.inf
        a, b = np.unravel_index(np.argmax(score), score.shape)
        group[group == ids[b]] = ids[a]
    _, labels = np.unique(group[parts], return_inverse=True)
    return labels.astype(np.int64)


def normalized_cut(graph: sp.csr_matrix, labels: np.ndarray) -> float:
    """The k-way normalised cut of ``labels`` (int ``[M]``) on a symmetric graph:
    the sum over groups of the edges leaving the group over the group's edges."""
    links = group_links(graph, labels)
    volume = links.sum(1)
    return float(((volume - np.diag(links)) / volume.clip(min=1e-12)).sum())


def spectral_labels(
    feats: torch.Tensor,
    weights: torch.Tensor,
    k: int,
    gen: torch.Generator,
    neighbours: int = 10,
    parts: int = 0,
) -> torch.Tensor:
    """Cluster unit-length rows ``feats`` float ``[M, F]`` into ``k`` groups.

    The graph holds the node's own rows, those with at least half the largest
    weight (at most ``MAX_GRAPH``, heaviest first; a soft membership gives every
    other image a little weight too); its spectral embedding is clustered by
    weighted k-means, and every other row takes the majority group of its
    neighbours in the graph. With ``parts`` > ``k`` the embedding is also cut
    into that many parts, which :func:`merge_parts` joins into ``k``, and the
    cut with the lower :func:`normalized_cut` is kept: the merged one where a
    spread-out class was cut through, the direct one where a node has no gap and
    the merge would cut off a sliver. Returns int64 ``[M]`` labels in ``0..k-1``,
    numbered by decreasing weight.
    """
    m = feats.shape[0]
    own = int((weights >= 0.5 * weights.max()).sum())
    if own <= max(k, neighbours + 1) * 2:
        return weighted_kmeans(feats, weights, k, gen)
    core = weights.argsort(descending=True, stable=True)[: min(own, MAX_GRAPH)]
    core = core.sort().values
    base = feats[core]
    near = nearest_rows(base, base, neighbours, skip_self=True).cpu().numpy()
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen, device=gen.device))
    graph = knn_graph(near)
    embedding = torch.from_numpy(walk_embedding(graph, max(k, parts), seed)).to(feats.device)
    core_labels = weighted_kmeans(embedding[:, : k - 1], weights[core], k, gen)
    if parts > k:
        pieces = weighted_kmeans(embedding, weights[core], parts, gen).cpu().numpy()
        merged = merge_parts(graph, pieces, k)
        if normalized_cut(graph, merged) < normalized_cut(graph, core_labels.cpu().numpy()):
            core_labels = torch.from_numpy(merged).to(feats.device)
    labels = torch.full((m,), -1, dtype=torch.long, device=feats.device)
    labels[core] = core_labels
    rest = (labels < 0).nonzero().squeeze(1)
    if rest.numel():
        votes = core_labels[nearest_rows(feats[rest], base, neighbours, skip_self=False)]
        counts = torch.nn.functional.one_hot(votes, k).sum(1)
        labels[rest] = counts.argmax(1)
    mass = torch.zeros(k, dtype=weights.dtype, device=feats.device).index_add_(0, labels, weights)
    rank = torch.empty(k, dtype=torch.long, device=feats.device)
    rank[mass.argsort(descending=True)] = torch.arange(k, device=feats.device)
    return rank[labels]
