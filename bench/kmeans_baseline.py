"""k-means on raw pixels: the baseline every quality record is compared with.

    .venv/bin/python bench/kmeans_baseline.py --subset 10000 --k 10
    .venv/bin/python bench/kmeans_baseline.py --k 10            # all 70,000 images

k-means++ seeding, Lloyd iterations, best of ``--restarts`` by inertia; pixels scaled
to [0, 1]. Prints one JSON line with ACC, NMI, ARI and the wall time.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hctree.data import load_images
from hctree.metrics import cluster_scores


def kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ initial centres, float ``[k, D]``."""
    centres = [x[rng.integers(len(x))]]
    dist = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        centres.append(x[rng.choice(len(x), p=dist / dist.sum())])
        dist = np.minimum(dist, ((x - centres[-1]) ** 2).sum(1))
    return np.stack(centres)


def lloyd(x: np.ndarray, centres: np.ndarray, iters: int = 300) -> tuple[np.ndarray, float]:
    """Lloyd's algorithm; returns (assignment int64 [N], inertia)."""
    sq = (x**2).sum(1)
    for _ in range(iters):
        d = sq[:, None] - 2 * x @ centres.T + (centres**2).sum(1)[None]
        assign = d.argmin(1)
        new = np.stack(
            [
                x[assign == j].mean(0) if (assign == j).any() else centres[j]
                for j in range(len(centres))
            ]
        )
        if np.allclose(new, centres):
            break
        centres = new
    return assign, float(d[np.arange(len(x)), assign].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=None)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_images(args.data, subset=args.subset, seed=args.seed)
    x = data.images.reshape(len(data), -1).astype(np.float32) / 255.0
    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    best = min(
        (lloyd(x, kmeans_pp(x, args.k, rng)) for _ in range(args.restarts)), key=lambda r: r[1]
    )
    seconds = time.perf_counter() - start
    scores = cluster_scores(data.labels, best[0])
    print(
        json.dumps(
            {
                "method": "kmeans",
                "n": len(data),
                "k": args.k,
                "seconds": round(seconds, 1),
                **{k: round(v, 4) for k, v in scores.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
