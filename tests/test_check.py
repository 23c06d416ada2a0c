"""`hctree check`: a sound tree passes; each kind of damage is named."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from hctree.check import check_tree
from hctree.errors import HCTreeError
from hctree.grow import grow
from hctree.tree import open_tree
from tests.conftest import fmnist_classes


@pytest.fixture(scope="module")
def grown(fmnist, tmp_path_factory):
    path = tmp_path_factory.mktemp("check") / "tree.h5"
    data = fmnist_classes(fmnist, (1, 8), 150)
    grow(data, path, 2, preset="tiny", threads=1, overrides={"refinements": 0})
    np.savez(path.parent / "rgb32.npz", images=_rgb32(data.images[:, 0]))
    return path


def _rgb32(images: np.ndarray) -> np.ndarray:
    """Grey 28x28 images as RGB 32x32 (nearest-neighbour upscale, channels repeated)."""
    rows = (np.arange(32) * 28) // 32
    big = images[:, rows][:, :, rows]
    return np.repeat(big[..., None], 3, axis=-1)


def test_assign_converts_images_to_the_tree_shape(grown):
    out = grown.parent / "a.csv"
    result = CliRunner().invoke(cli, ["assign", str(grown), str(grown.parent / "rgb32.npz"),
                                      "-o", str(out), "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    leaves = [line.split(",")[3] for line in out.read_text().splitlines()[1:]]
    stored = [open_tree(grown).leaves[i] for i in open_tree(grown).assignments()]
    assert np.mean(np.array(leaves) == np.array(stored)) > 0.9


def damaged(grown, tmp_path, edit) -> str:
    copy = tmp_path / "copy.h5"
    shutil.copy(grown, copy)
    with h5py.File(copy, "r+") as f:
        edit(f)
    return str(copy)


def test_a_grown_tree_is_sound(grown):
    assert check_tree(grown) is None
    result = CliRunner().invoke(cli, ["check", str(grown)])
    assert result.exit_code == 0 and result.output.startswith("ok:")


def _unsum(f):
    f["nodes/r0/membership"][:5] += 0.5


def _drop_child(f):
    del f["nodes/r1"]


def _drop_param(f):
    group = f["nodes/r/split/models/D"]
    del group[next(iter(group))]


def _reorder(f):
    f["nodes/r"].attrs["split_order"] = 3


@pytest.mark.parametrize(
    "edit, words",
    [
        (_unsum, "do not sum"),
        (_drop_child, "missing"),
        (_drop_param, "do not load"),
        (_reorder, "split order"),
    ],
)
def test_damage_is_named_with_exit_1(grown, tmp_path, edit, words):
    path = damaged(grown, tmp_path, edit)
    assert words in check_tree(path)
    result = CliRunner().invoke(cli, ["check", path])
    assert result.exit_code == 1 and words in result.output


def test_a_newer_format_is_a_user_error(grown, tmp_path):
    path = damaged(grown, tmp_path, lambda f: f.attrs.__setitem__("format_version", 99))
    with pytest.raises(HCTreeError, match="newer"):
        check_tree(path)
    result = CliRunner().invoke(cli, ["check", path])
    assert result.exit_code == 2 and "upgrade hctree" in result.output
