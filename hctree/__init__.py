"""hctree: deep hierarchical clustering of images with GANs, in one resumable HDF5 file.

import hctree
data = hctree.load_images("fashion-mnist", subset=10000)
tree = hctree.grow(data, "tree.h5", leaves=10)
tree.leaves, tree.assignments(), tree.evaluate()
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
    "grow",
    "load_images",
    "open_tree",
]


def __getattr__(name: str):
    # the estimator pulls in scikit-learn, so it is imported on first use only
    if name == "TreeClustering":
        from hctree.estimator import TreeClustering

        return TreeClustering
    raise AttributeError(f"module 'hctree' has no attribute {name!r}")
