"""Flat and hierarchical clustering metrics on plain numpy arrays.

Flat scores compare true class labels with cluster assignments (both int ``[N]``):
``accuracy`` (Hungarian-matched), ``nmi``, ``ari`` and ``purity``. Tree scores work on
per-leaf class counts: ``leaf_purity`` / ``split_purity`` and ``dendrogram_purity``
(Heller & Ghahramani, 2005), hard from argmax assignments or soft from membership
vectors. Formulas and conventions are in docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix

from hctree.errors import HCTreeError

__all__ = [
    "accuracy",
    "ari",
    "cluster_scores",
    "contingency",
    "dendrogram_purity",
    "leaf_purity",
    "nmi",
    "purity",
    "soft_contingency",
    "soft_dendrogram_purity",
    "soft_tree_counts",
    "split_purity",
]


# ---------------------------------------------------------------------------
# validation


def _int_vector(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` as a non-empty 1-D int64 array; integral floats are accepted."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise HCTreeError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}.")
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    raise HCTreeError(f"{name} must hold integers, got dtype {arr.dtype}; pass class/cluster ids.")


def _paired(labels: np.ndarray, assign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated int64 ``labels`` and ``assign`` of the same length N."""
    labels = _int_vector(labels, "labels")
    assign = _int_vector(assign, "assign")
    if labels.shape != assign.shape:
        raise HCTreeError(
            f"labels has {labels.size} entries but assign has {assign.size}; "
            "pass one label and one cluster per example."
        )
    return labels, assign


def _ids(values: np.ndarray, count: int | None, name: str) -> int:
    """Check ``values`` are ids in ``[0, count)``; returns ``count`` (default max + 1)."""
    if values.min() < 0:
        raise HCTreeError(f"{name} holds negative ids; ids must be 0, 1, 2, ...")
    top = int(values.max()) + 1
    if count is None:
        return top
    if top > count:
        raise HCTreeError(f"{name} holds id {top - 1} but only {count} were declared; raise it.")
    return count


def _counts_matrix(counts: np.ndarray, name: str) -> np.ndarray:
    """``counts`` as float64 ``[R, C]``: finite, non-negative, with a positive sum."""
    arr = np.asarray(counts, dtype=np.float64)
    if arr.ndim != 2 or arr.size == 0:
        raise HCTreeError(f"{name} must be a non-empty 2-D [rows, classes] array, got {arr.shape}.")
    if not np.all(np.isfinite(arr)) or arr.min() < 0:
        raise HCTreeError(f"{name} must hold finite non-negative counts.")
    if arr.sum() <= 0:
        raise HCTreeError(f"{name} sums to zero; pass the counts of at least one example.")
    return arr


def _memberships(memberships: np.ndarray, n: int) -> np.ndarray:
    """``memberships`` as a float64 ``[K, n]`` array of finite non-negative values."""
    arr = np.asarray(memberships, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise HCTreeError(f"memberships must be a non-empty 2-D [K, N] array, got {arr.shape}.")
    if arr.shape[1] != n:
        raise HCTreeError(
            f"memberships has {arr.shape[1]} columns but labels has {n} entries; "
            "pass one column per example."
        )
    if not np.all(np.isfinite(arr)) or arr.min() < 0:
        raise HCTreeError("memberships must hold finite non-negative values.")
    return arr


# ---------------------------------------------------------------------------
# contingency tables


def contingency(
    assign: np.ndarray,
    labels: np.ndarray,
    n_clusters: int | None = None,
    n_classes: int | None = None,
) -> np.ndarray:
    """Cluster-by-class counts.

    assign: int ``[N]`` cluster ids in ``[0, K)``; labels: int ``[N]`` class ids in ``[0, C)``.
    ``K`` and ``C`` default to the largest id + 1. Returns int64 ``[K, C]`` where entry
    ``[k, c]`` is the number of examples of class ``c`` in cluster ``k``.
    """
    labels, assign = _paired(labels, assign)
    k = _ids(assign, n_clusters, "assign")
    c = _ids(labels, n_classes, "labels")
    flat = np.bincount(assign * c + labels, minlength=k * c)
    return flat.reshape(k, c).astype(np.int64, copy=False)


def soft_contingency(
    memberships: np.ndarray, labels: np.ndarray, n_classes: int | None = None
) -> np.ndarray:
    """Fractional cluster-by-class counts.

    memberships: float ``[K, N]`` non-negative weight of each example in each cluster;
    labels: int ``[N]`` class ids in ``[0, C)``. Returns float64 ``[K, C]`` with entry
    ``[k, c] = sum of memberships[k, i] over examples i of class c``.
    """
    labels = _int_vector(labels, "labels")
    c = _ids(labels, n_classes, "labels")
    weights = _memberships(memberships, labels.size)
    n = labels.size
    onehot = scipy.sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(c, n))
    return np.asarray(onehot @ weights.T).T.copy()


def _compact_contingency(labels: np.ndarray, assign: np.ndarray) -> np.ndarray:
    """int64 ``[K, C]`` counts over the cluster and class values present (any integers)."""
    labels, assign = _paired(labels, assign)
    return contingency_matrix(assign, labels).astype(np.int64, copy=False)


# ---------------------------------------------------------------------------
# flat scores


def accuracy(labels: np.ndarray, assign: np.ndarray) -> float:
    """Clustering accuracy under the best one-to-one cluster-to-class matching.

    labels, assign: int ``[N]`` (any integer values). The matching maximises the matched
    examples (Hungarian algorithm); when K != C the clusters (or classes) left unmatched
    count as wrong. Returns a float in (0, 1].
    """
    table = _compact_contingency(labels, assign)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def nmi(labels: np.ndarray, assign: np.ndarray) -> float:
    """Normalised mutual information, ``I(Y; K) / ((H(Y) + H(K)) / 2)`` (scikit-learn's).

    labels, assign: int ``[N]`` (any integer values). Both labelings having a single value
    scores 1; otherwise zero mutual information scores 0.
    """
    labels, assign = _paired(labels, assign)
    return float(normalized_mutual_info_score(labels, assign, average_method="arithmetic"))


def ari(labels: np.ndarray, assign: np.ndarray) -> float:
    """Adjusted Rand index (Hubert & Arabie, 1985; scikit-learn's).

    labels, assign: int ``[N]`` (any integer values). 1 for identical partitions, about 0
    for independent ones, negative below chance.
    """
    labels, assign = _paired(labels, assign)
    return float(adjusted_rand_score(labels, assign))


def purity(labels: np.ndarray, assign: np.ndarray) -> float:
    """Fraction of examples that belong to the majority class of their cluster.

    labels, assign: int ``[N]`` (any integer values). Returns a float in (0, 1].
    """
    return leaf_purity(_compact_contingency(labels, assign))


def cluster_scores(labels: np.ndarray, assign: np.ndarray) -> dict[str, float]:
    """All flat scores at once: ``{"acc", "nmi", "ari", "purity"}`` for int ``[N]`` inputs."""
    return {
        "acc": accuracy(labels, assign),
        "nmi": nmi(labels, assign),
        "ari": ari(labels, assign),
        "purity": purity(labels, assign),
    }


# ---------------------------------------------------------------------------
# tree scores


def leaf_purity(leaf_counts: np.ndarray) -> float:
    """Size-weighted majority-class fraction: ``sum_l max_c n[l, c] / sum n``.

    leaf_counts: non-negative ``[L, C]`` (int or fractional) counts of class c in row l.
    """
    counts = _counts_matrix(leaf_counts, "leaf_counts")
    return float(counts.max(axis=1).sum() / counts.sum())


split_purity = leaf_purity
"""Purity of one split: ``leaf_purity`` applied to its children's ``[k, C]`` class counts."""


def soft_tree_counts(
    memberships: np.ndarray, labels: np.ndarray, n_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Soft leaf counts and per-leaf sums of squared memberships, for ``dendrogram_purity``.

    memberships: float ``[L, N]`` leaf memberships; labels: int ``[N]``. Returns
    ``(counts, example_sq)``, both float64 ``[L, C]``: ``counts[l, c] = sum_i s[l, i]`` and
    ``example_sq[l, c] = sum_i s[l, i]**2`` over examples i of class c.
    """
    weights = np.asarray(memberships, dtype=np.float64)
    counts = soft_contingency(weights, labels, n_classes)
    example_sq = soft_contingency(weights * weights, labels, counts.shape[1])
    return counts, example_sq


def _is_leaf(node: str, children: Mapping[str, Sequence[str]]) -> bool:
    return len(children.get(node, ())) == 0


def _postorder(root: str, children: Mapping[str, Sequence[str]]) -> list[str]:
    """Nodes of the tree under ``root``, every node after all of its descendants."""
    order: list[str] = []
    seen: set[str] = set()
    stack: list[tuple[str, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            raise HCTreeError(f"node {node!r} is reached twice from the root; pass a tree.")
        seen.add(node)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(children.get(node, ()))))
    return order


def _leaf_rows(order: list[str], children: Mapping[str, Sequence[str]], leaves: Sequence[str]):
    """Row of ``leaf_counts`` for each node of ``order`` (-1 for internal nodes), int ``[V]``."""
    row_of = {name: i for i, name in enumerate(leaves)}
    if len(row_of) != len(leaves):
        raise HCTreeError("leaves lists a name twice; pass each leaf once.")
    tree_leaves = [node for node in order if _is_leaf(node, children)]
    if set(tree_leaves) != set(row_of):
        missing = sorted(set(tree_leaves) ^ set(row_of))
        raise HCTreeError(
            f"leaves and the tree's leaves differ ({missing[:3]}); "
            "list exactly the leaves under root."
        )
    return np.array([row_of.get(node, -1) for node in order], dtype=np.int64)


def _parents(order: list[str], children: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Index in ``order`` of each node's parent (-1 for the root), int ``[V]``."""
    index = {name: i for i, name in enumerate(order)}
    parent = np.full(len(order), -1, dtype=np.int64)
    for name in order:
        for child in children.get(name, ()):
            parent[index[child]] = index[name]
    return parent


def _ancestry(order: list[str], children: Mapping[str, Sequence[str]], rows: np.ndarray):
    """Indicator float64 ``[V, L]``: 1 where leaf row l lies under (or is) node v."""
    parent = _parents(order, children)
    under = np.zeros((len(order), int(rows.max()) + 1))
    for v in range(len(order)):
        if rows[v] >= 0:
            under[v, rows[v]] = 1.0
    for v in range(len(order)):
        if parent[v] >= 0:
            under[parent[v]] += under[v]
    return under, parent


def _purity_from_nodes(node_counts: np.ndarray, node_sq: np.ndarray, parent: np.ndarray) -> float:
    """Dendrogram purity from per-node class counts and squared-membership sums, ``[V, C]``.

    Same-class pair mass inside the subtree of v is ``D_v = (n_v**2 - q_v) / 2``; pairs whose
    lowest common ancestor is v are ``D_v - sum over children u of D_u``.
    """
    inside = (node_counts**2 - node_sq) / 2.0
    below = np.zeros_like(inside)
    np.add.at(below, parent[parent >= 0], inside[parent >= 0])
    at_node = np.clip(inside - below, 0.0, None)
    sizes = node_counts.sum(axis=1, keepdims=True)
    fraction = np.divide(node_counts, sizes, out=np.zeros_like(node_counts), where=sizes > 0)
    total = at_node.sum()
    if total <= 1e-12 * max(node_counts.max(), 1.0):
        raise HCTreeError(
            "dendrogram purity needs two examples of the same class; pass more labelled examples."
        )
    return float(min((at_node * fraction).sum() / total, 1.0))


def dendrogram_purity(
    leaf_counts: np.ndarray,
    children: Mapping[str, Sequence[str]],
    root: str,
    leaves: Sequence[str],
    example_sq: np.ndarray | None = None,
) -> float:
    """Dendrogram purity: mean over same-class example pairs of their LCA's class fraction.

    leaf_counts: ``[L, C]`` class counts per leaf, rows in the order of ``leaves``;
    children: internal node name -> child names (absent or childless nodes are leaves);
    example_sq: float ``[L, C]`` sums of squared memberships per leaf and class, needed for
    fractional (soft) counts; ``None`` means hard integer counts (``example_sq = counts``).
    With soft counts an example's weight split across sibling subtrees is counted as a pair
    with itself at their parent (relative error O(1/n)); ``soft_dendrogram_purity`` is exact.
    """
    counts = _counts_matrix(leaf_counts, "leaf_counts")
    if example_sq is None:
        if not np.array_equal(counts, np.round(counts)):
            raise HCTreeError(
                "leaf_counts are fractional but example_sq is missing; "
                "get both from soft_tree_counts."
            )
        sq = counts
    else:
        sq = np.asarray(example_sq, dtype=np.float64)
        if sq.shape != counts.shape or not np.all(np.isfinite(sq)) or sq.min() < 0:
            raise HCTreeError(
                "example_sq must be finite, non-negative and shaped like leaf_counts "
                f"{counts.shape}; get it from soft_tree_counts."
            )
    if counts.shape[0] != len(leaves):
        raise HCTreeError(
            f"leaf_counts has {counts.shape[0]} rows but {len(leaves)} leaves were named; "
            "pass one row per leaf."
        )
    order = _postorder(root, children)
    rows = _leaf_rows(order, children, leaves)
    under, parent = _ancestry(order, children, rows)
    return _purity_from_nodes(under @ counts, under @ sq, parent)


def soft_dendrogram_purity(
    memberships: np.ndarray,
    labels: np.ndarray,
    children: Mapping[str, Sequence[str]],
    root: str,
    leaves: Sequence[str],
    n_classes: int | None = None,
) -> float:
    """Exact soft dendrogram purity from leaf memberships.

    memberships: float ``[L, N]`` with rows in the order of ``leaves``; labels: int ``[N]``.
    Every pair of distinct same-class examples (i, j) puts weight ``s[a, i] * s[b, j]`` on the
    lowest common ancestor of leaves a and b; node purities use fractional counts.
    """
    weights = np.asarray(memberships, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != len(leaves):
        raise HCTreeError(
            f"memberships has shape {weights.shape} but {len(leaves)} leaves were named; "
            "pass one row per leaf."
        )
    order = _postorder(root, children)
    rows = _leaf_rows(order, children, leaves)
    under, parent = _ancestry(order, children, rows)
    node_weights = under @ weights
    node_counts = soft_contingency(node_weights, labels, n_classes)
    node_sq = soft_contingency(node_weights**2, labels, node_counts.shape[1])
    if node_counts.sum() <= 0:
        raise HCTreeError("memberships sum to zero; pass the memberships of at least one example.")
    return _purity_from_nodes(node_counts, node_sq, parent)
