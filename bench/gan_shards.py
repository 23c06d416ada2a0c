"""Would the GAN step gain from one-thread shards as the warm-up does? A speed screen.

    .venv/bin/python bench/gan_shards.py --iters 100

Times the raw split's GAN step of the ``cpu`` preset (one discriminator, two
generators, the view losses, the seeded targets) on Fashion-MNIST images four ways:
hcmgan's ``_train_step`` at PyTorch's 1 and 2 threads, and a version cut into
one-thread shards (hctree.shards), run in turn and side by side on two Python
threads. The shards: the discriminator's passes over the fakes, the reals and the
views for its step; one pass per generator for the generators' step (their
BatchNorm statistics stay within a generator, so nothing crosses a shard). The
sharded step is a screen written here, not hctree's step: it draws the same
random numbers but rounds differently. Prints ms per step and whether the
shards give the same bits in turn and side by side.
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from view_cost import per_call_ms  # bench/, beside this script

from hctree import engine
from hctree.data import load_images
from hctree.invariance import imbalance, nt_xent, view_agreement
from hctree.shards import ShardPool, one_thread, sum_in_order
from hctree.splitters import hcmgan
from hctree.splitters.base import make_config

CPU = torch.device("cpu")
K = 2


def sharded_step(nets, images, weights, config, sigma, gen, targets, pool: ShardPool) -> None:
    """One raw-split GAN step with the discriminator's and the generators' passes as shards."""
    disc = nets.discriminators[0]
    b = config.batch_gen
    labels = torch.arange(K).repeat_interleave(b)
    with one_thread():
        z = torch.randn(K, b, config.latent_dim, generator=gen)
        fakes = [g(z[j]) for j, g in enumerate(nets.generators)]
        noisy = [hcmgan._add_noise(f, sigma, gen) for f in fakes]
        idx = torch.multinomial(weights, config.batch_real, replacement=True, generator=gen)
        clean = engine.to_unit(images.index_select(0, idx))
        real = hcmgan._add_noise(clean, sigma, gen)
        views = hcmgan._two_views(clean, config, gen)
    trunk = list(disc.trunk.parameters())

    def features(x):
        with torch.enable_grad():
            return disc.features(x)

    # the discriminator's step: fakes, reals and views as three shards
    pieces = [torch.cat(noisy).detach(), real, views]
    feats = pool.map(features, pieces)
    heads = [*disc.d_head.parameters(), *disc.c_head.parameters(), *disc.p_head.parameters()]
    with one_thread():
        leaves = [f.detach().requires_grad_() for f in feats]
        f_fake, f_real, f_views = leaves
        ld = F.binary_cross_entropy_with_logits(
            disc.real_logit(f_real).float(), torch.ones(config.batch_real)
        ) + F.binary_cross_entropy_with_logits(disc.real_logit(f_fake).float(), torch.zeros(K * b))
        lc = F.cross_entropy(disc.classify_frozen(f_fake).float(), labels)
        lc = lc + config.lambda_target * F.cross_entropy(
            disc.classify_frozen(f_real).float(), targets[idx]
        )
        n = clean.shape[0]
        logits = disc.classify(f_views).float()
        lv = config.lambda_agree * view_agreement(logits[:n], logits[n:])
        lv = lv + config.lambda_balance * imbalance(logits)
        proj = disc.project(f_views)
        lv = lv + config.lambda_contrast * nt_xent(proj[:n], proj[n:], config.contrast_tau)
        grads = torch.autograd.grad(ld + lc + lv, [*leaves, *heads])
        upstream, head_grads = list(grads[:3]), list(grads[3:])
    trunk_grads = pool.map(
        lambda pair: torch.autograd.grad(pair[0], trunk, pair[1]),
        list(zip(feats, upstream, strict=True)),
    )
    with one_thread():
        for p, g in zip(trunk + heads, sum_in_order(trunk_grads) + head_grads, strict=True):
            p.grad = g
        nets.opt_d[0].step()
        nets.opt_c[0].step()

    # the generators' step: one shard per generator
    gen_feats = pool.map(features, noisy)
    with one_thread():
        leaves = [f.detach().requires_grad_() for f in gen_feats]
        loss_g = 0.0
        for j, f in enumerate(leaves):
            adv = F.binary_cross_entropy_with_logits(disc.real_logit(f).float(), torch.ones(b))
            cls = F.cross_entropy(disc.classify(f).float(), labels[j * b : (j + 1) * b])
            loss_g = loss_g + adv + config.cls_weight * cls
        upstream = torch.autograd.grad(loss_g, leaves)
    own = [list(g.parameters()) for g in nets.generators]
    gen_grads = pool.map(
        lambda j: torch.autograd.grad(gen_feats[j], own[j], upstream[j]), list(range(K))
    )
    with one_thread():
        for params, grads in zip(own, gen_grads, strict=True):
            for p, g in zip(params, grads, strict=True):
                p.grad = g
        nets.opt_g.step()


def run(images, mode: str, threads: int, width: int, iters: int) -> tuple[float, torch.Tensor]:
    """ms per step and every network's weights after the timed steps."""
    config = make_config(hcmgan.HCMGANSplitter, "cpu")
    torch.set_num_threads(threads)
    nets = hcmgan._build_nets(config, K, False, tuple(images.shape[1:]), 0, CPU)
    gen = engine.make_generator(1, CPU)
    weights = torch.ones(len(images))
    targets = torch.randint(0, K, (len(images),), generator=torch.Generator().manual_seed(2))

    def step(pool):
        if mode == "step":
            hcmgan._train_step(nets, images, [weights], config, 0.3, gen, CPU, targets)
        else:
            sharded_step(nets, images, weights, config, 0.3, gen, targets, pool)

    with ShardPool(width) as pool:
        ms = per_call_ms(lambda: step(pool), iters)
    weights_after = [p.detach().flatten() for m in (*nets.generators, *nets.discriminators)
                     for p in m.parameters()]  # fmt: skip
    return ms, torch.cat(weights_after)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--subset", type=int, default=10000)
    args = parser.parse_args()
    images = torch.from_numpy(load_images("fashion-mnist", subset=args.subset, seed=0).images)
    rows = [("hctree's step", "step", 1, 1), ("hctree's step", "step", 2, 1),
            ("shards in turn", "shards", 1, 1), ("shards side by side", "shards", 1, 2)]  # fmt: skip
    in_turn = None
    for name, mode, threads, width in rows:
        ms, w = run(images, mode, threads, width, args.iters)
        same = None
        if mode == "shards" and width == 1:
            in_turn = w
        elif mode == "shards":
            same = bool(torch.equal(w, in_turn))
        print(json.dumps({"run": name, "torch_threads": threads, "cores": width,
                          "ms_per_step": round(ms, 1), "same_bits_as_in_turn": same}),
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
