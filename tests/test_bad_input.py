"""More bad input: each is one sentence and exit 2, and an existing tree stays byte-identical.

(The first kinds of bad data and options live in test_cli.py.)
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from hctree.store import WriterLock
from tests.test_cli import assert_user_error, run
from tests.treefactory import make_dataset, make_tree

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tree(tmp_path):
    """A 2-leaf tree file over tmp_path/data.npz, and its bytes."""
    path = make_tree(tmp_path, {"r": [[0, 1], [2, 3]]})
    return path, path.read_bytes()


def bad_arrays(tmp_path):
    """(name, path, words) for array files whose values or types are wrong."""
    cases = []
    for name, array, words in [
        ("negative", np.full((5, 28, 28), -1, np.int16), ["0..255"]),
        ("huge", np.full((5, 28, 28), 300, np.int32), ["0..255"]),
        ("inf", np.full((5, 28, 28), np.inf, np.float32), ["inf"]),
        ("float above one", np.full((5, 28, 28), 2.5, np.float32), ["[0, 1]"]),
        ("complex", np.zeros((5, 28, 28), np.complex64), ["dtype"]),
        ("no channel axis", np.zeros((5, 28, 28, 5), np.uint8), ["channel"]),
        ("zero images", np.zeros((0, 28, 28), np.uint8), ["zero images"]),
    ]:
        path = tmp_path / f"{name.replace(' ', '_')}.npy"
        np.save(path, array)
        cases.append((name, path, words))
    np.savez(tmp_path / "nolabels.npz", pixels=np.zeros((5, 28, 28), np.uint8))
    cases.append(("npz without images", tmp_path / "nolabels.npz", ["no 'images'"]))
    np.savez(
        tmp_path / "strlabels.npz",
        images=np.zeros((3, 28, 28), np.uint8),
        labels=np.array(["a", "b", "z"]),
        class_names=np.array(["a", "b"]),
    )
    cases.append(("label not among class names", tmp_path / "strlabels.npz", ["class_names"]))
    (tmp_path / "garbage.npy").write_bytes(b"not numpy at all")
    cases.append(("garbage .npy", tmp_path / "garbage.npy", ["numpy"]))
    return cases


def test_bad_arrays_are_refused_and_the_tree_is_untouched(tmp_path, tree):
    path, before = tree
    for name, data, words in bad_arrays(tmp_path):
        result = run("grow", str(data), "-o", str(path), "--leaves", "3")
        assert_user_error(result, *words)
        assert path.read_bytes() == before, name


@pytest.mark.parametrize(
    "args, words",
    [
        (["--leaves", "1"], ["at least 2"]),
        (["--leaves", "500"], ["more than the 80 images"]),
        (["--subset", "0"], ["subset"]),
        (["--set", "width_g=wide"], ["number"]),
        (["--set", "refinements=1.5"], ["whole number"]),
        (["--set", "inherit=maybe"], ["true or false"]),
        (["--set", "noise=-1"], ["noise"]),
        (["--threads", "0"], ["threads"]),
    ],
)
def test_options_out_of_range(tmp_path, args, words):
    data = make_dataset(tmp_path / "d.npz")
    result = run("grow", str(data), "-o", str(tmp_path / "t.h5"), "--preset", "tiny", *args)
    assert_user_error(result, *words)
    assert not (tmp_path / "t.h5").exists()


@pytest.mark.parametrize("splitter", ["hcmgan", "c3gan", "slcgan"])
def test_a_size_no_network_takes_leaves_no_tree_file_behind(tmp_path, splitter):
    data = tmp_path / "small.npz"
    np.savez(data, images=np.zeros((12, 8, 8), np.uint8))
    out = tmp_path / "t.h5"
    args = ("grow", str(data), "-o", str(out), "--preset", "tiny", "--splitter", splitter)
    assert_user_error(run(*args, "--leaves", "2", "--size", "30"), "30x30", "--size")
    assert not out.exists()


def test_images_of_another_size_are_resized_to_one_the_networks_take(tmp_path):
    """8x8 images grow at 28x28 with a note; the same command then resumes (it finds
    the same images), and assign and render reload them from the stored size."""
    data = tmp_path / "small.npz"
    images = np.random.default_rng(0).integers(0, 256, (24, 8, 8), dtype=np.uint8)
    np.savez(data, images=images, labels=np.arange(24) % 2)
    out = tmp_path / "t.h5"
    args = ("grow", str(data), "-o", str(out), "--preset", "tiny", "--seed", "0")
    first = run(*args, "--leaves", "2")
    assert first.exit_code == 0, first.output
    assert "resizing the 8x8 images to 28x28" in first.output
    assert "split r -> r0, r1 (2 of 2 leaves)" in first.output  # how far the tree has grown
    with h5py.File(out, "r") as f:
        assert list(f.attrs["image_shape"]) == [1, 28, 28]
        assert json.loads(f.attrs["data_spec"])["size"] == 28
    again = run(*args, "--leaves", "3")
    assert again.exit_code == 0, again.output
    assert "3 leaves" in again.output
    routed = run("assign", str(out), str(data), "-o", str(tmp_path / "a.csv"))
    assert routed.exit_code == 0, routed.output
    assert len((tmp_path / "a.csv").read_text().splitlines()) == 25


def test_a_tree_grown_at_another_size_names_the_sizes(tmp_path):
    path = make_tree(tmp_path, {"r": [[0, 1], [2, 3]]})
    before = path.read_bytes()
    data = tmp_path / "data.npz"
    result = run("grow", str(data), "-o", str(path), "--leaves", "3", "--size", "32")
    assert_user_error(result, "1x28x28 images", "not 1x32x32", "--size")
    assert path.read_bytes() == before


def test_tree_files_that_cannot_be_continued(tmp_path, tree):
    path, _ = tree
    data = tmp_path / "data.npz"
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["weights"] = np.ones(3)
    newer = tmp_path / "newer.h5"
    shutil.copy(path, newer)
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = 99
    folder = tmp_path / "a-folder.h5"
    folder.mkdir()
    for target, words in [
        (truncated, ["damaged"]),
        (foreign, ["not an hctree"]),
        (newer, ["newer"]),
        (folder, ["folder"]),
    ]:
        before = target.read_bytes() if target.is_file() else None
        assert_user_error(run("grow", str(data), "-o", str(target), "--leaves", "3"), *words)
        if before is not None:
            assert target.read_bytes() == before


def test_fewer_leaves_than_the_tree_has(tmp_path):
    path = make_tree(tmp_path, {"r": [[0, 1], [2, 3]], "r0": [[0], [1]]})
    before = path.read_bytes()
    result = run("grow", str(tmp_path / "data.npz"), "-o", str(path), "--leaves", "2")
    assert_user_error(result, "already has 3 leaves")
    assert path.read_bytes() == before


def test_assign_with_images_of_another_shape(tmp_path, tree):
    path, _ = tree
    other = make_dataset(tmp_path / "small.npz", size=32)
    out = str(tmp_path / "a.csv")
    assert_user_error(run("assign", str(path), str(other), "-o", out, "--size", "32"), "--size")


def test_a_second_writer_is_refused(tmp_path, tree):
    path, before = tree
    with WriterLock(path):
        result = run("grow", str(tmp_path / "data.npz"), "-o", str(path), "--leaves", "3")
    assert_user_error(result, "another hctree process")
    assert path.read_bytes() == before


# run as root without the capabilities that let root ignore file permissions
_NO_ROOT_OVERRIDE = "-dac_override,-dac_read_search"


def _grow_in_subprocess(args: list[str], preexec=None, cwd=None, permissions: bool = False):
    """``hctree grow ARGS`` in a subprocess; ``permissions``: file modes apply even to root."""
    prefix = []
    if permissions and os.getuid() == 0:
        prefix = ["setpriv", f"--bounding-set={_NO_ROOT_OVERRIDE}",
                  f"--inh-caps={_NO_ROOT_OVERRIDE}"]  # fmt: skip
    return subprocess.run(
        [*prefix, sys.executable, "-m", "cli.main", "grow", *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        preexec_fn=preexec,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )


def _one_sentence(out: subprocess.CompletedProcess, *words: str) -> None:
    lines = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert out.returncode == 2, out.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]


def test_a_full_disk_leaves_the_previous_tree_intact(tmp_path):
    data = make_dataset(tmp_path / "d.npz", n_per_class=15)
    tree = tmp_path / "t.h5"
    base = ["--preset", "tiny", "--threads", "1", "-q", "--set", "refinements=0"]
    first = _grow_in_subprocess([str(data), "-o", str(tree), "--leaves", "2", *base])
    assert first.returncode == 0, first.stderr[-2000:]
    before = tree.read_bytes()

    def small_disk() -> None:  # files may not grow past a size smaller than the tree
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) // 2, len(before) // 2))

    full = _grow_in_subprocess([str(data), "-o", str(tree), "--leaves", "3", *base], small_disk)
    _one_sentence(full, "cannot write t.h5", "unchanged")
    assert tree.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_read_only_folder_is_one_sentence(tmp_path):
    """As root, drop the capabilities that let root write into read-only folders."""
    data = make_dataset(tmp_path / "d.npz", n_per_class=15)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        out = _grow_in_subprocess(
            [str(data), "-o", str(locked / "t.h5"), "--leaves", "2", "--preset", "tiny"],
            permissions=True,
        )
        _one_sentence(out, "cannot create files in", "writable folder")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_an_unreadable_data_file_is_one_sentence(tmp_path):
    """As root, drop the capabilities that let root read files it has no permission for."""
    data = make_dataset(tmp_path / "d.npz", n_per_class=15)
    data.chmod(0o000)
    try:
        out = _grow_in_subprocess(
            [str(data), "-o", str(tmp_path / "t.h5"), "--leaves", "2", "--preset", "tiny"],
            permissions=True,
        )
        _one_sentence(out)
        assert "d.npz cannot be read: permission denied" in out.stderr
        assert not (tmp_path / "t.h5").exists()
    finally:
        data.chmod(0o644)
