"""TreeClustering: the scikit-learn estimator over a tiny tree."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

import hctree
from hctree.estimator import TreeClustering
from hctree.tree import open_tree
from tests.conftest import fmnist_classes


@pytest.fixture(scope="module")
def two_classes(fmnist):
    """300 trousers and 300 bags as a plain uint8 array (N, 28, 28), with their labels."""
    data = fmnist_classes(fmnist, (1, 8), 300)
    return data.images[:, 0], data.labels


def test_sklearn_conventions_hold():
    est = TreeClustering(n_leaves=3, preset="tiny")
    check_parameters_default_constructible("TreeClustering", est)
    check_no_attributes_set_in_init("TreeClustering", est)
    check_get_params_invariance("TreeClustering", est)
    check_set_params("TreeClustering", est)
    copy = clone(est)
    assert copy.get_params() == est.get_params() and copy is not est
    assert hctree.TreeClustering is TreeClustering


@pytest.mark.slow
def test_fit_predict_routes_images_like_the_grown_tree(two_classes, tmp_path):
    images, labels = two_classes
    est = TreeClustering(n_leaves=2, preset="tiny", out=tmp_path / "t.h5", threads=1)
    found = est.fit_predict(images)
    assert est.n_leaves_ == 2 and found.shape == (len(images),) and found.dtype == np.int64
    assert open_tree(tmp_path / "t.h5").leaves == est.tree_.leaves
    purity = sum(np.bincount(labels[found == j]).max() for j in np.unique(found)) / len(found)
    assert purity > 0.8
    # the same images in another layout and dtype route to the same leaves
    as_float = torch.from_numpy(images[:, None]).float() / 255
    np.testing.assert_array_equal(est.predict(as_float), found)
    proba = est.predict_proba(images[:10])
    assert proba.shape == (10, 2) and np.allclose(proba.sum(1), 1, atol=1e-5)
    # a temporary tree when out is None, and an unfitted estimator refuses to predict
    with pytest.raises(Exception, match="not fitted"):
        TreeClustering().predict(images)
