"""Training plumbing shared by every splitter: device, seeds, batches, state.

The whole image set lives on the training device as uint8; a batch is a weighted
draw of indices made on the device (no DataLoader, no host round trip).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from hctree.errors import HCTreeError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HCTreeError(
            "--device cuda was asked for but no CUDA GPU is visible; use --device cpu."
        )
    if name not in {"cpu"} and not name.startswith("cuda"):
        raise HCTreeError(f"unknown device {name!r}; use auto, cpu or cuda.")
    return torch.device(name)


def configure_threads(threads: int | None = None) -> int:
    """Set the CPU threads: ``threads``, else ``$HCTREE_THREADS``, else every core.

    PyTorch gets that many, and so do the BLAS and OpenMP pools that NumPy, SciPy
    and scikit-learn load (threadpoolctl): left at every core, they slowed a
    one-thread run's splits by a third on a 2-core machine (docs/benchmarks.md,
    "Thread pools"). Returns the number set. On a machine busy with other work,
    fewer threads than cores can be much faster (threads spin while they wait for
    a core).
    """
    if threads is None:
        env = os.environ.get("HCTREE_THREADS", "").strip()
        if env and not env.isdigit():
            raise HCTreeError(f"HCTREE_THREADS must be a whole number, not {env!r}.")
        threads = int(env) if env else len(os.sched_getaffinity(0))
    if threads < 1:
        raise HCTreeError(f"the number of threads must be at least 1, not {threads}.")
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    return threads


@contextmanager
def deterministic_kernels(enabled: bool = True) -> Iterator[None]:
    """With ``enabled``, PyTorch uses deterministic kernels only (``--deterministic``).

    cuDNN's autotuner is off, cuBLAS gets the fixed workspace it needs to repeat
    itself (``CUBLAS_WORKSPACE_CONFIG``, when not already set), and an operation with
    no deterministic kernel warns instead of failing. On the CPU the kernels hctree
    uses are deterministic already; on CUDA this makes a seeded run repeat exactly,
    at some cost in speed. The previous settings come back on exit.
    """
    if not enabled:
        yield
        return
    cudnn = torch.backends.cudnn
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        cudnn.benchmark,
        cudnn.deterministic,
    )
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    cudnn.benchmark, cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        cudnn.benchmark, cudnn.deterministic = before[2], before[3]


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any printable parts, stable across runs and machines."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """A torch.Generator on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return gen


def to_unit(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B,C,H,W]`` -> float in [-1, 1] (the range of a tanh generator)."""
    return images_u8.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] (any float dtype) -> uint8 in [0, 255], rounded and clamped.

    The inverse of :func:`to_unit`, for generated images; stays on the images' device.
    """
    return images.float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def sample_batch(
    images: torch.Tensor, weights: torch.Tensor, batch: int, gen: torch.Generator
) -> torch.Tensor:
    """Draw ``batch`` images with probability proportional to ``weights`` (with replacement).

    images: uint8 ``[N,C,H,W]``; weights: float ``[N]`` (need not sum to one).
    Returns float ``[batch,C,H,W]`` in [-1, 1] on the images' device.
    """
    idx = torch.multinomial(weights, batch, replacement=True, generator=gen)
    return to_unit(images.index_select(0, idx))


@torch.no_grad()
def predict_in_batches(
    fn: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    batch: int = 2048,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Apply ``fn`` (float images in [-1,1] -> ``[B, k]``) to all images, no grad.

    With ``mask`` (bool ``[N]``) only those rows are computed; the rest are zero.
    Returns float32 ``[N, k]`` on the images' device.
    """
    n, device = images.shape[0], images.device
    rows = torch.arange(n, device=device) if mask is None else mask.nonzero().squeeze(1)

    def on_rows(idx: torch.Tensor) -> torch.Tensor:
        return fn(to_unit(images.index_select(0, idx)))

    return map_in_batches(on_rows, n, rows, batch)


@torch.no_grad()
def map_in_batches(
    fn: Callable[[torch.Tensor], torch.Tensor], n: int, rows: torch.Tensor, batch: int = 2048
) -> torch.Tensor:
    """Apply ``fn`` (int64 row indices ``[B]`` -> ``[B, k]``) to ``rows`` (int64, of
    ``0..n-1``), ``batch`` at a time, no grad: the loop of :func:`predict_in_batches`,
    for inputs other than images. Returns float32 ``[n, k]`` on the rows' device, zero
    in the rows not given.
    """
    out: torch.Tensor | None = None
    for start in range(0, rows.numel(), batch):
        idx = rows[start : start + batch]
        pred = fn(idx).float()
        if out is None:
            out = torch.zeros(n, pred.shape[1], device=rows.device)
        out[idx] = pred
    if out is None:
        raise HCTreeError("a node has no images with positive membership to split.")
    return out


def state_to_numpy(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """A module's state_dict as CPU numpy arrays (what the tree file stores)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_numpy_state(module: torch.nn.Module, state: dict[str, np.ndarray]) -> None:
    """Inverse of :func:`state_to_numpy`."""
    module.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})


def load_matching_state(
    module: torch.nn.Module, state: dict[str, np.ndarray], prefixes: tuple[str, ...] = ("",)
) -> int:
    """Load the entries of a :func:`state_to_numpy` state whose names start with one of
    ``prefixes`` and whose names and shapes match ``module``'s; how many were loaded."""
    own = module.state_dict()
    shared = {
        key: torch.from_numpy(np.asarray(value))
        for key, value in state.items()
        if key.startswith(prefixes) and key in own and tuple(own[key].shape) == np.shape(value)
    }
    module.load_state_dict(shared, strict=False)
    return len(shared)


def rng_state(gen: torch.Generator) -> torch.Tensor:
    """The generator's state (a CPU uint8 tensor) for checkpoints."""
    return gen.get_state().clone()


def set_rng_state(gen: torch.Generator, state: torch.Tensor) -> None:
    gen.set_state(state.clone())


def count_parameters(modules: Iterable[torch.nn.Module]) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


# torch.compile arguments of each splitter's ``compile`` setting. ``inductor`` fuses
# each network's forward and backward kernels; ``cudagraphs`` also replays them as
# CUDA graphs (fewer launches, for the GPU); ``trace`` captures the graphs without
# generating code, to check that capture changes nothing.
COMPILE: dict[str, dict[str, Any] | None] = {
    "off": None,
    "inductor": {},
    "cudagraphs": {"mode": "reduce-overhead"},
    "trace": {"backend": "aot_eager"},
}


def check_compile(setting: str) -> None:
    """Raise HCTreeError unless ``setting`` is a ``compile`` value."""
    if setting not in COMPILE:
        raise HCTreeError(f"setting compile must be one of {', '.join(COMPILE)}.")


def compile_modules(modules: Iterable[torch.nn.Module], setting: str) -> None:
    """``torch.compile`` each module in place (its state dict keeps its keys)."""
    options = COMPILE[setting]
    if options is None:
        return
    for module in modules:
        module.compile(**options)
