"""SIGKILL a growing tree at many random moments; every file must survive, the tree must not change.

    .venv/bin/python bench/kill_campaign.py --kills 100
    .venv/bin/python bench/kill_campaign.py --kills 10 --seed 3 --work /tmp/kills

Grows a small HC-MGAN tree (trouser, sneaker and bag, 200 each; 3 leaves; short
``tiny`` budgets; a checkpoint every 0.3 s) once without interruption as the
reference. Then it starts the same command again and again and SIGKILLs it after a
random delay (seeded), rerunning the same command to resume. After every kill the
tree file, when there is one, must pass ``hctree check``'s structural checks; each
time a run finishes, its memberships, stage memberships, metrics, curves and split
order must equal the reference's exactly, and the campaign starts a fresh file. Prints
one JSON line: kills, unreadable files, finished runs, runs that differed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hctree.check import check_structure  # noqa: E402
from hctree.data import load_images  # noqa: E402
from hctree.errors import HCTreeError  # noqa: E402
from hctree.store import checkpoint_path, read_tree  # noqa: E402

SETTINGS = ["raw_iters=60", "refine_iters=40", "refinements=1"]


def make_data(path: Path, per_class: int = 200) -> Path:
    """Trouser, sneaker and bag from Fashion-MNIST as an .npz."""
    data = load_images("fashion-mnist")
    rng = np.random.default_rng(0)
    rows = np.sort(
        np.concatenate(
            [
                rng.choice(np.flatnonzero(data.labels == c), per_class, replace=False)
                for c in (1, 7, 8)
            ]
        )
    )
    np.savez(path, images=data.images[rows], labels=data.labels[rows])
    return path


def grow_command(data: Path, out: Path) -> list[str]:
    sets = [arg for s in SETTINGS for arg in ("--set", s)]
    return [
        sys.executable, "-m", "cli.main", "grow", str(data), "-o", str(out), "--leaves", "3",
        "--preset", "tiny", *sets, "--seed", "4", "--checkpoint-every", "0.3",
        "--threads", "1", "-q",
    ]  # fmt: skip


def fingerprint(path: Path) -> dict:
    """Everything a finished tree decided, as comparable plain data."""
    record = read_tree(path)
    out = {}
    for name, node in sorted(record.nodes.items()):
        out[name] = {
            "membership": node.membership.tobytes(),
            "children": list(node.children),
            "split_order": node.split_order,
            "stages": {
                stage: (
                    rec.memberships.tobytes(),
                    json.dumps(rec.metrics, sort_keys=True),
                    {key: values.tobytes() for key, values in sorted(rec.curves.items())},
                )
                for stage, rec in node.stages.items()
            },
        }
    return out


def campaign(
    data: Path, work: Path, kills: int, seed: int = 0, delay: tuple[float, float] = (1.0, 5.0)
) -> dict:
    """Run the campaign in ``work``; returns the counts (see the module docstring)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    work.mkdir(parents=True, exist_ok=True)
    reference = work / "reference.h5"
    for old in (reference, checkpoint_path(reference)):
        old.unlink(missing_ok=True)
    subprocess.run(grow_command(data, reference), check=True, env=env, cwd=ROOT)
    expected = fingerprint(reference)
    rng = np.random.default_rng(seed)
    tree = work / "killed.h5"
    report = {"kills": 0, "unreadable": 0, "finished": 0, "differed": 0, "problems": []}

    def fresh() -> None:
        for old in (tree, checkpoint_path(tree)):
            old.unlink(missing_ok=True)

    fresh()
    while report["kills"] < kills:
        proc = subprocess.Popen(grow_command(data, tree), env=env, cwd=ROOT)
        try:
            proc.wait(timeout=float(rng.uniform(*delay)))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            report["kills"] += 1
            if tree.exists():
                try:
                    problem = check_structure(read_tree(tree, stages=False))
                except HCTreeError as exc:
                    problem = str(exc)
                if problem:
                    report["unreadable"] += 1
                    report["problems"].append(problem)
            continue
        if proc.returncode != 0:
            raise RuntimeError(f"grow exited with {proc.returncode} after a kill")
        report["finished"] += 1
        report["differed"] += int(fingerprint(tree) != expected)
        fresh()
    subprocess.run(grow_command(data, tree), check=True, env=env, cwd=ROOT)
    report["finished"] += 1
    report["differed"] += int(fingerprint(tree) != expected)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", default="bench/out/kills")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report = campaign(make_data(work / "three.npz"), work, args.kills, args.seed)
    report["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
