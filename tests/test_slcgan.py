"""slcGAN splitter: separates trousers from bags, resumes bit-identically, predicts, generates."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from hctree import engine
from hctree.errors import HCTreeError, Interrupted
from hctree.splitters.base import MemoryCheckpointer, get_splitter, make_config
from hctree.splitters.slcgan import SLCGANSplitter, augment
from tests.conftest import CPU, split_context

torch.set_num_threads(1)

DATA = Path("/usr/share/datasets/fashion-mnist")


def _idx(name: str, offset: int) -> np.ndarray:
    with gzip.open(DATA / name) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


@pytest.fixture(scope="module")
def data():
    """900 trousers (1), 900 bags (8) and 100 T-shirts (0) outside the node (membership 0)."""
    images = _idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    labels = _idx("train-labels-idx1-ubyte.gz", 8).astype(np.int64)
    pick = [np.nonzero(labels == c)[0][:n] for c, n in ((1, 900), (8, 900), (0, 100))]
    idx = np.concatenate(pick)
    membership = torch.from_numpy((labels[idx] != 0).astype(np.float32))
    return torch.from_numpy(images[idx].copy()), labels[idx], membership


def _run(data, seed=0, checkpoint=None, should_stop=lambda: False, **overrides):
    images, _, membership = data
    config = make_config(SLCGANSplitter, "tiny", overrides)
    ctx = split_context(
        images, membership, config, seed=seed, checkpoint=checkpoint, should_stop=should_stop
    )
    return SLCGANSplitter().run_stage("train", ctx)


@pytest.fixture(scope="module")
def first(data):
    """One full ``tiny`` split of the node, shared by the assertions on its result."""
    return _run(data)


SHORT = {"iters": 12, "log_every": 2}


@pytest.fixture(scope="module")
def short(data):
    """A 12-iteration split: the reference for the determinism and resume tests."""
    return _run(data, **SHORT)


def _purity(assign: np.ndarray, labels: np.ndarray) -> float:
    return sum(np.bincount(labels[assign == j]).max() for j in np.unique(assign)) / len(labels)


def test_registered_and_one_stage():
    cls = get_splitter("slcgan")
    assert cls is SLCGANSplitter
    assert cls().stages(make_config(cls, "tiny")) == ["train"]


def test_separates_trousers_from_bags(data, first):
    _, labels, membership = data
    inside = membership.numpy() > 0
    assign = first.memberships[:, inside].argmax(0)
    assert _purity(assign, labels[inside]) >= 0.85
    assert first.memberships.shape == (2, len(labels))
    assert first.memberships.dtype == np.float32


def test_children_sum_to_parent(data, first):
    membership = data[2].numpy()
    np.testing.assert_allclose(first.memberships.sum(0), membership, atol=1e-5)
    assert (first.memberships[:, membership == 0] == 0).all()
    fractions = [first.metrics[f"child{j}_mass_frac"] for j in range(2)]
    assert sum(fractions) == pytest.approx(1.0)
    assert {"d", "g_adv", "g_mi", "c_adv", "c_aug"} <= set(first.metrics)


def test_models_hold_every_component(first):
    assert {"generator", "discriminator", "clusterer", "grouping"} <= set(first.models)
    grouping = first.models["grouping"]["cluster_to_child"]
    assert grouping.dtype == np.int64 and grouping.shape == (6,)  # tiny: overcluster 3
    assert sorted(set(grouping.tolist())) == [0, 1]
    assert first.models["grouping"]["cluster_mass"].shape == (6,)
    assert all(isinstance(v, np.ndarray) for v in first.models["clusterer"].values())


def test_same_seed_gives_identical_memberships(data, short):
    again = _run(data, **SHORT)
    assert np.array_equal(again.memberships, short.memberships)
    other = _run(data, seed=1, iters=2)
    assert not np.array_equal(other.memberships, short.memberships)


def test_interrupt_and_resume_is_bit_identical(data, short):
    calls = {"n": 0}

    def stop_at_seventh():
        calls["n"] += 1
        return calls["n"] == 7

    checkpoint = MemoryCheckpointer(due_every=3)
    with pytest.raises(Interrupted):
        _run(data, checkpoint=checkpoint, should_stop=stop_at_seventh, **SHORT)
    assert checkpoint.load()["iteration"] == 7
    resumed = _run(data, checkpoint=MemoryCheckpointer(checkpoint.blob), **SHORT)
    assert np.array_equal(resumed.memberships, short.memberships)
    assert short.curves["step"].tolist() == list(range(2, 13, 2))
    assert short.curves.keys() == resumed.curves.keys()
    assert all(np.array_equal(v, resumed.curves[k]) for k, v in short.curves.items())


def test_a_compiled_split_trains_like_the_eager_one(data):
    """compile=trace captures G's, D's and C's graphs without generating code: the same
    computation, up to the rounding of D's decomposed operators (1e-6 of a loss)."""
    eager = _run(data, iters=2, log_every=1)
    torch._dynamo.utils.counters.clear()
    traced = _run(data, iters=2, log_every=1, compile="trace")
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 3  # G, D and C captured
    for name, values in eager.curves.items():
        np.testing.assert_allclose(traced.curves[name], values, rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(traced.memberships, eager.memberships, rtol=0, atol=1e-4)


def test_predict_reproduces_memberships(data, first):
    images, _, membership = data
    config = make_config(SLCGANSplitter, "tiny")
    fn = SLCGANSplitter.predict(first.models, config, (1, 28, 28), CPU)
    probs = engine.predict_in_batches(fn, images, batch=256)
    np.testing.assert_allclose(probs.sum(1).numpy(), 1.0, atol=1e-5)
    again = (probs * membership[:, None]).T.numpy()
    np.testing.assert_allclose(again, first.memberships, atol=1e-5)


def test_generate_shape_and_dtype(first):
    config = make_config(SLCGANSplitter, "tiny")
    images = SLCGANSplitter.generate(first.models, config, (1, 28, 28), 5, seed=3, device=CPU)
    assert images.shape == (2, 5, 1, 28, 28) and images.dtype == torch.uint8
    again = SLCGANSplitter.generate(first.models, config, (1, 28, 28), 5, seed=3, device=CPU)
    assert torch.equal(images, again)


def test_overclustering_groups_clusters_into_children(data):
    result = _run(data, iters=3, overcluster=3)
    grouping = result.models["grouping"]["cluster_to_child"]
    assert grouping.shape == (6,) and sorted(set(grouping.tolist())) == [0, 1]
    np.testing.assert_allclose(result.memberships.sum(0), data[2].numpy(), atol=1e-5)


def test_augment_is_seeded_and_changes_images(data):
    x = engine.to_unit(data[0][:8])
    a = augment(x, engine.make_generator(5, CPU), 0.7, 0.3, True)
    b = augment(x, engine.make_generator(5, CPU), 0.7, 0.3, True)
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1 and not torch.allclose(a, x)


@pytest.mark.parametrize(
    "key, value",
    [
        ("iters", 0),
        ("lr_c", -1.0),
        ("crop_min", 1.5),
        ("overcluster", 0),
        ("lambda_balance", -1.0),
        ("target_temp", 0.0),
        ("compile", "fast"),
    ],
)
def test_bad_settings_raise(key, value):
    with pytest.raises(HCTreeError, match=key):
        make_config(SLCGANSplitter, "tiny", {key: value})


def test_unsupported_image_size_names_the_size_to_pass():
    config = make_config(SLCGANSplitter, "tiny")
    with pytest.raises(HCTreeError, match="--size 32"):
        SLCGANSplitter.predict({}, config, (1, 40, 40), CPU)
