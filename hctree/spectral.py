"""Spectral clustering of a node's features on its k-nearest-neighbour graph.

A k-means of embedding vectors cuts along the direction of largest spread; the
graph's leading eigenvectors cut where the data are thinnest, which is where
classes meet (docs/benchmarks.md, "Spectral seeding"). Neighbours are found on
the device in chunks; the eigenvectors of the sparse graph come from ARPACK.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def merge_parts(
    graph: sp.csr_matrix,
    parts: np.ndarray,
    k: int,
    sizes: np.ndarray | None = None,
    floor: float = 0.0,
) -> np.ndarray:
    """Merge the graph's ``parts`` (int ``[M]`` in ``0..m-1``) into ``k`` groups.

    Repeatedly joins the two groups most strongly linked: the most edges between
    them relative to the smaller one's edges. A class cut into several parts is
    joined back before two classes are, so the final cut runs between classes
    rather than through one. With ``floor`` > 0, a group holding less than that
    share of ``sizes`` (float ``[M]``, a weight per row) is joined first, to the
    group it has the most edges with: a small knot of near-duplicates, which the
    graph barely links to anything, is never left as a group of its own.
    Deterministic. Returns int64 ``[M]`` in ``0..k-1``.
    """
    links = group_links(graph, parts)
    group = np.arange(len(links))
    weight = np.zeros(len(links))
    if floor > 0:
        rows = np.ones(len(parts)) if sizes is None else np.asarray(sizes, dtype=np.float64)
        np.add.at(weight, parts, rows)
    least = floor * weight.sum()
    while len(np.unique(group)) > k:
        ids = np.unique(group)
        member = (group[:, None] == ids[None, :]).astype(np.float64)  # [m, g]
        between = member.T @ links @ member  # [g, g]
        held = member.T @ weight  # [g]
        small = np.flatnonzero(held < least)
        if small.size:
            a = small[np.argmin(held[small])]
            row = between[a].copy()
            row[a] = -np.inf
            b = int(np.argmax(row))
            a, b = min(a, b), max(a, b)
        else:
            volume = member.T @ links.sum(1)  # [g]
            score = between / np.minimum(volume[:, None], volume[None, :]).clip(min=1e-12)
            score[np.tril_indices(len(ids))] = -np.inf
            a, b = np.unravel_index(np.argmax(score), score.shape)
        group[group == ids[b]] = ids[a]
    _, labels = np.unique(group[parts], return_inverse=True)
    return labels.astype(np.int64)


def smallest_share(labels: np.ndarray, weights: np.ndarray, k: int) -> float:
    """The lightest group's share of the total weight (``labels`` int ``[M]`` in ``0..k-1``)."""
    held = np.bincount(labels, weights=weights, minlength=k)
    return float(held.min() / max(held.sum(), 1e-12))


def kept_cut(
    graph: sp.csr_matrix,
    pieces: np.ndarray,
    direct: np.ndarray,
    k: int,
    sizes: np.ndarray,
    floor: float,
    balance: float = 0.0,
) -> np.ndarray:
    """Of ``pieces`` merged into ``k`` and the ``direct`` cut, the one with the lower
    normalised cut among those whose every group holds ``floor`` of ``sizes`` (either,
    when neither or both do). With ``balance`` > 0 the merged cut must also give its
    lightest group at least ``balance`` times the direct cut's lightest group's share:
    a merge that only slices a side off is not kept for its thinner cut."""
    merged = merge_parts(graph, pieces, k, sizes, floor)
    shares = [smallest_share(c, sizes, k) for c in (merged, direct)]
    balanced = [share >= floor for share in shares]
    if balanced[0] != balanced[1]:
        return merged if balanced[0] else direct
    if shares[0] < balance * shares[1]:
        return direct
    return merged if normalized_cut(graph, merged) < normalized_cut(graph, direct) else direct


def normalized_cut(graph: sp.csr_matrix, labels: np.ndarray) -> float:
    """The k-way normalised cut of ``labels`` (int ``[M]``) on a symmetric graph:
    the sum over groups of the edges leaving the group over the group's edges."""
    links = group_links(graph, labels)
    volume = links.sum(1)
    return float(((volume - np.diag(links)) / volume.clip(min=1e-12)).sum())


def graph_rows(weights: torch.Tensor, spread: bool = False) -> torch.Tensor:
    """Sorted indices of the graph's rows: the node's own rows (at least half the
    largest weight), at most ``MAX_GRAPH`` of them.

    Where there are more, ``spread`` takes every (own / ``MAX_GRAPH``)-th own row in
    index order, a choice that moves little when the memberships move a little;
    otherwise the heaviest rows are kept, which in a soft node ranks thousands of
    near-equal weights by their last digits.
    """
    own = (weights >= 0.5 * weights.max()).nonzero().squeeze(1)
    if own.numel() <= MAX_GRAPH:
        return own
    if spread:
        return own[torch.arange(MAX_GRAPH, device=own.device) * own.numel() // MAX_GRAPH]
    return weights.argsort(descending=True, stable=True)[:MAX_GRAPH].sort().values


@dataclass
class Candidates:
    """A node's seeding graph and the cuts :func:`spectral_labels` chooses between."""

    core: torch.Tensor  # int64 [M]: the graph's rows among the node's rows
    graph: sp.csr_matrix  # [M, M] symmetric kNN graph
    direct: np.ndarray  # int64 [M]: the leading eigenvectors cut by weighted k-means
    pieces: np.ndarray | None  # int64 [M]: the embedding over-cut into ``parts`` (or None)
    sizes: np.ndarray  # float64 [M]: the rows' weights


def cut_candidates(
    feats: torch.Tensor,
    weights: torch.Tensor,
    k: int,
    gen: torch.Generator,
    neighbours: int = 10,
    parts: int = 0,
    spread: bool = False,
) -> Candidates | None:
    """The graph over the node's own rows of ``feats`` (unit rows ``[N, F]``) and its
    candidate cuts into ``k``: the direct one, and with ``parts`` > ``k`` the over-cut
    pieces. None where the node has too few own rows for a graph. Draws from ``gen``
    in a fixed order (the eigensolver's start, the direct cut, the pieces)."""
    core = graph_rows(weights, spread)
    if core.numel() <= max(k, neighbours + 1) * 2:
        return None
    near = nearest_rows(feats[core], feats[core], neighbours, skip_self=True).cpu().numpy()
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen, device=gen.device))
    graph = knn_graph(near)
    embedding = torch.from_numpy(walk_embedding(graph, max(k, parts), seed)).to(feats.device)
    direct = weighted_kmeans(embedding[:, : k - 1], weights[core], k, gen).cpu().numpy()
    pieces = None
    if parts > k:
        pieces = weighted_kmeans(embedding, weights[core], parts, gen).cpu().numpy()
    return Candidates(core, graph, direct, pieces, weights[core].double().cpu().numpy())


def spectral_labels(
    feats: torch.Tensor,
    weights: torch.Tensor,
    k: int,
    gen: torch.Generator,
    neighbours: int = 10,
    parts: int = 0,
    floor: float = 0.0,
    notes: dict[str, float] | None = None,
    spread: bool = False,
    balance: float = 0.0,
) -> torch.Tensor:
    """Cluster unit-length rows ``feats`` float ``[M, F]`` into ``k`` groups.

    The graph holds the node's own rows (:func:`graph_rows`; a soft membership
    gives every other image a little weight too); its spectral embedding is
    clustered by weighted k-means, and every other row takes the majority group of
    its neighbours in the graph. With ``parts`` > ``k`` the embedding is also cut
    into that many parts, which :func:`merge_parts` joins into ``k``, and the
    cut with the lower :func:`normalized_cut` is kept: the merged one where a
    spread-out class was cut through, the direct one where a node has no gap and
    the merge would cut off a sliver. With ``floor`` > 0 (and ``parts`` > ``k``) no
    group of the merged cut holds less than that share of the graph rows' weight
    (:func:`merge_parts`), and a direct cut that does is used only when the merged
    one does too: a knot of a few dozen near-identical images links to almost
    nothing else, so cutting it off has the lowest normalised cut of all and splits
    nothing. With ``balance`` > 0 the merged cut is kept only where its lightest
    group holds at least that fraction of the direct cut's lightest group
    (:func:`kept_cut`). When the floor changed the cut, ``notes`` (if given) gets the
    lightest group's share in the cut it would have been without it, as
    ``"refused_share"``.
    Returns int64 ``[M]`` labels in ``0..k-1``, numbered by decreasing weight.
    """
    m = feats.shape[0]
    found = cut_candidates(feats, weights, k, gen, neighbours, parts, spread)
    if found is None:  # too few own rows for a graph
        return weighted_kmeans(feats, weights, k, gen)
    core = found.core
    chosen = found.direct
    if found.pieces is not None:
        chosen = kept_cut(found.graph, found.pieces, found.direct, k, found.sizes, floor, balance)
        if notes is not None and floor > 0:
            free = kept_cut(found.graph, found.pieces, found.direct, k, found.sizes, 0.0, balance)
            if not np.array_equal(free, chosen):
                notes["refused_share"] = smallest_share(free, found.sizes, k)
    core_labels = torch.from_numpy(chosen).to(feats.device)
    base = feats[core]
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
