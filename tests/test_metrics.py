"""Tests for hctree.metrics: hand-computed cases, identities and brute-force references."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from hctree.errors import HCTreeError
from hctree.metrics import (
    accuracy,
    ari,
    cluster_scores,
    contingency,
    dendrogram_purity,
    leaf_purity,
    nmi,
    purity,
    soft_contingency,
    soft_dendrogram_purity,
    soft_tree_counts,
    split_purity,
)

# A small tree used by several hand-computed cases:   r -> (r0, r1),  r0 -> (r00, r01)
SMALL_CHILDREN = {"r": ["r0", "r1"], "r0": ["r00", "r01"]}
SMALL_LEAVES = ["r00", "r01", "r1"]


# ---------------------------------------------------------------------------
# independent references


def reference_nmi(labels, assign) -> float:
    """Textbook NMI from probability tables: I / ((H(Y) + H(K)) / 2), natural log."""
    n = len(labels)
    p_y = {y: c / n for y, c in Counter(labels).items()}
    p_k = {k: c / n for k, c in Counter(assign).items()}
    p_yk = {yk: c / n for yk, c in Counter(zip(labels, assign, strict=True)).items()}
    mi = sum(p * math.log(p / (p_y[y] * p_k[k])) for (y, k), p in p_yk.items())
    h_y = -sum(p * math.log(p) for p in p_y.values())
    h_k = -sum(p * math.log(p) for p in p_k.values())
    return mi / ((h_y + h_k) / 2)


def reference_ari(labels, assign) -> float:
    """Textbook ARI (Hubert & Arabie) with exact integer binomials."""
    n = len(labels)
    index = sum(math.comb(c, 2) for c in Counter(zip(labels, assign, strict=True)).values())
    a = sum(math.comb(c, 2) for c in Counter(labels).values())
    b = sum(math.comb(c, 2) for c in Counter(assign).values())
    expected = a * b / math.comb(n, 2)
    return (index - expected) / ((a + b) / 2 - expected)


def random_tree(rng: np.random.Generator, n_leaves: int, arity: tuple[int, ...]):
    """Grow a tree by splitting random leaves into 2 or 3 children; returns (children, leaves)."""
    children: dict[str, list[str]] = {}
    leaves = ["r"]
    while len(leaves) < n_leaves:
        node = leaves.pop(int(rng.integers(len(leaves))))
        k = int(rng.choice(arity))
        children[node] = [f"{node}{j}" for j in range(k)]
        leaves.extend(children[node])
    return children, sorted(leaves)


def parent_map(children) -> dict[str, str]:
    return {c: p for p, kids in children.items() for c in kids}


def lca(a: str, b: str, parents: dict[str, str]) -> str:
    """Lowest common ancestor by walking up explicit parent links."""
    ancestors = {a}
    while a in parents:
        a = parents[a]
        ancestors.add(a)
    while b not in ancestors:
        b = parents[b]
    return b


def leaves_under(node: str, children) -> list[str]:
    kids = children.get(node, [])
    if not kids:
        return [node]
    return [leaf for kid in kids for leaf in leaves_under(kid, children)]


def brute_hard_dendrogram_purity(leaf_of, labels, children) -> float:
    """Enumerate every same-class pair, find its LCA, average the LCA's class fraction."""
    parents = parent_map(children)
    members: dict[str, Counter] = {}

    def node_counts(node):
        if node not in members:
            under = set(leaves_under(node, children))
            members[node] = Counter(
                y for leaf, y in zip(leaf_of, labels, strict=True) if leaf in under
            )
        return members[node]

    scores = []
    for i, j in itertools.combinations(range(len(labels)), 2):
        if labels[i] != labels[j]:
            continue
        counts = node_counts(lca(leaf_of[i], leaf_of[j], parents))
        scores.append(counts[labels[i]] / sum(counts.values()))
    return float(np.mean(scores))


def brute_soft_dendrogram_purity(memberships, labels, children, leaves) -> float:
    """Expectation over distinct same-class pairs with weight s[a, i] * s[b, j] at LCA(a, b)."""
    parents = parent_map(children)
    n_classes = int(labels.max()) + 1
    leaf_counts = {
        leaf: np.array([memberships[l, labels == c].sum() for c in range(n_classes)])
        for l, leaf in enumerate(leaves)
    }

    def fraction(node, c):
        counts = sum(leaf_counts[leaf] for leaf in leaves_under(node, children))
        return counts[c] / counts.sum()

    num = den = 0.0
    for i, j in itertools.permutations(range(len(labels)), 2):
        if labels[i] != labels[j]:
            continue
        for (a, la), (b, lb) in itertools.product(enumerate(leaves), repeat=2):
            weight = memberships[a, i] * memberships[b, j]
            num += weight * fraction(lca(la, lb, parents), labels[i])
            den += weight
    return num / den


def biased_assignment(rng, labels, n_leaves, noise=0.4):
    """Leaves that follow the class with probability 1 - noise, so purity is neither 0 nor 1."""
    follow = labels % n_leaves
    random = rng.integers(0, n_leaves, size=labels.size)
    return np.where(rng.random(labels.size) < noise, random, follow)


# ---------------------------------------------------------------------------
# contingency tables


def test_contingency_by_hand():
    assign = np.array([0, 0, 1, 1, 1, 2])
    labels = np.array([0, 1, 1, 1, 0, 2])
    # cluster 0: classes {0, 1}; cluster 1: {1, 1, 0}; cluster 2: {2}
    expected = np.array([[1, 1, 0], [1, 2, 0], [0, 0, 1]])
    table = contingency(assign, labels)
    assert table.dtype == np.int64
    np.testing.assert_array_equal(table, expected)


def test_contingency_declared_sizes_pad_with_zeros():
    table = contingency(np.array([0, 1]), np.array([1, 1]), n_clusters=3, n_classes=4)
    np.testing.assert_array_equal(table, [[0, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])


def test_soft_contingency_by_hand():
    memberships = np.array([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]])
    labels = np.array([0, 0, 1])
    # cluster 0: class 0 gets 1 + 0.5; cluster 1: class 0 gets 0.5, class 1 gets 1
    np.testing.assert_allclose(soft_contingency(memberships, labels), [[1.5, 0.0], [0.5, 1.0]])


def test_soft_contingency_of_one_hot_is_contingency():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 300)
    assign = rng.integers(0, 4, 300)
    one_hot = np.eye(4)[assign].T
    np.testing.assert_array_equal(
        soft_contingency(one_hot, labels, 5), contingency(assign, labels, 4, 5)
    )


def test_soft_tree_counts_by_hand():
    memberships = np.array([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]])
    counts, example_sq = soft_tree_counts(memberships, np.array([0, 0, 1]))
    np.testing.assert_allclose(counts, [[1.5, 0.0], [0.5, 1.0]])
    # leaf 0, class 0: 1**2 + 0.5**2 = 1.25; leaf 1, class 0: 0.5**2; leaf 1, class 1: 1**2
    np.testing.assert_allclose(example_sq, [[1.25, 0.0], [0.25, 1.0]])


# ---------------------------------------------------------------------------
# flat scores: hand-computed


def test_accuracy_by_hand():
    # table (cluster x class): c0 = [1, 3], c1 = [2, 0]; best match c0->1, c1->0: (3 + 2) / 6
    assert accuracy([0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 0]) == pytest.approx(5 / 6)


def test_accuracy_fewer_clusters_than_classes():
    # table [[2, 2, 0], [0, 0, 2]]: one of classes 0/1 stays unmatched -> (2 + 2) / 6
    assert accuracy([0, 0, 1, 1, 2, 2], [0, 0, 0, 0, 1, 1]) == pytest.approx(4 / 6)


def test_accuracy_more_clusters_than_classes():
    # clusters 0, 1, 2 each hold one example of class 0, cluster 3 holds class 1 x3;
    # only one of the three class-0 clusters can be matched -> (1 + 3) / 6
    assert accuracy([0, 0, 0, 1, 1, 1], [0, 1, 2, 3, 3, 3]) == pytest.approx(4 / 6)


def test_purity_by_hand():
    # cluster 0 = {0, 1, 1, 1} majority 3; cluster 1 = {0, 0} majority 2 -> 5 / 6
    assert purity([0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 0]) == pytest.approx(5 / 6)
    # singletons and a pure cluster are all pure, unlike accuracy above
    assert purity([0, 0, 0, 1, 1, 1], [0, 1, 2, 3, 3, 3]) == pytest.approx(1.0)


def test_nmi_by_hand():
    # table c0 = [2, 1], c1 = [0, 1], N = 4
    # H(Y) = ln 2 = 0.693147; H(K) = -(3/4 ln 3/4 + 1/4 ln 1/4) = 0.562335
    # I = 2/4 ln(4*2/(3*2)) + 1/4 ln(4*1/(3*2)) + 1/4 ln(4*1/(1*2)) = 0.215762
    # NMI = 0.215762 / ((0.693147 + 0.562335) / 2) = 0.343711
    assert nmi([0, 0, 1, 1], [0, 0, 0, 1]) == pytest.approx(0.3437110185, abs=1e-9)


def test_ari_by_hand():
    # table c0 = [2, 0], c1 = [1, 1], c2 = [0, 2]
    # index = C(2,2) + C(2,2) = 2; rows: 3 * C(2,2) = 3; cols: 2 * C(3,2) = 6; C(6,2) = 15
    # expected = 3 * 6 / 15 = 1.2; max = (3 + 6) / 2 = 4.5; ARI = 0.8 / 3.3 = 8 / 33
    assert ari([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]) == pytest.approx(8 / 33)
    # table [[2, 1], [0, 1]]: index 1, rows 3, cols 2, expected 3 * 2 / 6 = 1 -> ARI 0
    assert ari([0, 0, 1, 1], [0, 0, 0, 1]) == pytest.approx(0.0, abs=1e-12)


def test_cluster_scores_keys_and_values():
    labels, assign = [0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 0]
    scores = cluster_scores(labels, assign)
    assert set(scores) == {"acc", "nmi", "ari", "purity"}
    assert scores["acc"] == accuracy(labels, assign)
    assert scores["nmi"] == nmi(labels, assign)
    assert scores["ari"] == ari(labels, assign)
    assert scores["purity"] == purity(labels, assign)


# ---------------------------------------------------------------------------
# flat scores: identities and references


def test_perfect_clustering_scores_one():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 7, 500)
    assign = rng.permutation(7)[labels] + 10  # renamed clusters, arbitrary ids
    scores = cluster_scores(labels, assign)
    assert scores == pytest.approx({"acc": 1.0, "nmi": 1.0, "ari": 1.0, "purity": 1.0})


def test_scores_invariant_to_renaming_and_order():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 6, 400)
    assign = biased_assignment(rng, labels, 5)
    base = cluster_scores(labels, assign)
    renamed = cluster_scores(rng.permutation(6)[labels], rng.permutation(5)[assign])
    order = rng.permutation(400)
    shuffled = cluster_scores(labels[order], assign[order])
    assert renamed == pytest.approx(base, abs=1e-12)
    assert shuffled == pytest.approx(base, abs=1e-12)
    assert 0.2 < base["acc"] < 1.0  # a non-trivial case


def test_random_assignment_scores_near_zero():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 20_000)
    assign = rng.integers(0, 10, 20_000)
    assert 0.0 <= nmi(labels, assign) < 0.01
    assert abs(ari(labels, assign)) < 0.01


@pytest.mark.parametrize("seed", range(6))
def test_nmi_ari_match_textbook(seed):
    rng = np.random.default_rng(seed)
    n, c, k = int(rng.integers(20, 300)), int(rng.integers(2, 8)), int(rng.integers(2, 9))
    labels = rng.integers(0, c, n)
    assign = biased_assignment(rng, labels, k, noise=float(rng.random()))
    assert nmi(labels, assign) == pytest.approx(reference_nmi(labels.tolist(), assign.tolist()))
    assert ari(labels, assign) == pytest.approx(reference_ari(labels.tolist(), assign.tolist()))


def test_degenerate_partitions():
    # one cluster for one class: perfect; one cluster for two classes: no information
    assert nmi([3, 3, 3], [1, 1, 1]) == 1.0
    assert ari([3, 3, 3], [1, 1, 1]) == 1.0
    assert nmi([0, 0, 1, 1], [5, 5, 5, 5]) == 0.0
    assert ari([0, 0, 1, 1], [5, 5, 5, 5]) == pytest.approx(0.0)


# ---------------------------------------------------------------------------
# tree scores: hand-computed


def test_leaf_and_split_purity_by_hand():
    counts = np.array([[2, 0], [1, 1], [0, 2]])
    # majorities 2 + 1 + 2 over 6 examples
    assert leaf_purity(counts) == pytest.approx(5 / 6)
    assert split_purity(np.array([[3.0, 1.0], [0.5, 1.5]])) == pytest.approx((3 + 1.5) / 6)


def test_dendrogram_purity_by_hand():
    counts = np.array([[2, 0], [1, 1], [0, 2]])  # leaves r00, r01, r1
    # class 0 (2 in r00, 1 in r01): 1 pair at r00 (purity 1), 2 pairs at r0 = [3, 1] (3/4)
    # class 1 (1 in r01, 2 in r1):  1 pair at r1  (purity 1), 2 pairs at r  = [3, 3] (1/2)
    # (1 + 2 * 3/4 + 1 + 2 * 1/2) / 6 = 4.5 / 6
    assert dendrogram_purity(counts, SMALL_CHILDREN, "r", SMALL_LEAVES) == pytest.approx(0.75)


def test_dendrogram_purity_ignores_leaf_order_given_matching_rows():
    counts = np.array([[2, 0], [1, 1], [0, 2]])
    order = [2, 0, 1]
    leaves = [SMALL_LEAVES[i] for i in order]
    assert dendrogram_purity(counts[order], SMALL_CHILDREN, "r", leaves) == pytest.approx(0.75)


def test_dendrogram_purity_of_pure_leaves_is_one():
    counts = np.array([[4, 0, 0], [0, 3, 0], [0, 0, 5]])
    assert dendrogram_purity(counts, SMALL_CHILDREN, "r", SMALL_LEAVES) == pytest.approx(1.0)


def test_dendrogram_purity_single_leaf_tree_is_class_fraction_weighted():
    # root is the only node: every same-class pair has LCA r with purity n_c / N
    # pairs: C(3,2) = 3 of class 0 (purity 3/4), 0 of class 1 -> 3/4
    assert dendrogram_purity(np.array([[3, 1]]), {}, "r", ["r"]) == pytest.approx(0.75)


# ---------------------------------------------------------------------------
# tree scores: brute force


@pytest.mark.parametrize(
    ("seed", "arity"), [(0, (2,)), (1, (2,)), (2, (3,)), (3, (2, 3)), (4, (2, 3)), (5, (3,))]
)
def test_hard_dendrogram_purity_matches_brute_force(seed, arity):
    rng = np.random.default_rng(seed)
    n_leaves = int(rng.integers(3, 9))
    children, leaves = random_tree(rng, n_leaves, arity)
    labels = rng.integers(0, int(rng.integers(2, 6)), 200)
    assign = biased_assignment(rng, labels, len(leaves), noise=0.5)
    counts = contingency(assign, labels, len(leaves))
    got = dendrogram_purity(counts, children, "r", leaves)
    expected = brute_hard_dendrogram_purity([leaves[a] for a in assign], labels, children)
    assert got == pytest.approx(expected, abs=1e-12)
    assert got < 1.0


@pytest.mark.parametrize("seed", range(3))
def test_soft_equals_hard_for_one_hot_memberships(seed):
    rng = np.random.default_rng(seed)
    children, leaves = random_tree(rng, 6, (2, 3))
    labels = rng.integers(0, 4, 150)
    assign = biased_assignment(rng, labels, len(leaves))
    memberships = np.eye(len(leaves))[assign].T
    hard = dendrogram_purity(contingency(assign, labels, len(leaves)), children, "r", leaves)
    counts, example_sq = soft_tree_counts(memberships, labels)
    assert dendrogram_purity(counts, children, "r", leaves, example_sq) == pytest.approx(hard)
    assert soft_dendrogram_purity(memberships, labels, children, "r", leaves) == pytest.approx(hard)


@pytest.mark.parametrize("seed", range(3))
def test_soft_dendrogram_purity_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    children, leaves = random_tree(rng, 4, (2, 3))
    labels = rng.integers(0, 3, 12)
    memberships = rng.dirichlet(np.full(len(leaves), 0.5), size=12).T  # [L, N], columns sum to 1
    expected = brute_soft_dendrogram_purity(memberships, labels, children, leaves)
    got = soft_dendrogram_purity(memberships, labels, children, "r", leaves)
    assert got == pytest.approx(expected, abs=1e-12)


def test_leaf_level_soft_approximation_is_close_for_many_examples():
    rng = np.random.default_rng(7)
    children, leaves = random_tree(rng, 8, (2, 3))
    labels = rng.integers(0, 5, 5000)
    alpha = np.full((5000, len(leaves)), 0.3)
    alpha[np.arange(5000), labels % len(leaves)] += 3.0
    memberships = np.stack([rng.dirichlet(a) for a in alpha], axis=1)
    exact = soft_dendrogram_purity(memberships, labels, children, "r", leaves)
    counts, example_sq = soft_tree_counts(memberships, labels)
    approx = dendrogram_purity(counts, children, "r", leaves, example_sq)
    assert approx == pytest.approx(exact, abs=1e-3)
    assert approx != exact  # the leaf-level form ignores self-pairs across siblings


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: accuracy([0, 1, 1], [0, 1]), "entries"),
        (lambda: nmi([], []), "non-empty"),
        (lambda: ari([0.5, 1.0], [0, 1]), "integers"),
        (lambda: contingency(np.array([0, -1]), np.array([0, 1])), "negative"),
        (lambda: contingency(np.array([0, 3]), np.array([0, 1]), n_clusters=2), "declared"),
        (lambda: leaf_purity(np.array([[1, -1]])), "non-negative"),
        (lambda: leaf_purity(np.zeros((2, 2))), "zero"),
        (lambda: leaf_purity(np.array([1, 2])), "2-D"),
        (lambda: soft_contingency(np.ones((2, 3)), np.array([0, 1])), "columns"),
        (lambda: soft_contingency(-np.ones((2, 2)), np.array([0, 1])), "non-negative"),
    ],
)
def test_invalid_flat_input_raises(call, match):
    with pytest.raises(HCTreeError, match=match):
        call()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"leaf_counts": np.array([[1, 1], [2, 0]])}, "rows"),
        ({"leaves": ["r00", "r01", "r0"]}, "differ"),
        ({"leaves": ["r00", "r00", "r1"]}, "twice"),
        ({"leaf_counts": np.array([[1.5, 0], [1, 1], [0, 2]])}, "example_sq"),
        ({"example_sq": np.ones((2, 2))}, "shaped"),
        ({"leaf_counts": np.eye(3, dtype=int)}, "same class"),
        ({"children": {"r": ["r0", "r1"], "r0": ["r00", "r01", "r"]}}, "twice"),
    ],
)
def test_invalid_tree_input_raises(kwargs, match):
    args = {
        "leaf_counts": np.array([[2, 0], [1, 1], [0, 2]]),
        "children": SMALL_CHILDREN,
        "root": "r",
        "leaves": SMALL_LEAVES,
    } | kwargs
    with pytest.raises(HCTreeError, match=match):
        dendrogram_purity(**args)


# ---------------------------------------------------------------------------
# speed


def test_every_metric_runs_at_mnist_scale():
    rng = np.random.default_rng(8)
    n, n_leaves = 70_000, 20
    children, leaves = random_tree(rng, n_leaves, (2,))
    labels = rng.integers(0, 10, n)
    assign = biased_assignment(rng, labels, n_leaves)
    memberships = rng.dirichlet(np.full(n_leaves, 0.2), size=n).T.astype(np.float32)
    counts = contingency(assign, labels, n_leaves)
    soft_counts, example_sq = soft_tree_counts(memberships, labels)
    calls = {
        "contingency": lambda: contingency(assign, labels),
        "soft_contingency": lambda: soft_contingency(memberships, labels),
        "soft_tree_counts": lambda: soft_tree_counts(memberships, labels),
        "accuracy": lambda: accuracy(labels, assign),
        "nmi": lambda: nmi(labels, assign),
        "ari": lambda: ari(labels, assign),
        "purity": lambda: purity(labels, assign),
        "leaf_purity": lambda: leaf_purity(counts),
        "dendrogram_purity": lambda: dendrogram_purity(counts, children, "r", leaves),
        "soft_leaf_level": lambda: dendrogram_purity(
            soft_counts, children, "r", leaves, example_sq
        ),
        "soft_dendrogram_purity": lambda: soft_dendrogram_purity(
            memberships, labels, children, "r", leaves
        ),
    }
    for name, call in calls.items():
        value = call()
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            assert np.all(np.isfinite(v)) and np.all(np.asarray(v) >= -1.0), name
