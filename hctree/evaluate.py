"""Score a tree against true class labels: flat, per-cut, per-split and tree metrics.

``evaluate(tree)`` returns a JSON-serialisable dict (keys in docs/formats.md):

- flat scores of the leaves' hard assignment: ``acc`` (Hungarian), ``nmi``, ``ari``,
  ``purity``;
- tree scores: ``leaf_purity`` / ``soft_leaf_purity`` and ``dendrogram_purity`` (hard, the
  literature's definition) / ``soft_dendrogram_purity`` (exact, from memberships);
- ``cuts``: the flat scores and hard dendrogram purity of the tree at every leaf count it
  passed through (2 leaves up to all, following the split order);
- ``splits``: the purity of each split's children, in split order.

Labels come from the tree file unless given; they are used for nothing but scoring.
Formulas are in docs/metrics.md.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from hctree import metrics
from hctree.errors import HCTreeError
from hctree.tree import Tree

__all__ = ["evaluate", "format_report", "load_labels"]

LABEL_EXTENSIONS = (".npy", ".txt", ".csv")


# ---------------------------------------------------------------- labels


def _check_labels(values: np.ndarray, source: str) -> np.ndarray:
    """``values`` as int64 ``[N]``; integral floats are accepted."""
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.size == 0:
        raise HCTreeError(f"{source} must hold a non-empty list of labels, got shape {arr.shape}.")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return arr.astype(np.int64)
    raise HCTreeError(f"{source} must hold whole-number class ids, got dtype {arr.dtype}.")


def _parse_int(text: str, where: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise HCTreeError(f"{where} holds {text.strip()!r}, not a whole-number class id.") from None


def _labels_from_txt(text: str, path: Path) -> np.ndarray:
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    values = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise HCTreeError(f"line {number} of {path} is empty; write one class id per line.")
        values.append(_parse_int(line, f"line {number} of {path}"))
    return np.array(values, dtype=np.int64)


def _label_column(header: list[str], path: Path) -> tuple[int, bool]:
    """The label column's index given the first row, and whether that row is a header."""
    names = [cell.strip().lower() for cell in header]
    if "label" in names:
        return names.index("label"), True
    if len(names) == 1:
        try:
            int(names[0])
        except ValueError:
            return 0, True
        return 0, False
    raise HCTreeError(
        f"{path} has several columns ({', '.join(header)}) but none named 'label'; "
        "name the column of class ids 'label' or keep only that column."
    )


def _labels_from_csv(text: str, path: Path) -> np.ndarray:
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    if not rows:
        raise HCTreeError(f"{path} is empty; write one class id per row.")
    column, has_header = _label_column(rows[0], path)
    values = []
    for number, row in enumerate(rows[1:] if has_header else rows, start=1 + has_header):
        if column >= len(row) or not row[column].strip():
            raise HCTreeError(f"row {number} of {path} has no label; fill it in.")
        values.append(_parse_int(row[column], f"row {number} of {path}"))
    return np.array(values, dtype=np.int64)


def load_labels(path: str | os.PathLike) -> np.ndarray:
    """Class labels from a file, int64 ``[N]``.

    ``.npy``: a 1-D integer array (``[N, 1]`` and integral floats are accepted);
    ``.txt``: one integer per line (trailing blank lines ignored); ``.csv``: a single column
    of integers (an optional header is skipped) or a column named ``label``.
    Raises HCTreeError for a missing, empty or malformed file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in LABEL_EXTENSIONS:
        raise HCTreeError(
            f"labels file {path} has an unknown extension; use {', '.join(LABEL_EXTENSIONS)}."
        )
    if not path.is_file():
        raise HCTreeError(f"labels file {path} does not exist; check the path.")
    if suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise HCTreeError(f"{path} is not a readable .npy array ({exc}).") from None
        return _check_labels(values, str(path))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise HCTreeError(
            f"{path} is not a UTF-8 text file; write one class id per line."
        ) from None
    values = _labels_from_txt(text, path) if suffix == ".txt" else _labels_from_csv(text, path)
    if values.size == 0:
        raise HCTreeError(f"{path} holds no labels; write one class id per image.")
    return values


def _labels_for(tree: Tree, labels: np.ndarray | None) -> tuple[np.ndarray, list[str], str]:
    """Class ids renumbered 0..C-1 (int64 ``[N]``), the C class names, and the labels' source."""
    if labels is None:
        if tree.labels is None:
            raise HCTreeError(
                "the tree file holds no labels; pass them with --labels FILE (.npy, .txt or .csv)."
            )
        labels, source, known = tree.labels, "tree file", tree.class_names
    else:
        source, known = "given", None
    values = _check_labels(labels, "labels")
    if values.size != tree.n:
        raise HCTreeError(
            f"there are {values.size} labels but the tree has {tree.n} images; "
            "pass one label per image, in the data set's order."
        )
    raw, ids = np.unique(values, return_inverse=True)
    names = [
        known[v] if known is not None and 0 <= v < len(known) else str(v) for v in raw.tolist()
    ]
    return ids.ravel().astype(np.int64), names, source


# ---------------------------------------------------------------- scores


def _has_pairs(labels: np.ndarray) -> bool:
    """Whether some class has two examples, so dendrogram purity is defined."""
    return bool(np.bincount(labels).max() >= 2)


def _hard_dendrogram_purity(tree: Tree, labels: np.ndarray, n_classes: int) -> float | None:
    if not _has_pairs(labels):
        return None
    counts = metrics.contingency(tree.assignments(), labels, len(tree.leaves), n_classes)
    return metrics.dendrogram_purity(counts, tree.children_map(), "r", tree.leaves)


def _cut_scores(tree: Tree, labels: np.ndarray, n_classes: int) -> list[dict[str, Any]]:
    rows = []
    for k in tree.cut_sizes():
        if k < 2 or k > len(tree.leaves):
            continue
        cut = tree.cut(k)
        row: dict[str, Any] = {"leaves": k}
        row.update(metrics.cluster_scores(labels, cut.assignments()))
        row["dendrogram_purity"] = _hard_dendrogram_purity(cut, labels, n_classes)
        rows.append(row)
    return rows


def _under(tree: Tree, name: str) -> set[str]:
    """Leaves of ``tree`` at or below node ``name``."""
    return {leaf for leaf in tree.leaves if leaf.startswith(name)}


def _split_scores(
    tree: Tree, labels: np.ndarray, n_classes: int, names: list[str]
) -> list[dict[str, Any]]:
    """Per split: hard purity of its children over the images whose leaf lies under it."""
    assign = tree.assignments()
    rows = []
    for step, name in enumerate(tree.split_sequence, start=1):
        children = list(tree.node(name).children)
        child_memberships = np.stack([tree.node(c).membership for c in children])
        under = [i for i, leaf in enumerate(tree.leaves) if leaf in _under(tree, name)]
        inside = np.isin(assign, under)
        row: dict[str, Any] = {
            "step": step,
            "node": name,
            "children": children,
            "images": int(inside.sum()),
            "purity": None,
            "majority": [None] * len(children),
        }
        if inside.any():
            choice = child_memberships[:, inside].argmax(axis=0)
            counts = metrics.contingency(choice, labels[inside], len(children), n_classes)
            row["purity"] = metrics.split_purity(counts)
            row["majority"] = [names[int(c.argmax())] if c.sum() > 0 else None for c in counts]
        soft = metrics.soft_contingency(child_memberships, labels, n_classes)
        row["soft_purity"] = metrics.split_purity(soft) if soft.sum() > 0 else None
        rows.append(row)
    return rows


def evaluate(tree: Tree, labels: np.ndarray | None = None) -> dict[str, Any]:
    """Score ``tree`` against class labels; returns a JSON-serialisable dict.

    labels: int ``[N]`` class ids (any integers) in the data set's order; default the
    labels stored in the tree file. Raises HCTreeError when there are none or their count
    differs from the tree's N. Scores that are undefined (dendrogram purity without two
    examples of one class, the purity of a split no image's leaf lies under) are ``None``.
    """
    ids, names, source = _labels_for(tree, labels)
    n_classes = len(names)
    memberships = tree.memberships()
    soft_counts = metrics.soft_contingency(memberships, ids, n_classes)
    result: dict[str, Any] = {
        "tree": str(tree.path) if tree.path is not None else None,
        "labels": source,
        "images": tree.n,
        "classes": n_classes,
        "class_names": names,
        "leaves": len(tree.leaves),
    }
    result.update(metrics.cluster_scores(ids, tree.assignments()))
    hard_counts = metrics.contingency(tree.assignments(), ids, len(tree.leaves), n_classes)
    result["leaf_purity"] = metrics.leaf_purity(hard_counts)
    result["soft_leaf_purity"] = metrics.leaf_purity(soft_counts) if soft_counts.sum() else None
    result["dendrogram_purity"] = _hard_dendrogram_purity(tree, ids, n_classes)
    result["soft_dendrogram_purity"] = (
        metrics.soft_dendrogram_purity(memberships, ids, tree.children_map(), "r", tree.leaves)
        if _has_pairs(ids) and soft_counts.sum() > 0
        else None
    )
    result["cuts"] = _cut_scores(tree, ids, n_classes)
    result["splits"] = _split_scores(tree, ids, n_classes, names)
    return result


# ---------------------------------------------------------------- text


def _num(value: float | None, width: int = 7) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.4f}"


def format_report(result: dict[str, Any]) -> str:
    """A readable text report of an :func:`evaluate` result: scores, cuts and splits."""
    source = "from the tree file" if result["labels"] == "tree file" else "given"
    lines = [
        f"{result['tree'] or 'tree'}: {result['leaves']} leaves, {result['images']:,} images, "
        f"{result['classes']} classes (labels {source})",
        "",
        f"{'score':<20}{'hard':>7}  {'soft':>7}",
    ]
    for key in ("acc", "nmi", "ari", "purity"):
        lines.append(f"{key.upper() if key != 'purity' else key:<20}{_num(result[key])}")
    lines.append(
        f"{'leaf purity':<20}{_num(result['leaf_purity'])}  {_num(result['soft_leaf_purity'])}"
    )
    lines.append(
        f"{'dendrogram purity':<20}{_num(result['dendrogram_purity'])}  "
        f"{_num(result['soft_dendrogram_purity'])}"
    )
    if result["cuts"]:
        lines += ["", "by cut (following the split order)"]
        lines.append(f"{'leaves':>6}  {'ACC':>7}{'NMI':>7}{'ARI':>7}{'purity':>7}  dendrogram")
        for row in result["cuts"]:
            lines.append(
                f"{row['leaves']:>6}  {_num(row['acc'])}{_num(row['nmi'])}{_num(row['ari'])}"
                f"{_num(row['purity'])}  {_num(row['dendrogram_purity'], 10)}"
            )
    if result["splits"]:
        lines += ["", "by split (purity of the children; majority class of each child)"]
        lines.append(f"{'step':>4}  {'node':<8}{'images':>8}  {'hard':>7}  {'soft':>7}  majority")
        for row in result["splits"]:
            majority = ", ".join(
                f"{child}: {cls if cls is not None else '-'}"
                for child, cls in zip(row["children"], row["majority"], strict=True)
            )
            lines.append(
                f"{row['step']:>4}  {row['node']:<8}{row['images']:>8,}  {_num(row['purity'])}  "
                f"{_num(row['soft_purity'])}  {majority}"
            )
    return "\n".join(lines)
