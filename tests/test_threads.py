"""configure_threads: PyTorch and the BLAS/OpenMP pools of NumPy and SciPy get one count."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, so that its pool is counted too)
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from hctree.engine import configure_threads
from hctree.errors import HCTreeError


@pytest.fixture
def restored():
    """Put every pool back as it was after the test."""
    before = torch.get_num_threads()
    with threadpool_limits(limits=None):
        yield
    torch.set_num_threads(before)


def test_every_thread_pool_gets_the_count(restored):
    assert configure_threads(1) == 1
    assert torch.get_num_threads() == 1
    pools = threadpool_info()
    assert any(p["user_api"] == "blas" for p in pools)  # NumPy's BLAS at least
    assert all(p["num_threads"] == 1 for p in pools)
    a = np.random.default_rng(0).standard_normal((64, 64))
    np.testing.assert_allclose(a @ np.linalg.inv(a), np.eye(64), atol=1e-8)  # BLAS still works


def test_a_bad_count_is_one_sentence(restored, monkeypatch):
    with pytest.raises(HCTreeError, match="at least 1"):
        configure_threads(0)
    monkeypatch.setenv("HCTREE_THREADS", "two")
    with pytest.raises(HCTreeError, match="HCTREE_THREADS must be a whole number"):
        configure_threads()
