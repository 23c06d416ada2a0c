"""The flat splitters grow, stop, resume and route images exactly like HC-MGAN."""

from __future__ import annotations

import numpy as np
import pytest

import hctree
from hctree.assign import agreement
from hctree.errors import Interrupted
from hctree.grow import grow
from hctree.store import checkpoint_path
from tests.conftest import stop_from_poll


@pytest.fixture(scope="module")
def two_classes(fmnist, fmnist_classes):
    return fmnist_classes(fmnist, [1, 8], 150, seed=0)


@pytest.mark.parametrize("splitter", ["c3gan", "slcgan"])
def test_interrupted_flat_split_resumes_to_the_same_tree(
    splitter, two_classes, tmp_path, monkeypatch
):
    kw = dict(splitter=splitter, preset="tiny", threads=1, seed=2)
    reference = grow(two_classes, tmp_path / "ref.h5", 2, **kw)

    stop_from_poll(monkeypatch, 25)
    with pytest.raises(Interrupted):
        grow(two_classes, tmp_path / "t.h5", 2, checkpoint_every=1e9, **kw)
    assert checkpoint_path(tmp_path / "t.h5").exists()
    monkeypatch.undo()
    resumed = grow(two_classes, tmp_path / "t.h5", 2, **kw)

    np.testing.assert_array_equal(resumed.memberships(), reference.memberships())
    assert resumed.memberships().sum(0) == pytest.approx(np.ones(len(two_classes)), abs=1e-4)
    routed = hctree.assign_images(resumed, two_classes, device="cpu")
    assert agreement(resumed, routed) >= 0.95
    assert hctree.evaluate_tree(resumed)["leaves"] == 2
