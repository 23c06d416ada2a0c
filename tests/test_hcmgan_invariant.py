"""HC-MGAN's invariant, inherited, k-means-seeded split (the cpu/fast default recipe)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hctree.engine import predict_in_batches, to_unit
from hctree.errors import HCTreeError, Interrupted
from hctree.invariance import augment, configured_view, imbalance, view_agreement
from hctree.kmeans import weighted_kmeans
from hctree.splitters import make_config
from hctree.splitters.base import MemoryCheckpointer
from hctree.splitters.hcmgan import (
    Config,
    HCMGANSplitter,
    _build_nets,
    _children_from_features,
    _ensemble,
    _inherit_trunks,
    fit_classifier,
    fit_wanted,
)
from tests.conftest import CPU, split_context
from tests.test_hcmgan import StopAfter, pair, purity, small  # noqa: F401 - fixtures

RECIPE = {"lambda_contrast": 1.0, "split_init": "kmeans", "inherit": True}
QUICK = {**RECIPE, "embed_iters": 4, "embed_batch": 16, "raw_iters": 8, "refinements": 0}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def raw(images, overrides, **kw):
    config = make_config(HCMGANSplitter, "tiny", overrides)
    ctx = split_context(images, torch.ones(len(images)), config, **kw)
    return HCMGANSplitter().run_stage("raw", ctx)


@pytest.mark.parametrize("init", ["kmeans", "spectral"])
def test_seeded_split_separates_trousers_from_bags(pair, init):  # noqa: F811
    images, labels = pair
    result = raw(images, {**RECIPE, "embed_iters": 100, "refinements": 0, "split_init": init})
    assert purity(result.memberships, labels) >= 0.9
    np.testing.assert_allclose(result.memberships.sum(0), 1.0, atol=1e-5)
    assert "p_head.0.weight" in result.models["D"]


def test_seeding_on_views_that_invert_ignores_contrast_polarity(pair):  # noqa: F811
    """Half the images in negative: plain features split by polarity, view means by object."""
    images, labels = pair
    flipped = torch.from_numpy(np.random.default_rng(0).random(len(images)) < 0.5)
    images = torch.where(flipped[:, None, None, None], 255 - images, images)
    base = {**RECIPE, "embed_iters": 100, "split_init": "spectral", "refinements": 0}
    plain = raw(images, base)
    viewed = raw(images, {**base, "invert": 0.5, "seed_views": 8})
    assert purity(viewed.memberships, labels) >= 0.9
    assert purity(plain.memberships, labels) < 0.8


def test_seeding_on_recolourings_splits_cast_images_by_object(pair):  # noqa: F811
    """A red or a blue cast independent of the object: recoloured seeding splits by object."""
    images, labels = pair
    blue = torch.from_numpy(np.random.default_rng(1).random(len(images)) < 0.5)
    cast = torch.where(blue[:, None], torch.tensor([0.3, 0.45, 1.0]), torch.tensor([1.0, 0.3, 0.3]))
    images = (images.float() * cast[:, :, None, None]).round().to(torch.uint8)
    base = {**RECIPE, "embed_iters": 100, "split_init": "spectral", "refinements": 0, "tint": 0.5}
    recoloured = raw(images, {**base, "seed_recolours": 8})
    assert purity(recoloured.memberships, labels) >= 0.9


def test_recolouring_leaves_grey_images_alone(small):  # noqa: F811
    """On one-channel images seed_recolours changes nothing, bit for bit."""
    plain = raw(small, {**QUICK, "split_init": "spectral"})
    recoloured = raw(small, {**QUICK, "split_init": "spectral", "seed_recolours": 8})
    np.testing.assert_array_equal(plain.memberships, recoloured.memberships)


@pytest.mark.parametrize("init", ["kmeans", "spectral", "spectral-views"])
@pytest.mark.parametrize("stop_at", [2, 6])  # inside the warm-up, and after the targets
def test_interrupt_and_resume_is_bit_identical(small, stop_at, init):  # noqa: F811
    views = {"seed_views": 2, "invert": 0.5} if init.endswith("views") else {}
    quick = {**QUICK, "split_init": init.split("-")[0], **views}
    whole = raw(small, quick)
    store = MemoryCheckpointer()
    with pytest.raises(Interrupted):
        raw(small, quick, checkpoint=store, should_stop=StopAfter(stop_at))
    assert ("targets" in store.load()) == (stop_at > 4)
    resumed = raw(small, quick, checkpoint=store)
    np.testing.assert_array_equal(whole.memberships, resumed.memberships)


def test_a_child_starts_from_the_trunk_that_saw_its_images(small):  # noqa: F811
    parent = raw(small, QUICK)
    config = make_config(HCMGANSplitter, "tiny", QUICK)
    nets = _build_nets(config, 2, False, (1, 28, 28), seed=3, device=CPU)
    ctx = split_context(small, torch.ones(len(small)), config, parent_models=parent.models)
    assert _inherit_trunks(nets, ctx, refine=False)
    state = nets.discriminators[0].state_dict()
    for key, value in parent.models["D"].items():
        same = np.array_equal(state[key].numpy(), value)
        assert same == key.startswith(("trunk.", "p_head.")), key
    # with inheritance, a child skips the warm-up: its iteration count is the GAN's alone
    assert not _inherit_trunks(nets, split_context(small, torch.ones(len(small)), config), False)


def test_settings_are_checked():
    for bad in ({"split_init": "bogus"}, {"embed_iters": 5}, {"lambda_target": -1.0},
                {"fit_iters": -1}, {"fit_max_draws": -0.5}):  # fmt: skip
        with pytest.raises(HCTreeError):
            make_config(HCMGANSplitter, "paper", bad)


def test_weighted_kmeans_finds_blobs_and_is_seeded():
    gen = torch.Generator().manual_seed(0)
    x = torch.cat(
        [torch.randn(50, 2, generator=gen) * 0.1, torch.randn(30, 2, generator=gen) * 0.1 + 3]
    )
    w = torch.ones(80)
    a = weighted_kmeans(x, w, 2, torch.Generator().manual_seed(1))
    b = weighted_kmeans(x, w, 2, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert (a[:50] == 0).all() and (a[50:] == 1).all()  # heavier cluster first
    heavy = torch.where(torch.arange(80) >= 50, 10.0, 1.0)
    assert (weighted_kmeans(x, heavy, 2, torch.Generator().manual_seed(1))[50:] == 0).all()


def test_flip_sets_how_often_a_view_is_mirrored():
    """The same draws with flip=1 give the flip=0 view mirrored left to right; the
    default (0.5) mirrors some views of a batch and not others."""
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    never = augment(x, 0.5, torch.Generator().manual_seed(3), flip=0.0)
    always = augment(x, 0.5, torch.Generator().manual_seed(3), flip=1.0)
    torch.testing.assert_close(always, never.flip(3), rtol=0, atol=1e-5)
    half = augment(x, 0.5, torch.Generator().manual_seed(3))
    mirrored = [bool(torch.allclose(h, a, atol=1e-5)) for h, a in zip(half, always, strict=True)]
    kept = [bool(torch.allclose(h, n, atol=1e-5)) for h, n in zip(half, never, strict=True)]
    assert any(mirrored) and any(kept) and all(m != k for m, k in zip(mirrored, kept, strict=True))


def test_shift_moves_a_view_by_at_most_its_fraction_of_the_side():
    """A bright dot in the middle stays within 2 px (the crop's aspect ratio) in
    whole-image views without a shift; with shift=0.15 it moves, by up to 0.15 of the
    28-pixel side each way (times the crop's stretch, at most 1/sqrt(3/4)), no further."""
    x = -torch.ones(64, 1, 28, 28)
    x[:, :, 13:15, 13:15] = 1.0

    def dot(views: torch.Tensor) -> torch.Tensor:  # the dot's centre, row and column
        w = views[:, 0] - views.amin(dim=(1, 2, 3))[:, None, None]
        rows = torch.arange(28.0)
        mass = w.sum(dim=(1, 2))
        return torch.stack([(w.sum(2) * rows).sum(1), (w.sum(1) * rows).sum(1)], 1) / mass[:, None]

    still = augment(x, 1.0, torch.Generator().manual_seed(2), flip=0.0)
    moved = augment(x, 1.0, torch.Generator().manual_seed(2), flip=0.0, shift=0.15)
    assert torch.equal(still, augment(x, 1.0, torch.Generator().manual_seed(2), flip=0.0, shift=0))
    assert (dot(still) - 13.5).abs().max() <= 2
    offset = (dot(moved) - dot(still)).abs()
    assert offset.max() <= 0.15 * 28 / 0.75**0.5 + 0.1
    assert (offset.amax(dim=1) >= 1).float().mean() > 0.5


def test_rotate_turns_a_view_by_at_most_its_angle():
    """A horizontal bar stays level in whole-image views without a turn; with
    rotate=20 its axis (second moments) tilts both ways, by at most 20 degrees
    (plus what the crop's aspect ratio, at most 4/3, stretches out of it)."""
    x = -torch.ones(64, 1, 28, 28)
    x[:, :, 13:15, 4:24] = 1.0

    def tilt(views: torch.Tensor) -> torch.Tensor:  # the bar's axis, degrees from level
        w = (views[:, 0] + 1).clamp(min=0)
        rows, cols = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
        mass = w.sum(dim=(1, 2))
        r = (w * rows).sum(dim=(1, 2)) / mass
        c = (w * cols).sum(dim=(1, 2)) / mass
        dr, dc = rows - r[:, None, None], cols - c[:, None, None]
        srr, scc = (w * dr * dr).sum(dim=(1, 2)), (w * dc * dc).sum(dim=(1, 2))
        src = (w * dr * dc).sum(dim=(1, 2))
        return torch.rad2deg(0.5 * torch.atan2(2 * src, scc - srr))

    level = augment(x, 1.0, torch.Generator().manual_seed(2), flip=0.0)
    turned = augment(x, 1.0, torch.Generator().manual_seed(2), flip=0.0, rotate=20.0)
    assert torch.equal(level, augment(x, 1.0, torch.Generator().manual_seed(2), flip=0.0, rotate=0))
    assert tilt(level).abs().max() < 0.5
    angles = tilt(turned)
    bound = math.degrees(math.atan(math.tan(math.radians(20)) * (4 / 3) ** 0.5))
    assert angles.abs().max() <= bound + 0.5
    assert (angles > 5).any() and (angles < -5).any()
    with pytest.raises(HCTreeError, match="view_rotate"):
        Config(view_rotate=-1.0).validate()


def test_gain_sets_how_far_a_view_may_brighten_or_darken():
    """On a flat grey image (where contrast changes nothing) a view is the grey times
    its gain: within [0.6, 1.4] by default, the same views as an explicit 0.4, and
    with gain=0.8 within [0.2, 1.8], reaching past the default's range both ways."""
    grey = 0.25
    x = torch.full((256, 1, 28, 28), 2 * grey - 1)

    def gains(views: torch.Tensor) -> torch.Tensor:
        return ((views + 1) / 2).mean(dim=(1, 2, 3)) / grey

    default = augment(x, 1.0, torch.Generator().manual_seed(4), flip=0.0)
    assert torch.equal(
        default, augment(x, 1.0, torch.Generator().manual_seed(4), flip=0.0, gain=0.4)
    )
    wide = gains(augment(x, 1.0, torch.Generator().manual_seed(4), flip=0.0, gain=0.8))
    narrow = gains(default)
    assert narrow.min() >= 0.6 - 1e-5 and narrow.max() <= 1.4 + 1e-5
    assert wide.min() >= 0.2 - 1e-5 and wide.max() <= 1.8 + 1e-5
    assert (wide < 0.5).any() and (wide > 1.5).any()
    with pytest.raises(HCTreeError, match="view_gain"):
        Config(view_gain=1.0).validate()


def test_a_configured_view_takes_the_settings_its_config_carries_and_defaults_for_the_rest():
    """hcmgan's config sets every view setting; a config that carries only some (as
    c3gan's and slcgan's do) gets augment's own defaults for the others."""
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    config = Config(crop_scale_min=0.6, flip=0.0, invert=0.3, view_shift=0.1, view_gain=0.7)
    expected = augment(
        x, 0.6, torch.Generator().manual_seed(5), 0.0, 0.3, 0.0, 0.1, 0.0, 0.7
    )  # fmt: skip
    assert torch.equal(configured_view(x, config, torch.Generator().manual_seed(5)), expected)
    bare = SimpleNamespace(flip=0.0)
    plain = augment(x, 0.4, torch.Generator().manual_seed(5), flip=0.0)
    assert torch.equal(configured_view(x, bare, torch.Generator().manual_seed(5)), plain)
    mirrored = augment(x, 0.4, torch.Generator().manual_seed(5))  # augment's own flip, 0.5
    assert not torch.equal(plain, mirrored)
    assert torch.equal(
        configured_view(x, SimpleNamespace(), torch.Generator().manual_seed(5)), mirrored
    )


def test_views_change_colour_casts_and_the_losses_measure_agreement():
    x = torch.rand(8, 3, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    plain = augment(x, 1.0, torch.Generator().manual_seed(5))
    tinted = augment(x, 1.0, torch.Generator().manual_seed(5), tint=0.5)
    assert plain.shape == tinted.shape and not torch.allclose(plain, tinted)
    grey = torch.zeros(4, 1, 28, 28)
    assert torch.equal(augment(grey, 1.0, torch.Generator().manual_seed(5), tint=0.5),
                       augment(grey, 1.0, torch.Generator().manual_seed(5)))  # fmt: skip
    sure = torch.tensor([[20.0, 0.0], [0.0, 20.0]])
    assert view_agreement(sure, sure) < 1e-6 < view_agreement(sure, sure.flip(1))
    assert imbalance(sure) < 1e-6 < imbalance(torch.tensor([[20.0, 0.0], [20.0, 0.0]]))


def _arcs() -> tuple[torch.Tensor, np.ndarray]:
    """A long arc and a short one on the unit circle, 20 degrees apart at both ends."""
    long_arc = np.radians(np.linspace(0, 240, 300))
    short_arc = np.radians(np.linspace(260, 340, 100))
    angles = np.concatenate([long_arc, short_arc])
    x = torch.tensor(np.stack([np.cos(angles), np.sin(angles)], 1), dtype=torch.float32)
    return x, np.repeat([0, 1], [300, 100])


def test_spectral_labels_cut_at_the_gap_where_kmeans_cuts_the_long_arc():
    from hctree.metrics import accuracy
    from hctree.spectral import spectral_labels

    x, truth = _arcs()
    w = torch.ones(len(x))
    spectral = spectral_labels(x, w, 2, torch.Generator().manual_seed(0)).numpy()
    kmeans = weighted_kmeans(x, w, 2, torch.Generator().manual_seed(0)).numpy()
    assert accuracy(truth, spectral) == 1.0
    assert accuracy(truth, kmeans) < 0.9
    again = spectral_labels(x, w, 2, torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_array_equal(spectral, again)
    assert (spectral == 0).sum() == 300  # numbered by decreasing weight


def test_spectral_labels_give_light_rows_their_neighbours_group():
    from hctree.spectral import spectral_labels

    x, truth = _arcs()
    w = torch.ones(len(x))
    light = torch.arange(0, len(x), 7)  # every 7th image is a trace member of the node
    w[light] = 0.01
    labels = spectral_labels(x, w, 2, torch.Generator().manual_seed(1)).numpy()
    assert (labels == truth).all() or (labels == 1 - truth).all()


def test_merge_parts_joins_the_pieces_of_a_class_before_two_classes():
    import scipy.sparse as sp

    from hctree.spectral import merge_parts

    # six parts: 0-1, 2-3 and 4-5 are pieces of three classes, 1 and 2 touch weakly
    links = np.eye(6) * 10
    for a, b, w in [(0, 1, 5), (2, 3, 5), (4, 5, 5), (1, 2, 1)]:
        links[a, b] = links[b, a] = w
    graph = sp.csr_matrix(links)
    assert merge_parts(graph, np.arange(6), 3).tolist() == [0, 0, 1, 1, 2, 2]
    assert merge_parts(graph, np.arange(6), 2).tolist() == [0, 0, 0, 0, 1, 1]


def test_spectral_labels_over_cut_and_merged_keep_both_arcs_whole():
    from hctree.metrics import accuracy
    from hctree.spectral import spectral_labels

    x, truth = _arcs()
    w = torch.ones(len(x))
    labels = spectral_labels(x, w, 2, torch.Generator().manual_seed(0), parts=6).numpy()
    assert accuracy(truth, labels) == 1.0
    again = spectral_labels(x, w, 2, torch.Generator().manual_seed(0), parts=6).numpy()
    np.testing.assert_array_equal(labels, again)


def test_graph_rows_keep_every_own_row_under_the_cap_either_way():
    from hctree.spectral import graph_rows

    weights = torch.rand(500, generator=torch.Generator().manual_seed(0))
    own = (weights >= 0.5 * weights.max()).nonzero().squeeze(1)
    np.testing.assert_array_equal(graph_rows(weights).numpy(), own.numpy())
    np.testing.assert_array_equal(graph_rows(weights, spread=True).numpy(), own.numpy())


def test_spread_graph_rows_barely_move_when_the_memberships_move_a_little():
    from hctree.spectral import MAX_GRAPH, graph_rows

    gen = torch.Generator().manual_seed(0)
    n = MAX_GRAPH * 2 + 1000
    weights = 0.999 + 0.001 * torch.rand(n, generator=gen)  # a soft node, all its own rows
    nudged = weights * (1 + 1e-4 * torch.randn(n, generator=gen))
    spread = graph_rows(weights, spread=True)
    assert len(spread) == MAX_GRAPH and (spread.diff() > 0).all()
    assert spread[0] == 0 and (spread.diff() <= 3).all()  # every second or third row
    np.testing.assert_array_equal(graph_rows(nudged, spread=True).numpy(), spread.numpy())
    # the heaviest rows are chosen by the memberships' last digits: the nudge swaps many
    heaviest = set(graph_rows(weights).tolist())
    moved = len(heaviest - set(graph_rows(nudged).tolist())) / MAX_GRAPH
    assert moved > 0.05  # over a thousand rows replaced


def test_normalized_cut_counts_the_edges_leaving_each_group():
    import scipy.sparse as sp

    from hctree.spectral import normalized_cut

    # two triangles joined by one edge: each side has degree sum 7, one edge leaves it
    edges = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5), (2, 3)]
    links = np.zeros((6, 6))
    for a, b in edges:
        links[a, b] = links[b, a] = 1
    graph = sp.csr_matrix(links)
    assert normalized_cut(graph, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(2 / 7)
    assert normalized_cut(graph, np.array([0, 0, 1, 1, 1, 1])) > 2 / 7


def test_spectral_labels_with_parts_never_keep_a_worse_cut():
    from hctree.spectral import knn_graph, nearest_rows, normalized_cut, spectral_labels

    x, _ = _arcs()
    w = torch.ones(len(x))
    graph = knn_graph(nearest_rows(x, x, 10, skip_self=True).numpy())
    direct = spectral_labels(x, w, 2, torch.Generator().manual_seed(0)).numpy()
    for parts in (4, 6, 8):
        labels = spectral_labels(x, w, 2, torch.Generator().manual_seed(0), parts=parts).numpy()
        assert normalized_cut(graph, labels) <= normalized_cut(graph, direct) + 1e-12


def _arcs_and_a_knot() -> tuple[torch.Tensor, np.ndarray]:
    """Two 300-row arcs of the equator joined across their two gaps by three rows each
    (label 3), and 20 near-identical rows at the pole that no other row has among its
    nearest neighbours: cutting off the knot cuts no edge at all, parting the arcs
    cuts only the bridges' few."""
    angles = np.radians(np.concatenate([np.linspace(0, 160, 300), np.linspace(180, 340, 300)]))
    bridges = np.radians(np.concatenate([np.linspace(165, 175, 3), np.linspace(345, 355, 3)]))
    angles = np.concatenate([angles, bridges])
    ring = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], 1)
    knot = np.array([0, 0, 1.0]) + np.random.default_rng(0).normal(0, 0.01, (20, 3))
    x = F.normalize(torch.tensor(np.concatenate([ring, knot]), dtype=torch.float32), dim=1)
    return x, np.repeat([0, 1, 3, 2], [300, 300, 6, 20])


def test_a_spectral_floor_seeds_between_the_arcs_not_around_a_knot():
    from hctree.spectral import spectral_labels

    x, truth = _arcs_and_a_knot()
    w = torch.ones(len(x))
    free = spectral_labels(x, w, 2, torch.Generator().manual_seed(0), parts=8).numpy()
    assert sorted(np.bincount(free)) == [20, 606]  # the knot alone: the thinnest cut
    notes: dict[str, float] = {}
    floored = spectral_labels(
        x, w, 2, torch.Generator().manual_seed(0), parts=8, floor=0.05, notes=notes
    ).numpy()
    arcs = truth < 2
    assert len(set(zip(floored[arcs], truth[arcs], strict=True))) == 2  # arcs whole, apart
    assert notes == {"refused_share": pytest.approx(20 / 626)}


def test_merge_parts_joins_a_part_under_the_floor_to_its_neighbour_first():
    import scipy.sparse as sp

    from hctree.spectral import merge_parts

    # parts 0-1 and 2-3 are pieces of two classes that touch (1-2); part 4 is a
    # small knot that barely touches part 3 and nothing else
    links = np.diag([10.0, 10, 10, 10, 3])
    for a, b, w in [(0, 1, 5), (2, 3, 5), (1, 2, 2), (3, 4, 0.1)]:
        links[a, b] = links[b, a] = w
    graph = sp.csr_matrix(links)
    assert merge_parts(graph, np.arange(5), 2).tolist() == [0, 0, 0, 0, 1]
    sizes = np.array([30.0, 30, 30, 30, 2])  # the knot holds 2 of 122 rows' weight
    assert merge_parts(graph, np.arange(5), 2, sizes, floor=0.05).tolist() == [0, 0, 1, 1, 1]
    assert merge_parts(graph, np.arange(5), 2, sizes, floor=0.01).tolist() == [0, 0, 0, 0, 1]


def test_a_spectral_balance_keeps_the_direct_cut_where_the_merge_slices_a_side_off():
    import scipy.sparse as sp

    from hctree.spectral import kept_cut, normalized_cut

    # groups A (45 rows) and B (45) share 200 edges; C (10) hangs on B by 3 edges
    group = np.repeat([0, 1, 2], [45, 45, 10])
    links = (group[:, None] == group[None, :]).astype(float) - np.eye(100)
    rng = np.random.default_rng(0)
    for a, b, count in [(0, 1, 200), (1, 2, 3)]:
        rows = rng.choice(np.flatnonzero(group == a), count)
        cols = rng.choice(np.flatnonzero(group == b), count)
        links[rows, cols] = links[cols, rows] = 1
    graph = sp.csr_matrix(links)
    direct = (group > 0).astype(np.int64)  # A against B and C: balanced
    sizes = np.ones(100)
    merged = kept_cut(graph, group, direct, 2, sizes, floor=0.05)
    assert np.bincount(merged).tolist() == [90, 10]  # C sliced off: the thinner cut
    assert normalized_cut(graph, merged) < normalized_cut(graph, direct)
    balanced = kept_cut(graph, group, direct, 2, sizes, floor=0.05, balance=0.8)
    np.testing.assert_array_equal(balanced, direct)
    # a merged cut as balanced as the direct one is kept on its normalised cut, as before
    assert np.array_equal(kept_cut(graph, group, direct, 2, sizes, 0.05, balance=0.2), merged)


def test_spectral_balance_is_checked():
    with pytest.raises(HCTreeError, match="spectral_balance"):
        make_config(HCMGANSplitter, "cpu", {"spectral_balance": 1.5})
    assert make_config(HCMGANSplitter, "paper", {}).spectral_balance == 0


def test_fitting_c_on_the_whole_node_learns_the_targets_and_leaves_the_trunk():
    """fit_classifier: C's head learns a cut of the trunk's features; nothing else moves."""
    torch.manual_seed(0)
    config = make_config(HCMGANSplitter, "tiny", {"fit_iters": 50})
    nets = _build_nets(config, 2, False, (1, 28, 28), seed=0, device=CPU)
    disc = nets.discriminators[0]
    images = torch.randint(0, 256, (600, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    images = images.to(torch.uint8)  # stored images, as a split's context holds them
    with torch.no_grad():
        feats = disc.features(to_unit(images))
        direction = torch.randn(feats.shape[1], generator=torch.Generator().manual_seed(2))
        score = feats @ direction
        targets = (score > score.median()).long()
    parent = torch.ones(len(images))
    parent[:100] = 0.0  # outside the node: never fitted, never counted
    trunk_before = {k: v.clone() for k, v in disc.trunk.state_dict().items()}

    def accuracy() -> float:
        with torch.no_grad():
            guess = disc.classify(disc.features(to_unit(images))).argmax(1)
        return float((guess == targets)[100:].float().mean())

    before = accuracy()
    fit_classifier(disc, images, parent, targets, config)
    assert accuracy() >= 0.95 > before
    for name, value in disc.trunk.state_dict().items():
        assert torch.equal(value, trunk_before[name]), name


def test_children_read_off_the_fitted_features_equal_a_second_pass_of_the_trunk():
    """The fit's features give the same probabilities, bit for bit, as the ensemble."""
    config = make_config(HCMGANSplitter, "tiny", {"fit_iters": 20, "predict_batch": 64})
    nets = _build_nets(config, 2, False, (1, 28, 28), seed=0, device=CPU)
    disc = nets.discriminators[0]
    images = torch.randint(0, 256, (300, 1, 28, 28), generator=torch.Generator().manual_seed(1))
    images = images.to(torch.uint8)
    targets = torch.randint(0, 2, (300,), generator=torch.Generator().manual_seed(2))
    parent = torch.rand(300, generator=torch.Generator().manual_seed(3))
    parent[::7] = 0.0  # outside the node: zero rows in both
    feats = fit_classifier(disc, images, parent, targets, config)
    disc.eval()
    again = predict_in_batches(_ensemble(nets.discriminators, CPU), images, 64, parent > 0)
    reused = _children_from_features(disc, feats, parent > 0, 64)
    assert torch.equal(reused, again)
    assert float(reused[parent > 0].sum(1).sub(1).abs().max()) < 1e-6
    assert float(reused[parent == 0].abs().max()) == 0.0


def test_a_seeded_split_with_the_fit_follows_its_seed_and_saves_the_fitted_head(pair):  # noqa: F811
    images, labels = pair
    base = {**RECIPE, "embed_iters": 100, "split_init": "spectral", "refinements": 0}
    plain = raw(images, base)
    fitted = raw(images, {**base, "fit_iters": 50})
    assert purity(fitted.memberships, labels) >= 0.9
    np.testing.assert_allclose(fitted.memberships.sum(0), 1.0, atol=1e-5)
    assert not np.array_equal(
        plain.models["D"]["c_head.weight"], fitted.models["D"]["c_head.weight"]
    )
    np.testing.assert_array_equal(plain.models["G0"]["project.0.weight"],
                                  fitted.models["G0"]["project.0.weight"])  # fmt: skip
    # fit_max_draws: the fit runs only where C drew fewer real images per node image
    under_bar = raw(images, {**base, "fit_iters": 50, "fit_max_draws": 1e6})
    over_bar = raw(images, {**base, "fit_iters": 50, "fit_max_draws": 1e-6})
    np.testing.assert_array_equal(under_bar.memberships, fitted.memberships)
    np.testing.assert_array_equal(over_bar.memberships, plain.memberships)


def test_the_fit_runs_where_c_saw_each_image_fewer_times_than_fit_max_draws():
    """800 iterations of 32 images: 2.56 draws per image of 10,000, 0.37 of 70,000."""
    at_most_one = make_config(HCMGANSplitter, "cpu", {"fit_iters": 100, "fit_max_draws": 1})
    assert fit_wanted(at_most_one, 800, 70000.0)
    assert fit_wanted(at_most_one, 800, 25601.0)
    assert not fit_wanted(at_most_one, 800, 25600.0)
    assert not fit_wanted(at_most_one, 800, 10000.0)
    always = make_config(HCMGANSplitter, "cpu", {"fit_iters": 100, "fit_max_draws": 0})
    assert fit_wanted(always, 800, 10.0)
    never = make_config(HCMGANSplitter, "cpu", {"fit_iters": 0, "fit_max_draws": 0})
    assert not fit_wanted(never, 800, 70000.0)
