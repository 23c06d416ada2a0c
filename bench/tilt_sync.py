"""Estimate each image's tilt from how it lines up with the images it resembles.

    .venv/bin/python bench/tilt_sync.py --data bench/out/rotated-dev6.npz [--n 4000]

For every pair of images the angle (from a grid, ``--step`` degrees up to
``--most``) that best turns one onto the other is found; each image keeps its
``--neighbours`` closest images under their best angles. The tilts are then the
least-squares solution of ``tilt_i - tilt_j = angle_ij`` over those pairs, with
mean zero (angular synchronisation). Prints the spread of the estimates per
class and, for sets with a stored ``angle`` (bench/make_sets.py), how well they
follow it, overall and within each class (where a constant offset per class is
harmless for clustering). With ``--landmarks M`` the pairs are searched among M
evenly spaced images only, and every image is then placed against its closest
landmarks (M^2 + N M comparisons instead of N^2). With ``--copy TARGET`` (all
images, ``--n`` ignored) it also writes a copy of the set, the set rules hctree
would decide applied first, with each image turned back by its estimated tilt: a
screen for an orientation rule, on copies.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from set_copy import read_set, write_set
from upright_copy import turned as turned_images

from hctree import orientation, prepare
from hctree.data import load_images
from hctree.orientation import synchronise


def turned(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Images float ``[N, C, H, W]`` turned about their middle (zeros come in)."""
    r = math.radians(degrees)
    t = torch.tensor([[math.cos(r), -math.sin(r), 0.0], [math.sin(r), math.cos(r), 0.0]])
    grid = F.affine_grid(t.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def pair_angles(x: torch.Tensor, most: float, step: float) -> tuple[torch.Tensor, torch.Tensor]:
    """hctree's pair search (``orientation.pair_angles``) on a grid of ``most`` and ``step``."""
    return orientation.pair_angles(x, orientation.grid(most, step))


def placed(
    x: torch.Tensor,
    marks: torch.Tensor,
    mark_tilt: np.ndarray,
    most: float,
    step: float,
    neighbours: int,
    chunk: int = 256,
) -> np.ndarray:
    """Tilts of images ``x`` float ``[N, 1, H, W]`` against landmarks ``marks`` whose
    tilts are known: the median, over the ``neighbours`` landmarks closest under their
    best angle, of landmark tilt plus that angle; float ``[N]``."""
    grid = np.arange(-most, most + step / 2, step)
    moved = torch.stack([turned(marks, float(d)).reshape(len(marks), -1) for d in grid])
    moved_sq = moved.square().sum(2)  # [angles, M]
    angles, tilts = torch.from_numpy(grid).float(), torch.from_numpy(mark_tilt).float()
    out = np.empty(len(x))
    for start in range(0, len(x), chunk):
        flat = x[start : start + chunk].reshape(-1, moved.shape[2])
        d = (
            flat.square().sum(1)[None, :, None]
            + moved_sq[:, None, :]
            - 2 * flat @ moved.transpose(1, 2)
        )
        best, which = d.min(0)  # [B, M]
        near = best.topk(neighbours, largest=False).indices
        out[start : start + chunk] = (tilts[near] + angles[which.gather(1, near)]).median(1).values
    return out


def estimate(
    x: torch.Tensor, most: float, step: float, neighbours: int, landmarks: int
) -> tuple[np.ndarray, float]:
    """Each image's tilt and the median pair angle. With ``landmarks`` > 0 (and fewer
    than the images), the tilts are synchronised on that many evenly spaced images
    and every image is placed against them (:func:`placed`); otherwise on all pairs."""
    n = len(x)
    marks = np.linspace(0, n - 1, landmarks).round().astype(int) if 0 < landmarks < n else None
    base = x if marks is None else x[torch.from_numpy(marks)]
    dist, angle = pair_angles(base, most, step)
    near = dist.topk(neighbours, largest=False).indices
    rows = np.repeat(np.arange(len(base)), neighbours)
    cols = near.reshape(-1).numpy()
    pairs = angle[rows, cols].numpy()
    tilt = synchronise(rows, cols, pairs, len(base))
    median = float(np.median(np.abs(pairs)))
    if marks is None:
        return tilt, median
    return placed(x, base, tilt, most, step, neighbours), median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--n", type=int, default=4000, help="images used (the first n)")
    parser.add_argument("--most", type=float, default=36.0)
    parser.add_argument("--step", type=float, default=3.0)
    parser.add_argument("--neighbours", type=int, default=10)
    parser.add_argument("--copy", default=None)
    parser.add_argument("--landmarks", type=int, default=0, help="> 0: synchronise on these")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.data.endswith(".npz"):
        arrays, four = read_set(args.data)
    else:  # a set hctree loads itself: a seeded subset of --n images
        data = load_images(args.data, subset=args.n, seed=0)
        arrays, four = {"labels": data.labels}, data.images
    images = prepare.apply(four, prepare.decide(four, {"orientation": "off"}))  # the rule's job
    n = len(images) if args.copy else args.n
    x = torch.from_numpy(images[:n]).float().mean(1, keepdim=True) / 255
    labels = arrays["labels"][:n]
    start = time.time()
    tilt, median = estimate(x, args.most, args.step, args.neighbours, args.landmarks)
    classes = np.unique(labels)
    out = {
        "data": args.data,
        "n": len(x),
        "landmarks": args.landmarks,
        "seconds": round(time.time() - start, 1),
        "tilt_sd": round(float(tilt.std()), 1),
        "pair_angle_median": round(median, 1),
        "class_mean": [round(float(tilt[labels == c].mean()), 1) for c in classes],
        "class_sd": [round(float(tilt[labels == c].std()), 1) for c in classes],
    }
    true = arrays["angle"][:n] if "angle" in arrays else None
    if true is not None:
        out["corr"] = round(float(np.corrcoef(tilt, true)[0, 1]), 3)
        out["class_corr"] = [
            round(float(np.corrcoef(tilt[labels == c], true[labels == c])[0, 1]), 3)
            for c in classes
        ]
        off = tilt - true
        within = np.concatenate([off[labels == c] - off[labels == c].mean() for c in classes])
        out["within_class_error_sd"] = round(float(within.std()), 1)
        out["true_sd"] = round(float(true.std()), 1)
    print(json.dumps(out))
    if args.copy:
        write_set(args.copy, arrays, turned_images(images, -np.radians(tilt)))


if __name__ == "__main__":
    main()
