"""Growing real HC-MGAN trees end to end, and resuming after SIGKILL at random moments."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import hctree
from cli.main import cli
from hctree.assign import agreement
from hctree.data import load_images
from hctree.grow import grow
from hctree.metrics import purity
from hctree.store import checkpoint_path, read_tree
from hctree.tree import open_tree

ROOT = Path(__file__).resolve().parents[1]
# Small budgets: the point here is the loop and resuming, not clustering quality.
SETTINGS = ["raw_iters=60", "refine_iters=40", "refinements=1"]


@pytest.fixture(scope="module")
def three_classes(fmnist, fmnist_classes, tmp_path_factory):
    """Trouser, sneaker and bag (200 each) saved as an .npz the CLI can read."""
    subset = fmnist_classes(fmnist, [1, 7, 8], 200, seed=0)
    path = tmp_path_factory.mktemp("data") / "three.npz"
    np.savez(path, images=subset.images, labels=subset.labels)
    return path


def grow_command(data: Path, out: Path) -> list[str]:
    sets = [arg for s in SETTINGS for arg in ("--set", s)]
    return [
        sys.executable,
        "-m",
        "cli.main",
        "grow",
        str(data),
        "-o",
        str(out),
        "--leaves",
        "3",
        "--preset",
        "tiny",
        *sets,
        "--seed",
        "4",
        "--checkpoint-every",
        "0.3",
        "--threads",
        "1",
        "-q",
    ]


def test_three_leaf_tree_end_to_end(three_classes, tmp_path):
    data = load_images(three_classes)
    tree = grow(data, tmp_path / "t.h5", 3, preset="tiny", threads=1)
    assert len(tree.leaves) == 3 and len(tree.split_sequence) == 2
    record = read_tree(tmp_path / "t.h5")
    for name in tree.split_sequence:
        node = record.nodes[name]
        assert list(node.stages)[0] == "raw" and len(node.stages) >= 1
        total = sum(record.nodes[c].membership for c in node.children)
        np.testing.assert_allclose(total, node.membership, atol=1e-4)
        assert set(tree.models(name)) == {"G0", "D0", "G1", "D1"}
    assert tree.memberships().sum(0) == pytest.approx(np.ones(len(data)), abs=1e-4)
    # three visually distinct classes: even a tiny budget separates most of them
    assert purity(data.labels, tree.assignments()) > 0.6
    assert not checkpoint_path(tmp_path / "t.h5").exists()
    # the stored split classifiers route the training images to their stored leaves
    routed = hctree.assign_images(tree, data, device="cpu")
    np.testing.assert_allclose(routed, tree.memberships(), atol=1e-4)
    assert agreement(tree, routed) >= 0.95
    # and the command writes them as CSV rows: index, name, label, leaf, probability, ...
    out = tmp_path / "a.csv"
    result = CliRunner().invoke(
        cli,
        ["assign", str(tmp_path / "t.h5"), str(three_classes), "-o", str(out), "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["index", "name", "label", "leaf", "probability", *tree.leaves]
    assert len(rows) == len(data) + 1
    assert [r[3] for r in rows[1:]] == [tree.leaves[i] for i in tree.assignments()]
    assert [int(r[2]) for r in rows[1:]] == data.labels.tolist()


def test_a_short_kill_campaign_loses_nothing(three_classes, tmp_path):
    """bench/kill_campaign.py in small: SIGKILL at seeded random moments, then resume."""
    sys.path.insert(0, str(ROOT / "bench"))
    from kill_campaign import campaign

    report = campaign(three_classes, tmp_path, kills=5, seed=11, delay=(2.0, 5.0))
    assert report["kills"] == 5 and report["unreadable"] == 0, report
    assert report["finished"] >= 1 and report["differed"] == 0, report


def test_sigterm_stops_cleanly_and_resumes(three_classes, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "t.h5"
    proc = subprocess.Popen(
        grow_command(three_classes, out), env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # now inside a stage
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    assert checkpoint_path(out).exists() or out.exists()
    subprocess.run(grow_command(three_classes, out), check=True, env=env, cwd=ROOT)
    assert len(open_tree(out).leaves) == 3
