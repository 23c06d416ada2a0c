"""Which CPU operations give other bits with another thread count, and at what price.

    .venv/bin/python bench/thread_invariance.py

A tree grown with 1 thread differs from one grown with 2 (docs/design.md,
"Determinism"), so workers with different thread counts cannot share a tree. This
prints, for each operation the `cpu` networks use, whether its output and
gradients are bit for bit the same at 1 and 2 threads, with oneDNN (PyTorch's
default CPU convolutions) on and off; then the cost of one discriminator step with
oneDNN off against on, at 1 thread. Inputs are drawn once, before any timing.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from hctree.nets.dcgan import Discriminator, Generator


def _inputs() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)

    def draw(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    return {
        "x": draw(256, 32, 14, 14), "w": draw(64, 32, 3, 3), "b": draw(64),
        "gy_conv": draw(256, 64, 7, 7), "xt": draw(256, 64, 7, 7), "wt": draw(64, 32, 4, 4),
        "gy_convt": draw(256, 32, 14, 14), "a": draw(256, 2048), "wl": draw(64, 2048),
        "gy_linear": draw(256, 64), "ln_w": draw(64, 7, 7), "ln_b": draw(64, 7, 7),
        "bn_w": draw(32), "bn_b": draw(32),
    }  # fmt: skip


def _results(data: dict[str, torch.Tensor], threads: int) -> dict[str, list[torch.Tensor]]:
    """Each operation's output and gradients, computed with ``threads`` threads."""
    torch.set_num_threads(threads)
    d = {k: v.clone().requires_grad_(True) for k, v in data.items()}
    grad = torch.autograd.grad
    out: dict[str, list[torch.Tensor]] = {}
    y = F.conv2d(d["x"], d["w"], d["b"], stride=2, padding=1)
    out["conv2d"] = [y, *grad(y, [d["x"], d["w"], d["b"]], d["gy_conv"])]
    y = F.conv_transpose2d(d["xt"], d["wt"], stride=2, padding=1)
    out["conv_transpose2d"] = [y, *grad(y, [d["xt"], d["wt"]], d["gy_convt"])]
    y = F.linear(d["a"], d["wl"])
    out["linear"] = [y, *grad(y, [d["a"], d["wl"]], d["gy_linear"])]
    y = F.layer_norm(d["xt"], (64, 7, 7), d["ln_w"], d["ln_b"])
    out["layer_norm"] = [y, *grad(y, [d["xt"], d["ln_w"], d["ln_b"]], d["xt"].detach())]
    y = F.layer_norm(d["xt"], (64, 7, 7)) * d["ln_w"] + d["ln_b"]
    out["layer_norm, affine apart"] = [
        y,
        *grad(y, [d["xt"], d["ln_w"], d["ln_b"]], d["xt"].detach()),
    ]
    y = F.batch_norm(d["gy_convt"], None, None, d["bn_w"], d["bn_b"], training=True)
    out["batch_norm"] = [y, *grad(y, [d["gy_convt"], d["bn_w"], d["bn_b"]], d["gy_convt"].detach())]
    return out


def _step_seconds(onednn: bool, repeats: int = 5, iters: int = 20) -> float:
    """Median seconds of one forward and backward of the `cpu` networks (256 real, 64 fake)."""
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = onednn
    torch.manual_seed(0)
    disc = Discriminator(28, 1, k=2, width=32, kernel=3, norm="layer_norm", proj_dim=64)
    gen = Generator(28, 1, latent_dim=32, width=16, kernel=4, norm="batch_norm")
    x, z = torch.randn(256, 1, 28, 28), torch.randn(64, 32)

    def step() -> None:
        feats = disc.features(torch.cat([x, gen(z)]))
        (feats.square().mean() + disc.classify(feats).logsumexp(1).mean()).backward()

    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iters):
            step()
        times.append((time.perf_counter() - start) / iters)
    return sorted(times)[repeats // 2]


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    data = _inputs()
    for onednn in (True, False):
        torch.backends.mkldnn.enabled = onednn
        one, two = _results(data, 1), _results(data, 2)
        for name in one:
            same = [bool(torch.equal(u, v)) for u, v in zip(one[name], two[name], strict=True)]
            print(json.dumps({"onednn": onednn, "op": name, "same [output, grads...]": same}))
    on, off = _step_seconds(True), _step_seconds(False)
    print(
        json.dumps({"step_ms_onednn": round(1000 * on, 1), "step_ms_without": round(1000 * off, 1)})
    )


if __name__ == "__main__":
    main()
