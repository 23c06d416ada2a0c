"""Screen: each node's seeded cut moved by a linear head that makes neighbours agree.

    .venv/bin/python bench/neighbour_head.py --subset 10000 --seeds 0,1,2,3,4,5

Reads the unit trunk features `bench/split_screen.py` cached for each seed and
grows trunk-alone 10-leaf trees (the heaviest leaf next). Each node is cut by the
default's seeding rule ``spectral8-floor``; then, in the ``head`` arms, a linear
two-way head on the node's features is fitted to that cut and trained on
``-log <p_i, p_j>`` over each row's 10 nearest neighbours in the node, minus
``--entropy`` times the entropy of the mean p (the clustering loss of SCAN),
and its argmax is the cut. A cut must then be a hyperplane in the trunk's
features, where a linear probe separates the classes far better than the
graph's cuts do, and the head moves it to where fewest neighbour pairs cross.
Arms: ``plain`` (the seeded cut) and ``head`` (moved by the head).

One JSON line per arm and seed, then each arm's mean and sample sd.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from split_screen import RULES, cached_features, grow_by, run_screen, screen_parser

from hctree import engine
from hctree.spectral import nearest_rows


def moved_cut(
    feats: np.ndarray, seeded: np.ndarray, seed: int, steps: int, entropy: float
) -> np.ndarray:
    """The cut of a linear head on ``feats`` fitted to ``seeded`` and then trained on
    the neighbour-agreement loss (module docstring)."""
    torch.manual_seed(seed)
    x = torch.from_numpy(feats)
    target = torch.from_numpy(seeded).long()
    head = torch.nn.Linear(x.shape[1], 2)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(100):  # start from the seeded cut
        opt.zero_grad()
        F.cross_entropy(head(x), target).backward()
        opt.step()
    near = nearest_rows(x, x, 10, skip_self=True)  # [M, 10]
    for _ in range(steps):
        p = head(x).softmax(dim=1)
        agree = (p[:, None, :] * p[near]).sum(-1).clamp_min(1e-8).log().mean()
        mean_p = p.mean(0)
        spread = -(mean_p * mean_p.clamp_min(1e-8).log()).sum()
        loss = -agree - entropy * spread
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return head(x).argmax(dim=1).numpy()


def main() -> None:
    parser = screen_parser(__doc__.splitlines()[0])
    parser.add_argument("--arms", default="plain,head")
    parser.add_argument("--steps", type=int, default=100, help="neighbour-agreement steps")
    parser.add_argument("--entropy", type=float, default=1.0, help="weight of the balance term")
    args = parser.parse_args()
    rule = RULES["spectral8-floor"]

    def tree(arm: str, seed: int, data):
        feats = cached_features(data, seed)

        def cut(node: str, rows: np.ndarray) -> np.ndarray:
            node_seed = engine.derive_seed(seed, node)
            seeded = rule(feats[rows], node_seed)
            if arm == "plain" or len(np.unique(seeded)) < 2:
                return seeded
            return moved_cut(feats[rows], seeded, node_seed, args.steps, args.entropy)

        return grow_by(len(feats), args.leaves, cut)

    run_screen(args, "arm", args.arms.split(","), tree)


if __name__ == "__main__":
    main()
