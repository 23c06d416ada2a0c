"""Grouping a flat splitter's clusters into a node's children."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hctree.splitters.grouping import split_by_clusters, ward_groups


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


def test_split_by_clusters_groups_by_prototype_and_keeps_the_parent_mass():
    torch.manual_seed(0)
    # four clusters: 0 and 2 hold images with feature e0, 1 and 3 images with feature e1
    cluster = torch.arange(40) % 4
    probs = F.one_hot(cluster, 4).float() * 0.9 + 0.025
    features = F.one_hot(cluster % 2, 3).float()
    membership = torch.rand(40)
    memberships, groups, mass = split_by_clusters(probs, features, membership, 2)
    assert groups.tolist() == [0, 1, 0, 1]
    torch.testing.assert_close(mass, (probs * membership[:, None]).sum(0))
    torch.testing.assert_close(memberships.sum(0), membership)
    expected = (probs[:, [0, 2]].sum(1) * membership, probs[:, [1, 3]].sum(1) * membership)
    torch.testing.assert_close(memberships, torch.stack(expected))
