"""HC-MGAN splitter: a raw split by a k-generator MGAN, then T refinements.

raw:      k generators, one discriminator whose trunk is shared by a real/fake head
          D and a k-way classifier head C. D plays the usual GAN game against all
          generators; C learns which generator made an image (trunk frozen); each
          generator also minimises C's loss on its own images (weight ``cls_weight``).
          Children = C's probabilities x parent membership.
refine<t>: k fresh groups (generator + discriminator with D and C heads). Group j
          draws real images from the previous stage's child j; every classifier is
          k-way over all groups' generated images; child j = mean over the k
          classifiers of p(j | x) x parent membership.

One *epoch* (the reference's unit) is ``node mass / batch_real`` iterations for the
raw split and ``node mass / (k * batch_real)`` for a refinement, each iteration
drawing one weighted real batch per discriminator: either way an epoch shows the
node's mass in real images once. ``raw_iters`` / ``refine_iters`` > 0 replace the
epoch budgets by fixed iteration counts. Instance noise (``x + x * eps * sigma``)
decays linearly from ``noise`` to zero over each stage.

Departures from the reference: within one iteration all groups are updated on the
same generated batch (the reference draws a fresh batch per group); C's step reuses
the trunk features of D's step; latents are standard normal (not uniform); k >= 2.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from hctree import engine
from hctree.curves import LossCurve
from hctree.errors import HCTreeError, Interrupted
from hctree.invariance import (
    colour_view,
    configured_view,
    imbalance,
    nt_xent,
    view_agreement,
    view_mean,
)
from hctree.kmeans import weighted_kmeans
from hctree.nets.dcgan import (
    G_NORMS,
    NORMS,
    SIZES,
    Discriminator,
    Generator,
    check_image_shape,
)
from hctree.shards import ShardPool, one_thread, sharded_backward
from hctree.spectral import spectral_labels
from hctree.splitters.base import ModelState, SplitContext, StageResult

SPLIT_INITS = ("none", "kmeans", "spectral")


@dataclass
class Config:
    """Every HC-MGAN hyper-parameter; the defaults are the reference's (``paper``),
    except ``group_generators``, which the presets set (its comment says why)."""

    width_g: int = 128  # generator feature maps
    width_d: int = 128  # discriminator/classifier trunk feature maps
    kernel_g: int = 4
    kernel_d: int = 5
    norm_d: str = "layer_norm"  # layer_norm | spectral_norm | none
    norm_g: str = "none"  # none | batch_norm
    latent_dim: int = 100
    batch_real: int = 100  # real images per discriminator per iteration
    batch_gen: int = 100  # generated images per generator per iteration
    lr_d: float = 1e-4
    lr_c: float = 2e-5
    lr_g: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    cls_weight: float = 1.0  # lambda: weight of the classifier loss in the generators' loss
    noise: float = 1.5  # instance noise at the start of a stage, decays linearly to 0
    raw_epochs: float = 150.0
    refine_epochs: float = 150.0
    raw_iters: int = 0  # > 0: fixed iteration budget for the raw split (replaces raw_epochs)
    refine_iters: int = 0  # > 0: fixed iteration budget per refinement
    refinements: int = 8
    # generators per group in a refinement (the reference: 2; 1 keeps trees grown
    # before this setting resuming as they were, so the presets set it)
    group_generators: int = 1
    stop_threshold: float = 0.002  # stop refining when the moved mass fraction is below this
    min_child_fraction: float = 0.01  # a child with less of the node's mass is a collapse
    collapse_loss: float = 0.001  # D's loss on a generator's images below this is a collapse
    max_attempts: int = 4
    predict_batch: int = 2048
    log_every: int = 20
    # invariance (all off in the paper): two random views of each real batch
    lambda_contrast: float = 0.0  # NT-Xent of the views' trunk projections (trains the trunk)
    lambda_agree: float = 0.0  # C gives both views the same confident class (C and trunk)
    lambda_balance: float = 0.0  # C's batch-mean class distribution kept near uniform
    contrast_tau: float = 0.5
    proj_dim: int = 64  # projection head size when lambda_contrast > 0
    crop_scale_min: float = 0.4  # smallest crop area of a view
    tint: float = 0.0  # colour-cast strength of a view (colour images)
    invert: float = 0.0  # probability that a view's grey levels are inverted
    flip: float = 0.5  # probability that a view is mirrored left to right
    view_shift: float = 0.0  # a view's crop moves by up to this fraction of the side
    view_rotate: float = 0.0  # a view's crop turns by up to this many degrees either way
    view_gain: float = 0.4  # a view's brightness is multiplied by a gain in [1 - g, 1 + g]
    compile: str = "off"  # off | inductor | cudagraphs | trace: torch.compile the networks
    batch_groups: bool = False  # a refinement's k groups trained as one batched model (GPU)
    inherit: bool = False  # start discriminators from the parent split's trunk
    embed_iters: int = 0  # contrastive-only trunk iterations before a split with no parent trunk
    embed_batch: int = 128  # real images per contrastive warm-up iteration
    embed_beta1: float = 0.5  # Adam's beta1 during the warm-up (the GAN phase uses beta1)
    embed_shards: int = 0  # > 0, on a CPU: each warm-up batch in this many one-thread shards
    split_init: str = "none"  # none | kmeans | spectral: raw split's C also fits a clustering
    spectral_neighbors: int = 10  # k of the nearest-neighbour graph when split_init=spectral
    spectral_parts: int = 0  # > k: cut the graph into this many parts, then merge them into k
    spectral_floor: float = 0.0  # with spectral_parts: no seeded child below this share
    spectral_balance: float = 0.0  # > 0: the merged cut's lightest child >= this x the direct's
    seed_spread: bool = False  # a node over the graph's cap: evenly spaced rows, not the heaviest
    seed_views: int = 0  # > 0: split_init clusters features averaged over this many views
    seed_recolours: int = 0  # > 0, colour images: ... averaged over this many recolourings
    lambda_target: float = 1.0  # weight of C's loss on real images against those targets
    fit_iters: int = 0  # > 0: after the GAN phase, C's head fits the targets on every node image
    fit_max_draws: float = 0.0  # > 0: ... only if C drew fewer real images than this per node image

    @property
    def uses_views(self) -> bool:
        return self.lambda_contrast > 0 or self.lambda_agree > 0 or self.lambda_balance > 0

    def validate(self) -> None:
        """Raise HCTreeError naming the first bad value."""
        positive_ints = (
            "width_g width_d latent_dim batch_real batch_gen max_attempts predict_batch log_every"
        )
        for name in positive_ints.split():
            if getattr(self, name) < 1:
                raise HCTreeError(f"setting {name} must be at least 1, not {getattr(self, name)}.")
        for name in ("kernel_g", "kernel_d"):
            if not 3 <= getattr(self, name) <= 7:
                raise HCTreeError(f"setting {name} must be between 3 and 7.")
        if self.norm_d not in NORMS:
            raise HCTreeError(f"setting norm_d must be one of {', '.join(NORMS)}.")
        if self.norm_g not in G_NORMS:
            raise HCTreeError(f"setting norm_g must be one of {', '.join(G_NORMS)}.")
        for name in ("lr_d", "lr_c", "lr_g"):
            if not getattr(self, name) > 0:
                raise HCTreeError(f"setting {name} must be a positive learning rate.")
        for name in ("beta1", "beta2", "embed_beta1"):
            if not 0 <= getattr(self, name) < 1:
                raise HCTreeError(f"setting {name} must be in [0, 1).")
        for name in ("cls_weight", "noise", "raw_epochs", "refine_epochs", "stop_threshold"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise HCTreeError(f"setting {name} must be a finite number >= 0.")
        for name in ("raw_iters", "refine_iters", "refinements"):
            if getattr(self, name) < 0:
                raise HCTreeError(f"setting {name} must be >= 0.")
        if self.raw_iters == 0 and self.raw_epochs <= 0:
            raise HCTreeError("set raw_epochs > 0 or raw_iters > 0 to give the raw split a budget.")
        if self.refinements and self.refine_iters == 0 and self.refine_epochs <= 0:
            raise HCTreeError("set refine_epochs > 0 or refine_iters > 0, or refinements=0.")
        for name in ("seed_views", "seed_recolours"):
            if getattr(self, name) < 0:
                raise HCTreeError(f"setting {name} must be >= 0.")
        engine.check_compile(self.compile)
        if self.group_generators < 1:
            raise HCTreeError("setting group_generators must be at least 1.")
        if self.batch_groups and self.group_generators > 1:
            raise HCTreeError("setting batch_groups works only with group_generators=1.")
        if self.batch_groups and (self.uses_views or self.compile != "off"):
            raise HCTreeError(
                "setting batch_groups works only without view losses (lambda_contrast, "
                "lambda_agree, lambda_balance at 0) and with compile=off."
            )
        for name in ("invert", "flip"):
            if not 0 <= getattr(self, name) <= 1:
                raise HCTreeError(f"setting {name} must be a probability in [0, 1].")
        if not 0 <= self.min_child_fraction < 0.5:
            raise HCTreeError("setting min_child_fraction must be in [0, 0.5).")
        if self.collapse_loss < 0:
            raise HCTreeError("setting collapse_loss must be >= 0 (0 disables the check).")
        for name in ("lambda_contrast", "lambda_agree", "lambda_balance", "tint"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise HCTreeError(f"setting {name} must be a finite number >= 0.")
        if not self.contrast_tau > 0:
            raise HCTreeError("setting contrast_tau must be a positive number.")
        if self.embed_iters < 0 or self.embed_batch < 2:
            raise HCTreeError("settings embed_iters must be >= 0 and embed_batch >= 2.")
        if not 0 <= self.embed_shards <= 2 * self.embed_batch:
            raise HCTreeError("setting embed_shards must lie between 0 and twice embed_batch.")
        if self.embed_iters and not self.lambda_contrast > 0:
            raise HCTreeError("setting embed_iters needs lambda_contrast > 0 (a projection head).")
        if self.split_init not in SPLIT_INITS:
            raise HCTreeError(f"setting split_init must be one of {', '.join(SPLIT_INITS)}.")
        if self.spectral_parts < 0:
            raise HCTreeError("setting spectral_parts must be >= 0.")
        if not 0 <= self.spectral_floor < 0.5:
            raise HCTreeError("setting spectral_floor must be in [0, 0.5).")
        if not 0 <= self.spectral_balance <= 1:
            raise HCTreeError("setting spectral_balance must be in [0, 1].")
        if self.spectral_neighbors < 1:
            raise HCTreeError("setting spectral_neighbors must be at least 1.")
        if not (self.lambda_target >= 0 and math.isfinite(self.lambda_target)):
            raise HCTreeError("setting lambda_target must be a finite number >= 0.")
        if self.fit_iters < 0:
            raise HCTreeError("setting fit_iters must be >= 0.")
        if not self.fit_max_draws >= 0:
            raise HCTreeError("setting fit_max_draws must be >= 0.")
        if self.proj_dim < 1:
            raise HCTreeError(f"setting proj_dim must be at least 1, not {self.proj_dim}.")
        if not 0 < self.crop_scale_min <= 1:
            raise HCTreeError("setting crop_scale_min must lie in (0, 1].")
        if not 0 <= self.view_shift <= 0.5:
            raise HCTreeError("setting view_shift must lie in [0, 0.5].")
        if not 0 <= self.view_rotate <= 180:
            raise HCTreeError("setting view_rotate must lie in [0, 180] degrees.")
        if not 0 <= self.view_gain < 1:
            raise HCTreeError("setting view_gain must lie in [0, 1).")


# Short budgets (cpu, tiny) learn much faster with BatchNorm in the generators, 3x3
# discriminator kernels, ten times the paper's learning rates and less instance noise;
# chosen with bench/split_quality.py (numbers in docs/presets.md).
_SMALL = {
    "width_g": 16,
    "width_d": 16,
    "kernel_d": 3,
    "norm_g": "batch_norm",
    "latent_dim": 32,
    "batch_real": 32,
    "batch_gen": 32,
    "lr_d": 1e-3,
    "lr_c": 1e-3,
    "lr_g": 2e-3,
    "noise": 0.5,
}

# The default recipe of cpu and fast (docs/presets.md, "the seeded split"): a trunk
# trained on random views (never mirrored: a mirror image may be another thing),
# inherited down the tree, whose nearest-neighbour graph's spectral cut seeds each
# raw split (on colour images, of features averaged over recolourings; direct or
# over-cut and merged, whichever cut is thinner, never leaving a child under 5% of
# the node, and the merged one only where it is about as balanced as the direct one;
# a node too large for the graph gives it evenly spaced images); no refinements (at
# these budgets they lowered every score).
_SEEDED = {
    "lambda_contrast": 1.0,
    "flip": 0.0,
    "inherit": True,
    "split_init": "spectral",
    "spectral_parts": 8,
    "spectral_floor": 0.05,
    "spectral_balance": 0.8,
    "seed_spread": True,
    "tint": 0.5,
    "seed_recolours": 8,
    "refinements": 0,
}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"group_generators": 2},
    "fast": {
        **_SEEDED,
        "group_generators": 2,
        "norm_g": "batch_norm",
        "raw_epochs": 20.0,
        "embed_iters": 4000,
        "embed_batch": 256,
    },
    # fit_iters: after the GAN phase C's head also fits the seed on every image of the
    # node (docs/benchmarks.md, "Why the whole set's trees fall behind their own trunk")
    "cpu": {
        **_SMALL,
        **_SEEDED,
        "group_generators": 2,
        "width_d": 32,
        "raw_iters": 800,
        "embed_iters": 2000,
        "fit_iters": 100,
    },
    "tiny": {**_SMALL, "raw_iters": 200, "refine_iters": 100, "refinements": 1, "log_every": 10},
}


# ---------------------------------------------------------------- networks of one stage


@dataclass
class _Nets:
    """The trained components of one stage attempt and their optimisers.

    ``owner[j]`` is the discriminator that plays against generator j (raw: all 0;
    refinement: its group), ``child[j]`` the child C labels its images with (raw: j;
    refinement: its group). A refinement group holds ``group_generators`` generators.
    """

    generators: nn.ModuleList
    discriminators: nn.ModuleList
    owner: torch.Tensor  # int64 [generators]
    child: torch.Tensor  # int64 [generators]
    own: list[torch.Tensor]  # per discriminator: int64 rows of the fake batch it judges
    opt_g: torch.optim.Optimizer
    opt_d: list[torch.optim.Optimizer]
    opt_c: list[torch.optim.Optimizer]

    def components(self) -> dict[str, nn.Module]:
        """Component name -> module, as stored in the tree file."""
        out: dict[str, nn.Module] = {}
        for j, g in enumerate(self.generators):
            out[f"G{j}"] = g
        if len(self.discriminators) > 1:  # a refinement: one per group
            for d, disc in enumerate(self.discriminators):
                out[f"D{d}"] = disc
        else:
            out["D"] = self.discriminators[0]
        return out

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        named = {"g": self.opt_g}
        for d, (od, oc) in enumerate(zip(self.opt_d, self.opt_c, strict=True)):
            named[f"d{d}"], named[f"c{d}"] = od, oc
        return named


def _build_modules(
    config: Config,
    k: int,
    n_disc: int,
    image_shape: tuple[int, ...],
    n_gens: int | None = None,
) -> tuple[nn.ModuleList, nn.ModuleList]:
    """``n_gens`` generators (default ``k``) and ``n_disc`` k-way discriminators."""
    channels, size = check_image_shape(image_shape)
    gens = nn.ModuleList(
        Generator(size, channels, config.latent_dim, config.width_g, config.kernel_g, config.norm_g)
        for _ in range(k if n_gens is None else n_gens)
    )
    proj_dim = config.proj_dim if config.lambda_contrast > 0 else 0
    discs = nn.ModuleList(
        Discriminator(size, channels, k, config.width_d, config.kernel_d, config.norm_d, proj_dim)
        for _ in range(n_disc)
    )
    return gens, discs


def _build_nets(
    config: Config, k: int, refine: bool, image_shape: tuple[int, ...], seed: int, device
) -> _Nets:
    """Fresh networks initialised from ``seed`` (never the global RNG) and their optimisers."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        per_group = config.group_generators if refine else 1
        gens, discs = _build_modules(config, k, k if refine else 1, image_shape, k * per_group)
    cuda = device.type == "cuda"
    memory = torch.channels_last if cuda else torch.contiguous_format
    gens.to(device=device, memory_format=memory)
    discs.to(device=device, memory_format=memory)
    n = len(gens)
    owners = [j // per_group for j in range(n)] if refine else [0] * n
    rows = torch.arange(n * config.batch_gen).view(n, -1)  # fake batch rows per generator
    own = [[j for j in range(n) if owners[j] == d] for d in range(len(discs))]
    return _Nets(
        generators=gens,
        discriminators=discs,
        owner=torch.tensor(owners, device=device),
        child=torch.tensor(owners if refine else list(range(n)), device=device),
        own=[rows[gens_of_d].flatten().to(device) for gens_of_d in own],
        opt_g=_adam(gens.parameters(), config.lr_g, config, device),
        opt_d=[_adam(d.head_parameters(), config.lr_d, config, device) for d in discs],
        opt_c=[_adam(d.c_head.parameters(), config.lr_c, config, device) for d in discs],
    )


def _adam(params: Iterable[torch.Tensor], lr: float, config: Config, device: torch.device):
    """The Adam every HC-MGAN network trains with (fused on CUDA)."""
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.Adam(params, lr=lr, betas=(config.beta1, config.beta2), **extra)


def _compile_nets(nets: _Nets, setting: str) -> None:
    """Compile every generator and discriminator trunk in place (state dicts unchanged).

    The trunks and generators hold nearly all of a step's arithmetic; the heads,
    losses, random draws and optimiser steps stay eager.
    """
    engine.compile_modules([*nets.generators, *(d.trunk for d in nets.discriminators)], setting)


def _stack_groups(nets: _Nets, config: Config, device: torch.device):
    """A refinement's networks stacked for the batched step (hcmgan_batched.BatchedGroups)."""
    from hctree.splitters.hcmgan_batched import stack_groups  # it builds on this module

    return stack_groups(nets, config, device)


def _autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _ensemble(discriminators: nn.ModuleList, device: torch.device) -> Callable:
    """fn(images float [B,C,H,W] in [-1,1]) -> mean class probabilities float [B,k]."""

    def probabilities(x: torch.Tensor) -> torch.Tensor:
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device):
            probs = [d.probabilities(x) for d in discriminators]
        return torch.stack(probs).mean(0)

    return probabilities


def _inherit_trunks(nets: _Nets, ctx: SplitContext, refine: bool) -> bool:
    """Start each discriminator's trunk (and projection) from trained ones.

    A refinement's group j starts from the previous stage of this split (its D, or
    its D_j); a raw split starts from the parent split's discriminator that saw this
    node's images (the raw D, or the refinement's D_i for child i). The root starts
    fresh. The classifier and real/fake heads always start fresh. Returns whether
    any trunk was inherited.
    """
    source = ctx.stage_models if refine else ctx.parent_models
    if not source:
        return False
    inherited = False
    for d, disc in enumerate(nets.discriminators):
        name = "D" if "D" in source else f"D{d if refine else ctx.child_index}"
        if name not in source:
            continue
        loaded = engine.load_matching_state(disc, source[name], ("trunk.", "p_head."))
        inherited = inherited or loaded > 0
    return inherited


# ---------------------------------------------------------------- checkpoint state


def _state(
    nets: _Nets,
    optimizers: dict[str, torch.optim.Optimizer],
    gen: torch.Generator,
    attempt: int,
    iteration: int,
    targets: torch.Tensor | None = None,
    curve: LossCurve | None = None,
) -> dict[str, Any]:
    models = {
        name: {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
        for name, m in nets.components().items()
    }
    optims = {}
    for name, opt in optimizers.items():
        saved = opt.state_dict()["state"]
        optims[name] = {
            str(i): {key: torch.as_tensor(v).detach().cpu().clone() for key, v in s.items()}
            for i, s in saved.items()
        }
    return {
        "attempt": attempt,
        "iteration": iteration,
        "rng": engine.rng_state(gen),
        "models": models,
        "optims": optims,
        **({} if targets is None else {"targets": targets.detach().cpu().clone()}),
        **({} if curve is None else {"curve": curve.arrays()}),
    }


def _restore_models(nets: _Nets, state: dict[str, Any]) -> None:
    """Load the networks of a checkpoint."""
    for name, module in nets.components().items():
        module.load_state_dict({k: torch.as_tensor(v) for k, v in state["models"][name].items()})


def _restore(
    optimizers: dict[str, torch.optim.Optimizer], gen: torch.Generator, state: dict[str, Any]
) -> int:
    """Load optimisers and RNG from a checkpoint; returns the next iteration."""
    for name, opt in optimizers.items():
        full = opt.state_dict()
        full["state"] = {
            int(i): {key: torch.as_tensor(v) for key, v in s.items()}
            for i, s in state["optims"][name].items()
        }
        opt.load_state_dict(full)
    engine.set_rng_state(gen, torch.as_tensor(state["rng"]))
    return int(state["iteration"])


# ---------------------------------------------------------------- training


def _add_noise(x: torch.Tensor, sigma: float, gen: torch.Generator) -> torch.Tensor:
    """The reference's multiplicative instance noise: ``x + x * eps * sigma``."""
    if sigma <= 0:
        return x
    eps = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return x + x * eps * sigma


def _train_step(
    nets: _Nets,
    images: torch.Tensor,
    weights: list[torch.Tensor],
    config: Config,
    sigma: float,
    gen: torch.Generator,
    device: torch.device,
    targets: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """One iteration: D and C steps for every discriminator, then one generator step.

    ``weights[d]`` (float ``[N]``) is where discriminator d draws its real images.
    ``targets`` (int64 ``[N]``, optional): a child per image that C also learns on
    real images (C's head only). Returns detached scalar losses (no host sync).
    """
    n, b = len(nets.generators), config.batch_gen  # a refinement group may hold several
    labels = nets.child.repeat_interleave(b)
    z = torch.randn(n, b, config.latent_dim, generator=gen, device=device)
    with _autocast(device):
        fakes = torch.cat([g(z[j]) for j, g in enumerate(nets.generators)])
    fakes = _add_noise(fakes, sigma, gen)

    loss_d, loss_c, loss_v = [], [], []
    for d, disc in enumerate(nets.discriminators):
        idx = torch.multinomial(weights[d], config.batch_real, replacement=True, generator=gen)
        clean = engine.to_unit(images.index_select(0, idx))
        real = _add_noise(clean, sigma, gen)
        own = nets.own[d]
        with _autocast(device):
            feats_fake = disc.features(fakes.detach())
            feats_real = disc.features(real)
            logit_real = disc.real_logit(feats_real).float()
            logit_fake = disc.real_logit(feats_fake.index_select(0, own)).float()
            ld = F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
            ld = ld + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake))
            lc = F.cross_entropy(disc.classify_frozen(feats_fake).float(), labels)
            if targets is not None:
                fit = F.cross_entropy(disc.classify_frozen(feats_real).float(), targets[idx])
                lc = lc + config.lambda_target * fit
        lv = _view_loss(disc, clean, config, gen, device) if config.uses_views else None
        nets.opt_d[d].zero_grad(set_to_none=True)
        nets.opt_c[d].zero_grad(set_to_none=True)
        (ld + lc if lv is None else ld + lc + lv).backward()
        nets.opt_d[d].step()
        nets.opt_c[d].step()
        loss_d.append(ld.detach())
        loss_c.append(lc.detach())
        if lv is not None:
            loss_v.append(lv.detach())

    adv, cls = [], []
    with _autocast(device):
        for disc in nets.discriminators:
            feats = disc.features(fakes)
            logit = disc.real_logit(feats).float()
            bce = F.binary_cross_entropy_with_logits(
                logit, torch.ones_like(logit), reduction="none"
            )
            ce = F.cross_entropy(disc.classify(feats).float(), labels, reduction="none")
            adv.append(bce.view(n, b).mean(1))
            cls.append(ce.view(n, b).mean(1))
    adv_own = torch.stack(adv)[nets.owner, torch.arange(n, device=device)]  # [n]
    cls_mean = torch.stack(cls).mean(0)  # [n]: mean over classifiers, per generator
    loss_g = (adv_own + config.cls_weight * cls_mean).sum()
    nets.opt_g.zero_grad(set_to_none=True)
    loss_g.backward(inputs=list(nets.generators.parameters()))
    nets.opt_g.step()
    out = {
        "d": torch.stack(loss_d).mean(),
        "c": torch.stack(loss_c).mean(),
        "g_adv": adv_own.detach().mean(),
        "g_cls": cls_mean.detach().mean(),
    }
    if loss_v:
        out["views"] = torch.stack(loss_v).mean()
    return out


def seed_embedding(
    trunk: Callable[[torch.Tensor], torch.Tensor],
    config: Config,
    channels: int,
    gen: torch.Generator,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The features a raw split is seeded on: images in [-1, 1] -> unit rows ``[B, F]``.

    ``trunk`` gives a discriminator's features. With ``seed_views`` they are averaged
    over random views of each image; with ``seed_recolours`` (colour images only) over
    random recolourings, so that a colour cast the trunk half ignores cannot carry the cut.
    """

    def unit(x: torch.Tensor) -> torch.Tensor:
        return F.normalize(trunk(x).float(), dim=1)

    if config.seed_views > 0:
        views = config.seed_views

        def view(x: torch.Tensor) -> torch.Tensor:
            return configured_view(x, config, gen)

    elif config.seed_recolours > 0 and channels == 3:
        views = config.seed_recolours

        def view(x: torch.Tensor) -> torch.Tensor:
            return colour_view(x, config.tint, gen)

    else:
        return unit
    return lambda x: F.normalize(view_mean(unit, view, x, views), dim=1)


@torch.no_grad()
def _seed_targets(
    disc: Discriminator, ctx: SplitContext, parent: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """A child per image: the ``split_init`` clustering of the :func:`seed_embedding`
    features (weighted k-means, or spectral clustering of their nearest-neighbour graph).

    Images outside the node get child 0 (they are never drawn). int64 ``[N]``.
    """
    config: Config = ctx.config
    inside = parent > 0
    embed = seed_embedding(disc.features, config, ctx.images.shape[1], gen)
    feats = engine.predict_in_batches(embed, ctx.images, config.predict_batch, inside)
    rows = inside.nonzero().squeeze(1)
    if config.split_init == "spectral":
        notes: dict[str, float] = {}
        labels = spectral_labels(
            feats[rows], parent[rows], ctx.k, gen, config.spectral_neighbors,
            config.spectral_parts, config.spectral_floor, notes, config.seed_spread,
            config.spectral_balance,
        )  # fmt: skip
        if notes:
            ctx.progress.message(
                f"{ctx.node}: spectral_floor {config.spectral_floor:g} changed the seed "
                f"(without it the lightest child would hold {notes['refused_share']:.1%} "
                "of the node's graph)"
            )
    else:
        labels = weighted_kmeans(feats[rows], parent[rows], ctx.k, gen)
    targets = torch.zeros(len(parent), dtype=torch.long, device=parent.device)
    targets[rows] = labels
    return targets


FIT_DECAY = 1e-4  # L2 weight on C's head while it fits the whole node (keeps the fit finite)


def fit_wanted(config: Config, gan_iters: int, mass: float) -> bool:
    """Whether a seeded split fits C's head on the whole node after its GAN phase:
    ``fit_iters`` > 0 and, if ``fit_max_draws`` > 0, the GAN phase drew fewer real
    images for C than ``fit_max_draws`` per image of the node (its mass)."""
    if config.fit_iters <= 0:
        return False
    draws = gan_iters * config.batch_real / max(mass, 1e-12)
    return config.fit_max_draws <= 0 or draws < config.fit_max_draws


def fit_classifier(
    disc: Discriminator,
    images: torch.Tensor,
    parent: torch.Tensor,
    targets: torch.Tensor,
    config: Config,
) -> torch.Tensor:
    """Fit C's head to ``targets`` on every image of the node, the trunk frozen.

    C learns the seed from the real images the GAN phase draws: 3.6 draws per image
    of a 7,000-image node, half a draw per image of a 48,000-image one (docs/
    benchmarks.md, "Why the whole set's trees fall behind their own trunk"). C's
    head is linear, so this is a weighted logistic regression of the targets on the
    final trunk features of every image in the node: ``fit_iters`` iterations of
    full-batch L-BFGS from the head the GAN phase left, each image's cross-entropy
    weighted by its membership ``parent`` (float ``[N]``), plus ``FIT_DECAY`` times
    the squared weights.
    Deterministic. ``targets`` int64 ``[N]``. Returns the trunk features it fitted on,
    float ``[N, F]`` (zero outside the node), for :func:`_children_from_features`.
    """
    inside = parent > 0
    rows = inside.nonzero().squeeze(1)
    was_training = disc.training
    disc.eval()
    every = engine.predict_in_batches(disc.features, images, config.predict_batch, inside)
    feats = every[rows]
    wanted, weights = targets[rows], parent[rows].float()
    weights = weights / weights.sum().clamp_min(1e-12)
    head = disc.c_head
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=config.fit_iters,
                            history_size=10, line_search_fn="strong_wolfe",
                            tolerance_grad=0.0, tolerance_change=0.0)  # fmt: skip

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(feats), wanted, reduction="none")
        total = (loss * weights).sum() + FIT_DECAY * head.weight.square().sum()
        total.backward()
        return total

    opt.step(closure)
    disc.train(was_training)
    return every


@torch.no_grad()
def _children_from_features(
    disc: Discriminator, feats: torch.Tensor, inside: torch.Tensor, batch: int
) -> torch.Tensor:
    """C's probabilities from trunk features already computed, float ``[N, k]``.

    The same batches and operations as ``predict_in_batches`` over the ensemble of
    this one discriminator, so the result is the same bit for bit on the CPU, without
    a second pass of the trunk over the node.
    """

    def probabilities(idx: torch.Tensor) -> torch.Tensor:
        return torch.softmax(disc.c_head(feats.index_select(0, idx)).float(), dim=1)

    rows = inside.nonzero().squeeze(1)
    return engine.map_in_batches(probabilities, len(inside), rows, batch)


def _two_views(clean: torch.Tensor, config: Config, gen: torch.Generator) -> torch.Tensor:
    """Two random views of each real image, stacked: float ``[2B, C, H, W]``."""
    return torch.cat([configured_view(clean, config, gen) for _ in "ab"])


def _embed_step(
    disc: Discriminator,
    opt: torch.optim.Optimizer,
    images: torch.Tensor,
    membership: torch.Tensor,
    config: Config,
    gen: torch.Generator,
    device: torch.device,
    pool: ShardPool | None = None,
) -> dict[str, torch.Tensor]:
    """One contrastive step of the trunk alone (the warm-up of a split with no parent).

    With a ``pool``, the views go through the trunk in ``embed_shards`` one-thread
    shards (hctree.shards), so the step's bits do not depend on the cores it gets.
    """
    clean = engine.sample_batch(images, membership, config.embed_batch, gen)
    b = clean.shape[0]
    views = _two_views(clean, config, gen)
    if pool is not None:
        params = [p for group in opt.param_groups for p in group["params"]]
        loss = sharded_backward(
            pool,
            lambda x: disc.project(disc.features(x)),
            views.chunk(config.embed_shards),
            lambda proj: nt_xent(proj[:b], proj[b:], config.contrast_tau),
            params,
        )
        opt.step()
        return {"embed": loss}
    with _autocast(device):
        proj = disc.project(disc.features(views))
        loss = nt_xent(proj[:b], proj[b:], config.contrast_tau)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"embed": loss.detach()}


def _set_beta1(opt: torch.optim.Optimizer, beta1: float) -> None:
    """Change Adam's first-moment decay in place (its moments are kept)."""
    for group in opt.param_groups:
        group["betas"] = (beta1, group["betas"][1])


def _view_loss(
    disc: Discriminator,
    clean: torch.Tensor,
    config: Config,
    gen: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """The invariance terms on two random views of the real batch ``clean``.

    Contrast trains the trunk and projection head; agreement and balance train C's
    head and, through it, the trunk: real images then divide by what survives a
    crop, a flip and a change of brightness, contrast or colour.
    """
    b = clean.shape[0]
    views = _two_views(clean, config, gen)
    with _autocast(device):
        feats = disc.features(views)
        logits = disc.classify(feats).float()
        loss = config.lambda_agree * view_agreement(logits[:b], logits[b:])
        loss = loss + config.lambda_balance * imbalance(logits)
        if config.lambda_contrast > 0:
            proj = disc.project(feats)
            loss = loss + config.lambda_contrast * nt_xent(proj[:b], proj[b:], config.contrast_tau)
    return loss


@torch.no_grad()
def _generator_losses(nets: _Nets, config: Config, gen: torch.Generator, device) -> torch.Tensor:
    """Each generator's fake-label BCE under its discriminator, float ``[k]`` (collapse check)."""
    out = []
    for j, g in enumerate(nets.generators):
        z = torch.randn(config.batch_gen, config.latent_dim, generator=gen, device=device)
        disc = nets.discriminators[int(nets.owner[j])]
        with _autocast(device):
            logit = disc.real_logit(disc.features(g(z))).float()
        out.append(F.binary_cross_entropy_with_logits(logit, torch.zeros_like(logit)))
    return torch.stack(out)


def _iterations(config: Config, refine: bool, mass: float, k: int) -> int:
    if refine:
        fixed, epochs, per_epoch = config.refine_iters, config.refine_epochs, k * config.batch_real
    else:
        fixed, epochs, per_epoch = config.raw_iters, config.raw_epochs, config.batch_real
    return fixed if fixed > 0 else max(1, math.ceil(epochs * mass / per_epoch))


def _check_stage(stage: str, ctx: SplitContext) -> bool:
    """Whether ``stage`` is a refinement; raises on a stage this splitter does not have."""
    refine = stage.startswith("refine")
    if refine and ctx.previous is None:
        raise ValueError(f"stage {stage} needs the previous stage's memberships")
    if stage != "raw" and not refine:
        raise ValueError(f"unknown HC-MGAN stage {stage!r}")
    return refine


@dataclass
class Attempt:
    """One training attempt of one stage of one node's split: its networks, random
    stream, budget and where it stands (iteration ``start``)."""

    stage: str
    ctx: SplitContext
    number: int
    nets: _Nets
    gen: torch.Generator
    weights: list[torch.Tensor]  # where each discriminator draws real images, float [N]
    warm: int  # contrastive warm-up iterations
    gan_iters: int
    start: int
    targets: torch.Tensor | None
    curve: LossCurve
    groups: Any = None  # hcmgan_batched.BatchedGroups when batch_groups is set

    @property
    def config(self) -> Config:
        return self.ctx.config

    @property
    def refine(self) -> bool:
        return self.stage.startswith("refine")

    @property
    def total(self) -> int:
        return self.warm + self.gan_iters

    @property
    def seeded(self) -> bool:
        return not self.refine and self.config.split_init != "none"

    @property
    def parent(self) -> torch.Tensor:
        return self.ctx.membership.float()

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.nets.optimizers() if self.groups is None else self.groups.optimizers()

    def sigma(self, i: int) -> float:
        """Instance noise at iteration ``i``: linear from ``noise`` to 0 over the GAN phase."""
        return self.config.noise * (1.0 - (i - self.warm + 1) / self.gan_iters)

    def batchable(self, first: Attempt) -> bool:
        """Whether this attempt can train in one batched step with ``first``'s."""
        return (
            self.warm == 0
            and first.warm == 0
            and self.start == first.start
            and self.ctx.k == first.ctx.k
            and self.groups is None
            and self.config.compile == "off"
        )

    def seed_targets(self) -> None:
        """Draw the seeded split's targets if it needs them and has none yet."""
        if self.seeded and self.targets is None:
            self.targets = _seed_targets(
                self.nets.discriminators[0], self.ctx, self.parent, self.gen
            )

    def step(self, i: int, pool: ShardPool | None = None) -> dict[str, torch.Tensor]:
        """Iteration ``i``: a warm-up step, or (seeding first if needed) a GAN step."""
        nets, config, ctx = self.nets, self.config, self.ctx
        if i == self.warm and self.warm:
            _set_beta1(nets.opt_d[0], config.beta1)
        if i < self.warm:
            return _embed_step(nets.discriminators[0], nets.opt_d[0], ctx.images, self.parent,
                               config, self.gen, ctx.device, pool)  # fmt: skip
        self.seed_targets()
        if self.groups is not None:
            return self.groups.step(ctx.images, self.weights, config, self.sigma(i), self.gen,
                                    ctx.device)  # fmt: skip
        return _train_step(nets, ctx.images, self.weights, config, self.sigma(i), self.gen,
                           ctx.device, self.targets)  # fmt: skip

    @contextlib.contextmanager
    def warm_up_shards(self) -> Iterator[ShardPool | None]:
        """The pool the warm-up's shards run on, as wide as the cores the stage got;
        None where the warm-up takes its batch whole (``embed_shards`` 0, or a GPU)."""
        if not self.config.embed_shards or self.ctx.device.type != "cpu":
            yield None
            return
        width = min(self.ctx.cores, self.config.embed_shards)
        with one_thread(), ShardPool(width) as pool:
            yield pool

    def snapshot(self, iteration: int) -> dict[str, Any]:
        """The checkpoint state after ``iteration`` iterations."""
        if self.groups is not None:
            self.groups.unstack_into(self.nets)
        return _state(self.nets, self.optimizers(), self.gen, self.number, iteration,
                      self.targets, self.curve)  # fmt: skip

    def train(self) -> tuple[Attempt, dict[str, torch.Tensor]]:
        """Run the remaining iterations (checkpointing, stopping on request)."""
        ctx = self.ctx
        ctx.progress.start(f"{ctx.node} {self.stage}", self.total, self.start)
        losses: dict[str, torch.Tensor] = {}
        if self.start < self.warm:
            _set_beta1(self.nets.opt_d[0], self.config.embed_beta1)
            with self.warm_up_shards() as pool:
                for i in range(self.start, self.warm):
                    losses = self.iterate(i, pool)
        for i in range(max(self.start, self.warm), self.total):
            losses = self.iterate(i)
        ctx.progress.finish()
        if self.groups is not None:
            self.groups.unstack_into(self.nets)
        return self, losses

    def iterate(self, i: int, pool: ShardPool | None = None) -> dict[str, torch.Tensor]:
        """Iteration ``i`` with its progress report, checkpoint and stop check."""
        ctx = self.ctx
        losses = self.step(i, pool)
        if (i + 1) % self.config.log_every == 0 or i + 1 == self.total:
            ctx.progress.update(i + 1, self.curve.record(i + 1, losses))
        stop = ctx.should_stop()
        if stop or ctx.checkpoint.due():
            ctx.checkpoint.save(self.snapshot(i + 1))
        if stop:
            raise Interrupted()
        return losses

    def train_and_finish(self) -> tuple[StageResult, str]:
        return self.finish(self.train()[1])

    def finish(self, losses: dict[str, torch.Tensor]) -> tuple[StageResult, str]:
        """Re-estimate the split with the trained networks; returns the result and a
        collapse description ('' if none)."""
        nets, config, ctx, device = self.nets, self.config, self.ctx, self.ctx.device
        parent = self.parent
        mass = float(parent.sum())
        fitted = None
        if self.seeded and self.targets is not None and fit_wanted(config, self.gan_iters, mass):
            fitted = fit_classifier(nets.discriminators[0], ctx.images, parent, self.targets,
                                    config)  # fmt: skip
        nets.generators.eval()
        nets.discriminators.eval()
        if fitted is not None and device.type == "cpu" and len(nets.discriminators) == 1:
            probs = _children_from_features(
                nets.discriminators[0], fitted, parent > 0, config.predict_batch
            )
        else:
            del fitted  # not reusable (another device's kernels, or several discriminators)
            probs = engine.predict_in_batches(
                _ensemble(nets.discriminators, device), ctx.images, config.predict_batch, parent > 0
            )
        children = probs.T * parent  # [k, N]
        scale = max(float(parent.abs().max()), 1.0)
        if not torch.allclose(children.sum(0), parent, rtol=1e-5, atol=1e-5 * scale):
            raise AssertionError("children memberships do not sum to the parent's")

        fractions = children.sum(1) / max(mass, 1e-12)
        metrics = {f"loss_{n}": float(v) for n, v in losses.items()}
        metrics.update({f"mass{j}": float(f) for j, f in enumerate(fractions)})
        gen_losses = _generator_losses(nets, config, self.gen, device)
        metrics["min_fake_loss"] = float(gen_losses.min())
        stop = False
        if self.refine:
            moved = float((children - ctx.previous.float()).abs().sum()) / (2 * max(mass, 1e-12))
            metrics["change"] = moved
            stop = moved < config.stop_threshold

        collapse = ""
        if float(fractions.min()) < config.min_child_fraction:
            collapse = f"a child received {float(fractions.min()):.4f} of the node's mass"
        elif float(gen_losses.min()) < config.collapse_loss:
            collapse = "a generator collapsed (its images are trivially rejected)"
        models = {name: engine.state_to_numpy(m) for name, m in nets.components().items()}
        memberships = children.float().cpu().numpy()
        result = StageResult(memberships, models, metrics, stop=stop, curves=self.curve.arrays())
        return result, collapse


def begin_attempt(
    stage: str, ctx: SplitContext, number: int, saved: dict[str, Any] | None
) -> Attempt:
    """Networks, random stream and budget of attempt ``number``, from a checkpoint if given."""
    config: Config = ctx.config
    refine = stage.startswith("refine")
    k, device = ctx.k, ctx.device
    parent = ctx.membership.float()
    seed = ctx.seed if number == 0 else engine.derive_seed(ctx.seed, "attempt", number)
    image_shape = tuple(ctx.images.shape[1:])
    nets = _build_nets(config, k, refine, image_shape, engine.derive_seed(seed, "init"), device)
    inherited = config.inherit and _inherit_trunks(nets, ctx, refine)
    gen = engine.make_generator(engine.derive_seed(seed, "train"), device)
    if saved is not None:
        _restore_models(nets, saved)
    groups = _stack_groups(nets, config, device) if refine and config.batch_groups else None
    attempt = Attempt(
        stage=stage,
        ctx=ctx,
        number=number,
        nets=nets,
        gen=gen,
        weights=list(ctx.previous.float()) if refine else [parent],
        warm=0 if refine or inherited else config.embed_iters,
        gan_iters=_iterations(config, refine, float(parent.sum()), k),
        start=0,
        targets=None if saved is None or "targets" not in saved else saved["targets"].to(device),
        curve=LossCurve.from_arrays(None if saved is None else saved.get("curve")),
        groups=groups,
    )
    if saved is not None:
        attempt.start = _restore(attempt.optimizers(), gen, saved)
    _compile_nets(nets, config.compile)
    return attempt


# ---------------------------------------------------------------- the splitter


class HCMGANSplitter:
    """HC-MGAN (de Mello et al.): raw split + refinements, any branching k >= 2."""

    name: ClassVar[str] = "hcmgan"
    Config: ClassVar[type] = Config
    presets: ClassVar[dict[str, dict[str, Any]]] = PRESETS
    max_branching: ClassVar[int | None] = None
    image_sizes: ClassVar[tuple[int, ...]] = SIZES  # square sizes the networks take

    @staticmethod
    def check_images(image_shape: tuple[int, ...]) -> None:
        """HCTreeError, in one sentence, when the networks cannot take ``(C, H, W)`` images."""
        check_image_shape(image_shape)

    def stages(self, config: Config) -> list[str]:
        return ["raw"] + [f"refine{t}" for t in range(1, config.refinements + 1)]

    def run_stage(self, stage: str, ctx: SplitContext) -> StageResult:
        """Train one stage (retrying collapsed attempts) and re-estimate the split."""
        refine = _check_stage(stage, ctx)
        if refine and bool((ctx.previous.sum(1) <= 0).any()):
            ctx.progress.message(f"{ctx.node} {stage}: a child is empty; nothing to refine.")
            keep = ctx.previous.detach().float().cpu().numpy()
            return StageResult(keep, {}, {"attempts": 0.0, "collapsed": 1.0}, stop=True)
        saved = ctx.checkpoint.load()
        attempt = int(saved["attempt"]) if saved is not None else 0
        return self.settle(begin_attempt(stage, ctx, attempt, saved).train())

    def run_stages_together(self, stage: str, contexts: list[SplitContext]) -> list[StageResult]:
        """The same stage of several nodes' splits, trained as one batched step where it
        can be (raw splits that start at the same iteration, hctree.splitters.hcmgan_frontier);
        otherwise one after the other. Each result is what :meth:`run_stage` computes, up
        to float rounding."""
        from hctree.splitters.hcmgan_frontier import train_together  # builds on this module

        attempts = []
        for ctx in contexts:
            _check_stage(stage, ctx)
            saved = ctx.checkpoint.load()
            attempt = int(saved["attempt"]) if saved is not None else 0
            attempts.append(begin_attempt(stage, ctx, attempt, saved))
        if (
            stage != "raw"
            or len(attempts) < 2
            or not all(a.batchable(attempts[0]) for a in attempts)
        ):
            return [self.settle(a.train()) for a in attempts]
        return [self.settle(trained) for trained in train_together(attempts)]

    def settle(self, trained: tuple[Attempt, dict[str, torch.Tensor]]) -> StageResult:
        """Finish a trained attempt; retry a collapsed one up to ``max_attempts``."""
        attempt, losses = trained
        result, collapse = attempt.finish(losses)
        stage, ctx, config = attempt.stage, attempt.ctx, attempt.config
        number = attempt.number
        while collapse and number + 1 < config.max_attempts:
            number += 1
            ctx.progress.message(
                f"{ctx.node} {stage}: {collapse}; retrying (attempt {number + 1} "
                f"of {config.max_attempts})."
            )
            result, collapse = begin_attempt(stage, ctx, number, None).train_and_finish()
        result.metrics["attempts"] = float(number + 1)
        result.metrics["collapsed"] = float(bool(collapse))
        if collapse:
            ctx.progress.message(
                f"{ctx.node} {stage}: {collapse} after {number + 1} attempts; "
                + (
                    "keeping the previous stage's split."
                    if attempt.refine
                    else "keeping this split."
                )
            )
            if attempt.refine:
                keep = ctx.previous.detach().float().cpu().numpy()
                return StageResult(keep, {}, result.metrics, stop=True, curves=result.curves)
        return result

    # ------------------------------------------------------------ using stored models

    def predict(
        self,
        models: ModelState,
        config: Config,
        image_shape: tuple[int, ...],
        device: torch.device,
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """fn(float images in [-1,1] ``[B,C,H,W]``) -> child probabilities float ``[B,k]``.

        The same function (single classifier for raw, ensemble mean for a
        refinement) that re-estimated the stage's memberships.
        """
        return _ensemble(_stored_discriminators(models, config, image_shape, device), device)

    def features(
        self,
        models: ModelState,
        config: Config,
        image_shape: tuple[int, ...],
        device: torch.device,
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """fn(float images in [-1,1] ``[B,C,H,W]``) -> unit-length trunk features ``[B,F]``.

        The trunk of the split's (first) discriminator: what its classifier reads.
        """
        disc = _stored_discriminators(models, config, image_shape, device, first_only=True)[0]
        return lambda x: F.normalize(disc.features(x).float(), dim=1)

    @torch.no_grad()
    def generate(
        self,
        models: ModelState,
        config: Config,
        image_shape: tuple[int, ...],
        n: int,
        seed: int,
        device: torch.device,
    ) -> torch.Tensor:
        """n images from each child's generator: uint8 ``[k, n, C, H, W]`` on the CPU."""
        k, _ = _shape_of(models)
        n_gens = _generator_count(models)
        per_child = n_gens // k  # a refinement group may hold several generators
        each = -(-n // per_child)  # images per generator, the child's first n kept
        gens, _ = _build_modules(config, k, 0, image_shape, n_gens)
        gen = engine.make_generator(seed, device)
        made = []
        for j, g in enumerate(gens):
            engine.load_numpy_state(g, models[f"G{j}"])
            g.to(device).eval()
            z = torch.randn(each, config.latent_dim, generator=gen, device=device)
            made.append(engine.to_uint8(g(z)).cpu())
        out = [torch.cat(made[c * per_child : (c + 1) * per_child])[:n] for c in range(k)]
        return torch.stack(out)


def _stored_discriminators(
    models: ModelState,
    config: Config,
    image_shape: tuple[int, ...],
    device: torch.device,
    first_only: bool = False,
) -> nn.ModuleList:
    """The split's discriminators rebuilt from stored models, on ``device`` in eval mode.

    Raw: the one ``D``; a refinement: ``D0`` .. ``D{k-1}`` (only ``D0`` with ``first_only``).
    """
    k, refine = _shape_of(models)
    names = [f"D{j}" for j in range(k)] if refine else ["D"]
    names = names[:1] if first_only else names
    _, discs = _build_modules(config, k, len(names), image_shape)
    for name, disc in zip(names, discs, strict=True):
        engine.load_numpy_state(disc, models[name])
    return discs.to(device).eval()


def _shape_of(models: ModelState) -> tuple[int, bool]:
    """(number of children, whether the models are a refinement's) from component names:
    a raw split stores one D and a generator per child, a refinement a D_j per child."""
    refine = "D" not in models
    k = sum(1 for name in models if name.startswith("D" if refine else "G"))
    if k < 2 or _generator_count(models) % k:
        raise HCTreeError("the stored HC-MGAN models are incomplete; grow the split again.")
    return k, refine


def _generator_count(models: ModelState) -> int:
    """How many generators a stage stored (a refinement group may hold several)."""
    return sum(1 for name in models if name.startswith("G"))


__all__ = ["Config", "HCMGANSplitter", "PRESETS"]
