"""Several nodes' raw HC-MGAN splits trained as one batched step (torch.func).

When the tree's frontier holds more than one leaf to split, their raw splits are
independent computations of the same shape: each a discriminator (trunk, D, C and
projection heads) and k generators. Here each kind of network has the leaves'
parameters stacked along a leading dimension (generators: leaf x k) and runs once
under ``torch.func.vmap`` with ``functional_call``, so a step launches one kernel
per layer instead of one per leaf; the leaves' losses are summed for one backward
pass, which gives each leaf its own gradients, and one Adam per kind over the
stacked tensors updates each leaf as its own optimiser would (Adam is elementwise).

Every random draw (latents, instance noise, real batches, views) is made outside
vmap from each leaf's own generator, in the order of the one-leaf step
(``hcmgan._train_step``), so the batched splits compute what the one-leaf splits
compute, up to float rounding. Leaves may have different budgets: a leaf that has
finished leaves the stack, which is rebuilt from the others. A checkpoint stores each
leaf's state in the one-leaf format (networks and per-leaf optimiser state), so a
split interrupted here resumes either way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from hctree import engine
from hctree.errors import Interrupted
from hctree.invariance import imbalance, nt_xent, view_agreement
from hctree.splitters.hcmgan import Attempt, _adam, _autocast, _two_views
from hctree.splitters.hcmgan_batched import _stack, _template

State = dict[str, torch.Tensor]


@dataclass
class _Draws:
    """One leaf's random inputs for one iteration (float images in [-1, 1])."""

    z: torch.Tensor  # [k, b, latent]
    fake_noise: torch.Tensor  # [k*b, C, H, W] (zeros once the noise has decayed)
    clean: torch.Tensor  # [b_real, C, H, W]
    real_noise: torch.Tensor  # [b_real, C, H, W]
    views: torch.Tensor | None  # [2*b_real, C, H, W]
    targets: torch.Tensor | None  # int64 [b_real]


def _draw(attempt: Attempt, i: int) -> _Draws:
    """The draws of ``_train_step`` for a raw split at iteration ``i``, in its order."""
    config, ctx, gen = attempt.config, attempt.ctx, attempt.gen
    k, b, device = ctx.k, config.batch_gen, ctx.device
    sigma = attempt.sigma(i)
    z = torch.randn(k, b, config.latent_dim, generator=gen, device=device)
    shape = (k * b, *ctx.images.shape[1:])

    def noise(size: tuple[int, ...]) -> torch.Tensor:
        if sigma <= 0:
            return torch.zeros(size, device=device)
        return torch.randn(size, generator=gen, device=device)

    fake_noise = noise(shape)
    weights = attempt.weights[0]
    idx = torch.multinomial(weights, config.batch_real, replacement=True, generator=gen)
    clean = engine.to_unit(ctx.images.index_select(0, idx))
    real_noise = noise(tuple(clean.shape))
    views = _two_views(clean, config, gen) if config.uses_views else None
    targets = None if attempt.targets is None else attempt.targets[idx]
    return _Draws(z, fake_noise, clean, real_noise, views, targets)


class _Stack:
    """The networks and optimiser state of several raw-split attempts, stacked."""

    def __init__(self, attempts: list[Attempt]) -> None:
        self.attempts = attempts
        first = attempts[0]
        config, device = first.config, first.ctx.device
        self.k = first.ctx.k
        self.gens = [g for a in attempts for g in a.nets.generators]
        self.discs = [a.nets.discriminators[0] for a in attempts]
        disc = self.discs[0]
        self.generator = _template(first.nets.generators[0])
        self.trunk, self.d_head, self.c_head = (
            _template(disc.trunk),
            _template(disc.d_head),
            _template(disc.c_head),
        )
        self.p_head = None if disc.p_head is None else _template(disc.p_head)
        # the leaves' noise schedules, on the device once (no copy per step)
        self.warm = torch.tensor([float(a.warm) for a in attempts], device=device)
        self.gan_iters = torch.tensor([float(a.gan_iters) for a in attempts], device=device)
        self.gen_params, self.gen_buffers = _stack(self.gens)
        self.trunk_params = _stack([d.trunk for d in self.discs])[0]
        self.d_head_params = _stack([d.d_head for d in self.discs])[0]
        self.c_head_params = _stack([d.c_head for d in self.discs])[0]
        self.p_head_params: State = {}
        if self.p_head is not None:
            self.p_head_params = _stack([d.p_head for d in self.discs])[0]
        d_params = [*self.trunk_params.values(), *self.d_head_params.values(),
                    *self.p_head_params.values()]  # fmt: skip
        self.opt_g = _adam(self.gen_params.values(), config.lr_g, config, device)
        self.opt_d = _adam(d_params, config.lr_d, config, device)
        self.opt_c = _adam(self.c_head_params.values(), config.lr_c, config, device)
        for stacked, rows in self._rows():
            _stack_state(stacked, rows)

    def _rows(self) -> list[tuple[tuple[torch.optim.Optimizer, torch.Tensor], list]]:
        """Each stacked parameter with its optimiser, and per row the leaf's own
        (optimiser, parameter): the correspondence of their Adam states."""
        out = []
        per_gen = [dict(g.named_parameters()) for g in self.gens]
        for name, stacked in self.gen_params.items():
            rows = [
                (self.attempts[r // self.k].nets.opt_g, per_gen[r][name])
                for r in range(len(self.gens))
            ]
            out.append(((self.opt_g, stacked), rows))
        parts = [("trunk", self.trunk_params, self.opt_d, "opt_d"),
                 ("d_head", self.d_head_params, self.opt_d, "opt_d"),
                 ("p_head", self.p_head_params, self.opt_d, "opt_d"),
                 ("c_head", self.c_head_params, self.opt_c, "opt_c")]  # fmt: skip
        for part, params, opt, leaf_opt in parts:
            for name, stacked in params.items():
                rows = [
                    (getattr(a.nets, leaf_opt)[0], dict(getattr(d, part).named_parameters())[name])
                    for a, d in zip(self.attempts, self.discs, strict=True)
                ]
                out.append(((opt, stacked), rows))
        return out

    @torch.no_grad()
    def unstack(self) -> None:
        """Write the stacked networks and optimiser state back into each leaf's own."""
        for r, g in enumerate(self.gens):
            state = g.state_dict(keep_vars=True)
            for name, value in {**self.gen_params, **self.gen_buffers}.items():
                state[name].copy_(value[r])
        parts = [("trunk", self.trunk_params), ("d_head", self.d_head_params),
                 ("p_head", self.p_head_params), ("c_head", self.c_head_params)]  # fmt: skip
        for part, params in parts:
            for w, d in enumerate(self.discs):
                state = getattr(d, part).state_dict(keep_vars=True) if params else {}
                for name, value in params.items():
                    state[name].copy_(value[w])
        for stacked, rows in self._rows():
            _unstack_state(stacked, rows)

    # ------------------------------------------------------------ one iteration

    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``[W*k, b, latent]`` -> images ``[W*k, b, C, H, W]``."""

        def one(params: State, buffers: State, zj: torch.Tensor) -> torch.Tensor:
            return functional_call(self.generator, (params, buffers), (zj,))

        return vmap(one)(self.gen_params, self.gen_buffers, z)

    def step(self, i: int, draws: list[_Draws]) -> list[dict[str, torch.Tensor]]:
        """Iteration ``i`` of every leaf; each leaf's losses as ``_train_step`` reports them.

        Each leaf's instance noise is ``Attempt.sigma(i)``, computed on the device; where
        it has decayed to zero the leaf's noise draws are zeros, so the level is moot.
        """
        first = self.attempts[0]
        config, device = first.config, first.ctx.device
        w, k, b = len(draws), self.k, config.batch_gen
        labels = torch.arange(k, device=device).repeat_interleave(b)
        z = torch.cat([d.z for d in draws])
        sigma = config.noise * (1.0 - (i - self.warm + 1) / self.gan_iters)
        sigma = sigma.view(w, 1, 1, 1, 1)
        with _autocast(device):
            fakes = self._generate(z)
        fakes = fakes.reshape(w, k * b, *fakes.shape[2:])
        fakes = fakes + fakes * torch.stack([d.fake_noise for d in draws]).view_as(fakes) * sigma
        clean = torch.stack([d.clean for d in draws])
        real = clean + clean * torch.stack([d.real_noise for d in draws]) * sigma
        views = None if draws[0].views is None else torch.stack([d.views for d in draws])
        targets = None if draws[0].targets is None else torch.stack([d.targets for d in draws])

        with _autocast(device):
            ld, lc, lv = self._discriminator_losses(fakes.detach(), real, views, targets, labels)
        self.opt_d.zero_grad(set_to_none=True)
        self.opt_c.zero_grad(set_to_none=True)
        (ld + lc + (0 if lv is None else lv)).sum().backward()
        self.opt_d.step()
        self.opt_c.step()

        with _autocast(device):
            adv, cls = self._generator_losses(fakes, labels)
        loss_g = (adv + config.cls_weight * cls).sum()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(self.gen_params.values()))
        self.opt_g.step()
        out = []
        for j in range(w):
            losses = {"d": ld[j].detach(), "c": lc[j].detach(), "g_adv": adv[j].detach().mean(),
                      "g_cls": cls[j].detach().mean()}  # fmt: skip
            if lv is not None:
                losses["views"] = lv[j].detach()
            out.append(losses)
        return out

    def _discriminator_losses(self, fakes, real, views, targets, labels):
        """Per leaf: D's loss, C's loss and the view losses (None without views), ``[W]``."""
        config = self.attempts[0].config
        bce, ce = F.binary_cross_entropy_with_logits, F.cross_entropy

        def one(tp, dp, cp, pp, fake, real_w, views_w, targets_w):
            feats_fake = functional_call(self.trunk, tp, (fake,))
            feats_real = functional_call(self.trunk, tp, (real_w,))
            logit_real = functional_call(self.d_head, dp, (feats_real,)).squeeze(-1).float()
            logit_fake = functional_call(self.d_head, dp, (feats_fake,)).squeeze(-1).float()
            ld = bce(logit_real, torch.ones_like(logit_real))
            ld = ld + bce(logit_fake, torch.zeros_like(logit_fake))
            lc = ce(functional_call(self.c_head, cp, (feats_fake.detach(),)).float(), labels)
            if targets_w is not None:
                fit = functional_call(self.c_head, cp, (feats_real.detach(),)).float()
                lc = lc + config.lambda_target * ce(fit, targets_w)
            if views_w is None:
                return ld, lc, torch.zeros_like(ld)
            n = views_w.shape[0] // 2
            feats = functional_call(self.trunk, tp, (views_w,))
            logits = functional_call(self.c_head, cp, (feats,)).float()
            lv = config.lambda_agree * view_agreement(logits[:n], logits[n:])
            lv = lv + config.lambda_balance * imbalance(logits)
            if config.lambda_contrast > 0:
                proj = functional_call(self.p_head, pp, (feats,))
                lv = lv + config.lambda_contrast * nt_xent(proj[:n], proj[n:], config.contrast_tau)
            return ld, lc, lv

        params = (self.trunk_params, self.d_head_params, self.c_head_params, self.p_head_params)
        in_dims = (0, 0, 0, 0, 0, 0, None if views is None else 0, None if targets is None else 0)
        ld, lc, lv = vmap(one, in_dims=in_dims)(*params, fakes, real, views, targets)
        return ld, lc, None if views is None else lv

    def _generator_losses(self, fakes: torch.Tensor, labels: torch.Tensor):
        """Per leaf and generator: adversarial and classifier loss, float ``[W, k]``."""
        k = self.k

        def one(tp, dp, cp, fake):
            feats = functional_call(self.trunk, tp, (fake,))
            logit = functional_call(self.d_head, dp, (feats,)).squeeze(-1).float()
            bce = F.binary_cross_entropy_with_logits(
                logit, torch.ones_like(logit), reduction="none"
            )
            classes = functional_call(self.c_head, cp, (feats,)).float()
            ce = F.cross_entropy(classes, labels, reduction="none")
            return bce.view(k, -1).mean(1), ce.view(k, -1).mean(1)

        params = (self.trunk_params, self.d_head_params, self.c_head_params)
        return vmap(one)(*params, fakes)


def _stack_state(stacked: tuple[torch.optim.Optimizer, torch.Tensor], rows: list) -> None:
    """Give a stacked parameter the leaves' Adam states (stacked; shared step count)."""
    opt, param = stacked
    states = [leaf_opt.state.get(p, {}) for leaf_opt, p in rows]
    if not states[0]:
        return
    opt.state[param] = {
        key: value.clone() if value.ndim == 0 else torch.stack([s[key] for s in states])
        for key, value in states[0].items()
    }


def _unstack_state(stacked: tuple[torch.optim.Optimizer, torch.Tensor], rows: list) -> None:
    """Hand each leaf's optimiser its row of a stacked parameter's Adam state."""
    opt, param = stacked
    state = opt.state.get(param)
    if not state:
        return
    for r, (leaf_opt, p) in enumerate(rows):
        leaf_opt.state[p] = {
            key: value.clone() if value.ndim == 0 else value[r].clone()
            for key, value in state.items()
        }


def train_together(attempts: list[Attempt]) -> list[tuple[Attempt, dict[str, torch.Tensor]]]:
    """Train raw-split attempts that start at the same iteration as one batched step.

    Returns each attempt with its last losses, in the given order, as ``Attempt.train``
    does. Checkpoints go through each attempt's own checkpointer; a stop request
    saves them all and raises Interrupted.
    """
    for attempt in attempts:
        attempt.seed_targets()
    start = attempts[0].start
    progress, should_stop = attempts[0].ctx.progress, attempts[0].ctx.should_stop
    nodes = ", ".join(a.ctx.node for a in attempts)
    total = max(a.total for a in attempts)
    progress.start(f"{nodes} {attempts[0].stage} (together)", total, start)
    last: dict[int, dict[str, torch.Tensor]] = {id(a): {} for a in attempts}
    active = [a for a in attempts if a.total > start]
    stack = _Stack(active) if active else None
    for i in range(start, total):
        losses = stack.step(i, [_draw(a, i) for a in active])
        for a, leaf_losses in zip(active, losses, strict=True):
            last[id(a)] = leaf_losses
            if (i + 1) % a.config.log_every == 0 or i + 1 == a.total:
                row = a.curve.record(i + 1, leaf_losses)
                if a is active[0]:
                    progress.update(i + 1, row)
        stop = should_stop()
        if stop or any(a.ctx.checkpoint.due() for a in active):
            stack.unstack()
            for a in active:
                a.ctx.checkpoint.save(a.snapshot(i + 1))
        if stop:
            raise Interrupted()
        if any(a.total == i + 1 for a in active):
            stack.unstack()
            active = [a for a in active if a.total > i + 1]
            stack = _Stack(active) if active else None
    progress.finish()
    return [(a, last[id(a)]) for a in attempts]


__all__ = ["train_together"]
