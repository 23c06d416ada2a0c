"""The batched refinement step computes what the sequential one does (CPU, seeded)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from hctree import engine
from hctree.splitters import make_config
from hctree.splitters.hcmgan import HCMGANSplitter, _build_nets, _Nets, _train_step
from hctree.splitters.hcmgan_batched import (
    BatchedGroups,
    batched_train_step,
    stack_groups,
    unstack_into,
)

CPU = torch.device("cpu")
SMALL = {"width_g": 8, "width_d": 8, "batch_real": 12, "batch_gen": 10}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Equal to 1e-4 of the tensor's largest entry."""
    scale = float(expected.abs().max())
    diff = float((actual.float() - expected.float()).abs().max())
    assert diff <= 1e-4 * scale + 1e-9, f"{what}: max difference {diff:.3g} at scale {scale:.3g}"


def _close_after_adam(actual: torch.Tensor, expected: torch.Tensor, lr: float, what: str) -> None:
    """Parameters after an Adam step: all but 0.1% of entries equal to 1e-4 of the scale,
    and every entry within a tenth of a step (about ``lr``). Adam divides by
    ``|grad| + 1e-8``, so an entry whose gradient is near 1e-8 turns rounding into a
    visible part of a step."""
    scale = float(expected.abs().max())
    diff = (actual.float() - expected.float()).abs()
    off = int((diff > 1e-4 * scale + 1e-9).sum())
    assert off <= diff.numel() // 1000, f"{what}: {off} of {diff.numel()} entries differ"
    assert float(diff.max()) <= 0.1 * lr, f"{what}: max difference {float(diff.max()):.3g}"


def _before_batch_norm(generator: torch.nn.Module) -> set[str]:
    """Biases of layers followed by BatchNorm: their exact gradient is zero, so what
    both steps compute is rounding noise, which Adam then turns into arbitrary steps."""
    layers = list(generator.upsample)
    return {
        f"upsample.{i}.bias"
        for i, nxt in enumerate(layers[1:])
        if isinstance(nxt, torch.nn.BatchNorm2d)
    }


def _setup(
    k: int, norm_d: str
) -> tuple[_Nets, BatchedGroups, torch.Tensor, list[torch.Tensor], Any]:
    """Refinement networks, a stacked copy of them, random images and group weights."""
    config = make_config(HCMGANSplitter, "tiny", {**SMALL, "norm_d": norm_d})
    nets = _build_nets(config, k, True, (1, 28, 28), seed=3, device=CPU)
    groups = stack_groups(copy.deepcopy(nets), config, CPU)
    data = torch.Generator().manual_seed(4)
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=data)
    weights = list(torch.rand(k, 64, generator=data) + 0.05)
    return nets, groups, images, weights, config


def _stacked_grads(nets: _Nets) -> dict[str, torch.Tensor]:
    """Per-group gradients stacked like the batched parameters, by batched name."""
    out = {}
    for name in dict(nets.generators[0].named_parameters()):
        out[f"gen.{name}"] = torch.stack(
            [dict(g.named_parameters())[name].grad for g in nets.generators]
        )
    for name in dict(nets.discriminators[0].named_parameters()):
        out[name] = torch.stack(
            [dict(d.named_parameters())[name].grad for d in nets.discriminators]
        )
    return out


def _batched_grads(groups: BatchedGroups) -> dict[str, torch.Tensor]:
    """The stacked parameters' gradients, named like :func:`_stacked_grads`."""
    out = {f"gen.{n}": p.grad for n, p in groups.gen_params.items()}
    for prefix, params in (
        ("trunk", groups.trunk_params),
        ("d_head", groups.d_head_params),
        ("c_head", groups.c_head_params),
    ):
        out.update({f"{prefix}.{n}": p.grad for n, p in params.items()})
    return out


def _compare_gradients(nets: _Nets, groups: BatchedGroups, step: int) -> None:
    """Every group's gradients; those of biases before BatchNorm must both be ~zero."""
    expected, actual = _stacked_grads(nets), _batched_grads(groups)
    assert expected.keys() == actual.keys()
    noise = {f"gen.{name}" for name in _before_batch_norm(nets.generators[0])}
    gen_scale = max(float(g.abs().max()) for n, g in expected.items() if n.startswith("gen."))
    for name in expected:
        if name in noise:
            assert float(actual[name].abs().max()) <= 1e-4 * gen_scale, name
            assert float(expected[name].abs().max()) <= 1e-4 * gen_scale, name
        else:
            _close(actual[name], expected[name], f"step {step} gradient of {name}")


def _compare_states(nets: _Nets, groups: BatchedGroups, lr: float) -> None:
    """Parameters and BatchNorm statistics after the updates, per group."""
    batched = copy.deepcopy(nets)
    unstack_into(groups, batched)
    noise = _before_batch_norm(nets.generators[0])
    pairs = zip(batched.components().items(), nets.components().values(), strict=True)
    for (component, got), want in pairs:
        expected = want.state_dict()
        buffers = dict(got.named_buffers())
        for name, value in got.state_dict().items():
            what = f"{component} {name} after a step"
            if name in buffers:
                _close(value, expected[name], what)
            elif name not in noise:
                _close_after_adam(value, expected[name], lr, what)


@pytest.mark.parametrize(("k", "norm_d"), [(2, "layer_norm"), (3, "layer_norm"), (2, "none")])
def test_batched_step_matches_the_sequential_step(k: int, norm_d: str) -> None:
    nets, groups, images, weights, config = _setup(k, norm_d)
    gen_a, gen_b = engine.make_generator(7, CPU), engine.make_generator(7, CPU)
    for step in range(2):
        sigma = 0.5 - 0.2 * step
        seq = _train_step(nets, images, weights, config, sigma, gen_a, CPU)
        bat = batched_train_step(groups, images, weights, config, sigma, gen_b, CPU)
        assert seq.keys() == bat.keys()
        for name in seq:
            _close(bat[name], seq[name], f"step {step} loss {name}")
        _compare_gradients(nets, groups, step)
        if step == 0:
            _compare_states(nets, groups, max(config.lr_g, config.lr_d, config.lr_c))
    assert torch.equal(gen_a.get_state(), gen_b.get_state())


def test_unstack_restores_the_per_group_modules() -> None:
    nets, groups, *_ = _setup(2, "layer_norm")
    with torch.no_grad():
        for value in [*groups.gen_params.values(), *groups.c_head_params.values()]:
            value.add_(1.0)
    before = copy.deepcopy(nets)
    unstack_into(groups, nets)
    for got, old in zip(nets.generators, before.generators, strict=True):
        for (name, value), prior in zip(
            got.state_dict().items(), old.state_dict().values(), strict=True
        ):
            shift = 1.0 if name in dict(got.named_parameters()) else 0.0
            assert torch.allclose(value.float(), prior.float() + shift), name
    for got, old in zip(nets.discriminators, before.discriminators, strict=True):
        assert torch.allclose(got.c_head.weight, old.c_head.weight + 1.0)
        assert torch.equal(got.d_head.weight, old.d_head.weight)


def test_only_refinements_are_batched() -> None:
    config = make_config(HCMGANSplitter, "tiny", SMALL)
    nets = _build_nets(config, 2, False, (1, 28, 28), seed=0, device=CPU)
    with pytest.raises(ValueError, match="refinement"):
        stack_groups(nets, config, CPU)
