"""`hctree eval` and `hctree export` through the click command group."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from cli.main import cli
from hctree.evaluate import evaluate
from hctree.export import FORMATS
from hctree.tree import open_tree
from tests.treefactory import make_tree

SPLITS = {"r": [[0, 1], [2, 3]], "r0": [[0], [1]], "r1": [[2], [3]]}


@pytest.fixture
def tree_path(tmp_path):
    return make_tree(tmp_path, SPLITS, softness=0.1)


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_user_error(result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_eval_text_report(tree_path):
    result = run("eval", tree_path)
    assert result.exit_code == 0, result.output
    assert "4 leaves, 80 images, 4 classes (labels from the tree file)" in result.stdout
    assert "dendrogram purity" in result.stdout and "by cut" in result.stdout


def test_eval_json_matches_the_library(tree_path, tmp_path):
    result = run("eval", tree_path, "--json")
    assert result.exit_code == 0, result.output
    got, expected = json.loads(result.stdout), evaluate(open_tree(tree_path))
    assert got.keys() == expected.keys()
    for key in ("acc", "nmi", "ari", "dendrogram_purity", "soft_dendrogram_purity"):
        assert got[key] == expected[key]
    assert got["cuts"] == expected["cuts"] and got["splits"] == expected["splits"]


def test_eval_cut_and_labels_file(tree_path, tmp_path):
    labels = open_tree(tree_path).labels
    (tmp_path / "labels.txt").write_text("\n".join(str(v) for v in labels // 2) + "\n")
    result = run("eval", tree_path, "--labels", tmp_path / "labels.txt", "--cut", 2, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert got["leaves"] == 2 and got["labels"] == "given" and got["classes"] == 2
    assert got["acc"] == 1.0 and [row["leaves"] for row in got["cuts"]] == [2]


def test_eval_bad_inputs_exit_2(tree_path, tmp_path):
    assert_user_error(run("eval", tmp_path / "missing.h5"), "does not exist")
    np.save(tmp_path / "short.npy", np.zeros(3, np.int64))
    assert_user_error(
        run("eval", tree_path, "--labels", tmp_path / "short.npy"), "3 labels but the tree has 80"
    )
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    assert_user_error(run("eval", tree_path, "--labels", tmp_path / "bad.csv"), "label")
    assert_user_error(run("eval", tree_path, "--cut", 7), "never had exactly 7 leaves")


@pytest.mark.parametrize("ext", [ext.lstrip(".") for ext in FORMATS])
def test_export_each_format(tree_path, tmp_path, ext):
    out = tmp_path / f"out.{ext}"
    result = run("export", tree_path, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {out}"
    assert out.stat().st_size > 0


def test_export_cut(tree_path, tmp_path):
    result = run("export", tree_path, "-o", tmp_path / "cut.npz", "--cut", 3)
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "cut.npz") as f:
        assert f["leaves"].tolist() == ["r00", "r01", "r1"]


def test_export_bad_inputs_exit_2(tree_path, tmp_path):
    assert_user_error(run("export", tree_path, "-o", tmp_path / "out.xlsx"), ".linkage.npy")
    assert_user_error(
        run("export", tmp_path / "nope.h5", "-o", tmp_path / "o.csv"), "does not exist"
    )
    assert_user_error(
        run("export", tree_path, "-o", tmp_path / "no" / "o.csv"), "does not exist; create it"
    )
