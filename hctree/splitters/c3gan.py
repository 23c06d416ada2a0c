"""C3-GAN as a flat k-way splitter (Kim & Ha, ICLR 2022; papers/c3-gan.txt).

One stage, ``train``. A background/foreground generator (``hctree.nets.c3gan_nets``)
is conditioned on a one-hot code over ``Y = k * overcluster`` clusters; the object
layer is moved by a random affine matrix before it is composited over the background.
The discriminator has an adversarial head ``r`` (hinge loss) and a semantic head
``h``; the codes are embedded as centroids ``l = psi_c(I_Y)``. With
``q_y(x) = softmax_y(cos(h(x), l_y) / tau)`` the losses are

- D: hinge(real, fake) + 5 * CE(q(fake), c) + 1 * CE(q(mask * fake), c)
  + 1 * NT-Xent(h(real), h(augmented real)) + 0.1 * (mean H(q(real)) + KL(mean q || u))
- G: -r(fake) + 5 * CE(q(fake), c) + 1 * CE(q(mask * fake), c) + 1 * mask regulariser
  (binary entropy of the mask plus hinges keeping its mean in [0.1, 0.9]).

One iteration draws one real batch (in proportion to the node's membership), one
augmented view of it and one fake batch, then takes a D step and a G step on that
fake batch.

Grouping the Y clusters into k children: after training, one no-grad pass gives
every image's cluster probabilities ``q`` and unit features ``h``. Each cluster gets
a mass ``m_y = sum_i s_i q_iy`` (``s`` the parent membership) and a mean feature
``mu_y = sum_i s_i q_iy h_i / m_y``; the clusters are merged by Ward agglomeration of
the ``mu_y`` weighted by ``m_y`` until k groups remain (deterministic; light or dead
clusters join their nearest neighbour first). A child's probability is the sum of
its group's cluster probabilities, and its membership is that times the parent's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from hctree import engine
from hctree.curves import LossCurve
from hctree.errors import HCTreeError, Interrupted
from hctree.invariance import augment, nt_xent, recolour
from hctree.nets.c3gan_nets import SIZES, C3Discriminator, C3Generator, init_weights
from hctree.splitters.base import ModelState, SplitContext, StageResult
from hctree.splitters.grouping import GROUPINGS, split_by_clusters

PERTURBATIONS = {
    # scale range, rotation range (degrees), translation range (fraction of half-width)
    "weak": ((0.9, 1.1), (-2.0, 2.0), (-0.08, 0.08)),
    "strong": ((0.8, 1.5), (-15.0, 15.0), (-0.15, 0.15)),
    "none": ((1.0, 1.0), (0.0, 0.0), (0.0, 0.0)),
}
"""Random affine ranges of the foreground (paper Table 6; ``none`` is the ablation)."""


@dataclass
class Config:
    """Every setting of the C3-GAN splitter; defaults are the paper's values."""

    iterations: int = 100_000
    batch_size: int = 64
    overcluster: int = 3
    z_dim: int = 64
    cz_dim: int = 8
    g_width: int = 512
    g_res_blocks: int = 3
    d_width: int = 64
    h_dim: int = 512
    tau: float = 0.1
    lambda_info: float = 5.0
    lambda_info_fg: float = 1.0
    lambda_contrast: float = 1.0
    lambda_entropy: float = 0.1
    lambda_mask: float = 1.0
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    perturbation: str = "weak"
    crop_scale_min: float = 0.2
    tint: float = 0.0  # colour-cast strength of the contrastive view (colour images; 0: paper)
    flip: float = 0.5  # probability that a contrastive view is mirrored left to right
    fake_tint: float = 0.0  # colour cast of generated images as D sees them (0: paper)
    grouping: str = "ward"  # how clusters become children: "ward" on means, "graph" (kNN cut)
    spectral_parts: int = 0  # graph grouping: also over-cut into this many parts and merge
    embed_iters: int = 0  # contrastive warm-up steps of D's semantic path before the GAN (0: paper)
    inherit: bool = False  # start G and D from the parent split's networks (False: paper)
    predict_batch: int = 1024
    bn_batches: int = 50
    log_every: int = 20  # iterations between progress reports and curve points
    compile: str = "off"  # off | inductor | cudagraphs | trace: torch.compile G and D

    def validate(self) -> None:
        """Raise HCTreeError naming the first setting with a bad value."""
        positive_ints = (
            "iterations", "overcluster", "z_dim", "cz_dim", "h_dim", "predict_batch", "bn_batches",
            "log_every",
        )  # fmt: skip
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise HCTreeError(f"setting {name} must be at least 1, not {getattr(self, name)}.")
        if self.spectral_parts < 0:
            raise HCTreeError(f"setting spectral_parts must be >= 0, not {self.spectral_parts}.")
        if self.embed_iters < 0:
            raise HCTreeError(f"setting embed_iters must be 0 or more, not {self.embed_iters}.")
        if self.batch_size < 2:
            raise HCTreeError(f"setting batch_size must be at least 2, not {self.batch_size}.")
        for name in ("g_width", "d_width"):
            if getattr(self, name) < 8:
                raise HCTreeError(f"setting {name} must be at least 8, not {getattr(self, name)}.")
        if self.g_res_blocks < 0:
            raise HCTreeError(f"setting g_res_blocks must be 0 or more, not {self.g_res_blocks}.")
        if not (self.tau > 0 and self.lr > 0):
            raise HCTreeError("settings tau and lr must be positive numbers.")
        weights = ("lambda_info", "lambda_info_fg", "lambda_contrast", "lambda_entropy")
        for name in (*weights, "lambda_mask"):
            if getattr(self, name) < 0:
                raise HCTreeError(f"setting {name} must be 0 or more, not {getattr(self, name)}.")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise HCTreeError("settings beta1 and beta2 must lie in [0, 1).")
        if self.perturbation not in PERTURBATIONS:
            names = ", ".join(PERTURBATIONS)
            raise HCTreeError(
                f"setting perturbation must be one of {names}, not {self.perturbation!r}."
            )
        engine.check_compile(self.compile)
        if self.grouping not in GROUPINGS:
            names = ", ".join(GROUPINGS)
            raise HCTreeError(f"setting grouping must be one of {names}, not {self.grouping!r}.")
        if not 0 <= self.flip <= 1:
            raise HCTreeError(f"setting flip must be a probability in [0, 1], not {self.flip}.")
        for name in ("tint", "fake_tint"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise HCTreeError(f"setting {name} must be a finite number >= 0, not {value}.")
        if not 0 < self.crop_scale_min <= 1:
            raise HCTreeError(
                f"setting crop_scale_min must lie in (0, 1], not {self.crop_scale_min}."
            )


# ---------------------------------------------------------------- random draws


def draw_codes(
    batch: int, n_clusters: int, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Cluster indices int64 ``[batch]``, each uniform over the Y clusters, drawn as a
    shuffled cover so every cluster is used as evenly as the batch size allows."""
    order = torch.randperm(n_clusters, generator=gen, device=device)
    return order[torch.randperm(batch, generator=gen, device=device) % n_clusters]


def perturbation_theta(
    batch: int, kind: str, gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Random affine matrices float ``[batch, 2, 3]`` (scale, rotation, translation)."""
    (s0, s1), (r0, r1), (t0, t1) = PERTURBATIONS[kind]
    u = torch.rand(batch, 4, generator=gen, device=device)
    scale = s0 + (s1 - s0) * u[:, 0]
    angle = (r0 + (r1 - r0) * u[:, 1]) * (math.pi / 180)
    shift = t0 + (t1 - t0) * u[:, 2:]
    cos, sin = scale * angle.cos(), scale * angle.sin()
    row0 = torch.stack([cos, -sin, shift[:, 0]], dim=1)
    row1 = torch.stack([sin, cos, shift[:, 1]], dim=1)
    return torch.stack([row0, row1], dim=1)


# ---------------------------------------------------------------- losses


def cluster_logits(h: torch.Tensor, centroids: torch.Tensor, tau: float) -> torch.Tensor:
    """Cosine similarities / tau, float32 ``[B, Y]``, between ``h`` ``[B,d]`` and ``[Y,d]``."""
    return F.normalize(h.float(), dim=1) @ F.normalize(centroids.float(), dim=1).T / tau


def entropy_regulariser(logits: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the rows of softmax(logits) plus KL(batch mean || uniform)."""
    log_q = logits.log_softmax(dim=1)
    q = log_q.exp()
    entropy = -(q * log_q).sum(dim=1).mean()
    q_bar = q.mean(dim=0)
    kl = (q_bar * (q_bar.clamp_min(1e-12).log() + math.log(q.shape[1]))).sum()
    return entropy + kl


def mask_regulariser(mask: torch.Tensor) -> torch.Tensor:
    """Binary entropy of the mask ``[B,1,H,W]`` plus hinges keeping its mean in [0.1, 0.9]."""
    m = mask.float().clamp(1e-6, 1 - 1e-6)
    binary = -(m * m.log() + (1 - m) * (1 - m).log()).mean()
    mean = m.flatten(1).mean(dim=1)
    return binary + (F.relu(0.1 - mean) + F.relu(mean - 0.9)).mean()


# ---------------------------------------------------------------- models


def _check_shape(image_shape: tuple[int, ...]) -> tuple[int, int, int]:
    c, h, w = (int(v) for v in image_shape)
    if h != w or h not in SIZES:
        near = min(SIZES, key=lambda s: abs(s - max(h, w)))
        raise HCTreeError(
            f"c3gan works on square images of {', '.join(map(str, SIZES))} px, not {h}x{w}; "
            f"load them with --size {near}."
        )
    if c not in (1, 3):
        raise HCTreeError(f"c3gan works on grey or RGB images, not {c} channels; use --channels 3.")
    return c, h, w


def build_models(
    config: Config, image_shape: tuple[int, ...], n_clusters: int
) -> tuple[C3Generator, C3Discriminator]:
    """Freshly constructed (not yet initialised) generator and discriminator on CPU."""
    shape = _check_shape(image_shape)
    gen = C3Generator(
        shape, n_clusters, config.z_dim, config.cz_dim, config.g_width, config.g_res_blocks
    )
    disc = C3Discriminator(shape, n_clusters, config.d_width, config.h_dim)
    return gen, disc


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def _to_device(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    module = module.to(device)
    if device.type == "cuda":
        module = module.to(memory_format=torch.channels_last)
    return module


def _adam(module: torch.nn.Module, config: Config, device: torch.device) -> torch.optim.Adam:
    fused = True if device.type == "cuda" else None
    return torch.optim.Adam(
        module.parameters(), lr=config.lr, betas=(config.beta1, config.beta2), fused=fused
    )


# ---------------------------------------------------------------- training step


@dataclass
class _Trainer:
    """The networks, optimisers and random stream of one split."""

    config: Config
    gen_net: C3Generator
    disc: C3Discriminator
    opt_g: torch.optim.Adam
    opt_d: torch.optim.Adam
    rng: torch.Generator
    n_clusters: int

    def embed_step(self, images: torch.Tensor, membership: torch.Tensor) -> dict[str, torch.Tensor]:
        """One NT-Xent step of D's semantic path on two views of a real batch (warm-up)."""
        cfg, b = self.config, self.config.batch_size
        real = engine.sample_batch(images, membership, b, self.rng)
        views = [augment(real, cfg.crop_scale_min, self.rng, cfg.tint, flip=cfg.flip) for _ in "ab"]
        x = torch.cat(views)
        if x.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        self.opt_d.zero_grad(set_to_none=True)
        with _autocast(x.device):
            h = self.disc.semantic(x)
        loss = nt_xent(h[:b], h[b:], cfg.tau)
        loss.backward()
        self.opt_d.step()
        return {"embed": loss.detach()}

    def step(self, images: torch.Tensor, membership: torch.Tensor) -> dict[str, torch.Tensor]:
        """One D update and one G update; returns the loss terms (tensors, no sync)."""
        cfg, device, b = self.config, images.device, self.config.batch_size
        real = engine.sample_batch(images, membership, b, self.rng)
        view = augment(real, cfg.crop_scale_min, self.rng, cfg.tint, flip=cfg.flip)
        codes = draw_codes(b, self.n_clusters, self.rng, device)
        z = torch.randn(b, cfg.z_dim, generator=self.rng, device=device)
        eps = torch.randn(b, cfg.cz_dim, generator=self.rng, device=device)
        theta = perturbation_theta(b, cfg.perturbation, self.rng, device)
        onehot = F.one_hot(codes, self.n_clusters).float()
        if device.type == "cuda":
            real = real.contiguous(memory_format=torch.channels_last)
            view = view.contiguous(memory_format=torch.channels_last)

        with _autocast(device):
            fake = self.gen_net(z, eps, onehot, theta)
        image, masked = fake["image"], fake["mask"] * fake["image"]
        if cfg.fake_tint > 0:  # one cast per image, the same for its masked copy
            side = image.shape[3]
            cast = recolour(torch.cat([image, masked], dim=3), cfg.fake_tint, self.rng)
            image, masked = cast[..., :side], cast[..., side:]

        self.opt_d.zero_grad(set_to_none=True)
        with _autocast(device):
            r_real, h_real = self.disc(torch.cat([real, view]))
            r_fake, h_fake = self.disc(torch.cat([image, masked]).detach())
            centroids = self.disc.centroids()
        real_logits = cluster_logits(h_real[:b], centroids, cfg.tau)
        d_adv = F.relu(1 - r_real[:b].float()).mean() + F.relu(1 + r_fake[:b].float()).mean()
        d_info = F.cross_entropy(cluster_logits(h_fake[:b], centroids, cfg.tau), codes)
        d_info_fg = F.cross_entropy(cluster_logits(h_fake[b:], centroids, cfg.tau), codes)
        contrast = nt_xent(h_real[:b], h_real[b:], cfg.tau)
        entropy = entropy_regulariser(real_logits)
        loss_d = (
            d_adv
            + cfg.lambda_info * d_info
            + cfg.lambda_info_fg * d_info_fg
            + cfg.lambda_contrast * contrast
            + cfg.lambda_entropy * entropy
        )
        loss_d.backward()
        self.opt_d.step()

        self.opt_g.zero_grad(set_to_none=True)
        self.disc.requires_grad_(False)
        with _autocast(device):
            r_fake, h_fake = self.disc(torch.cat([image, masked]))
            centroids = self.disc.centroids()
        g_adv = -r_fake[:b].float().mean()
        g_info = F.cross_entropy(cluster_logits(h_fake[:b], centroids, cfg.tau), codes)
        g_info_fg = F.cross_entropy(cluster_logits(h_fake[b:], centroids, cfg.tau), codes)
        mask = mask_regulariser(fake["mask"])
        loss_g = g_adv + cfg.lambda_info * g_info + cfg.lambda_info_fg * g_info_fg
        loss_g = loss_g + cfg.lambda_mask * mask
        loss_g.backward()
        self.opt_g.step()
        self.disc.requires_grad_(True)

        return {
            "d_adv": d_adv.detach(),
            "g_adv": g_adv.detach(),
            "info": d_info.detach(),
            "info_fg": d_info_fg.detach(),
            "contrast": contrast.detach(),
            "entropy": entropy.detach(),
            "mask": mask.detach(),
        }

    def state(self, iteration: int, losses: dict[str, torch.Tensor]) -> dict[str, Any]:
        return {
            "iteration": iteration,
            "generator": self.gen_net.state_dict(),
            "discriminator": self.disc.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "rng": engine.rng_state(self.rng),
            "losses": dict(losses),
        }

    def restore(self, state: dict[str, Any]) -> tuple[int, dict[str, torch.Tensor]]:
        self.gen_net.load_state_dict(state["generator"])
        self.disc.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        engine.set_rng_state(self.rng, state["rng"])
        return int(state["iteration"]), dict(state["losses"])


def _inherit(module: torch.nn.Module, stored: dict[str, Any] | None) -> bool:
    """Load the stored tensors whose names and shapes match; whether all of them did."""
    if not stored:
        return False
    return engine.load_matching_state(module, stored) == len(module.state_dict())


def _new_trainer(ctx: SplitContext, n_clusters: int) -> tuple[_Trainer, bool]:
    """The split's trainer, and whether its networks were inherited from the parent split."""
    cfg: Config = ctx.config
    gen_net, disc = build_models(cfg, tuple(ctx.images.shape[1:]), n_clusters)
    init_rng = torch.Generator().manual_seed(engine.derive_seed(ctx.seed, "c3gan-init"))
    init_weights(gen_net, init_rng)
    init_weights(disc, init_rng)
    inherited = False
    if cfg.inherit and ctx.parent_models:
        inherited = _inherit(disc, ctx.parent_models.get("discriminator"))
        _inherit(gen_net, ctx.parent_models.get("generator"))
    gen_net = _to_device(gen_net, ctx.device)
    disc = _to_device(disc, ctx.device)
    trainer = _Trainer(
        config=cfg,
        gen_net=gen_net,
        disc=disc,
        opt_g=_adam(gen_net, cfg, ctx.device),
        opt_d=_adam(disc, cfg, ctx.device),
        rng=engine.make_generator(engine.derive_seed(ctx.seed, "c3gan-train"), ctx.device),
        n_clusters=n_clusters,
    )
    return trainer, inherited


# ---------------------------------------------------------------- clusters -> children


@torch.no_grad()
def recalibrate_batchnorm(
    disc: C3Discriminator,
    images: torch.Tensor,
    membership: torch.Tensor,
    batches: int,
    batch: int,
    rng: torch.Generator,
) -> None:
    """Replace the discriminator's BN running statistics by real-image statistics.

    During training the running averages mix real, augmented, generated and masked
    batches; assigning real images in eval mode needs the statistics of real images
    alone. ``batches`` weighted draws of ``batch`` images are averaged with equal
    weight. Leaves ``disc`` in eval mode.
    """
    norms = [m for m in disc.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    disc.train()
    for _ in range(batches):
        x = engine.sample_batch(images, membership, batch, rng)
        if x.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(x.device):
            disc.semantic(x)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    disc.eval()


def _child_matrix(cluster_to_child: torch.Tensor, k: int) -> torch.Tensor:
    """One-hot float ``[Y, k]`` mapping clusters to children."""
    return F.one_hot(cluster_to_child, k).float()


def _classifier(
    disc: C3Discriminator, tau: float, device: torch.device
) -> Callable[[torch.Tensor], torch.Tensor]:
    """images float ``[B,C,H,W]`` in [-1,1] -> cluster probabilities and unit features
    concatenated, float ``[B, Y + h_dim]``."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device):
            h = disc.semantic(x)
            centroids = disc.centroids()
        q = cluster_logits(h, centroids, tau).softmax(dim=1)
        return torch.cat([q, F.normalize(h.float(), dim=1)], dim=1)

    return fn


# ---------------------------------------------------------------- the splitter


class C3GANSplitter:
    """Flat k-way split by C3-GAN's discriminator embedding (see the module docstring)."""

    name: ClassVar[str] = "c3gan"
    Config: ClassVar[type] = Config
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        "fast": {
            "iterations": 6000, "batch_size": 64, "overcluster": 3, "g_width": 256,
            "g_res_blocks": 1, "d_width": 64, "h_dim": 256, "lambda_entropy": 1.0, "tint": 1.0,
            "fake_tint": 1.0, "grouping": "graph", "spectral_parts": 8,
        },
        "cpu": {
            "iterations": 400, "batch_size": 32, "overcluster": 2, "z_dim": 32, "cz_dim": 8,
            "g_width": 32, "g_res_blocks": 0, "d_width": 16, "h_dim": 64,
            "crop_scale_min": 0.4, "lr": 5e-4, "lambda_entropy": 2.0, "bn_batches": 20,
            "tint": 1.0, "fake_tint": 1.0, "grouping": "graph", "spectral_parts": 8,
        },
        "tiny": {
            "iterations": 60, "batch_size": 32, "overcluster": 2, "z_dim": 16, "cz_dim": 4,
            "g_width": 32, "g_res_blocks": 0, "d_width": 8, "h_dim": 32,
            "crop_scale_min": 0.4, "lr": 1e-3, "lambda_entropy": 2.0, "bn_batches": 10,
        },
    }  # fmt: skip
    max_branching: ClassVar[int | None] = None
    image_sizes: ClassVar[tuple[int, ...]] = SIZES  # square sizes the networks take

    @staticmethod
    def check_images(image_shape: tuple[int, ...]) -> None:
        """HCTreeError, in one sentence, when the networks cannot take ``(C, H, W)`` images."""
        _check_shape(image_shape)

    def stages(self, config: Config) -> list[str]:
        return ["train"]

    def run_stage(self, stage: str, ctx: SplitContext) -> StageResult:
        """Train C3-GAN on the node's images and split it into ``ctx.k`` children."""
        if stage != "train":
            raise ValueError(f"c3gan has one stage, 'train', not {stage!r}")
        cfg: Config = ctx.config
        n_clusters = ctx.k * cfg.overcluster
        trainer, inherited = _new_trainer(ctx, n_clusters)
        warm = 0 if inherited else cfg.embed_iters
        total = warm + cfg.iterations
        start, losses = 0, {}
        saved = ctx.checkpoint.load()
        if saved is not None:
            start, losses = trainer.restore(saved)
        curve = LossCurve.from_arrays(None if saved is None else saved.get("curve"))
        engine.compile_modules([trainer.gen_net, trainer.disc], cfg.compile)

        ctx.progress.start(f"{ctx.node} {stage}", total, start)
        trainer.gen_net.train()
        trainer.disc.train()
        for it in range(start, total):
            if it < warm:
                losses = trainer.embed_step(ctx.images, ctx.membership)
            else:
                losses = trainer.step(ctx.images, ctx.membership)
            done = it + 1
            if done % cfg.log_every == 0 or done == total:
                ctx.progress.update(done, curve.record(done, losses))
            if ctx.should_stop():
                ctx.checkpoint.save({**trainer.state(done, losses), "curve": curve.arrays()})
                raise Interrupted()
            if ctx.checkpoint.due():
                ctx.checkpoint.save({**trainer.state(done, losses), "curve": curve.arrays()})
        ctx.progress.finish()

        result = self._finish(trainer, ctx, losses)
        result.curves = curve.arrays()
        return result

    def _finish(
        self, trainer: _Trainer, ctx: SplitContext, losses: dict[str, torch.Tensor]
    ) -> StageResult:
        """Group the clusters, compute the children's memberships, package the models."""
        cfg: Config = ctx.config
        n_clusters = trainer.n_clusters
        trainer.gen_net.eval()
        recalibrate_batchnorm(
            trainer.disc, ctx.images, ctx.membership, cfg.bn_batches, cfg.batch_size, trainer.rng
        )
        out = engine.predict_in_batches(
            _classifier(trainer.disc, cfg.tau, ctx.device),
            ctx.images,
            cfg.predict_batch,
            mask=ctx.membership > 0,
        )
        q, h = out[:, :n_clusters], out[:, n_clusters:]
        gen = engine.make_generator(engine.derive_seed(ctx.seed, "c3gan-group"), ctx.device)
        memberships, groups, mass = split_by_clusters(
            q, h, ctx.membership, ctx.k, cfg.grouping, gen, cfg.spectral_parts
        )

        parent_mass = float(ctx.membership.sum())
        metrics = {name: float(v) for name, v in losses.items()}
        for j, child_mass in enumerate(memberships.sum(dim=1).tolist()):
            metrics[f"mass_fraction_{j}"] = child_mass / parent_mass
        metrics["clusters"] = float(n_clusters)
        metrics["clusters_used"] = float((mass > 0.01 * parent_mass / n_clusters).sum())
        models: ModelState = {
            "generator": engine.state_to_numpy(trainer.gen_net),
            "discriminator": engine.state_to_numpy(trainer.disc),
            "grouping": {
                "cluster_to_child": groups,
                "cluster_mass": mass.cpu().numpy().astype(np.float32),
            },
        }
        return StageResult(memberships=memberships.cpu().numpy(), models=models, metrics=metrics)

    @classmethod
    def predict(
        cls,
        models: ModelState,
        config: Config,
        image_shape: tuple[int, ...],
        device: torch.device,
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """fn(float images in [-1,1] ``[B,C,H,W]``) -> child probabilities float ``[B, k]``."""
        to_child = torch.as_tensor(np.asarray(models["grouping"]["cluster_to_child"]))
        n_clusters, k = len(to_child), int(to_child.max()) + 1
        _, disc = build_models(config, image_shape, n_clusters)
        engine.load_numpy_state(disc, models["discriminator"])
        disc = _to_device(disc, device).eval()
        classify = _classifier(disc, config.tau, device)
        matrix = _child_matrix(to_child.to(device), k)

        @torch.no_grad()
        def fn(x: torch.Tensor) -> torch.Tensor:
            return classify(x)[:, :n_clusters] @ matrix

        return fn

    @classmethod
    @torch.no_grad()
    def generate(
        cls,
        models: ModelState,
        config: Config,
        image_shape: tuple[int, ...],
        n: int,
        seed: int,
        device: torch.device,
    ) -> torch.Tensor:
        """uint8 ``[k, n, C, H, W]`` (CPU): ``n`` images per child, without perturbation.

        Each image's cluster is drawn from the child's group in proportion to the
        clusters' masses on the node.
        """
        grouping = models["grouping"]
        to_child = torch.as_tensor(np.asarray(grouping["cluster_to_child"]))
        mass = torch.as_tensor(np.asarray(grouping["cluster_mass"]), dtype=torch.float32)
        n_clusters, k = len(to_child), int(to_child.max()) + 1
        gen_net, _ = build_models(config, image_shape, n_clusters)
        engine.load_numpy_state(gen_net, models["generator"])
        gen_net = _to_device(gen_net, device).eval()
        rng = engine.make_generator(engine.derive_seed(seed, "c3gan-generate"), device)
        out = []
        for child in range(k):
            weights = torch.where(to_child == child, mass.clamp_min(1e-6), 0.0).to(device)
            codes = torch.multinomial(weights, n, replacement=True, generator=rng)
            z = torch.randn(n, config.z_dim, generator=rng, device=device)
            eps = torch.randn(n, config.cz_dim, generator=rng, device=device)
            with _autocast(device):
                image = gen_net(z, eps, F.one_hot(codes, n_clusters).float())["image"]
            out.append(engine.to_uint8(image).cpu())
        return torch.stack(out)
