"""Checkpoint state as plain HDF5 data: round trips, and files that must not run code."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from hctree.statefile import (
    StateFileError,
    read_state,
    state_from_bytes,
    state_to_bytes,
    write_state,
)
from hctree.store import load_checkpoint, save_checkpoint
from tests.conftest import pickled_sidecar


def adam_state() -> dict:
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999))
    net(torch.ones(4, 3)).sum().backward()
    opt.step()
    return opt.state_dict()


def test_round_trip_keeps_types_keys_and_values():
    state = {
        "iteration": 7,
        "loss": float("nan"),
        "name": "raw",
        "flag": True,
        "none": None,
        "pair": (1, 2.5),
        "items": [torch.arange(3), np.eye(2, dtype=np.float32)],
        "half": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
        "rng": torch.Generator().manual_seed(3).get_state(),
        "opt": adam_state(),
        "scalar": np.float32(0.25),
    }
    back = state_from_bytes(state_to_bytes(state))
    assert back["iteration"] == 7 and np.isnan(back["loss"]) and back["name"] == "raw"
    assert back["flag"] is True and back["none"] is None and back["pair"] == (1, 2.5)
    assert torch.equal(back["items"][0], torch.arange(3))
    np.testing.assert_array_equal(back["items"][1], np.eye(2))
    assert back["half"].dtype == torch.bfloat16 and torch.equal(back["half"], state["half"])
    assert torch.equal(back["rng"], state["rng"]) and back["rng"].dtype == torch.uint8
    assert back["scalar"] == 0.25
    # optimiser states are keyed by int parameter ids; they must stay ints to load
    assert set(back["opt"]["state"]) == {0, 1}
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    opt.load_state_dict(back["opt"])
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], state["opt"]["state"][0]["exp_avg"])


def test_objects_that_are_not_data_cannot_be_written():
    with pytest.raises(TypeError):
        state_to_bytes({"f": lambda: 0})
    with pytest.raises(TypeError):
        state_to_bytes({(1, 2): 3})


def test_a_pickled_sidecar_is_refused_without_running_it(tmp_path):
    tree, marker = tmp_path / "tree.h5", tmp_path / "pwned"
    pickled_sidecar(tree, str(marker))
    with pytest.raises(StateFileError, match="layout"):
        load_checkpoint(tree, "r", "raw")
    assert not marker.exists()


def test_a_skeleton_pointing_nowhere_is_refused(tmp_path):
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        write_state(f, {"w": torch.ones(2)})
        f.attrs["skeleton"] = '{"dict": [["w", {"tensor": 5, "dtype": "float32"}]]}'
    with h5py.File(path, "r") as f, pytest.raises(StateFileError, match="array"):
        read_state(f)
    with h5py.File(path, "r+") as f:
        f.attrs["skeleton"] = '{"eval": "os.system"}'
    with h5py.File(path, "r") as f, pytest.raises(StateFileError):
        read_state(f)


def test_checkpoint_round_trip_in_the_sidecar(tmp_path):
    tree = tmp_path / "tree.h5"
    save_checkpoint(tree, "r0", "raw", {"iteration": 3, "w": torch.ones(2, 2)})
    back = load_checkpoint(tree, "r0", "raw")
    assert back["iteration"] == 3 and torch.equal(back["w"], torch.ones(2, 2))
