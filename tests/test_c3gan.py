"""The C3-GAN splitter: a real split of Fashion-MNIST trousers vs bags, determinism,
interrupt/resume, predict, generate and configuration errors (CPU, tiny preset)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hctree.errors import HCTreeError, Interrupted
from hctree.invariance import augment, nt_xent, recolour
from hctree.splitters import get_splitter, make_config
from hctree.splitters.base import MemoryCheckpointer
from hctree.splitters.c3gan import (
    C3GANSplitter,
    build_models,
    entropy_regulariser,
    mask_regulariser,
    perturbation_theta,
)
from tests.conftest import CPU, split_context


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def stop_after(n: int):
    """A should_stop hook that says yes on its n-th call (after iteration n)."""
    calls = {"n": 0}

    def should_stop() -> bool:
        calls["n"] += 1
        return calls["n"] == n

    return should_stop


def purity(assign: np.ndarray, labels: np.ndarray) -> float:
    return sum(np.bincount(labels[assign == j]).max() for j in np.unique(assign)) / len(assign)


@pytest.fixture(scope="module")
def trouser_bag(fmnist, fmnist_classes):
    data = fmnist_classes(fmnist, [1, 8], per_class=900, seed=0)
    return torch.from_numpy(data.images), data.labels


@pytest.fixture(scope="module")
def split(trouser_bag):
    images, labels = trouser_bag
    config = make_config(C3GANSplitter, "tiny")
    membership = torch.ones(len(images))
    result = C3GANSplitter().run_stage("train", split_context(images, membership, config))
    return images, labels, membership, config, result


@pytest.fixture(scope="module")
def small(trouser_bag):
    """120 images, a non-uniform membership with zeros, and an 8-iteration budget."""
    images, _ = trouser_bag
    rows = np.r_[0:60, 900:960]
    images = images[rows]
    membership = torch.linspace(0, 1, len(rows))
    membership[::7] = 0
    config = make_config(C3GANSplitter, "tiny", {"iterations": 8, "bn_batches": 2, "log_every": 2})
    return images, membership, config


def test_registry_finds_the_splitter():
    assert get_splitter("c3gan") is C3GANSplitter
    assert C3GANSplitter().stages(make_config(C3GANSplitter, "tiny")) == ["train"]


def test_separates_trousers_from_bags(split):
    _, labels, membership, _, result = split
    memberships = result.memberships
    assert memberships.shape == (2, len(labels)) and memberships.dtype == np.float32
    np.testing.assert_allclose(memberships.sum(0), membership.numpy(), atol=1e-5)
    assert purity(memberships.argmax(0), labels) >= 0.85
    fractions = [result.metrics["mass_fraction_0"], result.metrics["mass_fraction_1"]]
    assert min(fractions) > 0.25 and abs(sum(fractions) - 1) < 1e-4
    assert np.isfinite([result.metrics[k] for k in ("d_adv", "info", "contrast")]).all()
    assert set(result.models) == {"generator", "discriminator", "grouping"}
    assert result.models["grouping"]["cluster_to_child"].dtype == np.int64


def test_predict_reproduces_memberships(split):
    images, _, membership, config, result = split
    fn = C3GANSplitter.predict(result.models, config, (1, 28, 28), CPU)
    with torch.no_grad():
        probs = fn(images[:500].float() / 127.5 - 1)
    assert probs.shape == (500, 2)
    np.testing.assert_allclose(probs.sum(1).numpy(), 1.0, atol=1e-5)
    expected = result.memberships[:, :500] / membership[:500].numpy()
    np.testing.assert_allclose(probs.T.numpy(), expected, atol=1e-5)


def test_generate_gives_images_per_child(split):
    _, _, _, config, result = split
    images = C3GANSplitter.generate(result.models, config, (1, 28, 28), 6, seed=3, device=CPU)
    assert images.shape == (2, 6, 1, 28, 28) and images.dtype == torch.uint8
    again = C3GANSplitter.generate(result.models, config, (1, 28, 28), 6, seed=3, device=CPU)
    assert torch.equal(images, again)
    assert images.float().std() > 5  # not a constant image


def test_same_seed_same_memberships_other_seed_differs(small):
    images, membership, config = small
    first = C3GANSplitter().run_stage("train", split_context(images, membership, config))
    second = C3GANSplitter().run_stage("train", split_context(images, membership, config))
    other = C3GANSplitter().run_stage("train", split_context(images, membership, config, seed=8))
    assert np.array_equal(first.memberships, second.memberships)
    assert not np.allclose(first.memberships, other.memberships)
    np.testing.assert_allclose(first.memberships.sum(0), membership.numpy(), atol=1e-5)
    assert (first.memberships[:, membership.numpy() == 0] == 0).all()


def test_a_compiled_split_trains_like_the_eager_one(small):
    """compile=trace captures G's and D's graphs without generating code: the same split."""
    images, membership, config = small
    eager = C3GANSplitter().run_stage("train", split_context(images, membership, config))
    traced = dataclasses.replace(config, compile="trace")
    compiled = C3GANSplitter().run_stage("train", split_context(images, membership, traced))
    np.testing.assert_allclose(compiled.memberships, eager.memberships, rtol=0, atol=1e-6)
    for name, value in eager.metrics.items():
        assert compiled.metrics[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name


def test_graph_grouping_is_seeded_and_keeps_the_parent_mass(small):
    images, membership, config = small
    config = dataclasses.replace(config, grouping="graph", overcluster=3)
    first = C3GANSplitter().run_stage("train", split_context(images, membership, config))
    second = C3GANSplitter().run_stage("train", split_context(images, membership, config))
    assert np.array_equal(first.memberships, second.memberships)
    np.testing.assert_allclose(first.memberships.sum(0), membership.numpy(), atol=1e-5)
    groups = first.models["grouping"]["cluster_to_child"]
    assert sorted(set(groups.tolist())) == [0, 1] and len(groups) == 6


@pytest.mark.parametrize("stop_at", [3, 8])
def test_interrupt_and_resume_is_bit_identical(small, stop_at):
    images, membership, config = small
    whole = C3GANSplitter().run_stage("train", split_context(images, membership, config))

    saved = MemoryCheckpointer(due_every=2)
    with pytest.raises(Interrupted):
        C3GANSplitter().run_stage(
            "train",
            split_context(
                images, membership, config, checkpoint=saved, should_stop=stop_after(stop_at)
            ),
        )
    assert saved.load()["iteration"] == stop_at and saved.saves == 1 + (stop_at - 1) // 2

    resumed = C3GANSplitter().run_stage(
        "train",
        split_context(images, membership, config, checkpoint=MemoryCheckpointer(saved.blob)),
    )
    assert np.array_equal(whole.memberships, resumed.memberships)
    assert whole.metrics == resumed.metrics
    assert whole.curves["step"].tolist() == [2, 4, 6, 8]
    assert all(np.array_equal(v, resumed.curves[k]) for k, v in whole.curves.items())
    for name, params in whole.models["discriminator"].items():
        assert np.array_equal(params, resumed.models["discriminator"][name]), name


@pytest.mark.parametrize(
    "shape", [(1, 28, 28), (1, 32, 32), (3, 32, 32), (3, 64, 64), (3, 128, 128)]
)
def test_networks_fit_every_supported_size(shape):
    config = make_config(C3GANSplitter, "tiny")
    gen_net, disc = build_models(config, shape, 4)
    gen_net.eval()
    codes = torch.nn.functional.one_hot(torch.tensor([0, 3]), 4).float()
    theta = perturbation_theta(2, "strong", torch.Generator().manual_seed(0), CPU)
    with torch.no_grad():
        out = gen_net(torch.randn(2, config.z_dim), torch.randn(2, config.cz_dim), codes, theta)
        r, h = disc(out["image"])
    assert out["image"].shape == (2, *shape) and out["mask"].shape == (2, 1, *shape[1:])
    assert out["image"].abs().max() <= 1 and 0 <= out["mask"].min() <= out["mask"].max() <= 1
    assert r.shape == (2,) and h.shape == (2, config.h_dim)
    assert disc.centroids().shape == (4, config.h_dim)


def test_losses_reward_what_the_paper_asks_for():
    feats = torch.eye(8)
    assert nt_xent(feats, feats, 0.1) < 1e-3 < nt_xent(feats, feats.roll(1, 0), 0.1)
    confident_balanced = torch.eye(4).repeat(2, 1) * 50
    confident_collapsed = torch.zeros(8, 4)
    confident_collapsed[:, 0] = 50
    assert entropy_regulariser(confident_balanced) < 1e-6
    assert abs(entropy_regulariser(torch.zeros(8, 4)) - np.log(4)) < 1e-5
    assert abs(entropy_regulariser(confident_collapsed) - np.log(4)) < 1e-5
    hard = (torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    assert mask_regulariser(hard) < 1e-3 < mask_regulariser(torch.full((4, 1, 8, 8), 0.5))
    assert mask_regulariser(torch.zeros(4, 1, 8, 8)) > 0.09  # a mask must cover >= 10%


def test_perturbation_ranges_follow_the_paper():
    gen = torch.Generator().manual_seed(0)
    theta = perturbation_theta(4000, "strong", gen, CPU)
    scale = theta[:, 0, :2].norm(dim=1)
    angle = torch.rad2deg(torch.atan2(theta[:, 1, 0], theta[:, 0, 0]))
    assert 0.8 <= scale.min() and scale.max() <= 1.5 and scale.max() > 1.45
    assert -15 <= angle.min() and angle.max() <= 15 and angle.max() > 14
    assert theta[:, :, 2].abs().max() <= 0.15
    weak = perturbation_theta(4000, "weak", gen, CPU)
    assert weak[:, 0, :2].norm(dim=1).max() <= 1.1 + 1e-6


def test_augment_keeps_shape_and_range_and_is_seeded():
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    a = augment(x, 0.3, torch.Generator().manual_seed(1))
    b = augment(x, 0.3, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1 and not torch.allclose(a, x)


def test_an_inverting_view_is_the_same_view_with_grey_levels_inverted():
    x = torch.rand(64, 1, 16, 16) * 2 - 1
    plain = augment(x, 0.3, torch.Generator().manual_seed(4))
    always = augment(x, 0.3, torch.Generator().manual_seed(4), invert=1.0)
    torch.testing.assert_close(always, -plain)
    half = augment(x, 0.3, torch.Generator().manual_seed(4), invert=0.5)
    same = torch.isclose(half, plain, atol=1e-6).flatten(1).all(1)
    flipped = torch.isclose(half, -plain, atol=1e-6).flatten(1).all(1)
    assert bool((same ^ flipped).all())
    assert 16 < int(flipped.sum()) < 48  # about half of the views, chosen at random


def test_recolour_casts_colour_images_and_passes_grey_ones():
    x = torch.rand(16, 3, 8, 8) * 2 - 1
    cast = recolour(x, 0.5, torch.Generator().manual_seed(2))
    assert cast.shape == x.shape and cast.min() >= -1 and cast.max() <= 1
    means = ((cast + 1) / 2).mean(dim=(2, 3)) / ((x + 1) / 2).mean(dim=(2, 3))
    assert means.std(dim=0).min() > 0.05  # the channel balance changed, image by image
    grey = torch.rand(4, 1, 8, 8)
    assert torch.equal(recolour(grey, 0.5, torch.Generator().manual_seed(2)), grey)


def test_fake_tint_changes_training_on_colour_images_only(trouser_bag):
    grey = trouser_bag[0][np.r_[0:48, 900:948]]
    images = grey.repeat(1, 3, 1, 1)
    membership = torch.ones(len(images))
    runs = []
    for tint in (0.0, 0.5, 0.5):
        config = make_config(C3GANSplitter, "tiny", {"iterations": 6, "fake_tint": tint})
        ctx = split_context(images, membership, config)
        runs.append(C3GANSplitter().run_stage("train", ctx).memberships)
    assert not np.allclose(runs[0], runs[1]) and np.array_equal(runs[1], runs[2])
    plain, cast = (
        C3GANSplitter().run_stage(
            "train",
            split_context(
                grey, membership,
                make_config(C3GANSplitter, "tiny", {"iterations": 6, "fake_tint": t}),
            ),
        ).memberships
        for t in (0.0, 0.5)
    )  # fmt: skip
    np.testing.assert_array_equal(plain, cast)


def test_warm_up_trains_the_semantic_path_and_resumes_across_its_end(small):
    images, membership, config = small
    config = dataclasses.replace(config, embed_iters=4)
    whole = C3GANSplitter().run_stage("train", split_context(images, membership, config))
    assert whole.curves["step"].tolist() == [2, 4, 6, 8, 10, 12]
    assert np.isfinite(whole.curves["embed"][:2]).all()
    plain = C3GANSplitter().run_stage(
        "train", split_context(images, membership, dataclasses.replace(config, embed_iters=0))
    )
    assert not np.allclose(whole.memberships, plain.memberships)

    saved = MemoryCheckpointer(due_every=100)
    with pytest.raises(Interrupted):
        C3GANSplitter().run_stage(
            "train",
            split_context(images, membership, config, checkpoint=saved, should_stop=stop_after(5)),
        )
    resumed = C3GANSplitter().run_stage(
        "train",
        split_context(images, membership, config, checkpoint=MemoryCheckpointer(saved.blob)),
    )
    assert np.array_equal(whole.memberships, resumed.memberships)


def test_a_child_split_inherits_the_parent_networks_and_skips_the_warm_up(small):
    images, membership, config = small
    config = dataclasses.replace(config, embed_iters=4, inherit=True)
    parent = C3GANSplitter().run_stage("train", split_context(images, membership, config))
    child_mass = torch.from_numpy(parent.memberships[0])
    child = C3GANSplitter().run_stage(
        "train",
        split_context(images, child_mass, config, seed=11, node="r0", parent_models=parent.models),
    )
    assert child.curves["step"].tolist() == [2, 4, 6, 8]  # no warm-up: 8 GAN iterations
    fresh = C3GANSplitter().run_stage(
        "train",
        split_context(images, child_mass, dataclasses.replace(config, inherit=False), seed=11),
    )

    # after 8 small steps the inherited discriminator is still close to its parent's
    def distance(models):
        return sum(
            float(np.abs(value - models["discriminator"][name]).sum())
            for name, value in parent.models["discriminator"].items()
            if value.dtype.kind == "f"
        )

    assert distance(child.models) < distance(fresh.models) / 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"fake_tint": -0.1},
        {"batch_size": 1},
        {"tau": 0},
        {"perturbation": "wild"},
        {"crop_scale_min": 1.5},
        {"beta1": 1.0},
        {"overcluster": 0},
        {"lambda_info": -1},
        {"no_such_setting": 1},
        {"iterations": "many"},
        {"grouping": "nearest"},
        {"embed_iters": -1},
        {"spectral_parts": -2},
        {"compile": "fast"},
        {"flip": 2},
    ],
)
def test_bad_settings_are_user_errors(overrides):
    with pytest.raises(HCTreeError):
        make_config(C3GANSplitter, "tiny", overrides)


def test_every_preset_is_valid():
    for preset in C3GANSplitter.presets:
        make_config(C3GANSplitter, preset)


def test_unsupported_image_size_names_the_size_option():
    images = torch.zeros(10, 1, 40, 40, dtype=torch.uint8)
    config = make_config(C3GANSplitter, "tiny")
    with pytest.raises(HCTreeError, match="--size 32"):
        C3GANSplitter().run_stage("train", split_context(images, torch.ones(10), config))
