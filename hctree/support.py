"""Whether the data support a split: the dip test of unimodality along the split's axis.

``--leaves auto`` keeps a node as a leaf when its split does not divide two modes.
The node's images are embedded (the split's own trunk features where the splitter
offers them, pixels otherwise), reduced to their leading principal components, and
projected onto the line through the children's weighted means. Hartigan's dip test
(the ``diptest`` package) then asks whether that one-dimensional projection could
come from a unimodal distribution: a split of one homogeneous cluster projects to a
single mode, a split between two clusters to two. The split is supported when the
test rejects unimodality at level ``alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass

import diptest
import numpy as np

SAMPLE = 2000  # images drawn (by membership) for the test: enough power, fast
COMPONENTS = 16  # principal components the projection is taken in
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
