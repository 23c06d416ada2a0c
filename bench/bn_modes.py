"""The collapse test's batch-norm mode on stored trees: eval (running statistics) against train.

    .venv/bin/python bench/bn_modes.py TREE [TREE ...]

For every split of each stored hcmgan tree whose generators use batch norm (other
trees are skipped), each
generator's fake-label BCE under its discriminator on one fixed
batch of latent codes, with the generator in eval mode (running statistics, as
the collapse test computes it) and in train mode (the batch's statistics, as it
trained and as the reference implementation tests it). Prints one JSON line per
split, then how many generators each mode would flag under ``collapse_loss``.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from hctree import engine
from hctree.splitters import stored_splitter
from hctree.splitters.hcmgan import (
    _build_modules,
    _generator_count,
    _shape_of,
    _stored_discriminators,
)
from hctree.store import read_tree
from hctree.tree import Tree


@torch.no_grad()
def fake_loss(disc: torch.nn.Module, generator: torch.nn.Module, z: torch.Tensor) -> float:
    """D's fake-label BCE on ``generator``'s images of ``z``."""
    logit = disc.real_logit(disc.features(generator(z))).float()
    return float(F.binary_cross_entropy_with_logits(logit, torch.zeros_like(logit)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--seed", type=int, default=7, help="the latent codes' seed")
    args = parser.parse_args()
    engine.configure_threads(1)
    cpu = torch.device("cpu")
    flagged = {"eval": 0, "train": 0, "generators": 0}
    for path in args.trees:
        tree = Tree(read_tree(path), path=Path(path))
        splitter, config = stored_splitter(tree.attrs)
        if getattr(config, "norm_g", "") != "batch_norm":  # another splitter, or no BN
            continue
        shape = tuple(int(v) for v in tree.attrs["image_shape"])
        for name in tree.split_sequence:
            models = tree.models(name)
            k, _ = _shape_of(models)
            n_gens = _generator_count(models)
            generators, _ = _build_modules(config, k, 0, shape, n_gens)
            discs = [d.eval() for d in _stored_discriminators(models, config, shape, cpu)]
            z = torch.randn(
                config.batch_gen,
                config.latent_dim,
                generator=torch.Generator().manual_seed(args.seed),
            )
            losses = []
            for j, g in enumerate(generators):
                engine.load_numpy_state(g, models[f"G{j}"])
                # a refinement's group d (generators d * n_gens // k ...) plays D_d
                disc = discs[j * k // n_gens if len(discs) > 1 else 0]
                losses.append(
                    [fake_loss(disc, g.eval(), z), fake_loss(disc, copy.deepcopy(g).train(), z)]
                )
                flagged["eval"] += losses[-1][0] < config.collapse_loss
                flagged["train"] += losses[-1][1] < config.collapse_loss
                flagged["generators"] += 1
            row = {
                "tree": Path(path).stem,
                "node": name,
                "eval_train": [[round(v, 5) for v in pair] for pair in losses],
            }
            print(json.dumps(row), flush=True)
    print(json.dumps({"flagged": flagged}))


if __name__ == "__main__":
    main()
