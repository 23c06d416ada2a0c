"""Plain-text descriptions of a tree (what `hctree info` prints)."""

from __future__ import annotations

import numpy as np

from hctree import colour, levels, orientation, polarity, position, scale
from hctree.tree import Tree


def mix_text(
    labels: np.ndarray, class_names: list[str] | None, membership: np.ndarray, top: int = 3
) -> str:
    """The ``top`` classes holding most of a membership's mass, e.g. ``Trouser 97%, Dress 2%``."""
    counts = np.bincount(labels, weights=membership)
    names = class_names or [str(i) for i in range(len(counts))]
    total = max(float(membership.sum(dtype=np.float64)), 1e-9)
    order = np.argsort(-counts)[:top]
    return ", ".join(f"{names[i]} {counts[i] / total:.0%}" for i in order if counts[i] > 0)


def class_mix(tree: Tree, name: str, top: int = 3) -> str:
    """The classes holding most of a node's mass ("" when the tree has no labels)."""
    if tree.labels is None:
        return ""
    return mix_text(tree.labels, tree.class_names, tree.node(name).membership, top)


def tree_text(tree: Tree, top: int = 3) -> str:
    """An indented text tree: name, depth, mass, status and class composition."""
    attrs = tree.attrs
    head = (
        f"{tree.path or 'tree'}: {len(tree.leaves)} leaves, {tree.n:,} images "
        f"{'x'.join(str(int(v)) for v in attrs['image_shape'])}, splitter {attrs['splitter']} "
        f"(preset {attrs['preset']}), seed {attrs['seed']}, data {attrs['dataset_source']}"
    )
    if colour.stored(attrs) == colour.GREY:
        head += ", every image's single colour taken away (colour)"
    if polarity.stored(attrs) == polarity.DARK:
        head += ", light backgrounds inverted (polarity)"
    if levels.stored(attrs) == levels.STRETCHED:
        head += ", every image stretched from black to white (levels)"
    if position.stored(attrs) != position.AS_GIVEN:
        head += ", every object moved to the middle (position)"
    if scale.stored(attrs) != scale.AS_GIVEN:
        head += ", every object enlarged to fill the frame (scale)"
    if orientation.stored(attrs) == orientation.TURNED:
        head += ", every object turned back by its tilt (orientation)"
    lines = [head]
    width = max(2 * n.depth + len(n.name) for n in tree.nodes.values()) + 2

    def walk(name: str) -> None:
        node = tree.node(name)
        mix = class_mix(tree, name, top)
        status = "leaf" if node.is_leaf and node.status == "leaf" else node.status
        order = f" #{node.split_order + 1}" if node.split_order >= 0 else ""
        lines.append(
            f"{('  ' * node.depth + name):<{width}}depth {node.depth}  mass {node.mass:>10,.1f}  "
            f"{status}{order}" + (f"  [{mix}]" if mix else "")
        )
        for child in node.children:
            walk(child)

    walk("r")
    return "\n".join(lines)
