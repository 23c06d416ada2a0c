"""The tree file: round trip, atomic commits under SIGKILL, the writer lock, format checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import torch

from hctree.errors import HCTreeError
from hctree.store import (
    FORMAT_VERSION,
    NodeRecord,
    StageRecord,
    StateFileError,
    TreeRecord,
    WriterLock,
    checkpoint_path,
    clear_checkpoint,
    load_checkpoint,
    read_models,
    read_tree,
    save_checkpoint,
    write_tree,
)


def make_record(n: int = 50, seed: int = 0) -> TreeRecord:
    rng = np.random.default_rng(seed)
    split = rng.random(n).astype(np.float32)
    root = NodeRecord(
        "r", None, 0, np.ones(n, np.float32), children=["r0", "r1"], status="split", split_order=0
    )
    root.stages["raw"] = StageRecord(np.stack([split, 1 - split]), {"loss_d": 0.5}, 1.5)
    root.split_attrs = {"k": 2, "final_stage": "raw"}
    nodes = {
        "r": root,
        "r0": NodeRecord("r0", "r", 1, split),
        "r1": NodeRecord("r1", "r", 1, 1 - split),
    }
    attrs = {"n": n, "splitter": "hcmgan", "seed": 3, "image_shape": np.array([1, 28, 28])}
    labels = rng.integers(0, 3, n)
    return TreeRecord(attrs, nodes, labels=labels, class_names=["a", "b", "c"])


def test_round_trip_keeps_every_field(tmp_path):
    path = tmp_path / "tree.h5"
    record = make_record()
    models = {"r": {"G0": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}}}
    write_tree(path, record, models)
    back = read_tree(path)
    assert back.attrs["splitter"] == "hcmgan" and back.attrs["seed"] == 3
    assert back.attrs["format_version"] == FORMAT_VERSION
    np.testing.assert_array_equal(back.labels, record.labels)
    assert back.class_names == ["a", "b", "c"]
    assert set(back.nodes) == {"r", "r0", "r1"}
    r = back.nodes["r"]
    assert r.children == ["r0", "r1"] and r.status == "split" and r.split_order == 0
    np.testing.assert_array_equal(
        r.stages["raw"].memberships, record.nodes["r"].stages["raw"].memberships
    )
    assert r.stages["raw"].metrics == {"loss_d": 0.5} and r.stages["raw"].seconds == 1.5
    np.testing.assert_array_equal(back.nodes["r0"].membership, record.nodes["r0"].membership)
    assert back.nodes["r0"].parent == "r" and back.nodes["r"].parent is None
    np.testing.assert_array_equal(read_models(path, "r")["G0"]["w"], models["r"]["G0"]["w"])
    assert read_models(path, "r0") == {}


def test_models_carry_over_to_later_commits(tmp_path):
    path = tmp_path / "tree.h5"
    record = make_record()
    write_tree(path, record, {"r": {"C": {"bias": np.ones(3, np.float32)}}})
    record.nodes["r0"].status = "splitting"
    record.nodes["r0"].stages["raw"] = StageRecord(np.zeros((2, 50), np.float32))
    write_tree(path, record, {"r0": {"G0": {"w": np.zeros(2, np.float32)}}})
    np.testing.assert_array_equal(read_models(path, "r")["C"]["bias"], np.ones(3))
    assert set(read_models(path, "r0")) == {"G0"}
    assert read_tree(path).nodes["r0"].status == "splitting"


def test_no_temporary_files_are_left(tmp_path):
    path = tmp_path / "tree.h5"
    write_tree(path, make_record())
    write_tree(path, make_record(seed=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tree.h5"]


WRITER = r"""
import sys, numpy as np
sys.path.insert(0, {root!r})
from tests.test_store import make_record
from hctree.store import write_tree
i = 0
while True:
    rec = make_record(n=200_000, seed=i % 2)
    rec.attrs["version"] = i
    write_tree({path!r}, rec, {{"r": {{"G": {{"w": np.full(300_000, i, np.float32)}}}}}})
    print(i, flush=True)
    i += 1
"""


def test_writer_killed_mid_commit_leaves_a_valid_tree(tmp_path):
    path = tmp_path / "tree.h5"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rng = np.random.default_rng(7)
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER.format(root=root, path=str(path))],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline()  # at least one commit is complete
        time.sleep(float(rng.uniform(0.0, 0.4)))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        record = read_tree(path)
        version = record.attrs["version"]
        expected = make_record(n=200_000, seed=version % 2)
        np.testing.assert_array_equal(
            record.nodes["r0"].membership, expected.nodes["r0"].membership
        )
        assert (read_models(path, "r")["G"]["w"] == version).all()


def test_lock_refuses_a_second_writer(tmp_path):
    path = tmp_path / "tree.h5"
    with WriterLock(path):
        with pytest.raises(HCTreeError, match="another hctree process"):
            with WriterLock(path):
                pass
    with WriterLock(path):  # released on exit
        pass


def test_lock_is_released_when_the_holder_is_killed(tmp_path):
    path = tmp_path / "tree.h5"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (
        f"import sys,time; sys.path.insert(0,{root!r}); from hctree.store import WriterLock\n"
        f"with WriterLock({str(path)!r}):\n    print('locked', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    with pytest.raises(HCTreeError):
        with WriterLock(path):
            pass
    proc.kill()
    proc.wait()
    with WriterLock(path):
        pass


def test_not_hdf5_is_refused(tmp_path):
    path = tmp_path / "tree.h5"
    path.write_text("hello")
    with pytest.raises(HCTreeError, match="not an HDF5 file"):
        read_tree(path)


def test_other_hdf5_is_refused(tmp_path):
    path = tmp_path / "tree.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(HCTreeError, match="not an hctree tree file"):
        read_tree(path)


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "tree.h5"
    write_tree(path, make_record())
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(HCTreeError, match="newer"):
        read_tree(path)


def test_missing_tree_file(tmp_path):
    with pytest.raises(HCTreeError, match="does not exist"):
        read_tree(tmp_path / "nope.h5")


def test_damaged_tree_file(tmp_path):
    path = tmp_path / "tree.h5"
    write_tree(path, make_record())
    with h5py.File(path, "r+") as f:
        del f["nodes/r0/membership"]
    with pytest.raises(HCTreeError, match="damaged"):
        read_tree(path)


def test_checkpoint_round_trip_and_matching(tmp_path):
    tree = tmp_path / "tree.h5"
    gen = torch.Generator().manual_seed(5)
    state = {"it": 17, "w": torch.arange(4.0), "rng": gen.get_state(), "nested": {"a": np.ones(2)}}
    save_checkpoint(tree, "r0", "refine1", state)
    assert checkpoint_path(tree).exists()
    back = load_checkpoint(tree, "r0", "refine1")
    assert back["it"] == 17 and torch.equal(back["w"], state["w"])
    assert torch.equal(back["rng"], state["rng"])
    assert load_checkpoint(tree, "r0", "raw") is None
    assert load_checkpoint(tree, "r1", "refine1") is None
    clear_checkpoint(tree)
    assert load_checkpoint(tree, "r0", "refine1") is None


def test_damaged_checkpoint_is_refused(tmp_path):
    tree = tmp_path / "tree.h5"
    checkpoint_path(tree).write_bytes(b"garbage")
    with pytest.raises(StateFileError, match="HDF5"):
        load_checkpoint(tree, "r", "raw")
