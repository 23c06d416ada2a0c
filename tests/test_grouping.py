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


def _two_arcs(per_arc: int = 200) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two parallel arcs on the unit sphere, each cut into four clusters along its length.

    Neighbouring clusters on one arc are further apart than the arcs are from each
    other, so Ward on cluster means pairs clusters across the arcs, while the images'
    neighbour graph keeps each arc whole. Returns features, cluster probs, arc ids.
    """
    longitude = torch.linspace(0.0, torch.pi / 2, per_arc).repeat(2)
    latitude = torch.cat([torch.zeros(per_arc), torch.full((per_arc,), 0.3)])
    features = torch.stack(
        [
            latitude.cos() * longitude.cos(),
            latitude.cos() * longitude.sin(),
            latitude.sin(),
        ],
        dim=1,
    )
    quarter = (torch.arange(per_arc) * 4 // per_arc).repeat(2)
    arc = torch.arange(2 * per_arc) // per_arc
    cluster = quarter + 4 * arc
    probs = F.one_hot(cluster, 8).float() * 0.95 + 0.05 / 8
    return features, probs, arc


def test_graph_grouping_keeps_each_arc_whole_where_ward_mixes_them():
    features, probs, arc = _two_arcs()
    membership = torch.ones(len(arc))
    _, ward, _ = split_by_clusters(probs, features, membership, 2, "ward")
    assert set(ward[:4].tolist()) == {0, 1}  # Ward pairs clusters across the arcs
    gen = torch.Generator().manual_seed(3)
    memberships, graph, _ = split_by_clusters(probs, features, membership, 2, "graph", gen)
    assert graph.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    torch.testing.assert_close(memberships.sum(0), membership)
    assert (memberships.argmax(0) == arc).all()
    again = split_by_clusters(
        probs, features, membership, 2, "graph", torch.Generator().manual_seed(3)
    )
    assert again[1].tolist() == graph.tolist()


def test_graph_grouping_over_cuts_when_asked_and_still_keeps_each_arc_whole(monkeypatch):
    import hctree.splitters.grouping as grouping

    asked = []
    real = grouping.spectral_labels

    def spy(*args, **kwargs):
        asked.append(kwargs.get("parts", 0))
        return real(*args, **kwargs)

    monkeypatch.setattr(grouping, "spectral_labels", spy)
    features, probs, arc = _two_arcs()
    membership = torch.ones(len(arc))
    gen = torch.Generator().manual_seed(3)
    memberships, groups, _ = split_by_clusters(
        probs, features, membership, 2, "graph", gen, parts=6
    )
    assert asked == [6]
    assert groups.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert (memberships.argmax(0) == arc).all()


def test_graph_grouping_gives_every_child_a_cluster():
    features, _, arc = _two_arcs()
    # every cluster is spread over both arcs, heavier on arc 0, so all of them vote
    # for arc 0's part; the other part must still get one cluster
    probs = torch.full((len(arc), 4), 0.25)
    membership = torch.where(arc == 0, 1.0, 0.5)
    gen = torch.Generator().manual_seed(0)
    memberships, groups, _ = split_by_clusters(probs, features, membership, 2, "graph", gen)
    assert sorted(groups.tolist()) == [0, 1, 1, 1]
    assert groups[0] == 0
    torch.testing.assert_close(memberships.sum(0), membership)


def test_split_by_clusters_names_an_unknown_grouping():
    features, probs, _ = _two_arcs(20)
    with pytest.raises(ValueError, match="grouping must be one of ward, graph"):
        split_by_clusters(probs, features, torch.ones(40), 2, "nearest")
