"""The growth loop, on a cheap deterministic splitter that checkpoints like a real one."""

from __future__ import annotations

import dataclasses
import json

import h5py
import numpy as np
import pytest
import torch

from hctree.data import load_images
from hctree.engine import make_generator, rng_state, set_rng_state, to_unit
from hctree.errors import HCTreeError, Interrupted
from hctree.grow import grow
from hctree.splitters import register
from hctree.splitters.base import SplitContext, StageResult
from hctree.store import checkpoint_path, read_tree
from tests.conftest import pickled_sidecar, stop_from_poll
from tests.treefactory import make_dataset


@dataclasses.dataclass
class ProjectionConfig:
    steps: int = 30
    stages: int = 2

    def validate(self) -> None:
        if self.steps < 1:
            raise HCTreeError("setting steps must be at least 1.")


class ProjectionSplitter:
    """Splits by a random projection that a seeded random walk nudges each step.

    Every step draws from one seeded generator, so results depend on the seed and
    on resuming exactly from a checkpoint, like a GAN stage's would.
    """

    name = "projection"
    Config = ProjectionConfig
    presets = {"cpu": {}, "fast": {}, "tiny": {"steps": 10}, "paper": {"steps": 100}}
    max_branching = None
    calls: list[str] = []

    def stages(self, config):
        return [f"s{i}" for i in range(config.stages)]

    def run_stage(self, stage: str, ctx: SplitContext) -> StageResult:
        ProjectionSplitter.calls.append(f"{ctx.node}:{stage}")
        x = to_unit(ctx.images).flatten(1)
        gen = make_generator(ctx.seed, ctx.device)
        w = torch.randn(ctx.k, x.shape[1], generator=gen)
        step = 0
        state = ctx.checkpoint.load()
        if state is not None:
            w, step = state["w"], state["step"]
            set_rng_state(gen, state["rng"])
        while step < ctx.config.steps:
            w = w + 0.05 * torch.randn(w.shape, generator=gen)
            step += 1
            if ctx.should_stop() or ctx.checkpoint.due():
                ctx.checkpoint.save({"w": w, "step": step, "rng": rng_state(gen)})
                if ctx.should_stop():
                    raise Interrupted()
        logits = x @ w.T
        if ctx.previous is not None:
            logits = logits + torch.log(ctx.previous.T + 1e-6)
        probs = torch.softmax(logits / logits.std(), dim=1).T
        return StageResult(
            probs * ctx.membership, {"w": {"w": w.numpy().copy()}}, {"w_norm": float(w.norm())}
        )


register("projection", lambda: ProjectionSplitter)


@pytest.fixture
def data(tmp_path):
    return load_images(make_dataset(tmp_path / "d.npz", n_per_class=15, n_classes=4))


def grow_p(data, path, leaves, **kw):
    kw.setdefault("splitter", "projection")
    kw.setdefault("preset", "tiny")
    return grow(data, path, leaves, **kw)


def test_grows_to_the_requested_leaves_by_largest_mass(data, tmp_path):
    tree = grow_p(data, tmp_path / "t.h5", 4)
    assert len(tree.leaves) == 4
    record = read_tree(tmp_path / "t.h5")
    for node in record.nodes.values():
        if node.children:
            total = sum(record.nodes[c].membership for c in node.children)
            np.testing.assert_allclose(total, node.membership, atol=1e-4)
    # each split took the heaviest leaf at its time
    splits = sorted(
        (n for n in record.nodes.values() if n.status == "split"), key=lambda n: n.split_order
    )
    assert splits[0].name == "r"
    for i, node in enumerate(splits[1:], start=1):
        leaves_then = [
            n
            for n in record.nodes.values()
            if n.parent in {s.name for s in splits[:i]}
            and n.name not in {s.name for s in splits[:i]}
        ]
        assert node.mass == pytest.approx(max(n.mass for n in leaves_then))
    assert not checkpoint_path(tmp_path / "t.h5").exists()


def test_same_seed_same_tree_and_other_seed_differs(data, tmp_path):
    a = grow_p(data, tmp_path / "a.h5", 3, seed=1).memberships()
    b = grow_p(data, tmp_path / "b.h5", 3, seed=1).memberships()
    c = grow_p(data, tmp_path / "c.h5", 3, seed=2).memberships()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_deterministic_kernels_are_on_while_training_and_restored(data, tmp_path, monkeypatch):
    seen = []
    original = ProjectionSplitter.run_stage

    def watched(self, stage, ctx):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return original(self, stage, ctx)

    monkeypatch.setattr(ProjectionSplitter, "run_stage", watched)
    a = grow_p(data, tmp_path / "a.h5", 3, deterministic=True).memberships()
    assert seen and all(seen)
    assert not torch.are_deterministic_algorithms_enabled()
    seen.clear()
    b = grow_p(data, tmp_path / "b.h5", 3).memberships()
    assert seen and not any(seen)
    np.testing.assert_array_equal(a, b)  # the CPU's kernels were deterministic already


def test_more_leaves_grows_a_finished_tree_further(data, tmp_path):
    path = tmp_path / "t.h5"
    grow_p(data, path, 2)
    ProjectionSplitter.calls.clear()
    tree = grow_p(data, path, 3)
    assert len(tree.leaves) == 3 and len(ProjectionSplitter.calls) == 2
    once = grow_p(data, tmp_path / "once.h5", 3)
    np.testing.assert_array_equal(tree.memberships(), once.memberships())


def test_rerun_with_nothing_to_do_trains_nothing(data, tmp_path):
    path = tmp_path / "t.h5"
    grow_p(data, path, 3)
    ProjectionSplitter.calls.clear()
    grow_p(data, path, 3)
    assert ProjectionSplitter.calls == []


def test_branching_makes_k_way_splits(data, tmp_path):
    tree = grow_p(data, tmp_path / "t.h5", 4, branching=3)
    assert tree.root.children == ("r0", "r1", "r2")
    assert len(tree.leaves) == 4  # the second split was cut down to 2 children
    flat = grow_p(data, tmp_path / "flat.h5", 4, branching=4)
    assert flat.leaves == ["r0", "r1", "r2", "r3"]


def test_interrupted_stage_resumes_to_the_same_tree(data, tmp_path, monkeypatch):
    reference = grow_p(data, tmp_path / "ref.h5", 3).memberships()
    path = tmp_path / "t.h5"
    stop_from_poll(monkeypatch, 40)
    with pytest.raises(Interrupted):
        grow_p(data, path, 3, checkpoint_every=1e9)
    assert checkpoint_path(path).exists()
    monkeypatch.undo()
    resumed = grow_p(data, path, 3)
    np.testing.assert_array_equal(resumed.memberships(), reference)


def test_contradicting_options_are_refused_and_the_file_is_untouched(data, tmp_path):
    path = tmp_path / "t.h5"
    grow_p(data, path, 2)
    before = path.read_bytes()
    other = load_images(make_dataset(tmp_path / "o.npz", n_per_class=15, n_classes=4, seed=9))
    cases = [
        (dict(data=other), "different data"),
        (dict(splitter="hcmgan"), "splitter"),
        (dict(preset="paper"), "preset"),
        (dict(overrides={"steps": 3}), "preset"),
        (dict(seed=4), "seed"),
        (dict(branching=3), "branching"),
        (dict(leaves=1), "at least 2"),
    ]
    for change, words in cases:
        kw = dict(data=data, path=path, leaves=3)
        kw.update(change)
        with pytest.raises(HCTreeError, match=words):
            grow_p(kw.pop("data"), kw.pop("path"), kw.pop("leaves"), **kw)
        assert path.read_bytes() == before


def test_bad_settings(data, tmp_path):
    with pytest.raises(HCTreeError, match="unknown setting"):
        grow_p(data, tmp_path / "t.h5", 2, overrides={"nope": 1})
    with pytest.raises(HCTreeError, match="whole number"):
        grow_p(data, tmp_path / "t.h5", 2, overrides={"steps": "1.5"})
    with pytest.raises(HCTreeError, match="at least 1"):
        grow_p(data, tmp_path / "t.h5", 2, overrides={"steps": 0})
    with pytest.raises(HCTreeError, match="unknown preset"):
        grow_p(data, tmp_path / "t.h5", 2, preset="huge")
    with pytest.raises(HCTreeError, match="unknown splitter"):
        grow_p(data, tmp_path / "t.h5", 2, splitter="kmeans")
    assert not (tmp_path / "t.h5").exists()


def test_stored_attributes(data, tmp_path):
    grow_p(data, tmp_path / "t.h5", 2, seed=3)
    attrs = read_tree(tmp_path / "t.h5").attrs
    assert attrs["splitter"] == "projection" and attrs["preset"] == "tiny" and attrs["seed"] == 3
    assert json.loads(attrs["config_json"]) == {"steps": 10, "stages": 2}
    assert json.loads(attrs["data_spec"])["path"].endswith("d.npz")
    assert attrs["dataset_fingerprint"] == data.fingerprint


def test_a_stage_without_models_keeps_the_previous_stage_networks(data, tmp_path, monkeypatch):
    original = ProjectionSplitter.run_stage

    def keep_previous_split(self, stage, ctx):
        if stage == "s1":  # like a refinement that collapsed: the split stays as it was
            return StageResult(ctx.previous.clone(), {}, {"collapsed": 1.0}, stop=True)
        return original(self, stage, ctx)

    monkeypatch.setattr(ProjectionSplitter, "run_stage", keep_previous_split)
    tree = grow_p(data, tmp_path / "t.h5", 2)
    record = read_tree(tmp_path / "t.h5")
    assert list(record.nodes["r"].stages) == ["s0", "s1"]
    np.testing.assert_array_equal(
        record.nodes["r"].stages["s1"].memberships, record.nodes["r"].stages["s0"].memberships
    )
    assert set(tree.models("r")) == {"w"}


def test_a_relative_data_path_is_stored_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_dataset(tmp_path / "rel.npz", n_per_class=5, n_classes=2)
    data = load_images("rel.npz")
    grow_p(data, tmp_path / "t.h5", 2)
    spec = json.loads(read_tree(tmp_path / "t.h5").attrs["data_spec"])
    assert spec["path"] == str(tmp_path / "rel.npz")


class _Messages:
    """A progress hook that keeps the messages."""

    def __init__(self):
        self.lines: list[str] = []

    def start(self, title, total, done=0):
        pass

    def update(self, done, losses=None):
        pass

    def finish(self):
        pass

    def message(self, text):
        self.lines.append(text)


def test_a_planted_pickle_sidecar_runs_no_code_and_the_run_still_ends_the_same(
    data, tmp_path, monkeypatch
):
    reference = grow_p(data, tmp_path / "ref.h5", 3).memberships()
    path, marker = tmp_path / "t.h5", tmp_path / "pwned"
    stop_from_poll(monkeypatch, 40)
    with pytest.raises(Interrupted):
        grow_p(data, path, 3, checkpoint_every=1e9)
    monkeypatch.undo()
    with h5py.File(checkpoint_path(path), "r") as f:
        node, stage = f.attrs["node"], f.attrs["stage"]
    pickled_sidecar(path, str(marker), node, stage)
    before = path.read_bytes()
    messages = _Messages()
    resumed = grow_p(data, path, 3, progress=messages)
    assert not marker.exists()
    assert any("warning: ignoring the checkpoint" in line for line in messages.lines)
    assert before != path.read_bytes()  # the run went on from the intact tree
    np.testing.assert_array_equal(resumed.memberships(), reference)
