"""Whether the data support splitting a node: the dip test of its graph's leading axes.

``--leaves auto`` keeps a node as a leaf when its images form one mode. Each of
the node's images is embedded by the split's own trunk where the splitter offers
one (as the mean of its features over ``VIEWS`` random views, the views the trunk
learned to ignore), by its pixels otherwise, and joined to its nearest
neighbours; the leading non-trivial eigenvectors of that graph's random walk are
the directions along which it is most nearly cut in two. Hartigan's dip test (the
``diptest`` package) asks whether the values along each of the first ``AXES``
could come from a unimodal distribution; the node is supported when the smallest p-value, times
``AXES`` (Bonferroni), is below ``alpha``. One homogeneous cluster spreads
smoothly along every axis; two or more clusters pile up at two ends of one.
Averaging over views matters: a trunk keeps traces of colour cast or position,
and the graph of single-view features splits one class by them.

The node is tested, not the split the splitter found: a node of several classes
whose split each side still mixes is supported all the same
(docs/benchmarks.md, "--leaves auto"). ``dip_test_split``, the earlier test along
the line between the children's means, stays for comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import diptest
import numpy as np
import torch

from hctree.engine import make_generator, to_unit
from hctree.invariance import view_mean
from hctree.spectral import nearest_rows, walk_embedding

SAMPLE = 2000  # images drawn (by membership) for the test: enough power, fast
COMPONENTS = 16  # principal components the split's projection is taken in
NEIGHBOURS = 10  # the graph joins each image to this many nearest images
AXES = 2  # leading eigenvectors of the graph that are tested
VIEWS = 8  # random views whose trunk features are averaged per image
ALPHA = 0.05  # chosen on a Fashion-MNIST tree (docs/benchmarks.md, "--leaves auto")


@dataclass(frozen=True)
class Support:
    """The dip statistic, its p-value, and the decision at ``alpha``."""

    dip: float
    p_value: float
    alpha: float

    @property
    def supported(self) -> bool:
        return self.p_value < self.alpha


def split_axis(
    features: np.ndarray, children: np.ndarray, components: int = COMPONENTS
) -> np.ndarray:
    """Project rows onto the line through the children's weighted means: float64 ``[M]``.

    features: float ``[M, F]`` of the node's images; children: float ``[k, M]``, each
    image's membership in the two children with the largest mass (rows beyond two are
    ignored). The projection is taken in the leading principal components.
    """
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(axis=0)
    if x.shape[1] > components:
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        x = x @ vt[:components].T
    order = np.argsort(-children.sum(axis=1))[:2]
    w = np.asarray(children, dtype=np.float64)[order]
    means = (w @ x) / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    axis = means[0] - means[1]
    norm = np.linalg.norm(axis)
    if norm == 0:
        return np.zeros(len(x))
    return x @ (axis / norm)


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


def dip_test_split(features: np.ndarray, children: np.ndarray, alpha: float = ALPHA) -> Support:
    """Dip test of a split: features float ``[M, F]``, children memberships ``[k, M]``."""
    if len(features) < 4:
        return Support(dip=0.0, p_value=1.0, alpha=alpha)
    dip, p_value = diptest.diptest(split_axis(features, children))
    return Support(dip=float(dip), p_value=float(p_value), alpha=alpha)


def graph_axes(
    features: np.ndarray, neighbours: int = NEIGHBOURS, axes: int = AXES, seed: int = 0
) -> np.ndarray:
    """The ``axes`` leading non-trivial eigenvectors of the rows' kNN graph: float ``[M, axes]``.

    features: float ``[M, F]``; rows are compared by cosine similarity.
    """
    x = torch.nn.functional.normalize(torch.as_tensor(features, dtype=torch.float32), dim=1)
    near = nearest_rows(x, x, neighbours, skip_self=True).numpy()
    return walk_embedding(near, axes + 1, seed)


def dip_test_node(features: np.ndarray, alpha: float = ALPHA, seed: int = 0) -> Support:
    """Dip test of a node's images, features float ``[M, F]``, along its graph's leading axes."""
    if len(features) < 3 * (NEIGHBOURS + AXES):
        return Support(dip=0.0, p_value=1.0, alpha=alpha)
    found = [diptest.diptest(axis.astype(np.float64)) for axis in graph_axes(features, seed=seed).T]
    dip, p_value = min(found, key=lambda pair: pair[1])
    return Support(dip=float(dip), p_value=min(1.0, float(p_value) * len(found)), alpha=alpha)


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
    views are the splitter's own (``config.crop_scale_min``, ``tint``, ``invert``).
    """
    gen = make_generator(seed, images.device)
    crop = float(getattr(config, "crop_scale_min", 0.4))
    tint, invert = float(getattr(config, "tint", 0.0)), float(getattr(config, "invert", 0.0))
    out = [
        view_mean(embed, to_unit(images[start : start + batch]), views, crop, gen, tint, invert)
        for start in range(0, images.shape[0], batch)
    ]
    return torch.cat(out).cpu().numpy()
