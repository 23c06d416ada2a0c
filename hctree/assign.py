"""Route images a tree has never seen down its stored split classifiers.

An image's membership of a child is its membership of the parent times the
probability the parent's split classifier gives that child (for HC-MGAN the
refinement ensemble, averaged as in training). On the training images this
reproduces the stored memberships, up to float rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hctree import prepare
from hctree.data import ImageSet, load_images
from hctree.engine import predict_in_batches, resolve_device
from hctree.errors import HCTreeError
from hctree.splitters import stored_splitter
from hctree.tree import Tree


def assign(tree: Tree, data: ImageSet, device: str = "auto", batch: int = 2048) -> np.ndarray:
    """Soft leaf memberships of ``data``'s images, float32 ``[L, M]`` in ``tree.leaves`` order.

    Each column sums to 1 (the root's membership of every image). The images are put
    under the tree's stored decisions first (the set rules of hctree.prepare), as
    its training images were, image by image.
    """
    expected = tuple(int(v) for v in tree.attrs["image_shape"])
    if data.image_shape != expected:
        c, h, w = expected
        raise HCTreeError(
            f"the tree was grown on {c}x{h}x{w} images but these are "
            f"{'x'.join(map(str, data.image_shape))}; pass --size {h} and --channels {c}."
        )
    torch_device = resolve_device(device)
    splitter, config = stored_splitter(tree.attrs)
    decisions = prepare.stored(tree.record).for_new_images()
    images = torch.from_numpy(prepare.apply(data.images, decisions))
    images = images.to(torch_device)
    member = {"r": torch.ones(len(data), device=torch_device)}
    for name in tree.split_sequence:
        node = tree.node(name)
        models = tree.models(name)
        if not models:
            raise HCTreeError(f"node {name} has no stored models, so new images cannot be routed.")
        predict = splitter.predict(models, config, expected, torch_device)
        probs = predict_in_batches(predict, images, batch=batch)
        for j, child in enumerate(node.children):
            member[child] = member[name] * probs[:, j]
    return torch.stack([member[leaf] for leaf in tree.leaves]).cpu().numpy().astype(np.float32)


def load_for_tree(
    tree: Tree,
    source: Any,
    size: int | None = None,
    channels: int | None = None,
    subset: int | None = None,
    seed: int = 0,
) -> ImageSet:
    """Load images to route down ``tree``, converted to the tree's image shape.

    ``size``/``channels`` given are applied as asked; when they are not, images whose
    shape differs from the tree's are resized and converted to it (the conversion
    the tree was grown with), so the same kind of images need no options.
    """
    images = load_images(source, size=size, channels=channels, subset=subset, seed=seed)
    c, h, w = (int(v) for v in tree.attrs["image_shape"])
    if images.image_shape == (c, h, w) or (size is not None and channels is not None):
        return images
    if h != w and size is None and images.image_shape[1:] != (h, w):
        return images  # a non-square tree shape cannot be reached by --size; assign explains
    return load_images(
        source,
        size=size if size is not None else (h if images.image_shape[1:] != (h, w) else None),
        channels=channels if channels is not None else c,
        subset=subset,
        seed=seed,
    )


def agreement(tree: Tree, memberships: np.ndarray) -> float:
    """Fraction of images whose argmax leaf under ``memberships`` matches the stored one."""
    return float((memberships.argmax(0) == tree.assignments()).mean())
