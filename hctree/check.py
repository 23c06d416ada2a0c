"""Validate a tree file: structure, memberships, split order and stored models.

``check_tree(path)`` returns the first problem found as one sentence, or None when
the file is a sound tree. Reading errors (not HDF5, not an hctree file, a newer
format version, damaged groups) raise HCTreeError as every reader does.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from hctree import prepare
from hctree.splitters import stored_splitter
from hctree.store import TreeRecord, read_models, read_tree

TOLERANCE = 1e-3


def check_tree(path: str | os.PathLike) -> str | None:
    """The first problem of the tree file at ``path``, or None."""
    path = Path(path)
    record = read_tree(path, stages=False)
    return check_structure(record) or check_models(path, record)


def check_structure(record: TreeRecord) -> str | None:
    nodes, n = record.nodes, int(record.attrs.get("n", -1))
    if "r" not in nodes:
        return "the tree has no root node r."
    if record.attrs.get("splitter") is None or record.attrs.get("config_json") is None:
        return "the tree does not record its splitter and settings."
    rules = prepare.invalid(record.attrs, record.prepared)
    if rules:
        return rules
    root = nodes["r"].membership
    if root.shape != (n,) or not np.allclose(root, 1.0):
        return f"the root's membership is not all ones over the tree's {n} images."
    orders = []
    for name, node in sorted(nodes.items()):
        m = node.membership
        if m.shape != (n,) or not np.isfinite(m).all() or m.min() < -TOLERANCE:
            return f"node {name}'s membership is not {n} finite non-negative numbers."
        if node.parent is not None and node.parent not in nodes:
            return f"node {name} names a parent {node.parent} the tree does not hold."
        if node.status == "split":
            orders.append(node.split_order)
            if len(node.children) < 2:
                return f"node {name} is split but has fewer than two children."
            missing = [c for c in node.children if c not in nodes]
            if missing:
                return f"node {name} is split but its child {missing[0]} is missing."
            total = sum(nodes[c].membership for c in node.children)
            gap = float(np.abs(total - m).max())
            if gap > TOLERANCE * max(1.0, float(m.max())):
                return f"the children of {name} do not sum to its membership (gap {gap:.2g})."
        elif node.children:
            return f"node {name} has children but its status is {node.status}."
        elif node.status in ("kept", "ready") and "final_stage" not in node.split_attrs:
            return f"node {name} is {node.status} as a leaf but records no finished split."
    if sorted(orders) != list(range(len(orders))):
        return "the split order is not 0, 1, 2, ... without gaps or repeats."
    if int(record.attrs.get("splits_done", len(orders))) != len(orders):
        return "the number of splits recorded does not match the split nodes."
    return None


def check_models(path: Path, record: TreeRecord) -> str | None:
    """Every split's stored models build the predictor they were trained as."""
    try:
        splitter, config = stored_splitter(record.attrs)
    except Exception as exc:  # noqa: BLE001 - a tree of an unknown splitter is a problem
        return str(exc)
    shape = tuple(int(v) for v in record.attrs["image_shape"])
    probe = torch.zeros(2, *shape)
    for name, node in sorted(record.nodes.items()):
        if node.status != "split":
            continue
        models = read_models(path, name)
        if not models:
            return f"the split of {name} has no stored models."
        try:
            predict = splitter.predict(models, config, shape, torch.device("cpu"))
            with torch.no_grad():
                out = predict(probe)
        except Exception as exc:  # noqa: BLE001 - any failure means the models are unusable
            return f"the models of {name}'s split do not load ({type(exc).__name__})."
        if tuple(out.shape) != (2, len(node.children)):
            return f"the models of {name}'s split predict {out.shape[1]} children, not {len(node.children)}."
    return None
