"""Would a grown tree score better with its leaves reassigned on a stored trunk?

    .venv/bin/python bench/leaf_smoothing.py TREE.h5 --seed S [--subset 10000] [--data D]

Reads a stored hcmgan tree and the images it was grown on, computes every image's
unit features by the root split's stored trunk, and scores (ACC, NMI against the
true classes) four reassignments of the tree's hard leaves next to the tree itself:

- ``vote k``: each image takes the leaf most of its k nearest neighbours hold
  (cosine, itself excluded; a tie keeps its own leaf), one round and three rounds;
- ``linear``: a linear softmax classifier fitted to the leaves on every image
  (full-batch L-BFGS, 200 iterations, a small L2 weight), each image to its argmax;
- ``flat``: the leaves ignored, one flat spectral clustering of the same features
  into as many clusters as leaves (what a top-down tree is measured against);
- ``probe``: how much the features hold: the same linear classifier fitted to the
  true classes of a random half of the images, its accuracy on the other half.

One JSON line per row, with the share of images that changed leaf. If the tree's
errors are images near a leaf's border, the votes raise ACC; if they are whole
groups of images in the wrong leaf, they do not.
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F
from tree_replay import load_replay, replay_arguments

from hctree import engine
from hctree.metrics import accuracy, nmi
from hctree.spectral import nearest_rows, spectral_labels


def vote(feats: torch.Tensor, leaves: np.ndarray, k: int, rounds: int) -> np.ndarray:
    """Each image to the leaf most of its k nearest neighbours hold, ``rounds`` times."""
    neighbours = nearest_rows(feats, feats, k, skip_self=True).numpy()
    count = int(leaves.max()) + 1
    rows = np.arange(len(leaves))
    out = leaves.copy()
    for _ in range(rounds):
        votes = np.zeros((len(out), count))
        np.add.at(votes, (np.repeat(rows, k), out[neighbours].ravel()), 1.0)
        votes[rows, out] += 0.5  # a tie keeps the image's own leaf
        out = votes.argmax(1)
    return out


def linear(feats: torch.Tensor, leaves: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
    """A linear softmax classifier fitted to ``leaves`` on the rows ``fit`` (every row
    if None); each image's argmax."""
    torch.manual_seed(0)
    head = torch.nn.Linear(feats.shape[1], int(leaves.max()) + 1)
    opt = torch.optim.LBFGS(head.parameters(), max_iter=200, line_search_fn="strong_wolfe")
    rows = np.arange(len(leaves)) if fit is None else fit
    wanted = torch.from_numpy(leaves[rows])
    seen = feats[torch.from_numpy(rows)]

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(head(seen), wanted) + 1e-4 * head.weight.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return head(feats).argmax(1).numpy()


def main() -> None:
    args = replay_arguments(__doc__.splitlines()[0]).parse_args()
    replay = load_replay(args, warm=False)
    labels = replay.labels
    leaves = replay.tree.memberships().argmax(0).astype(np.int64)
    with torch.no_grad():
        feats = replay.trunk_of("r")
    rows = {"tree": leaves}
    for k in (10, 20):
        for rounds in (1, 3):
            rows[f"vote {k} x{rounds}"] = vote(feats, leaves, k, rounds)
    rows["linear"] = linear(feats, leaves)
    gen = engine.make_generator(0, torch.device("cpu"))
    count = int(leaves.max()) + 1
    rows["flat"] = spectral_labels(feats, torch.ones(len(feats)), count, gen, 10, 0, 0.0).numpy()
    for name, assign in rows.items():
        moved = None if name == "flat" else round(float((assign != leaves).mean()), 4)
        print(json.dumps({"row": name, "acc": round(accuracy(labels, assign), 4),
                          "nmi": round(nmi(labels, assign), 4), "moved": moved}))  # fmt: skip
    order = np.random.default_rng(0).permutation(len(labels))
    half = len(labels) // 2
    guess = linear(feats, labels.astype(np.int64), order[:half])
    held = order[half:]
    print(
        json.dumps({"row": "probe", "acc": round(float((guess[held] == labels[held]).mean()), 4)})
    )


if __name__ == "__main__":
    main()
