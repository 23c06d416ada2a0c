"""How whole the seeding cut keeps each class, on every stored split of a tree: direct or over-cut and merged.

    .venv/bin/python bench/cut_integrity.py tree.h5 [--parts 4,6,8] [--data DIR]

For each split in growth order it embeds the node's own images (membership at
least half the largest) with the split's stored trunk, as the seeding does
(``hctree.splitters.hcmgan.seed_embedding``: averaged over views or recolourings
as the configuration asks), and cuts them in two with ``spectral_labels``:
directly, and with ``parts=m`` (cut into m parts, then merged). For each cut it
prints the class integrity (the share of each class's images, among classes above
5% of the node, on that class's majority side: 1 when no class is cut through)
and the NMI between cut and class.
Needs a labelled tree of a splitter with ``features`` (hcmgan).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.metrics import normalized_mutual_info_score

from hctree.render import tree_images
from hctree.spectral import spectral_labels
from hctree.splitters import stored_splitter
from hctree.splitters.hcmgan import seed_embedding
from hctree.tree import open_tree


def integrity(cut: np.ndarray, labels: np.ndarray) -> float:
    """Share of the main classes' images on their class's majority side of ``cut``."""
    counts = np.bincount(labels)
    main = np.flatnonzero(counts >= 0.05 * len(labels))
    kept = sum(np.bincount(cut[labels == c], minlength=2).max() for c in main)
    return kept / np.isin(labels, main).sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree")
    parser.add_argument("--parts", default="4,6,8")
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tree = open_tree(args.tree)
    if tree.labels is None:
        raise SystemExit("the tree holds no labels to compare its cuts with")
    images = torch.from_numpy(tree_images(tree, args.data).images)
    splitter, config = stored_splitter(tree.attrs)
    shape = tuple(images.shape[1:])
    for name in tree.split_sequence:
        weight = torch.from_numpy(tree.node(name).membership).float()
        rows = (weight >= 0.5 * weight.max()).nonzero().squeeze(1)
        embed = splitter.features(tree.models(name), config, shape, torch.device("cpu"))
        gen = torch.Generator().manual_seed(0)
        seed_features = seed_embedding(embed, config, shape[0], gen)
        with torch.no_grad():
            feats = torch.cat(
                [
                    seed_features(images[rows[start : start + 1024]].float() / 127.5 - 1)
                    for start in range(0, len(rows), 1024)
                ]
            )
        labels = tree.labels[rows.numpy()]
        line = [f"{name:8s} images {len(rows):6d}"]
        for parts in [0, *(int(p) for p in args.parts.split(","))]:
            cut = spectral_labels(
                feats, weight[rows], 2, torch.Generator().manual_seed(0), parts=parts
            )
            cut = cut.numpy()
            nmi = normalized_mutual_info_score(labels, cut)
            tag = "direct" if parts == 0 else f"parts {parts}"
            line.append(
                f"{tag}: {integrity(cut, labels):.3f} / {nmi:.3f} {np.bincount(cut).tolist()}"
            )
        print(" | ".join(line), flush=True)


if __name__ == "__main__":
    main()
