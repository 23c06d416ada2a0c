"""Does a contrastive warm-up on a node's own images make its classes clusters?

    .venv/bin/python bench/node_tune.py tree.h5 NODE --steps 0,250,500,1000

A non-root split starts from its parent's trunk and seeds its cut on it; only the
root has a warm-up. This takes the trunk that ``NODE``'s split started from (the
parent's discriminator), trains it further with the warm-up's NT-Xent on images
drawn by ``NODE``'s membership, and after each count of steps prints one JSON
line: the NMI with the labels of k-means (as many clusters as classes) on the
node's own images (membership above 0.5), and of the two-way seeding cut the
split would make on that trunk (the stored settings), with the cut's shares and
its classes. Labelled hcmgan trees only; one thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from hctree import engine
from hctree.render import tree_images
from hctree.spectral import spectral_labels
from hctree.splitters import hcmgan, stored_splitter
from hctree.store import read_models, read_tree
from hctree.tree import open_tree

CPU = torch.device("cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree")
    parser.add_argument("node")
    parser.add_argument("--steps", default="0,250,500,1000", help="comma-separated, rising")
    parser.add_argument("--lr", type=float, default=None, help="Adam's rate [the stored lr_d]")
    parser.add_argument("--batch", type=int, default=None, help="[the stored embed_batch]")
    parser.add_argument("--crop", type=float, default=None, help="[the stored crop_scale_min]")
    args = parser.parse_args()
    torch.set_num_threads(1)
    record, tree = read_tree(args.tree), open_tree(args.tree)
    if record.labels is None:
        raise SystemExit("the tree holds no labels to score with")
    node = record.nodes[args.node]
    if node.parent is None:
        raise SystemExit("the root's split has a warm-up already; name a node below it")
    if record.attrs["splitter"] != "hcmgan":
        raise SystemExit("the tree was not grown by hcmgan")
    config = stored_splitter(record.attrs)[1]
    tuned = dataclasses.replace(
        config,
        embed_batch=args.batch or config.embed_batch,
        crop_scale_min=args.crop or config.crop_scale_min,
    )
    labels = np.asarray(record.labels)
    images = torch.from_numpy(tree_images(tree).images)
    shape = tuple(images.shape[1:])
    models = read_models(args.tree, node.parent)
    disc = hcmgan._stored_discriminators(models, config, shape, CPU, first_only=True)[0]
    params = [p for name, p in disc.named_parameters() if name.startswith(("trunk.", "p_head."))]
    opt = torch.optim.Adam(
        params, lr=args.lr or config.lr_d, betas=(config.embed_beta1, config.beta2)
    )
    member = torch.from_numpy(node.membership).float()
    inside = member > 0
    rows = inside.nonzero().squeeze(1)
    own = node.membership[rows.numpy()] > 0.5
    wanted = labels[rows.numpy()][own]
    gen = engine.make_generator(1, CPU)
    done = 0
    for target in (int(s) for s in args.steps.split(",")):
        started = time.time()
        disc.train()
        for _ in range(done, target):
            hcmgan._embed_step(disc, opt, images, member, tuned, gen, CPU)
        done = max(done, target)
        disc.eval()
        seeding = engine.make_generator(2, CPU)
        embed = hcmgan.seed_embedding(disc.features, config, shape[0], seeding)
        feats = engine.predict_in_batches(embed, images, config.predict_batch, inside)[rows]
        cut = spectral_labels(
            feats, member[rows], 2, seeding, config.spectral_neighbors, config.spectral_parts,
            config.spectral_floor, {}, config.seed_spread,
        ).numpy()[own]  # fmt: skip
        found = KMeans(len(np.unique(wanted)), n_init=5, random_state=0)
        found = found.fit_predict(feats.numpy()[own])
        print(json.dumps({
            "node": args.node, "steps": done,
            "kmeans_nmi": round(normalized_mutual_info_score(wanted, found), 3),
            "seed_cut_nmi": round(normalized_mutual_info_score(wanted, cut), 3),
            "cut_share": np.round(np.bincount(cut, minlength=2) / len(cut), 3).tolist(),
            "cut_classes": [np.bincount(wanted[cut == j]).tolist() for j in range(2)],
            "seconds": round(time.time() - started, 1),
        }), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
