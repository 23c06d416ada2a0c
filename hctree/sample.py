"""Images of a node: real ones drawn by membership, generated ones from stored models, grids.

``sample_real`` picks real images in proportion to a node's membership;
``generate_split`` runs the generators stored for a split; ``sample_node`` gives
generated images of any node; ``image_grid``/``save_grid`` tile images for people.
"""

from __future__ import annotations

import math
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from hctree.errors import HCTreeError
from hctree.splitters import stored_splitter
from hctree.tree import CHILD_DIGITS, Tree


def node_rng(seed: int, name: str) -> np.random.Generator:
    """A random stream fixed by ``seed`` and the node name (the same in every cut)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def sample_real(membership: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """int64 ``[n]`` image indices drawn with replacement, probability ∝ ``membership`` ``[N]``.

    Returns an empty array when the membership has no mass.
    """
    weights = np.asarray(membership, dtype=np.float64)
    total = weights.sum()
    if n <= 0 or not total > 0:
        return np.empty(0, dtype=np.int64)
    return rng.choice(len(weights), size=n, p=weights / total).astype(np.int64)


def generate_split(
    tree: Tree, name: str, n: int, seed: int = 0, device: str | torch.device = "cpu"
) -> np.ndarray:
    """uint8 ``[k, n, C, H, W]``: ``n`` images from each child generator of ``name``'s split.

    Raises HCTreeError when the split stored no models or its splitter cannot generate.
    """
    models = tree.models(name)
    splitter_name = str(tree.attrs.get("splitter", ""))
    if not models:
        raise HCTreeError(
            f"node {name} has no stored models to generate from; only nodes split by a "
            "generative splitter (e.g. hcmgan) in a tree file on disk can be sampled."
        )
    splitter, config = stored_splitter(tree.attrs)
    if not hasattr(splitter, "generate"):
        raise HCTreeError(
            f"splitter {splitter_name} cannot generate images; render real images instead."
        )
    shape = tuple(int(v) for v in tree.attrs["image_shape"])
    out = splitter.generate(models, config, shape, n, seed, torch.device(device))
    return np.asarray(torch.as_tensor(out).cpu().numpy(), dtype=np.uint8)


def sample_node(
    tree: Tree, node: str, n: int = 64, seed: int = 0, device: str | torch.device = "cpu"
) -> np.ndarray:
    """uint8 ``[n, C, H, W]`` images generated for ``node``.

    A node that was split (or is being split) gets images from all its children's
    generators (``n`` shared evenly, child by child); any other node gets its parent's
    generator for it. Raises HCTreeError if no models are stored for that split.
    """
    if n < 1:
        raise HCTreeError(f"the number of images must be at least 1, not {n}.")
    tree.node(node)  # HCTreeError for a name the tree does not have
    rec = tree.record.nodes[node]
    if rec.children or rec.status == "splitting":
        k = len(rec.children) or int(rec.split_attrs.get("k", 2))
        per_child = generate_split(tree, node, math.ceil(n / k), seed, device)
        k = per_child.shape[0]
        counts = [n // k + (j < n % k) for j in range(k)]
        return np.concatenate([per_child[j, :c] for j, c in enumerate(counts)])
    if rec.parent is None:
        raise HCTreeError(f"node {node} was never split, so no generator exists for it.")
    index = CHILD_DIGITS.index(node[-1])
    return generate_split(tree, rec.parent, n, seed, device)[index]


def image_grid(images: np.ndarray, nrow: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile uint8 ``[n, C, H, W]`` into one uint8 picture ``[H', W']`` (grey) or ``[H', W', 3]``.

    ``nrow`` images per row (default: a square-ish grid); ``pad`` white pixels between
    and around tiles; empty slots stay white.
    """
    images = np.asarray(images, dtype=np.uint8)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"image_grid wants uint8 [n, C, H, W] with C in (1, 3), got {images.shape}"
        )
    n, c, h, w = images.shape
    cols = max(1, nrow or math.ceil(math.sqrt(max(n, 1))))
    rows = max(1, math.ceil(n / cols))
    grid = np.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), 255, dtype=np.uint8)
    for i in range(n):
        y, x = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        grid[:, y : y + h, x : x + w] = images[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def save_grid(images: np.ndarray, path: str | os.PathLike, nrow: int | None = None) -> Path:
    """Write uint8 ``[n, C, H, W]`` images as one PNG grid; returns the path."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise HCTreeError(f"a sample grid is written as PNG; name the output {path.stem}.png.")
    Image.fromarray(image_grid(images, nrow, pad=2)).save(path)
    return path
