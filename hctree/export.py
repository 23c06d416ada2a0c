"""Write a tree (or a cut of it) to files other tools read; the format follows the extension.

- ``.csv``: one row per image: index, source name, label, hard leaf, its probability and
  every leaf's soft membership;
- ``.npz``: ``memberships`` float32 ``[L, N]``, ``leaves`` and ``assignments`` int64 ``[N]``;
- ``.graphml`` / ``.json``: the tree as a directed graph (JSON as networkx node-link data);
- ``.linkage.npy``: a SciPy linkage matrix over the leaves;
- ``.nwk``: Newick text with node names and branch lengths.

Column lists, the linkage's id order and heights, and the Newick branch lengths are in
docs/formats.md. Exporting only reads the tree file; the output is written to a temporary
file beside it and renamed into place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

import networkx as nx
import numpy as np

from hctree.data import load_images
from hctree.errors import HCTreeError
from hctree.tree import Tree

__all__ = ["FORMATS", "export", "linkage_matrix", "merge_heights", "newick", "source_names"]

FORMATS = (".csv", ".npz", ".graphml", ".json", ".linkage.npy", ".nwk")


# ---------------------------------------------------------------- shared pieces


def source_names(tree: Tree) -> list[str] | None:
    """Per-image source names (file paths relative to the image folder) ``[N]``, or None.

    Only image-folder data sets have names. The data is reloaded from the tree's
    ``data_spec``; None when the data is gone, is not a folder, or has changed since the
    tree was grown (its fingerprint differs).
    """
    spec = json.loads(tree.attrs.get("data_spec", "null") or "null")
    if not isinstance(spec, dict) or not Path(str(spec.get("path", ""))).is_dir():
        return None
    try:
        data = load_images(**spec)
    except (HCTreeError, TypeError):
        return None
    if data.names is None or data.fingerprint != tree.attrs.get("dataset_fingerprint"):
        return None
    return list(data.names)


def merge_heights(tree: Tree) -> dict[str, float]:
    """Height of every node: 0 for leaves, ``S - t + 1`` for the node split at step t of S.

    The first split (the root) is the highest, so a node is always above its children.
    """
    steps = len(tree.split_sequence)
    heights = {name: 0.0 for name in tree.nodes}
    for step, name in enumerate(tree.split_sequence, start=1):
        heights[name] = float(steps - step + 1)
    return heights


def _leaf_counts(tree: Tree) -> dict[str, int]:
    """Number of tree leaves at or below every node."""
    leaves = tree.leaves
    return {name: sum(leaf.startswith(name) for leaf in leaves) for name in tree.nodes}


def _under_counts(tree: Tree) -> dict[str, int]:
    """Number of images whose hard leaf lies at or below every node."""
    sizes = np.bincount(tree.assignments(), minlength=len(tree.leaves))
    leaves = tree.leaves
    return {
        name: int(sum(int(sizes[i]) for i, leaf in enumerate(leaves) if leaf.startswith(name)))
        for name in tree.nodes
    }


# ---------------------------------------------------------------- linkage and Newick


def linkage_matrix(tree: Tree) -> np.ndarray:
    """A SciPy linkage matrix over the leaves, float64 ``[L - 1, 4]``.

    Cluster ids 0..L-1 are the leaves in ``tree.leaves`` order; merged clusters get ids
    L, L+1, ... in row order. Heights come from :func:`merge_heights`; rows are sorted by
    height, so the matrix is monotonic. A k-way split becomes k - 1 successive binary merges
    at the same height (the children in order). The count column holds the number of tree
    leaves in the merged cluster, as SciPy defines it.
    """
    leaves = tree.leaves
    if len(leaves) < 2:
        raise HCTreeError("the tree has a single leaf; grow it before exporting a linkage.")
    heights = merge_heights(tree)
    ids = {leaf: i for i, leaf in enumerate(leaves)}
    sizes = {leaf: 1 for leaf in leaves}
    rows: list[list[float]] = []
    for name in reversed(tree.split_sequence):
        children = tree.node(name).children
        current, size = ids[children[0]], sizes[children[0]]
        for child in children[1:]:
            size += sizes[child]
            rows.append([current, ids[child], heights[name], size])
            current = len(leaves) + len(rows) - 1
        ids[name], sizes[name] = current, size
    return np.array(rows, dtype=np.float64)


def newick(tree: Tree) -> str:
    """The tree in Newick format with node names and branch lengths, e.g.
    ``((r00:1,r01:1)r0:1,r1:2)r;``.

    A branch's length is its parent's height minus its own (:func:`merge_heights`), so
    every leaf lies at distance S (the number of splits) from the root.
    """
    heights = merge_heights(tree)

    def write(name: str) -> str:
        node = tree.node(name)
        inner = ",".join(
            f"{write(child)}:{heights[name] - heights[child]:g}" for child in node.children
        )
        return f"({inner}){name}" if node.children else name

    return write("r") + ";"


# ---------------------------------------------------------------- writers


def _csv_cell(text: str) -> str:
    """``text`` quoted as the csv module would (only when it holds a separator or quote)."""
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def membership_csv(
    leaves: list[str],
    memberships: np.ndarray,
    names: list[str] | None = None,
    labels: np.ndarray | None = None,
) -> str:
    """CSV text, one row per image: index, name, label, hard leaf, its probability, and
    every leaf's membership (``memberships`` float ``[L, N]`` in ``leaves`` order)."""
    n = memberships.shape[1]
    assign = memberships.argmax(axis=0)
    total = memberships.sum(axis=0, dtype=np.float64)
    chosen = memberships[assign, np.arange(n)].astype(np.float64)
    probability = np.divide(chosen, total, out=np.zeros_like(total), where=total > 0)
    names = names or [""] * n
    label_text = [""] * n if labels is None else [str(v) for v in labels.tolist()]
    numbers = np.column_stack([probability, memberships.T.astype(np.float64)]).tolist()
    template = ",".join(["%.6g"] * (len(leaves) + 1)) + "\n"
    lines = [",".join(["index", "name", "label", "leaf", "probability", *leaves]) + "\n"]
    for i in range(n):
        prefix = f"{i},{_csv_cell(names[i])},{label_text[i]},{leaves[assign[i]]},"
        lines.append(prefix + template % tuple(numbers[i]))
    return "".join(lines)


def _write_csv(tree: Tree, fh: IO[bytes]) -> None:
    text = membership_csv(tree.leaves, tree.memberships(), source_names(tree), tree.labels)
    fh.write(text.encode())


def _write_npz(tree: Tree, fh: IO[bytes]) -> None:
    arrays = {
        "memberships": tree.memberships().astype(np.float32),
        "leaves": np.array(tree.leaves, dtype=str),
        "assignments": tree.assignments(),
    }
    if tree.labels is not None:
        arrays["labels"] = tree.labels.astype(np.int64)
    np.savez_compressed(fh, **arrays)


def _graph(tree: Tree) -> nx.DiGraph:
    """``tree.to_networkx()`` plus per-node ``height``, ``images`` and ``leaves`` counts."""
    graph = tree.to_networkx()
    heights, images, leaves = merge_heights(tree), _under_counts(tree), _leaf_counts(tree)
    for name, attrs in graph.nodes(data=True):
        attrs["height"] = heights[name]
        attrs["images"] = images[name]
        attrs["leaves"] = leaves[name]
    return graph


def _write_graphml(tree: Tree, fh: IO[bytes]) -> None:
    nx.write_graphml(_graph(tree), fh)


def _write_json(tree: Tree, fh: IO[bytes]) -> None:
    data = nx.node_link_data(_graph(tree), edges="edges")
    fh.write(json.dumps(data, indent=1).encode())


def _write_linkage(tree: Tree, fh: IO[bytes]) -> None:
    np.save(fh, linkage_matrix(tree), allow_pickle=False)


def _write_newick(tree: Tree, fh: IO[bytes]) -> None:
    fh.write((newick(tree) + "\n").encode())


_WRITERS: dict[str, Callable[[Tree, IO[bytes]], None]] = {
    ".csv": _write_csv,
    ".npz": _write_npz,
    ".graphml": _write_graphml,
    ".json": _write_json,
    ".linkage.npy": _write_linkage,
    ".nwk": _write_newick,
}


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for ext in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(ext) and len(name) > len(ext):
            return ext
    raise HCTreeError(
        f"cannot tell the export format of {path.name!r}; end the name in one of "
        f"{', '.join(FORMATS)}."
    )


def _check_target(tree: Tree, path: Path) -> None:
    if not path.parent.is_dir():
        raise HCTreeError(f"folder {path.parent} does not exist; create it or pick another -o.")
    if path.is_dir():
        raise HCTreeError(f"{path} is a folder; give a file name such as {path / 'tree.csv'}.")
    if tree.path is not None and path.exists() and os.path.samefile(path, tree.path):
        raise HCTreeError(f"{path} is the tree file itself; write the export to another file.")


def export(tree: Tree, path: str | os.PathLike) -> Path:
    """Write ``tree`` to ``path`` in the format named by its extension; returns the path.

    Supported: ``.csv``, ``.npz``, ``.graphml``, ``.json``, ``.linkage.npy``, ``.nwk``
    (see docs/formats.md). Raises HCTreeError for an unknown extension, a missing folder,
    or an attempt to overwrite the tree file.
    """
    path = Path(path)
    writer = _WRITERS[_format_of(path)]
    _check_target(tree, path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            writer(tree, fh)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
