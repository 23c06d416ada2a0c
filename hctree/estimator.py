"""``TreeClustering``: hctree as a scikit-learn clustering estimator.

    from hctree import TreeClustering
    model = TreeClustering(n_leaves=10, preset="tiny", out="tree.h5")
    labels = model.fit_predict(images)          # images: (N,H,W), (N,C,H,W) or (N,H,W,C)
    model.predict(new_images), model.tree_, model.n_leaves_

``fit`` grows a tree file (``out``, or a temporary file when ``out`` is None). Like
``hctree grow``, an existing ``out`` is resumed or grown further, and refused when it
was grown on other images or settings. ``predict`` routes images down the tree's
split classifiers (:func:`hctree.assign.assign`) and returns each one's leaf index.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.utils.validation import check_is_fitted

from hctree.assign import assign, load_for_tree
from hctree.data import ImageSet, load_images
from hctree.grow import grow
from hctree.progress import TextProgress
from hctree.tree import Tree


class TreeClustering(ClusterMixin, BaseEstimator):
    """Top-down hierarchical clustering of images by GAN splits, as an estimator.

    Parameters mirror ``hctree grow``: ``n_leaves`` (at least 2, or ``"auto"``: split
    while the data support it, up to ``max_leaves``), ``splitter``
    (hcmgan, c3gan, slcgan), ``preset`` (None: ``cpu`` on a CPU, ``fast`` on CUDA),
    ``branching`` (children per split), ``seed``, ``out`` (tree file path or None),
    ``settings`` (dict of preset overrides, as ``--set``), ``device``, ``threads``,
    ``size``/``channels`` (conversions applied to every X), ``verbose`` (print
    progress to stderr), ``leaf_order`` (``mass`` or ``supported``, as ``--leaf-order``),
    ``colour``, ``polarity``, ``levels``, ``position``, ``scale`` and ``orientation``
    (``auto`` or ``off``, as ``--colour``, ``--polarity``, ``--levels``,
    ``--position``, ``--scale`` and ``--orientation``; None: auto for a new tree, but
    off for ``colour``).

    Attributes after ``fit``: ``labels_`` int64 ``[N]`` (leaf index per image, in
    ``tree_.leaves`` order), ``tree_`` (:class:`hctree.Tree`), ``n_leaves_``,
    ``memberships_`` float32 ``[n_leaves_, N]``.
    """

    def __init__(
        self,
        n_leaves: int = 10,
        splitter: str = "hcmgan",
        preset: str | None = None,
        branching: int = 2,
        seed: int = 0,
        out: str | os.PathLike | None = None,
        settings: dict[str, Any] | None = None,
        device: str = "auto",
        threads: int | None = None,
        size: int | None = None,
        channels: int | None = None,
        verbose: bool = False,
        max_leaves: int = 20,
        leaf_order: str | None = None,
        polarity: str | None = None,
        levels: str | None = None,
        position: str | None = None,
        scale: str | None = None,
        orientation: str | None = None,
        colour: str | None = None,
    ):
        self.n_leaves = n_leaves
        self.splitter = splitter
        self.preset = preset
        self.branching = branching
        self.seed = seed
        self.out = out
        self.settings = settings
        self.device = device
        self.threads = threads
        self.size = size
        self.channels = channels
        self.verbose = verbose
        self.max_leaves = max_leaves
        self.leaf_order = leaf_order
        self.polarity = polarity
        self.levels = levels
        self.position = position
        self.scale = scale
        self.orientation = orientation
        self.colour = colour

    def _images(self, X: Any) -> ImageSet:
        if isinstance(X, ImageSet):
            return X
        return load_images(X, size=self.size, channels=self.channels)

    def fit(self, X: Any, y: Any = None) -> TreeClustering:
        """Grow the tree over images ``X`` (``y`` is ignored: clustering is unsupervised)."""
        data = self._images(X)
        if self.out is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hctree-")
            out = Path(self._tmp.name) / "tree.h5"
        else:
            out = Path(self.out)
        tree = grow(
            data,
            out,
            self.n_leaves,
            splitter=self.splitter,
            preset=self.preset,
            overrides=dict(self.settings or {}),
            device=self.device,
            seed=self.seed,
            branching=self.branching,
            threads=self.threads,
            progress=TextProgress() if self.verbose else None,
            max_leaves=self.max_leaves,
            leaf_order=self.leaf_order,
            polarity=self.polarity,
            levels=self.levels,
            position=self.position,
            scale=self.scale,
            orientation=self.orientation,
            colour=self.colour,
        )
        self.tree_: Tree = tree
        self.memberships_ = tree.memberships()
        self.labels_ = tree.assignments()
        self.n_leaves_ = len(tree.leaves)
        return self

    def _routed(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "tree_")
        data = (
            X if isinstance(X, ImageSet) else load_for_tree(self.tree_, X, self.size, self.channels)
        )
        return assign(self.tree_, data, device=self.device)

    def predict(self, X: Any) -> np.ndarray:
        """Leaf index int64 ``[M]`` of each image, routed down the fitted tree.

        Images of another size or channel count are converted to the tree's.
        """
        return self._routed(X).argmax(0).astype(np.int64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Soft leaf memberships float32 ``[M, n_leaves_]`` (rows sum to 1)."""
        return self._routed(X).T.copy()
