"""Whether the data support splitting a node: its graph's thinnest cut against a Gaussian's.

``--leaves auto`` keeps a node as a leaf when its images form one cluster. Each
of the node's images is embedded by the split's own trunk where the splitter
offers one (as the mean of its features over ``VIEWS`` random views, the views
the trunk learned to ignore), by its pixels otherwise, and joined to its
``NEIGHBOURS`` nearest neighbours. Sweeping the graph's leading random-walk
eigenvector gives its thinnest cut: the smallest conductance (edges cut over the
smaller side's edge volume) of a cut leaving at least ``BALANCE`` of the images
on each side. The same is measured on ``DRAWS`` samples of a Gaussian with the
node's mean and covariance, as many rows: one smooth cluster shaped like the
node. The node is supported when its cut is thinner than ``THRESHOLD`` times the
Gaussian's.

A fixed bar on the cut (or a p-value of unimodality) does not work across nodes:
a kNN graph's cuts thicken as nodes shrink, and the dip test, given 2,000 images,
finds the sub-styles inside one class significant (docs/benchmarks.md,
"`--leaves auto`, third version"). The Gaussian of the same size and shape is the
reference that moves with the node. Averaging over views matters: a trunk keeps
traces of colour cast or position, and the graph of single-view features splits
one class by them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from hctree.engine import make_generator, to_unit
from hctree.invariance import configured_view, view_mean
from hctree.spectral import knn_graph, nearest_rows, walk_embedding

SAMPLE = 2000  # images drawn (by membership) for the test: enough to see, fast
NEIGHBOURS = 10  # the graph joins each image to this many nearest images
BALANCE = 0.05  # a cut leaves at least this share of the images on each side
DRAWS = 3  # Gaussian samples whose cuts are averaged for the reference
MIN_ROWS = 36  # a node with fewer images is never supported
VIEWS = 8  # random views whose trunk features are averaged per image
THRESHOLD = 0.5  # chosen on stored trees of three sets (docs/benchmarks.md)


@dataclass(frozen=True)
class Support:
    """The node's thinnest cut, the Gaussian reference's, and the decision."""

    cut: float
    reference: float
    threshold: float = THRESHOLD

    @property
    def ratio(self) -> float:
        return self.cut / self.reference if self.reference > 0 else 1.0

    @property
    def supported(self) -> bool:
        return self.ratio < self.threshold


def sample_rows(parent: np.ndarray, seed: int, size: int = SAMPLE) -> np.ndarray:
    """About the node's mass (at most ``size``) image indices, drawn by membership.

    parent: float ``[N]`` node membership. Sorted int64 indices drawn without
    replacement in proportion to membership (seeded), so soft members count as they
    weigh and images with a trace of membership rarely enter.
    """
    weights = np.asarray(parent, dtype=np.float64)
    inside = np.flatnonzero(weights > 0)
    count = min(size, len(inside), max(1, int(round(float(weights.sum())))))
    p = weights[inside] / weights[inside].sum()
    return np.sort(np.random.default_rng(seed).choice(inside, count, replace=False, p=p))


def thinnest_cut(features: np.ndarray, seed: int = 0, neighbours: int = NEIGHBOURS) -> float:
    """The smallest conductance of a balanced sweep cut of the rows' kNN graph.

    features: float ``[M, F]``, compared by cosine similarity. The rows are ordered
    along the graph's leading non-trivial random-walk eigenvector; each prefix holding
    between ``BALANCE`` and ``1 - BALANCE`` of them is a cut.
    """
    x = torch.nn.functional.normalize(torch.as_tensor(features, dtype=torch.float32), dim=1)
    near = nearest_rows(x, x, neighbours, skip_self=True).numpy()
    symmetric = knn_graph(near)
    graph = symmetric.tocoo()
    rank = np.empty(len(near), dtype=np.int64)
    rank[np.argsort(walk_embedding(symmetric, 2, seed)[:, 0], kind="stable")] = np.arange(len(near))
    degree = np.bincount(rank[graph.row], minlength=len(near)).astype(np.float64)
    volume = np.cumsum(degree)
    upper = graph.row < graph.col  # each edge once, counted where its later end enters
    inside = np.cumsum(
        np.bincount(np.maximum(rank[graph.row[upper]], rank[graph.col[upper]]), minlength=len(near))
    )
    cut = volume - 2 * inside
    smaller = np.minimum(volume, volume[-1] - volume)
    sizes = np.arange(1, len(near) + 1) / len(near)
    ok = (sizes >= BALANCE) & (sizes <= 1 - BALANCE) & (smaller > 0)
    return float((cut[ok] / smaller[ok]).min()) if ok.any() else 1.0


def gaussian_like(features: np.ndarray, rng: np.random.Generator, draws: int) -> list[np.ndarray]:
    """``draws`` samples, as many rows as ``features``, of a Gaussian with their mean and covariance."""
    x = np.asarray(features, dtype=np.float64)
    mean = x.mean(axis=0)
    _, scale, axes = np.linalg.svd(x - mean, full_matrices=False)
    spread = scale / np.sqrt(len(x))
    return [
        (mean + (rng.standard_normal((len(x), len(scale))) * spread) @ axes).astype(np.float32)
        for _ in range(draws)
    ]


def node_support(features: np.ndarray, seed: int = 0, threshold: float = THRESHOLD) -> Support:
    """Whether a node's images, features float ``[M, F]``, support splitting it."""
    if len(features) < MIN_ROWS:
        return Support(cut=1.0, reference=1.0, threshold=threshold)
    rng = np.random.default_rng(seed)
    reference = np.mean([thinnest_cut(like, seed) for like in gaussian_like(features, rng, DRAWS)])
    return Support(thinnest_cut(features, seed), float(reference), threshold)


@torch.no_grad()
def view_mean_features(
    embed: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    config: object,
    seed: int,
    views: int = VIEWS,
    batch: int = 512,
) -> np.ndarray:
    """Each image's features averaged over random views: float32 ``[M, F]``.

    embed: float images in [-1, 1] -> features; images: uint8 ``[M, C, H, W]``. The
    views are the splitter's own (:func:`~hctree.invariance.configured_view`).
    """
    gen = make_generator(seed, images.device)

    def view(x: torch.Tensor) -> torch.Tensor:
        return configured_view(x, config, gen)

    out = [
        view_mean(embed, view, to_unit(images[start : start + batch]), views)
        for start in range(0, images.shape[0], batch)
    ]
    return torch.cat(out).cpu().numpy()
