"""The HC-MGAN splitter on small Fashion-MNIST subsets (CPU, one thread, seeded)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from hctree import engine
from hctree.errors import HCTreeError, Interrupted
from hctree.splitters import get_splitter, make_config, stored_splitter
from hctree.splitters.base import MemoryCheckpointer, config_to_json
from hctree.splitters.hcmgan import HCMGANSplitter
from tests.conftest import CPU, split_context

TROUSER, BAG = 1, 8
# a few iterations only: enough to exercise every code path quickly
QUICK = {
    "raw_iters": 8,
    "refine_iters": 6,
    "refinements": 1,
    "log_every": 4,
    "width_g": 8,
    "width_d": 8,
}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


class StopAfter:
    """should_stop() that turns True at its n-th call (after iteration n)."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls == self.n


class Recorder:
    def __init__(self) -> None:
        self.starts: list[tuple[str, int, int]] = []
        self.updates: list[tuple[int, dict[str, float] | None]] = []
        self.messages: list[str] = []
        self.finished = 0

    def start(self, title: str, total: int, done: int = 0) -> None:
        self.starts.append((title, total, done))

    def update(self, done: int, losses: dict[str, float] | None = None) -> None:
        self.updates.append((done, losses))

    def finish(self) -> None:
        self.finished += 1

    def message(self, text: str) -> None:
        self.messages.append(text)


@pytest.fixture(scope="module")
def pair(fmnist, fmnist_classes) -> tuple[torch.Tensor, np.ndarray]:
    """Trousers and bags, 1000 of each: uint8 [2000,1,28,28] and labels [2000]."""
    subset = fmnist_classes(fmnist, [TROUSER, BAG], per_class=1000, seed=0)
    return torch.from_numpy(subset.images), subset.labels


@pytest.fixture(scope="module")
def small(pair) -> torch.Tensor:
    """200 images (every tenth of the pair) for the mechanical tests."""
    return pair[0][::10].contiguous()


def context(images, stage_membership, previous=None, *, k=2, seed=7, preset="tiny", **kw):
    config = make_config(HCMGANSplitter, preset, kw.pop("overrides", QUICK))
    return split_context(images, stage_membership, config, previous=previous, k=k, seed=seed, **kw)


def run_split(images, parent, *, k=2, seed=7, overrides=None, preset="tiny"):
    """All stages of one split; returns the list of StageResults."""
    splitter = HCMGANSplitter()
    overrides = QUICK if overrides is None else overrides
    config = make_config(HCMGANSplitter, preset, overrides)
    previous, results = None, []
    for stage in splitter.stages(config):
        ctx = context(
            images,
            parent,
            previous,
            k=k,
            seed=engine.derive_seed(seed, stage),
            preset=preset,
            overrides=overrides,
        )
        result = splitter.run_stage(stage, ctx)
        results.append(result)
        previous = torch.from_numpy(result.memberships)
        if result.stop:
            break
    return results


def purity(children: np.ndarray, labels: np.ndarray) -> float:
    """Mass-weighted share of each child's soft mass held by its majority class."""
    per = np.stack([np.bincount(labels, weights=c, minlength=10) for c in children])
    return float(per.max(1).sum() / per.sum())


# ---------------------------------------------------------------- quality


def test_trousers_and_bags_split_apart(pair) -> None:
    images, labels = pair
    results = run_split(images, torch.ones(len(images)), overrides={})
    raw, final = results[0].memberships, results[-1].memberships
    assert purity(final, labels) >= 0.85, (purity(raw, labels), purity(final, labels))
    np.testing.assert_allclose(final.sum(0), 1.0, atol=1e-5)


# ---------------------------------------------------------------- mechanics


def test_a_stored_splitter_and_its_settings_come_back_from_the_file_attributes() -> None:
    config = make_config(HCMGANSplitter, "cpu", {"raw_iters": 123, "seed_views": 4})
    attrs = {"splitter": "hcmgan", "config_json": config_to_json(config)}
    splitter, stored = stored_splitter(attrs)
    assert isinstance(splitter, HCMGANSplitter)
    assert stored == config and stored.raw_iters == 123 and stored.seed_views == 4
    with pytest.raises(HCTreeError, match="unknown splitter 'nope'"):
        stored_splitter({"splitter": "nope", "config_json": "{}"})


def test_registered_and_stage_names() -> None:
    assert get_splitter("hcmgan") is HCMGANSplitter
    config = make_config(HCMGANSplitter, "paper")
    assert HCMGANSplitter().stages(config) == ["raw"] + [f"refine{t}" for t in range(1, 9)]
    assert HCMGANSplitter().stages(make_config(HCMGANSplitter, "tiny", {"refinements": 0})) == [
        "raw"
    ]


def test_children_sum_to_a_partial_parent(small) -> None:
    parent = torch.rand(len(small), generator=torch.Generator().manual_seed(1))
    parent[::3] = 0.0
    results = run_split(small, parent)
    for result in results:
        m = result.memberships
        assert m.shape == (2, len(small)) and m.dtype == np.float32
        assert (m >= 0).all()
        np.testing.assert_allclose(m.sum(0), parent.numpy(), rtol=1e-5, atol=1e-6)
        assert (m[:, ::3] == 0).all()
    assert set(results[0].models) == {"G0", "G1", "D"}
    assert set(results[1].models) == {"G0", "D0", "G1", "D1"}
    assert {"loss_d", "loss_c", "loss_g_adv", "mass0", "mass1", "attempts"} <= set(
        results[0].metrics
    )
    assert "change" in results[1].metrics


def test_three_children(small) -> None:
    results = run_split(small, torch.ones(len(small)), k=3)
    for result in results:
        assert result.memberships.shape == (3, len(small))
        np.testing.assert_allclose(result.memberships.sum(0), 1.0, atol=1e-5)
    assert set(results[-1].models) == {"G0", "G1", "G2", "D0", "D1", "D2"}


def test_same_seed_same_memberships_other_seed_differs(small) -> None:
    parent = torch.ones(len(small))
    a = run_split(small, parent, seed=3)
    b = run_split(small, parent, seed=3)
    c = run_split(small, parent, seed=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.memberships, y.memberships)
    assert not np.array_equal(a[0].memberships, c[0].memberships)


def test_global_rng_is_not_used(small) -> None:
    parent = torch.ones(len(small))
    torch.manual_seed(0)
    a = run_split(small, parent)[0]
    torch.manual_seed(12345)
    b = run_split(small, parent)[0]
    np.testing.assert_array_equal(a.memberships, b.memberships)


@pytest.mark.parametrize("stage", ["raw", "refine1"])
@pytest.mark.parametrize("stop_at", [1, 4, 6])
def test_interrupt_and_resume_is_bit_identical(small, stage: str, stop_at: int) -> None:
    splitter = HCMGANSplitter()
    parent = torch.ones(len(small))
    previous = None
    if stage != "raw":
        previous = torch.from_numpy(splitter.run_stage("raw", context(small, parent)).memberships)
    whole = splitter.run_stage(stage, context(small, parent, previous))

    store = MemoryCheckpointer()
    with pytest.raises(Interrupted):
        splitter.run_stage(
            stage,
            context(small, parent, previous, checkpoint=store, should_stop=StopAfter(stop_at)),
        )
    assert store.saves == 1 and store.load()["iteration"] == stop_at
    progress = Recorder()
    resumed = splitter.run_stage(
        stage, context(small, parent, previous, checkpoint=store, progress=progress)
    )
    assert progress.starts[0][2] == stop_at
    np.testing.assert_array_equal(whole.memberships, resumed.memberships)
    # the resumed stage keeps the curve points logged before the interruption
    assert whole.curves.keys() == resumed.curves.keys()
    for name, values in whole.curves.items():
        np.testing.assert_array_equal(values, resumed.curves[name])
    for name, state in whole.models.items():
        for key, value in state.items():
            np.testing.assert_array_equal(value, resumed.models[name][key])


def test_periodic_checkpoints_do_not_change_results(small) -> None:
    splitter = HCMGANSplitter()
    parent = torch.ones(len(small))
    plain = splitter.run_stage("raw", context(small, parent))
    store = MemoryCheckpointer(due_every=1)
    saving = splitter.run_stage("raw", context(small, parent, checkpoint=store))
    assert store.saves == QUICK["raw_iters"]
    np.testing.assert_array_equal(plain.memberships, saving.memberships)


def test_progress_reports_losses_as_floats(small) -> None:
    progress = Recorder()
    HCMGANSplitter().run_stage(
        "raw", context(small, torch.ones(len(small)), progress=progress, node="r01")
    )
    assert progress.starts == [("r01 raw", QUICK["raw_iters"], 0)]
    assert [done for done, _ in progress.updates] == [4, 8]
    assert all(isinstance(v, float) for _, losses in progress.updates for v in losses.values())
    assert progress.finished == 1


def test_predict_reproduces_memberships(small) -> None:
    splitter = HCMGANSplitter()
    parent = torch.rand(len(small), generator=torch.Generator().manual_seed(2))
    config = make_config(HCMGANSplitter, "tiny", QUICK)
    results = run_split(small, parent)
    for result in results:
        fn = splitter.predict(result.models, config, (1, 28, 28), CPU)
        probs = engine.predict_in_batches(fn, small, batch=64)
        assert probs.shape == (len(small), 2)
        torch.testing.assert_close(probs.sum(1), torch.ones(len(small)))
        np.testing.assert_allclose(
            (probs.T * parent).numpy(), result.memberships, rtol=1e-5, atol=1e-6
        )


def test_generate_shape_and_dtype(small) -> None:
    splitter = HCMGANSplitter()
    config = make_config(HCMGANSplitter, "tiny", QUICK)
    result = splitter.run_stage("raw", context(small, torch.ones(len(small)), k=3))
    images = splitter.generate(result.models, config, (1, 28, 28), n=5, seed=1, device=CPU)
    assert images.shape == (3, 5, 1, 28, 28) and images.dtype == torch.uint8
    again = splitter.generate(result.models, config, (1, 28, 28), n=5, seed=1, device=CPU)
    assert torch.equal(images, again)
    assert not torch.equal(images[0], images[1])


@pytest.mark.parametrize(("setting", "tolerance"), [("trace", 0.0), ("inductor", 1e-3)])
def test_a_compiled_split_trains_like_the_eager_one(small, setting: str, tolerance: float) -> None:
    """torch.compile changes kernels, not the computation: same losses, memberships, models."""
    parent = torch.ones(len(small))
    eager = run_split(small, parent)
    compiled = run_split(small, parent, overrides={**QUICK, "compile": setting})
    for a, b in zip(eager, compiled, strict=True):
        np.testing.assert_allclose(b.memberships, a.memberships, rtol=0, atol=tolerance)
        for name, value in a.metrics.items():
            assert b.metrics[name] == pytest.approx(value, abs=10 * tolerance), name
        assert {n: sorted(m) for n, m in b.models.items()} == {
            n: sorted(m) for n, m in a.models.items()
        }


def test_batched_groups_refine_like_the_sequential_groups(small) -> None:
    """batch_groups trains the k groups as one vmapped model: same computation, so the
    same raw split exactly and the refinement's memberships and losses to rounding."""
    parent = torch.ones(len(small))
    plain = run_split(small, parent)
    batched = run_split(small, parent, overrides={**QUICK, "batch_groups": True})
    assert len(plain) == len(batched) == 2
    np.testing.assert_array_equal(batched[0].memberships, plain[0].memberships)
    np.testing.assert_allclose(batched[1].memberships, plain[1].memberships, rtol=0, atol=1e-3)
    for name, value in plain[1].metrics.items():
        assert batched[1].metrics[name] == pytest.approx(value, rel=1e-3, abs=1e-3), name
    assert {n: sorted(m) for n, m in batched[1].models.items()} == {
        n: sorted(m) for n, m in plain[1].models.items()
    }


@pytest.mark.parametrize("stop_at", [1, 4])
@pytest.mark.parametrize("setting", [{"batch_groups": True}, {"group_generators": 2}])
def test_batched_groups_and_generator_pairs_resume_bit_identically(
    small, stop_at: int, setting: dict[str, Any]
) -> None:
    splitter = HCMGANSplitter()
    parent = torch.ones(len(small))
    overrides = {**QUICK, **setting}
    raw = splitter.run_stage("raw", context(small, parent, overrides=overrides))
    previous = torch.from_numpy(raw.memberships)
    whole = splitter.run_stage("refine1", context(small, parent, previous, overrides=overrides))
    store = MemoryCheckpointer()
    with pytest.raises(Interrupted):
        splitter.run_stage(
            "refine1",
            context(small, parent, previous, overrides=overrides, checkpoint=store,
                    should_stop=StopAfter(stop_at)),
        )  # fmt: skip
    resumed = splitter.run_stage(
        "refine1", context(small, parent, previous, overrides=overrides, checkpoint=store)
    )
    np.testing.assert_array_equal(whole.memberships, resumed.memberships)
    for name, state in whole.models.items():
        for key, value in state.items():
            np.testing.assert_array_equal(value, resumed.models[name][key], err_msg=name + key)


def test_epoch_budget_scales_with_node_mass(small) -> None:
    overrides = {"raw_iters": 0, "raw_epochs": 2.0, "batch_real": 50, "refinements": 0}
    progress = Recorder()
    parent = torch.zeros(len(small))
    parent[:100] = 1.0
    HCMGANSplitter().run_stage(
        "raw", context(small, parent, overrides=overrides, progress=progress)
    )
    assert progress.starts[0][1] == 4  # 2 epochs x 100 mass / 50 per batch


def test_collapse_is_retried_and_a_failed_refinement_keeps_the_previous_split(small) -> None:
    splitter = HCMGANSplitter()
    parent = torch.ones(len(small))
    overrides = dict(QUICK, raw_iters=2, refine_iters=2, min_child_fraction=0.4999, max_attempts=2)
    raw = splitter.run_stage("raw", context(small, parent, overrides=overrides))
    previous = torch.from_numpy(raw.memberships)
    progress = Recorder()
    ref = splitter.run_stage(
        "refine1", context(small, parent, previous, overrides=overrides, progress=progress)
    )
    assert ref.metrics["collapsed"] == 1.0
    assert ref.metrics["attempts"] == 2 and ref.stop and ref.models == {}
    np.testing.assert_array_equal(ref.memberships, raw.memberships)
    assert any("retrying" in m for m in progress.messages)
    assert raw.metrics["attempts"] == 2 and raw.metrics["collapsed"] == 1.0


@pytest.mark.parametrize(
    "overrides",
    [
        {"width_d": 0},
        {"kernel_g": 2},
        {"norm_d": "batch"},
        {"lr_g": 0},
        {"beta1": 1.0},
        {"noise": -1},
        {"raw_iters": 0, "raw_epochs": 0},
        {"min_child_fraction": 0.5},
        {"max_attempts": 0},
        {"refinements": -1},
        {"batch_real": "many"},
        {"no_such_setting": 1},
        {"compile": "fast"},
        {"invert": 1.5},
        {"flip": -0.1},
        {"batch_groups": True, "lambda_contrast": 1.0},
        {"batch_groups": True, "compile": "trace"},
        {"group_generators": 0},
        {"batch_groups": True, "group_generators": 2},
    ],
)
def test_bad_settings_are_user_errors(overrides: dict[str, Any]) -> None:
    with pytest.raises(HCTreeError):
        make_config(HCMGANSplitter, "tiny", overrides)


def test_presets_are_valid() -> None:
    for name in HCMGANSplitter.presets:
        make_config(HCMGANSplitter, name).validate()


def test_unsupported_image_size_is_a_user_error() -> None:
    images = torch.zeros(10, 1, 20, 20, dtype=torch.uint8)
    with pytest.raises(HCTreeError, match="--size"):
        HCMGANSplitter().run_stage("raw", context(images, torch.ones(10)))


def test_refining_an_empty_child_keeps_the_split(small) -> None:
    parent = torch.ones(len(small))
    previous = torch.stack([parent, torch.zeros(len(small))])
    result = HCMGANSplitter().run_stage("refine1", context(small, parent, previous))
    assert result.stop and result.models == {}
    np.testing.assert_array_equal(result.memberships, previous.numpy())


# ---------------------------------------------------------------- groups of generators

PAIRS = {**QUICK, "group_generators": 2}


def test_a_refinement_group_holds_its_generators_and_labels_their_images_by_group(small) -> None:
    """With two generators per group (the reference's refinement), a stage stores four
    generators and a discriminator per group, C learns the group of a generator's
    images, not which generator made them, and the children still divide the parent."""
    splitter = HCMGANSplitter()
    parent = torch.rand(len(small), generator=torch.Generator().manual_seed(3))
    raw = splitter.run_stage("raw", context(small, parent, overrides=PAIRS))
    assert sorted(raw.models) == ["D", "G0", "G1"]  # a raw split: a generator per child
    previous = torch.from_numpy(raw.memberships)
    overrides = {**PAIRS, "refine_iters": 60}
    ref = splitter.run_stage("refine1", context(small, parent, previous, overrides=overrides))
    assert sorted(ref.models) == ["D0", "D1", "G0", "G1", "G2", "G3"]
    np.testing.assert_allclose(ref.memberships.sum(0), parent.numpy(), rtol=1e-5, atol=1e-6)
    config = make_config(HCMGANSplitter, "tiny", overrides)
    fn = splitter.predict(ref.models, config, (1, 28, 28), CPU)
    made = splitter.generate(ref.models, config, (1, 28, 28), n=64, seed=0, device=CPU)
    with torch.no_grad():
        for child in range(2):
            assert float(fn(engine.to_unit(made[child]))[:, child].mean()) > 0.6, child


def test_a_groups_samples_come_from_each_of_its_generators(small) -> None:
    """generate() gives child j the images of its group's generators in turn, each
    from its own latent draws."""
    from hctree.nets.dcgan import Generator

    splitter = HCMGANSplitter()
    parent = torch.ones(len(small))
    raw = splitter.run_stage("raw", context(small, parent, overrides=PAIRS))
    previous = torch.from_numpy(raw.memberships)
    ref = splitter.run_stage("refine1", context(small, parent, previous, overrides=PAIRS))
    config = make_config(HCMGANSplitter, "tiny", PAIRS)
    made = splitter.generate(ref.models, config, (1, 28, 28), n=5, seed=4, device=CPU)
    assert made.shape == (2, 5, 1, 28, 28) and made.dtype == torch.uint8
    gen = engine.make_generator(4, CPU)
    expected = []
    for j in range(4):  # three draws per generator, the first five of each group kept
        g = Generator(28, 1, config.latent_dim, config.width_g, config.kernel_g, config.norm_g)
        engine.load_numpy_state(g, ref.models[f"G{j}"])
        z = torch.randn(3, config.latent_dim, generator=gen)
        with torch.no_grad():
            expected.append(engine.to_uint8(g.eval()(z)))
    assert torch.equal(made[0], torch.cat(expected[:2])[:5])
    assert torch.equal(made[1], torch.cat(expected[2:])[:5])


def test_the_paper_preset_gives_each_refinement_group_two_generators() -> None:
    assert make_config(HCMGANSplitter, "paper").group_generators == 2
    # a tree stored before the setting existed resumes with one generator per group
    stored = {"splitter": "hcmgan", "config_json": '{"refinements": 2}'}
    assert stored_splitter(stored)[1].group_generators == 1
