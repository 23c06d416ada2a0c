"""Concurrent splits: the scheduler's turn order, and Ray workers growing the same tree."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import ray

from hctree import schedule, workers
from hctree.errors import HCTreeError, Interrupted
from hctree.grow import _commit_turns, grow
from hctree.splitters.base import NullProgress
from hctree.store import WORKER_ENV, NodeRecord, StageRecord, TreeRecord, read_tree, write_tree
from tests.conftest import stop_from_poll

REPO = Path(__file__).resolve().parent.parent
TINY = {"raw_iters": "24", "refine_iters": "12", "refinements": "1", "log_every": "4"}
LEAVES = 4


# ---------------------------------------------------------------- turn order, no Ray


def _record(masses: dict[str, float], n: int = 10, branching: int = 2) -> TreeRecord:
    """A tree whose leaves have the given masses (memberships spread over n images)."""
    nodes = {"r": NodeRecord("r", None, 0, np.ones(n, np.float32))}
    nodes["r"].status = "split"
    nodes["r"].children = list(masses)
    for name, mass in masses.items():
        nodes[name] = NodeRecord(name, "r", 1, np.full(n, mass / n, np.float32))
    attrs = {"n": n, "seed": 0, "branching": branching, "splits_done": 1}
    return TreeRecord(attrs=attrs, nodes=nodes, labels=None, class_names=None)


def _ready(node: NodeRecord, k: int = 2) -> None:
    node.stages["raw"] = StageRecord(np.stack([node.membership / k] * k))
    node.status = "ready"
    node.split_attrs.update(k=k, final_stage="raw")


def test_the_frontier_is_the_single_worker_order_as_far_as_splits_are_needed():
    record = _record({"r0": 3.0, "r1": 5.0, "r2": 2.0})
    goal = schedule.Goal(leaves=5)
    order = [(node.name, k) for node, k in schedule.frontier(record, goal, slots=8)]
    assert order == [("r1", 2), ("r0", 2)]  # 3 leaves now: two more splits reach 5
    assert [n.name for n, _ in schedule.frontier(record, goal, slots=1)] == ["r1"]


def test_a_ready_split_waits_for_the_heavier_leaf_before_it():
    record = _record({"r0": 3.0, "r1": 5.0})
    goal = schedule.Goal(leaves=4)
    _ready(record.nodes["r0"])
    _commit_turns(record, Path("unused.h5"), goal, NullProgress(), write=False)
    assert record.nodes["r0"].status == "ready"  # r1 is heavier and not finished
    _ready(record.nodes["r1"])
    _commit_turns(record, Path("unused.h5"), goal, NullProgress(), write=False)
    assert record.nodes["r1"].split_order == 1 and record.nodes["r0"].split_order == 2
    assert schedule.leaf_count(record) == 4


def test_a_split_run_ahead_with_another_k_is_run_again():
    record = _record({"r0": 3.0, "r1": 5.0}, branching=3)
    goal = schedule.Goal(leaves=4)  # r1 takes k=3 (4 leaves), so r0 would need none
    assert [(n.name, k) for n, k in schedule.frontier(record, goal, 2)] == [("r1", 3)]
    goal = schedule.Goal(leaves=5)  # r1: k=3; then r0: k=min(3, 5-4+1)=2
    assert [(n.name, k) for n, k in schedule.frontier(record, goal, 2)] == [("r1", 3), ("r0", 2)]
    _ready(record.nodes["r0"], k=3)  # as if it had run before r1's k was known
    _ready(record.nodes["r1"], k=3)
    _commit_turns(record, Path("unused.h5"), goal, NullProgress(), write=False)
    assert record.nodes["r1"].status == "split"
    assert record.nodes["r0"].status == "leaf" and not record.nodes["r0"].stages


def _judged(node: NodeRecord, ratio: float) -> None:
    """A ready split whose stored support test gives ``ratio`` (supported below 0.5)."""
    _ready(node)
    node.split_attrs.update(support_cut=ratio * 0.1, support_reference=0.1)


def test_supported_order_passes_over_an_unsupported_split_while_another_is_left():
    record = _record({"r0": 3.0, "r1": 5.0, "r2": 2.0})
    record.attrs["leaf_order"] = "supported"
    goal = schedule.Goal(leaves=5)
    _judged(record.nodes["r1"], ratio=0.7)  # the heaviest leaf's split: one cluster
    _commit_turns(record, Path("unused.h5"), goal, NullProgress(), write=False)
    assert record.nodes["r1"].status == "kept" and schedule.leaf_count(record) == 3
    assert [n.name for n, _ in schedule.frontier(record, goal, slots=8)] == ["r0", "r2"]
    _judged(record.nodes["r0"], ratio=0.3)
    _commit_turns(record, Path("unused.h5"), goal, NullProgress(), write=False)
    assert record.nodes["r0"].split_order == 1
    assert [n.name for n, _ in schedule.frontier(record, goal, slots=8)] == ["r2"]
    _judged(record.nodes["r2"], ratio=0.9)
    _commit_turns(record, Path("unused.h5"), goal, NullProgress(), write=False)
    assert [n.name for n, _ in schedule.frontier(record, goal, slots=8)] == ["r00"]
    for name in ("r00", "r01"):  # every leaf's split tried: the heaviest kept one is committed
        _judged(record.nodes[name], ratio=0.6)
    _commit_turns(record, Path("unused.h5"), goal, NullProgress(), write=False)
    assert record.nodes["r1"].status == "split" and record.nodes["r1"].split_order == 2
    assert record.nodes["r2"].status == "kept" and schedule.leaf_count(record) == 5


def test_mass_order_splits_the_heaviest_leaf_whatever_its_support():
    record = _record({"r0": 3.0, "r1": 5.0})
    goal = schedule.Goal(leaves=3)
    _judged(record.nodes["r1"], ratio=0.9)
    _commit_turns(record, Path("unused.h5"), goal, NullProgress(), write=False)
    assert record.nodes["r1"].status == "split" and record.nodes["r0"].status == "leaf"


def test_the_leaf_order_is_stored_and_a_resume_may_not_change_it(small, tmp_path):
    out = tmp_path / "t.h5"
    grow(small, out, 3, preset="tiny", overrides=TINY, leaf_order="supported", threads=1)
    record = read_tree(out)
    assert record.attrs["leaf_order"] == "supported"
    assert all(n.status != "kept" or n.stages for n in record.nodes.values())
    before = out.read_bytes()
    with pytest.raises(HCTreeError, match="grown with --leaf-order supported, not mass"):
        grow(small, out, 4, preset="tiny", overrides=TINY, leaf_order="mass", threads=1)
    assert out.read_bytes() == before
    with pytest.raises(HCTreeError, match="--leaf-order must be one of mass, supported"):
        grow(small, tmp_path / "u.h5", 3, preset="tiny", leaf_order="support")
    assert not (tmp_path / "u.h5").exists()


def test_a_worker_process_cannot_write_a_tree(tmp_path, monkeypatch):
    record = _record({"r0": 1.0, "r1": 1.0})
    record.attrs.update(format="hctree")
    monkeypatch.setenv(WORKER_ENV, "1")
    with pytest.raises(RuntimeError, match="only the driver writes"):
        write_tree(tmp_path / "t.h5", record)
    assert not (tmp_path / "t.h5").exists()


def test_without_ray_more_workers_is_one_sentence(small, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    with pytest.raises(HCTreeError, match=r"pip install 'hctree\[ray\]'"):
        grow(small, tmp_path / "t.h5", LEAVES, preset="tiny", workers=2)
    assert not (tmp_path / "t.h5").exists()


def test_fewer_than_one_worker_is_one_sentence(small, tmp_path):
    with pytest.raises(HCTreeError, match="--workers must be at least 1"):
        grow(small, tmp_path / "t.h5", LEAVES, preset="tiny", workers=0)
    assert not (tmp_path / "t.h5").exists()


# ---------------------------------------------------------------- on Ray


@pytest.fixture(scope="module")
def small(fmnist):
    from tests.conftest import fmnist_classes

    return fmnist_classes(fmnist, [1, 5, 7, 8], 60, seed=1)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def one_worker(small, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "t.h5"
    grow(small, out, LEAVES, preset="tiny", overrides=TINY, threads=1)
    return read_tree(out)


def _same_tree(a, b) -> None:
    split = lambda r: {n: r.nodes[n].split_order for n in r.nodes if r.nodes[n].status == "split"}  # noqa: E731
    assert split(a) == split(b)
    for name, node in a.nodes.items():
        np.testing.assert_array_equal(node.membership, b.nodes[name].membership, err_msg=name)


def test_two_workers_grow_the_one_worker_tree(small, one_worker, local_ray, tmp_path):
    out = tmp_path / "t.h5"
    tree = grow(small, out, LEAVES, preset="tiny", overrides=TINY, workers=2, threads=1)
    assert len(tree.leaves) == LEAVES
    _same_tree(one_worker, read_tree(out))
    assert not list(tmp_path.glob("*.ckpt*"))


def test_a_root_warm_up_on_both_workers_cores_grows_the_one_worker_tree(small, local_ray, tmp_path):
    # the root runs alone, so its warm-up's shards get both workers' cores (hctree.shards)
    warm = {**TINY, "embed_iters": "6", "embed_batch": "16", "embed_shards": "2",
            "lambda_contrast": "1.0"}  # fmt: skip
    grow(small, tmp_path / "one.h5", 3, preset="tiny", overrides=warm, threads=1)
    grow(small, tmp_path / "two.h5", 3, preset="tiny", overrides=warm, workers=2, threads=1)
    _same_tree(read_tree(tmp_path / "one.h5"), read_tree(tmp_path / "two.h5"))


def test_a_task_reserves_the_cores_it_uses():
    assert workers.task_cores(2, 3, alone=False, largest_node=16) == 2
    assert workers.task_cores(2, 3, alone=True, largest_node=16) == 6  # every slot's threads
    assert workers.task_cores(2, 3, alone=True, largest_node=4) == 2  # no node has six


def test_the_root_alone_reserves_every_workers_core(small, local_ray, tmp_path, monkeypatch):
    assert workers.largest_node_cpus(ray) == 2
    given = []  # (alone, cores) of every task submitted
    plain = workers.task_cores

    def recorded(threads, slots, alone, largest_node):
        given.append((alone, plain(threads, slots, alone, largest_node)))
        return given[-1][1]

    monkeypatch.setattr(workers, "task_cores", recorded)
    grow(small, tmp_path / "t.h5", 3, preset="tiny", overrides=TINY, workers=2, threads=1)
    assert given[0] == (True, 2)  # the root: nothing else can run beside it
    assert all(cores == (2 if alone else 1) for alone, cores in given)


def test_stopped_on_two_workers_resumed_on_one(small, one_worker, local_ray, tmp_path, monkeypatch):
    out = tmp_path / "t.h5"
    stop_from_poll(monkeypatch, 6)
    with pytest.raises(Interrupted):
        grow(small, out, LEAVES, preset="tiny", overrides=TINY, workers=2, threads=1,
             checkpoint_every=0)  # fmt: skip
    monkeypatch.undo()
    assert schedule.leaf_count(read_tree(out)) < LEAVES
    grow(small, out, LEAVES, threads=1)
    _same_tree(one_worker, read_tree(out))


def test_a_dead_worker_is_retried(small, one_worker, local_ray, tmp_path):
    killed, finished = [], threading.Event()

    def kill_one_task() -> None:  # looks for a task as long as the grow runs, however slow
        while not finished.is_set() and not killed:
            ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True)
            for line in ps.stdout.splitlines():
                if "ray::_run_task" in line and "grep" not in line:
                    pid = int(line.split()[0])
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one_task)
    killer.start()
    out = tmp_path / "t.h5"
    try:
        grow(small, out, LEAVES, preset="tiny", overrides=TINY, workers=2, threads=1)
    finally:
        finished.set()
        killer.join()
    assert killed, "no running task was found to kill"
    _same_tree(one_worker, read_tree(out))


def test_killed_on_one_worker_resumed_on_two(small, one_worker, local_ray, tmp_path):
    data = tmp_path / "small.npz"
    np.savez(data, images=small.images, labels=small.labels)
    out = tmp_path / "t.h5"
    settings = [x for key, value in TINY.items() for x in ("--set", f"{key}={value}")]
    cmd = [sys.executable, "-m", "cli.main", "grow", str(data), "-o", str(out), "--leaves",
           str(LEAVES), "--preset", "tiny", "--threads", "1", "-q", "--checkpoint-every", "0",
           *settings]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # kill once the root is split
        if out.exists():
            try:
                if read_tree(out).nodes["r"].status == "split":
                    break
            except Exception:  # noqa: BLE001 (read while being replaced)
                pass
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    from hctree.data import load_images

    grow(load_images(data), out, LEAVES, workers=2, threads=1)
    _same_tree(one_worker, read_tree(out))
