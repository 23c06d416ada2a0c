"""slcGAN flat splitter: a clustering network trained inside a conditional GAN.

Self-labeled conditional GANs (Noroozi 2020, Algorithm 1). Three networks play:

- G, a conditional generator: ``G(z, onehot(c))`` with ``c`` uniform over Y clusters;
- D, a projection discriminator scoring real pairs ``(x, softmax C(x))`` against fake
  pairs ``(G(z, c), onehot(c))`` with a unary (image only) and a joint hinge term;
- C, the clustering network; its softmax is the real pair's label.

One training iteration (``lambda_*`` weigh the three losses of the paper's Eq. 6):

1. ``d_steps`` discriminator steps, each on a fresh real and fake batch:
   ``hinge(1 - u_r) + hinge(1 - s_r) + hinge(1 + u_f) + hinge(1 + s_f)``;
2. one generator step: ``-u_f - s_f`` plus ``L_mi = CE(C(G(z, c)), c)``; L_mi updates
   G only (C is frozen for it);
3. one clustering step on a fresh real batch: ``s_r`` (C cooperates with G against D)
   plus the multi-view consistency ``-sum_j q_j log p_j`` with ``p = softmax C(x)``,
   ``q = softmax C(T(x))`` held fixed as the target (no gradient: with gradients
   through both views the loss rewards one confident cluster for every image and C
   collapsed onto it in our runs) and ``T`` a random crop, flip and colour jitter applied to
   the batch on the device.

Two additions to step 3, both off by default and in the ``paper`` preset, on in ``cpu``
and ``tiny`` (at budgets of a few hundred iterations C otherwise settles on a weak
split, e.g. by amount of ink; trouser vs bag measured 0.5-0.8 purity without them):

- ``lambda_balance`` weighs ``log Y - H(mean_batch p)``, the marginal-entropy (balance)
  term common in deep clustering: it keeps C from putting most of a batch in one cluster;
- ``target_temp`` < 1 sharpens the consistency target, ``q = softmax(C(T(x)) / t)``,
  so that C's predictions become confident within few iterations (1 is the paper's loss).

``c_flatten`` (also ``cpu`` and ``tiny`` only) feeds C's head the flattened base-resolution
feature map instead of its spatial mean: the small trunk's pooled features mostly measure
ink, the flattened map keeps the layout that tells shapes apart.

Real batches are weighted draws by the node's membership. With ``overcluster = m``
the GAN is trained with ``Y = k * m`` clusters; afterwards the Y clusters are grouped
into the k children by Ward agglomeration of their *prototypes* (the mean unit-length
C feature of each cluster's images, weighted by membership times cluster probability;
each cluster weighs its mass; unit length because the raw feature norm mostly measures
ink and grouped trouser and bag clusters wrongly in our runs). A child's membership is the summed probability of its
group's clusters times the parent membership, so children always sum to the parent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hctree import engine
from hctree.curves import LossCurve
from hctree.errors import HCTreeError, Interrupted
from hctree.nets.slcgan_nets import (
    SIZES,
    Clusterer,
    Discriminator,
    Generator,
    check_image_shape,
)
from hctree.splitters.base import ModelState, SplitContext, StageResult
from hctree.splitters.grouping import split_by_clusters

COMPONENTS = ("generator", "discriminator", "clusterer")


@dataclass
class SLCGANConfig:
    """Every hyper-parameter of an slcGAN split (see docs/presets.md)."""

    iters: int = 2000
    batch: int = 64
    overcluster: int = 1
    z_dim: int = 128
    g_width: int = 32
    d_width: int = 32
    c_width: int = 32
    c_flatten: bool = False
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    lr_c: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.999)
    d_steps: int = 2
    lambda_adv: float = 1.0
    lambda_mi: float = 1.0
    lambda_aug: float = 1.0
    lambda_balance: float = 0.0
    target_temp: float = 1.0
    crop_min: float = 0.7
    jitter: float = 0.3
    flip: bool = True
    eval_batch: int = 1024
    log_every: int = 20  # iterations between progress reports and curve points
    compile: str = "off"  # off | inductor | cudagraphs | trace: torch.compile G, D and C

    def validate(self) -> None:
        """Raise HCTreeError naming the first setting that is out of range."""
        engine.check_compile(self.compile)
        positive = ("iters", "batch", "overcluster", "z_dim", "g_width", "d_width", "c_width")
        positive += ("d_steps", "eval_batch", "log_every")
        for key in positive:
            if int(getattr(self, key)) < 1:
                raise HCTreeError(f"setting {key} must be at least 1, not {getattr(self, key)}.")
        for key in ("lr_g", "lr_d", "lr_c"):
            if not getattr(self, key) > 0:
                raise HCTreeError(f"setting {key} must be positive, not {getattr(self, key)}.")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise HCTreeError(f"setting betas must be two numbers in [0, 1), not {self.betas}.")
        for key in ("lambda_adv", "lambda_mi", "lambda_aug", "lambda_balance", "jitter"):
            if not getattr(self, key) >= 0:
                raise HCTreeError(
                    f"setting {key} must be zero or positive, not {getattr(self, key)}."
                )
        if not self.target_temp > 0:
            raise HCTreeError(f"setting target_temp must be positive, not {self.target_temp}.")
        if not 0.0 < self.crop_min <= 1.0:
            raise HCTreeError(f"setting crop_min must be in (0, 1], not {self.crop_min}.")


class SLCGANSplitter:
    """Flat k-way split by the clustering network of a self-labeled conditional GAN."""

    name: ClassVar[str] = "slcgan"
    Config: ClassVar[type] = SLCGANConfig
    max_branching: ClassVar[int | None] = None
    image_sizes: ClassVar[tuple[int, ...]] = SIZES  # square sizes the networks take
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {
            "iters": 50000,
            "batch": 256,
            "g_width": 128,
            "d_width": 128,
            "c_width": 64,
            "overcluster": 1,
        },
        "fast": {"iters": 4000, "batch": 128, "g_width": 64, "d_width": 64, "c_width": 32},
        "cpu": {
            "iters": 300,
            "overcluster": 3,
            "batch": 64,
            "g_width": 16,
            "d_width": 16,
            "c_width": 16,
            "c_flatten": True,
            "lambda_balance": 4.0,
            "target_temp": 0.5,
            "lr_c": 1e-3,
        },
        "tiny": {
            "iters": 120,
            "overcluster": 3,
            "batch": 32,
            "z_dim": 32,
            "g_width": 8,
            "d_width": 8,
            "c_width": 8,
            "lr_c": 2e-3,
            "lr_g": 4e-4,
            "lr_d": 4e-4,
            "c_flatten": True,
            "lambda_balance": 4.0,
            "target_temp": 0.5,
            "eval_batch": 512,
        },
    }

    @staticmethod
    def check_images(image_shape: tuple[int, ...]) -> None:
        """HCTreeError, in one sentence, when the networks cannot take ``(C, H, W)`` images."""
        check_image_shape(image_shape)

    def stages(self, config: SLCGANConfig) -> list[str]:
        return ["train"]

    def run_stage(self, stage: str, ctx: SplitContext) -> StageResult:
        """Train G, D and C on the node, then split its membership into ``ctx.k`` children."""
        if stage != "train":
            raise ValueError(f"slcgan has one stage, 'train', not {stage!r}")
        cfg: SLCGANConfig = ctx.config
        n_clusters = ctx.k * cfg.overcluster
        nets = _build_nets(cfg, tuple(ctx.images.shape[1:]), n_clusters, ctx.device, ctx.seed)
        optims = {name: _adam(nets[name], lr, cfg, ctx.device) for name, lr in _lrs(cfg).items()}
        gen = engine.make_generator(engine.derive_seed(ctx.seed, "slcgan", "train"), ctx.device)
        start = 0
        saved = ctx.checkpoint.load()
        if saved is not None:
            start = _restore(saved, nets, optims, gen)
        curve = LossCurve.from_arrays(None if saved is None else saved.get("curve"))
        engine.compile_modules(nets.values(), cfg.compile)

        ctx.progress.start(f"{ctx.node} {stage}", cfg.iters, start)
        losses: dict[str, torch.Tensor] = {}
        for it in range(start, cfg.iters):
            losses = _train_iteration(nets, optims, ctx, cfg, n_clusters, gen)
            done = it + 1
            if done % cfg.log_every == 0 or done == cfg.iters:
                ctx.progress.update(done, curve.record(done, losses))
            if done < cfg.iters and ctx.should_stop():
                ctx.checkpoint.save({**_snapshot(nets, optims, gen, done), "curve": curve.arrays()})
                raise Interrupted()
            if done < cfg.iters and ctx.checkpoint.due():
                ctx.checkpoint.save({**_snapshot(nets, optims, gen, done), "curve": curve.arrays()})
        ctx.progress.finish()

        memberships, grouping, mass = _split(nets["clusterer"], ctx, cfg)
        models: ModelState = {name: engine.state_to_numpy(nets[name]) for name in COMPONENTS}
        models["grouping"] = {"cluster_to_child": grouping, "cluster_mass": mass}
        metrics = {k: float(v) for k, v in losses.items()}
        child_mass = memberships.sum(1)
        for j, frac in enumerate((child_mass / child_mass.sum()).tolist()):
            metrics[f"child{j}_mass_frac"] = frac
        metrics["clusters_used"] = float((mass > 1e-3 * mass.sum()).sum())
        return StageResult(
            memberships=memberships.cpu().numpy(),
            models=models,
            metrics=metrics,
            curves=curve.arrays(),
        )

    @staticmethod
    def predict(
        models: ModelState, config: SLCGANConfig, image_shape: tuple[int, ...], device: torch.device
    ) -> Callable[[torch.Tensor], torch.Tensor]:
        """Rebuild C and the grouping: fn(float images [B,C,H,W] in [-1,1]) -> float [B, k]."""
        shape = _shape(image_shape)
        cluster_to_child = torch.as_tensor(models["grouping"]["cluster_to_child"], device=device)
        clusterer = Clusterer(*shape, len(cluster_to_child), config.c_width, config.c_flatten)
        engine.load_numpy_state(clusterer, models["clusterer"])
        clusterer.to(device).eval()
        return _child_probs_fn(clusterer, cluster_to_child, device)

    @staticmethod
    def generate(
        models: ModelState,
        config: SLCGANConfig,
        image_shape: tuple[int, ...],
        n: int,
        seed: int,
        device: torch.device,
    ) -> torch.Tensor:
        """uint8 ``[k, n, C, H, W]``: n images per child, conditioned on its group's clusters.

        Clusters of a child are drawn in proportion to their mass on the training node.
        """
        shape = _shape(image_shape)
        cluster_to_child = torch.as_tensor(models["grouping"]["cluster_to_child"], device=device)
        mass = torch.as_tensor(models["grouping"]["cluster_mass"], device=device).float()
        n_clusters = len(cluster_to_child)
        k = int(cluster_to_child.max()) + 1
        generator = Generator(*shape, n_clusters, config.z_dim, config.g_width)
        engine.load_numpy_state(generator, models["generator"])
        generator.to(device).eval()
        gen = engine.make_generator(seed, device)
        out = []
        with torch.no_grad():
            for child in range(k):
                weights = (cluster_to_child == child).float() * (mass + 1e-8)
                c = torch.multinomial(weights, n, replacement=True, generator=gen)
                z = torch.randn(n, config.z_dim, generator=gen, device=device)
                images = generator(z, F.one_hot(c, n_clusters).float())
                out.append(engine.to_uint8(images))
        return torch.stack(out)


# ---------------------------------------------------------------- building


def _shape(image_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(C, H, W)`` -> ``(size, channels)`` in the order the networks take them."""
    channels, size = check_image_shape(image_shape)
    return size, channels


def _build_nets(
    cfg: SLCGANConfig,
    image_shape: tuple[int, ...],
    n_clusters: int,
    device: torch.device,
    seed: int,
) -> dict[str, nn.Module]:
    """G, D and C initialised from ``seed`` (on CPU, in a forked RNG), moved to ``device``.

    channels_last on every device: it is also the faster layout for small CPU convolutions.
    """
    size, channels = _shape(image_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(engine.derive_seed(seed, "slcgan", "init"))
        nets = {
            "generator": Generator(size, channels, n_clusters, cfg.z_dim, cfg.g_width),
            "discriminator": Discriminator(size, channels, n_clusters, cfg.d_width),
            "clusterer": Clusterer(size, channels, n_clusters, cfg.c_width, cfg.c_flatten),
        }
    return {k: v.to(device, memory_format=torch.channels_last).train() for k, v in nets.items()}


def _lrs(cfg: SLCGANConfig) -> dict[str, float]:
    return {"generator": cfg.lr_g, "discriminator": cfg.lr_d, "clusterer": cfg.lr_c}


def _adam(net: nn.Module, lr: float, cfg: SLCGANConfig, device: torch.device) -> torch.optim.Adam:
    fused = device.type == "cuda"
    return torch.optim.Adam(net.parameters(), lr=lr, betas=tuple(cfg.betas), fused=fused)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA, nothing on CPU (fp32)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _frozen(*nets: nn.Module) -> Iterator[None]:
    """Stop gradients into ``nets``' parameters (activations still carry gradients)."""
    for net in nets:
        net.requires_grad_(False)
    try:
        yield
    finally:
        for net in nets:
            net.requires_grad_(True)


# ---------------------------------------------------------------- training


def augment(
    x: torch.Tensor, gen: torch.Generator, crop_min: float, jitter: float, flip: bool
) -> torch.Tensor:
    """A random view of each image: crop-and-resize, horizontal flip, colour jitter.

    x: float ``[B, C, H, W]`` in [-1, 1]. The crop keeps a square of side ``crop_min..1``
    of the image; jitter shifts brightness and scales contrast (and saturation for
    colour) by up to ``jitter``. All draws come from ``gen``. Returns float like ``x``.
    """
    b, channels = x.shape[:2]
    r = torch.rand(b, 7, generator=gen, device=x.device)
    scale = crop_min + (1.0 - crop_min) * r[:, 0]
    sign = torch.where(r[:, 3] < 0.5, -1.0, 1.0) if flip else torch.ones_like(scale)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0] = scale * sign
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = (1.0 - scale) * (2.0 * r[:, 1] - 1.0)
    theta[:, 1, 2] = (1.0 - scale) * (2.0 * r[:, 2] - 1.0)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    brightness = (jitter * (2.0 * r[:, 4] - 1.0)).view(b, 1, 1, 1)
    contrast = (1.0 + jitter * (2.0 * r[:, 5] - 1.0)).view(b, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * contrast + mean + brightness
    if channels == 3:
        saturation = (1.0 + jitter * (2.0 * r[:, 6] - 1.0)).view(b, 1, 1, 1)
        grey = out.mean(dim=1, keepdim=True)
        out = (out - grey) * saturation + grey
    return out.clamp(-1.0, 1.0)


def _real_batch(ctx: SplitContext, cfg: SLCGANConfig, gen: torch.Generator) -> torch.Tensor:
    x = engine.sample_batch(ctx.images, ctx.membership, cfg.batch, gen)
    return x.contiguous(memory_format=torch.channels_last)


def _fake_labels(
    cfg: SLCGANConfig, n_clusters: int, gen: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Latents ``z [B, z_dim]``, uniform cluster ids ``c [B]`` and their one-hot ``[B, Y]``."""
    z = torch.randn(cfg.batch, cfg.z_dim, generator=gen, device=device)
    c = torch.randint(n_clusters, (cfg.batch,), generator=gen, device=device)
    return z, c, F.one_hot(c, n_clusters).float()


def _train_iteration(
    nets: dict[str, nn.Module],
    optims: dict[str, torch.optim.Optimizer],
    ctx: SplitContext,
    cfg: SLCGANConfig,
    n_clusters: int,
    gen: torch.Generator,
) -> dict[str, torch.Tensor]:
    """Algorithm 1 of the paper with ``d_steps`` D updates per G and C update."""
    G, D, C = nets["generator"], nets["discriminator"], nets["clusterer"]
    autocast = _autocast(ctx.device)

    for _ in range(cfg.d_steps):
        x = _real_batch(ctx, cfg, gen)
        z, _, onehot = _fake_labels(cfg, n_clusters, gen, ctx.device)
        with autocast:
            with torch.no_grad():
                y_real = C(x)[0].float().softmax(1)
                fake = G(z, onehot)
            u_r, s_r = D(x, y_real)
            u_f, s_f = D(fake, onehot)
            loss_d = (
                cfg.lambda_adv
                * (F.relu(1 - u_r) + F.relu(1 - s_r) + F.relu(1 + u_f) + F.relu(1 + s_f))
                .float()
                .mean()
            )
        optims["discriminator"].zero_grad(set_to_none=True)
        loss_d.backward()
        optims["discriminator"].step()

    z, c, onehot = _fake_labels(cfg, n_clusters, gen, ctx.device)
    with autocast, _frozen(D, C):
        fake = G(z, onehot)
        u_f, s_f = D(fake, onehot)
        loss_g_adv = -(u_f + s_f).float().mean()
        loss_mi = F.cross_entropy(C(fake)[0].float(), c)
        loss_g = cfg.lambda_adv * loss_g_adv + cfg.lambda_mi * loss_mi
    optims["generator"].zero_grad(set_to_none=True)
    loss_g.backward()
    optims["generator"].step()

    x = _real_batch(ctx, cfg, gen)
    view = augment(x, gen, cfg.crop_min, cfg.jitter, cfg.flip)
    with autocast, _frozen(D):
        log_p = C(x)[0].float().log_softmax(1)
        _, s_r = D(x, log_p.exp())
        with torch.no_grad():
            q = (C(view)[0].float() / cfg.target_temp).softmax(1)
        loss_c_adv = s_r.float().mean()
        loss_aug = -(q * log_p).sum(1).mean()
        loss_c = cfg.lambda_adv * loss_c_adv + cfg.lambda_aug * loss_aug
        if cfg.lambda_balance > 0:
            marginal = log_p.exp().mean(0)
            loss_balance = (marginal * marginal.clamp_min(1e-12).log()).sum() + np.log(n_clusters)
            loss_c = loss_c + cfg.lambda_balance * loss_balance
    optims["clusterer"].zero_grad(set_to_none=True)
    loss_c.backward()
    optims["clusterer"].step()

    return {
        "d": loss_d.detach(),
        "g_adv": loss_g_adv.detach(),
        "g_mi": loss_mi.detach(),
        "c_adv": loss_c_adv.detach(),
        "c_aug": loss_aug.detach(),
    }


# ---------------------------------------------------------------- checkpoints


def _snapshot(
    nets: dict[str, nn.Module],
    optims: dict[str, torch.optim.Optimizer],
    gen: torch.Generator,
    iteration: int,
) -> dict[str, Any]:
    """Everything needed to continue exactly: weights, Adam moments, RNG, iteration (CPU)."""
    state: dict[str, Any] = {"iteration": iteration, "rng": engine.rng_state(gen)}
    for name in COMPONENTS:
        state[f"model_{name}"] = {
            k: v.detach().cpu().clone() for k, v in nets[name].state_dict().items()
        }
        adam = optims[name].state_dict()["state"]
        state[f"adam_{name}"] = {
            str(i): {k: v.detach().cpu().clone() for k, v in s.items()} for i, s in adam.items()
        }
    return state


def _restore(
    state: dict[str, Any],
    nets: dict[str, nn.Module],
    optims: dict[str, torch.optim.Optimizer],
    gen: torch.Generator,
) -> int:
    """Load a :func:`_snapshot` (tensors or numpy arrays); returns the iteration to resume at."""
    for name in COMPONENTS:
        nets[name].load_state_dict({k: _tensor(v) for k, v in state[f"model_{name}"].items()})
        adam = {
            int(i): {k: _tensor(v) for k, v in s.items()} for i, s in state[f"adam_{name}"].items()
        }
        groups = optims[name].state_dict()["param_groups"]
        optims[name].load_state_dict({"state": adam, "param_groups": groups})
    engine.set_rng_state(gen, _tensor(state["rng"]).to(torch.uint8))
    return int(state["iteration"])


def _tensor(value: Any) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))


# ---------------------------------------------------------------- the split


def _child_probs_fn(
    clusterer: nn.Module, cluster_to_child: torch.Tensor, device: torch.device
) -> Callable[[torch.Tensor], torch.Tensor]:
    """fn(images float [B,C,H,W] in [-1,1]) -> children probabilities float32 [B, k]."""
    k = int(cluster_to_child.max()) + 1
    groups = F.one_hot(cluster_to_child.long(), k).float()

    def child_probs(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), _autocast(device):
            logits = clusterer(x)[0]
        return logits.float().softmax(1) @ groups

    return child_probs


def _split(
    clusterer: nn.Module, ctx: SplitContext, cfg: SLCGANConfig
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Children memberships float32 ``[k, N]``, cluster_to_child int64 ``[Y]``, mass ``[Y]``."""
    clusterer.eval()
    n_clusters = ctx.k * cfg.overcluster
    mask = ctx.membership > 0

    def probs_and_features(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), _autocast(ctx.device):
            logits, features = clusterer(x)
        return torch.cat([logits.float().softmax(1), features.float()], 1)

    out = engine.predict_in_batches(probs_and_features, ctx.images, cfg.eval_batch, mask)
    probs, features = out[:, :n_clusters], out[:, n_clusters:]
    unit = F.normalize(features, dim=1)
    memberships, grouping, mass = split_by_clusters(probs, unit, ctx.membership, ctx.k)
    return memberships, grouping, mass.double().cpu().numpy()
