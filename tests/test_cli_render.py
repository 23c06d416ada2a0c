"""`hctree render` and `hctree sample`: outputs, options and exit codes."""

from __future__ import annotations

import shutil

import numpy as np
from click.testing import CliRunner
from PIL import Image

from cli.main import cli
from tests.test_render import fake_tree  # noqa: F401  (fixture)
from tests.treefactory import make_tree

FULL = {"r": [[0, 1], [2, 3]], "r0": [[0], [1]], "r1": [[2], [3]]}


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_error(result) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")


def test_render_default_output_is_tree_png(tmp_path):
    path = make_tree(tmp_path, FULL)
    result = run("render", path, "--images", 4)
    assert result.exit_code == 0, result.output
    out = tmp_path / "tree.png"
    assert result.output.strip() == str(out)
    assert np.asarray(Image.open(out).convert("L")).std() > 20


def test_render_cut_draws_a_smaller_figure(tmp_path):
    path = make_tree(tmp_path, FULL)
    assert run("render", path, "-o", tmp_path / "all.png").exit_code == 0
    assert run("render", path, "--cut", 2, "-o", tmp_path / "two.png").exit_code == 0
    full, cut = Image.open(tmp_path / "all.png").size, Image.open(tmp_path / "two.png").size
    assert cut[0] < full[0] and cut[1] < full[1]


def test_render_dendrogram_default_output(tmp_path):
    path = make_tree(tmp_path, FULL)
    result = run("render", path, "--dendrogram")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(tmp_path / "tree.dendrogram.png")
    assert (tmp_path / "tree.dendrogram.png").stat().st_size > 5000


def test_render_with_moved_data(tmp_path):
    path = make_tree(tmp_path, FULL)
    shutil.move(tmp_path / "data.npz", tmp_path / "elsewhere.npz")
    result = run("render", path, "-o", tmp_path / "t.svg")
    assert_one_error(result)
    assert "--data" in result.output
    result = run("render", path, "-o", tmp_path / "t.svg", "--data", tmp_path / "elsewhere.npz")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t.svg").read_text().lstrip().startswith("<?xml")


def test_render_bad_input_exits_2(tmp_path):
    path = make_tree(tmp_path, FULL)
    assert_one_error(run("render", tmp_path / "missing.h5"))
    assert_one_error(run("render", path, "-o", tmp_path / "tree.gif"))
    assert_one_error(run("render", path, "--cut", 7))


def test_sample_writes_a_grid(fake_tree, tmp_path):  # noqa: F811
    result = run("sample", fake_tree, "--node", "r", "-n", 8, "-o", tmp_path / "r.png")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(tmp_path / "r.png")
    grid = np.asarray(Image.open(tmp_path / "r.png"))
    assert grid.shape == (3 * 30 + 2, 3 * 30 + 2)  # 8 images of 28x28 on a 3x3 grid, pad 2
    assert grid.std() > 20
    result = run("sample", fake_tree, "--node", "r1", "-n", 4)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(tmp_path / "tree.r1.png")


def test_sample_without_models_exits_2(fake_tree):  # noqa: F811
    assert_one_error(run("sample", fake_tree, "--node", "r0"))
    assert_one_error(run("sample", fake_tree, "--node", "nope"))
