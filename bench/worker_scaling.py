"""Replay a grown tree's measured split times through the scheduler for W workers.

    .venv/bin/python bench/worker_scaling.py tree.h5 --workers 1,2,4,8,16

Reads every split's stage seconds from a tree grown with one worker, then runs
hctree's own scheduler (hctree.schedule.frontier and the grow loop's commit rule)
in simulated time: W splits run at once, each taking its measured time, results
committed in turn. A split the reference never made (run ahead but not needed)
takes the mean split time. Prints, per W, the simulated wall time and speed-up
over one worker (ignoring start-up and commit costs), as JSON lines.

``--cost mass`` replaces the measured times by each node's mass, the cost of a
split under epoch budgets (the ``fast`` and ``paper`` presets), where the root is
not dominated by a warm-up.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np

from hctree.grow import _commit_turns
from hctree.schedule import Goal, frontier, leaf_count
from hctree.splitters.base import NullProgress
from hctree.store import NodeRecord, StageRecord, TreeRecord, read_tree


def simulate(reference: TreeRecord, workers: int, cost: str = "seconds") -> float:
    """Simulated seconds to grow ``reference``'s tree with ``workers`` splits at once."""
    seconds = {
        name: sum(s.seconds for s in node.stages.values()) if cost == "seconds" else node.mass
        for name, node in reference.nodes.items()
        if node.status == "split"
    }
    mean = float(np.mean(list(seconds.values())))
    if cost == "mass":  # a split the reference never made costs its own mass
        seconds.update({n: node.mass for n, node in reference.nodes.items() if n not in seconds})
    goal = Goal(leaf_count(reference))
    root = copy.deepcopy(reference.nodes["r"])
    root.stages, root.split_attrs, root.children = {}, {}, []
    root.status, root.split_order = "leaf", -1
    attrs = {**reference.attrs, "splits_done": 0}
    sim = TreeRecord(attrs=attrs, nodes={"r": root}, labels=None, class_names=None)
    now, running = 0.0, {}
    while leaf_count(sim) < goal.leaves:
        for node, _ in frontier(sim, goal, workers):
            running.setdefault(node.name, now + seconds.get(node.name, mean))
        name = min(running, key=lambda n: (running[n], n))
        now = running.pop(name)
        _finish(sim.nodes[name], reference.nodes[name])
        _commit_turns(sim, Path("unused"), goal, NullProgress(), write=False)
    return now


def _finish(node: NodeRecord, ref: NodeRecord) -> None:
    """Give ``node`` the reference's finished split (or a placeholder one it never made)."""
    if ref.status == "split":
        final = ref.split_attrs["final_stage"]
        node.stages = {final: copy.deepcopy(ref.stages[final])}
        k, stage = len(ref.children), final
    else:
        k, stage = 2, "raw"
        node.stages = {stage: StageRecord(np.stack([node.membership / 2] * 2))}
    node.status = "ready"
    node.split_attrs.update(k=k, final_stage=stage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree")
    parser.add_argument("--workers", default="1,2,4,8,16")
    parser.add_argument("--cost", choices=("seconds", "mass"), default="seconds")
    args = parser.parse_args()
    reference = read_tree(args.tree)
    one = simulate(reference, 1, args.cost)
    for w in (int(x) for x in args.workers.split(",")):
        wall = simulate(reference, w, args.cost)
        row = {"workers": w, "cost": args.cost, "time": round(wall, 1)}
        print(json.dumps({**row, "speedup": round(one / wall, 2)}))


if __name__ == "__main__":
    main()
