"""An HC-MGAN refinement step with the k groups trained together (torch.func).

The sequential step (:func:`hctree.splitters.hcmgan._train_step`) runs the k
generators and the k discriminators one after the other. Here each kind of network
has its parameters stacked along a new leading dimension of size k
(``torch.func.stack_module_state``) and runs once under ``torch.func.vmap`` with
``functional_call``; one backward pass gives every group its own gradients, since
the groups' losses are independent and summed. Adam is elementwise, so one Adam over
the stacked tensors updates each group exactly as its own optimiser would.

The random draws (latents, instance noise, real batches) are made in the same order
as the sequential step, so from the same state both compute the same losses,
gradients and updates (up to float rounding).

Generator BatchNorm: under vmap each group normalises with its own batch statistics
(per-group in-vmap batch stats), and the stacked running statistics are passed in as
batched buffers, so the in-place running-mean/variance updates land in each group's
own slice, as in the sequential step. Only refinements (one discriminator per
generator) are batched; checked with discriminator norms ``layer_norm`` and ``none``.

The splitter uses it when ``batch_groups`` is set (a GPU option: on the CPU it is
slower, docs/benchmarks.md, ``bench/batched_refine.py``). A stage checkpoint then
stores the per-group networks, unstacked, and the stacked optimisers' state.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from hctree import engine
from hctree.splitters.hcmgan import Config, _adam, _add_noise, _autocast, _Nets

State = dict[str, torch.Tensor]


@dataclass
class BatchedGroups:
    """The k groups of one refinement with stacked (``[k, ...]``) parameters."""

    generator: nn.Module  # stateless template (meta device)
    trunk: nn.Module
    d_head: nn.Module
    c_head: nn.Module
    gen_params: State
    gen_buffers: State
    trunk_params: State
    d_head_params: State
    c_head_params: State
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    opt_c: torch.optim.Optimizer

    @property
    def k(self) -> int:
        return next(iter(self.gen_params.values())).shape[0]

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Name -> optimiser, as a stage checkpoint stores them."""
        return {"g": self.opt_g, "d": self.opt_d, "c": self.opt_c}

    def step(
        self,
        images: torch.Tensor,
        weights: list[torch.Tensor],
        config: Config,
        sigma: float,
        gen: torch.Generator,
        device: torch.device,
    ) -> dict[str, torch.Tensor]:
        """One refinement iteration of all k groups (:func:`batched_train_step`)."""
        return batched_train_step(self, images, weights, config, sigma, gen, device)

    def unstack_into(self, nets: _Nets) -> None:
        """Copy the trained state back into the per-group modules (:func:`unstack_into`)."""
        unstack_into(self, nets)


def _template(module: nn.Module) -> nn.Module:
    """A parameter-free copy of ``module`` to run with functional_call."""
    return copy.deepcopy(module).to("meta")


def _stack(modules: list[nn.Module]) -> tuple[State, State]:
    """Stacked parameters (fresh leaves) and buffers of identically shaped modules."""
    params, buffers = stack_module_state(modules)
    return dict(params), dict(buffers)


def stack_groups(nets: _Nets, config: Config, device: torch.device) -> BatchedGroups:
    """Stacked copies of a refinement's networks, with Adam optimisers like the splitter's."""
    if len(nets.discriminators) != len(nets.generators):
        raise ValueError("only a refinement (one discriminator per generator) can be batched")
    discs = list(nets.discriminators)
    gen_params, gen_buffers = _stack(list(nets.generators))
    trunk_params, _ = _stack([d.trunk for d in discs])
    d_head_params, _ = _stack([d.d_head for d in discs])
    c_head_params, _ = _stack([d.c_head for d in discs])
    return BatchedGroups(
        generator=_template(nets.generators[0]),
        trunk=_template(discs[0].trunk),
        d_head=_template(discs[0].d_head),
        c_head=_template(discs[0].c_head),
        gen_params=gen_params,
        gen_buffers=gen_buffers,
        trunk_params=trunk_params,
        d_head_params=d_head_params,
        c_head_params=c_head_params,
        opt_g=_adam(list(gen_params.values()), config.lr_g, config, device),
        opt_d=_adam([*trunk_params.values(), *d_head_params.values()], config.lr_d, config, device),
        opt_c=_adam(list(c_head_params.values()), config.lr_c, config, device),
    )


@torch.no_grad()
def unstack_into(groups: BatchedGroups, nets: _Nets) -> None:
    """Copy the stacked parameters and buffers back into the per-group modules."""
    parts = [
        (nets.generators, "", {**groups.gen_params, **groups.gen_buffers}),
        (nets.discriminators, "trunk.", groups.trunk_params),
        (nets.discriminators, "d_head.", groups.d_head_params),
        (nets.discriminators, "c_head.", groups.c_head_params),
    ]
    for modules, prefix, stacked in parts:
        for j, module in enumerate(modules):
            state = module.state_dict(keep_vars=True)
            for name, value in stacked.items():
                state[prefix + name].copy_(value[j])


def generate(groups: BatchedGroups, z: torch.Tensor) -> torch.Tensor:
    """Latents ``[k, b, latent]`` -> every group's images ``[k * b, C, H, W]``."""

    def one(params: State, buffers: State, zj: torch.Tensor) -> torch.Tensor:
        return functional_call(groups.generator, (params, buffers), (zj,))

    images = vmap(one)(groups.gen_params, groups.gen_buffers, z)
    return images.flatten(0, 1)


def _features(groups: BatchedGroups, params: State, x: torch.Tensor) -> torch.Tensor:
    return functional_call(groups.trunk, params, (x,))


def _heads(
    groups: BatchedGroups, d_params: State, c_params: State, feats: torch.Tensor, frozen: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(real/fake logits ``[B]``, class logits ``[B, k]``) of one discriminator's features."""
    logit = functional_call(groups.d_head, d_params, (feats,)).squeeze(-1)
    classes = functional_call(groups.c_head, c_params, (feats.detach() if frozen else feats,))
    return logit, classes


def _discriminator_outputs(
    groups: BatchedGroups, real: torch.Tensor, fakes: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """D-step outputs of all k discriminators: real logits ``[k, b_real]``, fake logits
    ``[k, k*b]`` and frozen-trunk class logits ``[k, k*b, k]``."""

    def one(trunk: State, d_head: State, c_head: State, real_d: torch.Tensor):
        logit_real = _heads(groups, d_head, c_head, _features(groups, trunk, real_d), True)[0]
        logit_fake, classes = _heads(groups, d_head, c_head, _features(groups, trunk, fakes), True)
        return logit_real, logit_fake, classes

    params = (groups.trunk_params, groups.d_head_params, groups.c_head_params)
    return vmap(one)(*params, real)


def _judge_fakes(groups: BatchedGroups, fakes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every discriminator on every fake, gradient reaching the trunk: real/fake logits
    ``[k, k*b]`` and class logits ``[k, k*b, k]``."""

    def one(trunk: State, d_head: State, c_head: State):
        return _heads(groups, d_head, c_head, _features(groups, trunk, fakes), False)

    return vmap(one)(groups.trunk_params, groups.d_head_params, groups.c_head_params)


def _real_batches(
    images: torch.Tensor,
    weights: list[torch.Tensor],
    config: Config,
    sigma: float,
    gen: torch.Generator,
) -> torch.Tensor:
    """Each discriminator's noisy real batch ``[k, b_real, C, H, W]``, drawn in the
    sequential step's order."""
    batches = [
        _add_noise(engine.sample_batch(images, w, config.batch_real, gen), sigma, gen)
        for w in weights
    ]
    return torch.stack(batches)


def _discriminator_losses(
    groups: BatchedGroups, real: torch.Tensor, fakes: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-discriminator D loss and C loss, float ``[k]`` each (D judges its own generator)."""
    k = groups.k
    logit_real, logit_fake, classes = _discriminator_outputs(groups, real, fakes)
    logit_real = logit_real.float()
    own_fake = logit_fake.float().view(k, k, -1).diagonal(dim1=0, dim2=1).T  # [k, b]
    bce = F.binary_cross_entropy_with_logits
    ld = bce(logit_real, torch.ones_like(logit_real), reduction="none").mean(1)
    ld = ld + bce(own_fake, torch.zeros_like(own_fake), reduction="none").mean(1)
    ce = F.cross_entropy(classes.float().flatten(0, 1), labels.repeat(k), reduction="none")
    return ld, ce.view(k, -1).mean(1)


def _generator_losses(
    groups: BatchedGroups, fakes: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-generator adversarial loss under its own discriminator and classifier loss
    averaged over all k classifiers, float ``[k]`` each."""
    k = groups.k
    logit, classes = _judge_fakes(groups, fakes)
    logit = logit.float()
    bce = F.binary_cross_entropy_with_logits(logit, torch.ones_like(logit), reduction="none")
    ce = F.cross_entropy(classes.float().flatten(0, 1), labels.repeat(k), reduction="none")
    adv = bce.view(k, k, -1).mean(2)  # [discriminator, generator]
    cls = ce.view(k, k, -1).mean(2)
    return adv.diagonal(), cls.mean(0)


def batched_train_step(
    groups: BatchedGroups,
    images: torch.Tensor,
    weights: list[torch.Tensor],
    config: Config,
    sigma: float,
    gen: torch.Generator,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """One refinement iteration for all k groups at once; same losses as ``_train_step``."""
    k, b = groups.k, config.batch_gen
    labels = torch.arange(k, device=device).repeat_interleave(b)
    z = torch.randn(k, b, config.latent_dim, generator=gen, device=device)
    with _autocast(device):
        fakes = generate(groups, z)
    fakes = _add_noise(fakes, sigma, gen)
    real = _real_batches(images, weights, config, sigma, gen)

    with _autocast(device):
        loss_d, loss_c = _discriminator_losses(groups, real, fakes.detach(), labels)
    groups.opt_d.zero_grad(set_to_none=True)
    groups.opt_c.zero_grad(set_to_none=True)
    (loss_d + loss_c).sum().backward()
    groups.opt_d.step()
    groups.opt_c.step()

    with _autocast(device):
        adv_own, cls_mean = _generator_losses(groups, fakes, labels)
    loss_g = (adv_own + config.cls_weight * cls_mean).sum()
    groups.opt_g.zero_grad(set_to_none=True)
    loss_g.backward(inputs=list(groups.gen_params.values()))
    groups.opt_g.step()
    return {
        "d": loss_d.detach().mean(),
        "c": loss_c.detach().mean(),
        "g_adv": adv_own.detach().mean(),
        "g_cls": cls_mean.detach().mean(),
    }


__all__ = ["BatchedGroups", "batched_train_step", "generate", "stack_groups", "unstack_into"]
