"""What every set rule (polarity, levels, position, scale) must do to a whole tree."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from hctree.assign import assign
from hctree.data import ImageSet, fingerprint
from hctree.grow import grow
from hctree.report import tree_text
from hctree.tree import Tree

FAST = {"raw_iters": "30", "refinements": "0"}
AS_GIVEN = "as-given"


def with_images(data: ImageSet, images: np.ndarray) -> ImageSet:
    """``data`` holding ``images`` instead (and their fingerprint)."""
    images = np.ascontiguousarray(images)
    return dataclasses.replace(data, images=images, fingerprint=fingerprint(images))


def grows_the_tree_of_its_prepared_images(
    given: ImageSet,
    prepared: ImageSet,
    rule: str,
    decision: str,
    phrase: str,
    tmp_path: Path,
    absent: str | None = None,
    modes: dict[str, str] | None = None,
) -> Tree:
    """Grow ``given`` (which ``rule`` changes into ``prepared``) and ``prepared`` itself,
    and check that they give the same tree; that the tree stores ``decision``, routes
    ``given`` to its own memberships, and says ``phrase`` in ``info`` (the plain tree
    not ``absent``, by default the phrase); and that the rule turned ``off`` stores
    ``as-given``. ``modes`` (rules' modes) go to every grow but the last. Returns the tree
    of ``given``."""
    kw = {"preset": "tiny", "overrides": FAST, "seed": 2, "threads": 1, **(modes or {})}
    plain = grow(prepared, tmp_path / "plain.h5", 2, **kw)
    tree = grow(given, tmp_path / f"{rule}.h5", 2, **kw)
    assert tree.attrs[rule] == decision
    assert plain.attrs[rule] == AS_GIVEN
    np.testing.assert_array_equal(tree.memberships(), plain.memberships())
    routed = assign(tree, given, device="cpu")
    np.testing.assert_allclose(routed, tree.memberships(), atol=1e-4)
    assert phrase in tree_text(tree)
    assert (absent or phrase) not in tree_text(plain)
    off = grow(given, tmp_path / "off.h5", 2, **{**kw, rule: "off"})
    assert off.attrs[rule] == AS_GIVEN
    return tree
