"""hctree: deep hierarchical clustering of images with GANs, in one resumable HDF5 file.

import hctree
data = hctree.load_images("fashion-mnist", subset=10000)
tree = hctree.grow(data, "tree.h5", leaves=10)
tree.leaves, tree.assignments(), hctree.evaluate_tree(tree)
hctree.render_tree(tree, "tree.png"), hctree.render_curves(tree, "curves.png")
hctree.assign_images(tree, other_images)
"""

__version__ = "0.1.0"

from hctree.data import ImageSet, load_images  # noqa: E402
from hctree.errors import HCTreeError  # noqa: E402
from hctree.grow import grow  # noqa: E402
from hctree.tree import Tree, open_tree  # noqa: E402

__all__ = [
    "HCTreeError",
    "ImageSet",
    "Tree",
    "TreeClustering",
    "__version__",
    "assign_images",
    "evaluate_tree",
    "render_curves",
    "render_tree",
    "grow",
    "load_images",
    "open_tree",
]


_LAZY = {
    "TreeClustering": ("hctree.estimator", "TreeClustering"),
    "assign_images": ("hctree.assign", "assign"),
    "evaluate_tree": ("hctree.evaluate", "evaluate"),
    "render_curves": ("hctree.render", "render_curves"),
    "render_tree": ("hctree.render", "render_tree"),
}


def __getattr__(name: str):
    # these pull in scikit-learn or matplotlib, so they are imported on first use only;
    # the functions take a Tree, so tree.py needs none of their modules
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'hctree' has no attribute {name!r}")
