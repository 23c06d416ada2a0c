"""Training curves: recorded per stage, kept through checkpoints and the tree file, drawn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from hctree.curves import LossCurve
from hctree.data import load_images
from hctree.grow import grow
from hctree.render import render_curves
from hctree.statefile import state_from_bytes, state_to_bytes
from hctree.store import read_tree, write_tree
from hctree.tree import open_tree


def test_a_loss_missing_at_some_steps_is_nan_there():
    curve = LossCurve()
    assert curve.record(10, {"contrast": np.float32(2.5)}) == {"contrast": 2.5}
    curve.record(20, {"d": 1.0, "c": 0.5})
    arrays = curve.arrays()
    assert arrays["step"].dtype == np.int64 and arrays["step"].tolist() == [10, 20]
    assert arrays["contrast"][0] == 2.5 and math.isnan(arrays["contrast"][1])
    assert math.isnan(arrays["d"][0]) and arrays["d"][1] == 1.0


def test_a_curve_survives_the_checkpoint_format():
    curve = LossCurve()
    for step in (4, 8, 12):
        curve.record(step, {"d": step / 10, "g": -step})
    restored = LossCurve.from_arrays(state_from_bytes(state_to_bytes({"c": curve.arrays()}))["c"])
    assert restored.steps == [4, 8, 12]
    assert restored.values["g"] == [-4.0, -8.0, -12.0]
    assert LossCurve.from_arrays(None).arrays()["step"].size == 0


@pytest.fixture(scope="module")
def grown(fmnist, tmp_path_factory):
    """A 3-leaf tiny HC-MGAN tree of 300 images (raw + one refinement per split)."""
    path = tmp_path_factory.mktemp("curves") / "t.h5"
    data = load_images(fmnist.images[:300], labels=fmnist.labels[:300])
    grow(data, path, 3, preset="tiny", threads=1, overrides={"raw_iters": 40, "refine_iters": 20})
    return path


def test_every_stage_keeps_its_losses_at_the_logging_steps(grown):
    record = read_tree(grown)
    every = open_tree(grown).config["log_every"]
    for stage, total in (("raw", 40), ("refine1", 20)):
        curves = record.nodes["r"].stages[stage].curves
        assert curves["step"].tolist() == list(range(every, total + 1, every))
        assert {"d", "c", "g_adv", "g_cls"} <= set(curves)
        assert all(np.isfinite(v).all() for v in curves.values())
        assert curves["d"].std() > 0  # real losses, not a constant


def test_curves_survive_a_rewrite_of_the_file(grown, tmp_path):
    record = read_tree(grown)
    copy = tmp_path / "copy.h5"
    write_tree(copy, record)
    again = read_tree(copy)
    for name, node in record.nodes.items():
        for stage, rec in node.stages.items():
            for key, values in rec.curves.items():
                np.testing.assert_array_equal(values, again.nodes[name].stages[stage].curves[key])


def test_render_curves_draws_one_panel_per_split(grown, tmp_path):
    import matplotlib.image

    written = render_curves(open_tree(grown), tmp_path / "c.png")
    pixels = matplotlib.image.imread(written)
    assert pixels.shape[1] > 1.5 * pixels.shape[0]  # two panels side by side
    assert pixels[..., :3].std() > 0.05


def test_render_curves_command(grown, tmp_path):
    result = CliRunner().invoke(
        cli, ["render", str(grown), "--curves", "-o", str(tmp_path / "c.svg")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c.svg").read_text().count("<path") > 10
    both = CliRunner().invoke(cli, ["render", str(grown), "--curves", "--dendrogram"])
    assert both.exit_code == 2 and "choose one" in both.output


def test_a_tree_without_curves_is_one_sentence(grown, tmp_path):
    record = read_tree(grown)
    for node in record.nodes.values():
        for rec in node.stages.values():
            rec.curves = {}
    old = tmp_path / "old.h5"
    write_tree(old, record)
    before = old.read_bytes()
    result = CliRunner().invoke(cli, ["render", str(old), "--curves"])
    assert result.exit_code == 2 and "recorded no training curves" in result.output
    assert old.read_bytes() == before
