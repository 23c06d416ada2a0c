"""A read-only view of a clustering tree: nodes, leaves, cuts, assignments.

Node names are paths of child indices from the root ``r``: ``r``, ``r0``, ``r1``,
``r10``... Child index ``i`` is one character of ``0-9a-z`` (up to 36 children), so
names sort in depth-first order. Only nodes whose split is complete have children;
a node still ``splitting`` is a leaf of the tree as it stands.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from hctree.errors import HCTreeError
from hctree.store import ModelState, NodeRecord, TreeRecord, read_models, read_tree

CHILD_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def child_name(parent: str, index: int) -> str:
    """The name of child ``index`` of ``parent``."""
    return parent + CHILD_DIGITS[index]


@dataclass(frozen=True)
class Node:
    """One node as seen in a (possibly cut) tree."""

    name: str
    parent: str | None
    children: tuple[str, ...]
    depth: int
    status: str
    split_order: int
    mass: float
    membership: np.ndarray

    @property
    def is_leaf(self) -> bool:
        return not self.children


class Tree:
    """A clustering tree loaded from a tree file (or a record), optionally cut at k leaves."""

    def __init__(self, record: TreeRecord, path: Path | None = None, n_leaves: int | None = None):
        self.record = record
        self.path = path
        self._splits = sorted(
            (n for n in record.nodes.values() if n.status == "split"), key=lambda n: n.split_order
        )
        kept = self._splits_for(n_leaves)
        self.split_sequence: list[str] = [n.name for n in kept]
        kept_names = set(self.split_sequence)
        self.nodes: dict[str, Node] = {}
        self._add(record.nodes["r"], kept_names)

    # ------------------------------------------------------------ building

    def _splits_for(self, n_leaves: int | None) -> list[NodeRecord]:
        if n_leaves is None:
            return self._splits
        if n_leaves < 1:
            raise HCTreeError(f"a cut needs at least 1 leaf, not {n_leaves}.")
        kept, leaves = [], 1
        for node in self._splits:
            grown = leaves + len(node.children) - 1
            if grown > n_leaves:
                break
            kept.append(node)
            leaves = grown
        if leaves != n_leaves:
            raise HCTreeError(
                f"the tree never had exactly {n_leaves} leaves; its cuts have "
                f"{', '.join(map(str, self.cut_sizes()))} leaves."
            )
        return kept

    def _add(self, rec: NodeRecord, kept: set[str]) -> None:
        children = tuple(rec.children) if rec.name in kept else ()
        status = rec.status if children or rec.status != "split" else "leaf"
        self.nodes[rec.name] = Node(
            name=rec.name,
            parent=rec.parent,
            children=children,
            depth=rec.depth,
            status=status,
            split_order=rec.split_order if children else -1,
            mass=rec.mass,
            membership=rec.membership,
        )
        for child in children:
            self._add(self.record.nodes[child], kept)

    # ------------------------------------------------------------ structure

    @property
    def root(self) -> Node:
        return self.nodes["r"]

    def node(self, name: str) -> Node:
        if name not in self.nodes:
            raise HCTreeError(f"the tree has no node {name!r}; `hctree info` lists the nodes.")
        return self.nodes[name]

    @property
    def leaves(self) -> list[str]:
        """Leaf names in depth-first order (the row order of memberships())."""
        return sorted(n.name for n in self.nodes.values() if n.is_leaf)

    @property
    def attrs(self) -> dict[str, Any]:
        return self.record.attrs

    @property
    def n(self) -> int:
        return int(self.record.attrs["n"])

    @property
    def labels(self) -> np.ndarray | None:
        return self.record.labels

    @property
    def class_names(self) -> list[str] | None:
        return self.record.class_names

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.record.attrs.get("config_json", "{}"))

    def cut_sizes(self) -> list[int]:
        """The leaf counts the tree passed through, in growth order."""
        sizes, leaves = [1], 1
        for node in self._splits:
            leaves += len(node.children) - 1
            sizes.append(leaves)
        return sizes

    def cut(self, k: int) -> Tree:
        """The tree as it was when it had ``k`` leaves (following the split order)."""
        return Tree(self.record, self.path, n_leaves=k)

    def children_map(self) -> dict[str, list[str]]:
        """Internal node name -> children names."""
        return {n.name: list(n.children) for n in self.nodes.values() if n.children}

    # ------------------------------------------------------------ assignments

    def memberships(self) -> np.ndarray:
        """Soft memberships, float32 ``[L, N]`` with rows in ``leaves`` order."""
        return np.stack([self.nodes[name].membership for name in self.leaves])

    def assignments(self) -> np.ndarray:
        """Hard assignment, int64 ``[N]``: index into ``leaves`` of each image's largest membership."""
        return self.memberships().argmax(axis=0).astype(np.int64)

    def models(self, name: str) -> ModelState:
        """The final models stored for ``name``'s split (empty if it has none)."""
        if self.path is None:
            return {}
        return read_models(self.path, name)

    # ------------------------------------------------------------ export

    def to_networkx(self) -> nx.DiGraph:
        """The tree as a directed graph (edges parent -> child) with node attributes."""
        graph = nx.DiGraph(
            splitter=str(self.attrs.get("splitter", "")), n=self.n, leaves=len(self.leaves)
        )
        for node in self.nodes.values():
            graph.add_node(
                node.name,
                depth=node.depth,
                mass=node.mass,
                status=node.status,
                split_order=node.split_order,
                leaf=node.is_leaf,
            )
            if node.parent is not None and node.parent in self.nodes:
                graph.add_edge(node.parent, node.name)
        return graph


def open_tree(path: str | os.PathLike, stages: bool = False) -> Tree:
    """Open a tree file read-only as a :class:`Tree`."""
    path = Path(path)
    return Tree(read_tree(path, stages=stages), path)
