"""A stored hcmgan tree with the images it was grown on, for replaying its seeding cuts.

Shared by bench/seed_drift.py and bench/graph_sample.py.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from split_screen import cached_features

from hctree import engine, prepare
from hctree.data import load_images
from hctree.splitters import stored_splitter
from hctree.store import read_tree
from hctree.tree import Tree


def replay_arguments(description: str) -> argparse.ArgumentParser:
    """The arguments every replay takes: the tree, the data it was grown on, threads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("tree")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=0, help="0: every image")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    return parser


@dataclass
class Replay:
    tree: Tree
    labels: np.ndarray  # int [N] true classes
    images: torch.Tensor  # prepared as the tree prepared them
    warm: torch.Tensor | None  # the root's warm-up trunk features, cached by bench/split_screen.py

    def trunk_of(self, name: str) -> torch.Tensor:
        """The features of every image by node ``name``'s stored trunk."""
        splitter, config = stored_splitter(self.tree.attrs)
        shape = tuple(int(v) for v in self.tree.attrs["image_shape"])
        embed = splitter.features(self.tree.models(name), config, shape, torch.device("cpu"))
        return engine.predict_in_batches(embed, self.images, config.predict_batch)

    def start_trunk(self, name: str) -> torch.Tensor:
        """The features the split of ``name`` started from: its parent's trunk, or the warm-up."""
        parent = self.tree.node(name).parent
        return self.warm if parent is None else self.trunk_of(parent)


def load_replay(args: argparse.Namespace, warm: bool = True) -> Replay:
    """Read the tree and its images as ``replay_arguments`` named them; with ``warm``
    also the cached warm-up trunk features (bench/split_screen.py must have made them)."""
    engine.configure_threads(args.threads)
    tree = Tree(read_tree(args.tree), path=Path(args.tree))
    data = load_images(args.data, subset=args.subset or None, seed=args.seed)
    images = torch.from_numpy(prepare.apply(data.images, prepare.stored(tree.record)))
    if not warm:
        return Replay(tree, np.asarray(data.labels), images, None)
    cached = cached_features(data, args.seed)
    return Replay(tree, np.asarray(data.labels), images, torch.from_numpy(cached))
