"""The command line as a new user meets it: help, version, info, and every bad input."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from cli.main import cli
from hctree import __version__
from tests.treefactory import make_dataset, make_tree


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_user_error(result, *words: str) -> None:
    """Exit code 2 and exactly one line, `error: <sentence>`, naming the problem."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]


def test_help_and_version():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("grow", "info", "render", "eval", "export", "sample", "assign"):
        assert command in result.output
    assert run("--version").output.strip() == f"hctree, version {__version__}"
    assert "Example" in run("grow", "--help").output


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and __version__ in out.stdout


def test_info_prints_an_indented_tree_with_classes(tmp_path):
    path = make_tree(tmp_path, {"r": [[0, 1], [2, 3]], "r0": [[0], [1]]}, softness=0.0)
    result = run("info", str(path))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "3 leaves" in lines[0] and "80 images" in lines[0]
    assert lines[1].startswith("r ") and "split #1" in lines[1]
    assert lines[2].startswith("  r0 ") and "split #2" in lines[2]
    assert lines[3].startswith("    r00 ") and "leaf" in lines[3] and "c0 100%" in lines[3]
    assert lines[5].startswith("  r1 ") and "mass" in lines[5]
    cut = run("info", str(path), "--cut", "2").output
    assert "r00" not in cut and "2 leaves" in cut


# ---------------------------------------------------------------- bad data


def write_idx(path, array: np.ndarray, magic_type: int = 8, truncate: int = 0) -> None:
    header = struct.pack(">HBB", 0, magic_type, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    body = header + array.astype(np.uint8).tobytes()
    with gzip.open(path, "wb") as fh:
        fh.write(body[: len(body) - truncate] if truncate else body)


def bad_inputs(tmp_path):
    """(name, path, words the message must contain) for every kind of bad data."""
    rng = np.random.default_rng(0)
    cases = [("missing path", tmp_path / "nope", ["nope"])]
    empty = tmp_path / "empty"
    empty.mkdir()
    cases.append(("empty directory", empty, ["empty"]))
    no_images = tmp_path / "noimg"
    no_images.mkdir()
    (no_images / "notes.txt").write_text("hi")
    cases.append(("no image files", no_images, ["no image"]))
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(corrupt / "good.png")
    (corrupt / "broken.png").write_bytes(b"\x89PNG not really")
    cases.append(("corrupt image", corrupt, ["broken.png"]))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(mixed / "a.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(mixed / "b.png")
    cases.append(("mixed sizes", mixed, ["--size"]))
    channels = tmp_path / "channels"
    channels.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(channels / "a.png")
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(channels / "b.png")
    cases.append(("mixed channels", channels, ["--channels"]))
    idx = tmp_path / "idx"
    idx.mkdir()
    write_idx(idx / "train-images-idx3-ubyte.gz", np.zeros((10, 28, 28)), truncate=100)
    write_idx(idx / "train-labels-idx1-ubyte.gz", np.zeros(10))
    cases.append(("truncated IDX", idx, ["train-images-idx3-ubyte"]))
    np.savez(tmp_path / "labels.npz", images=np.zeros((5, 28, 28), np.uint8), labels=np.zeros(4))
    cases.append(("label count", tmp_path / "labels.npz", ["label"]))
    nan = np.full((5, 28, 28), 0.5, np.float32)
    nan[0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    cases.append(("NaN", tmp_path / "nan.npy", ["nan"]))
    np.save(tmp_path / "rank.npy", np.zeros((5, 28), np.uint8))
    cases.append(("wrong rank", tmp_path / "rank.npy", ["rank"]))
    return cases


def test_every_bad_data_input_is_one_sentence_and_exit_2(tmp_path):
    tree = make_tree(tmp_path, {"r": [[0, 1], [2, 3]]})
    before = tree.read_bytes()
    for name, path, words in bad_inputs(tmp_path):
        result = run("grow", str(path), "-o", str(tree), "--leaves", "3")
        assert_user_error(result, *words)
        assert tree.read_bytes() == before, name


def test_bad_tree_files(tmp_path):
    text = tmp_path / "plain.h5"
    text.write_text("not a tree")
    assert_user_error(run("info", str(text)), "not an HDF5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    assert_user_error(run("info", str(other)), "not an hctree")
    newer = make_tree(tmp_path, {"r": [[0, 1], [2, 3]]}, name="newer.h5")
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = 99
    assert_user_error(run("info", str(newer)), "newer")
    assert_user_error(run("info", str(tmp_path / "absent.h5")), "does not exist")


def test_tree_of_other_data_is_refused_and_untouched(tmp_path):
    tree = make_tree(tmp_path, {"r": [[0, 1], [2, 3]]})
    before = tree.read_bytes()
    other = make_dataset(tmp_path / "other.npz", seed=5)
    assert_user_error(run("grow", str(other), "-o", str(tree), "--leaves", "3"), "different data")
    same = tmp_path / "data.npz"
    assert_user_error(run("grow", str(same), "-o", str(tree), "--leaves", "1"), "at least 2")
    assert_user_error(run("grow", str(same), "-o", str(tree), "--set", "width"), "key=value")
    assert tree.read_bytes() == before


@pytest.mark.parametrize(
    "args, words",
    [
        (["--leaves", "0"], ["--leaves"]),
        (["--branching", "1"], ["--branching"]),
        (["--preset", "huge"], ["unknown preset"]),
        (["--set", "bogus=1"], ["unknown setting"]),
        (["--subset", "999999"], ["subset"]),
    ],
)
def test_bad_options(tmp_path, args, words):
    data = make_dataset(tmp_path / "d.npz")
    result = run("grow", str(data), "-o", str(tmp_path / "t.h5"), *args)
    assert_user_error(result, *words)
    assert not (tmp_path / "t.h5").exists()
