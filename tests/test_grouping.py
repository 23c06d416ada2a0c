"""Grouping a flat splitter's clusters into a node's children."""

from __future__ import annotations

import numpy as np
import pytest

from hctree.splitters.grouping import ward_groups


def test_ward_groups_merge_the_nearest_heavy_clusters():
    points = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.2, 5.0], [0.0, 0.2]])
    groups = ward_groups(points, np.array([10.0, 8.0, 9.0, 7.0, 0.0]), 2)
    assert groups.tolist() == [0, 0, 1, 1, 0]


def test_ward_groups_follow_blobs_and_use_every_group():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 0.1, (4, 3)), rng.normal(5, 0.1, (3, 3))])
    mass = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 0.1, 1.0])
    two = ward_groups(points, mass, 2)
    assert two.tolist() == [0, 0, 0, 0, 1, 1, 1]
    three = ward_groups(points, mass, 3)
    assert sorted(set(three.tolist())) == [0, 1, 2]
    assert set(three[:4]).isdisjoint(three[4:])


def test_ward_groups_refuse_fewer_points_than_groups():
    with pytest.raises(ValueError, match="cannot group 2 clusters into 3"):
        ward_groups(np.zeros((2, 3)), np.ones(2), 3)
