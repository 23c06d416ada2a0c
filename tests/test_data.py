"""Tests for hctree.data: every format, the conversions, and every bad input."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

import hctree.data as data
from hctree.data import FASHION_MNIST_CLASSES, fingerprint, load_images, read_idx
from hctree.errors import HCTreeError

# ---------------------------------------------------------------- helpers


def random_images(n: int, c: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """uint8 [n, c, h, w]."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def save_png(path: Path, image: np.ndarray) -> None:
    """Write uint8 [C, H, W] (C in 1, 3) as a lossless image file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    Image.fromarray(pixels).save(path)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an IDX file (uint8 or int32 payload), gzipped when the name ends in .gz."""
    codes = {np.dtype("u1"): (0x08, ">u1"), np.dtype("i4"): (0x0C, ">i4")}
    code, big = codes[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(big).tobytes()
    path.write_bytes(gzip.compress(payload) if path.name.endswith(".gz") else payload)


def idx_split(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool) -> None:
    ext = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels)


def assert_user_error(exc: pytest.ExceptionInfo, *words: str) -> None:
    """An HCTreeError message: one line, one sentence, naming the problem."""
    message = str(exc.value)
    assert "\n" not in message
    assert message.endswith(".")
    assert ". " not in message, message
    for word in words:
        assert word.lower() in message.lower(), message


# ---------------------------------------------------------------- image folders


def test_folder_with_class_subfolders_round_trips(tmp_path):
    images = random_images(5, 3, 6, 7)
    files = ["cat/b.png", "cat/a.png", "dog/x.png", "dog/deep/y.png", "emu/z.png"]
    for name, image in zip(files, images, strict=True):
        save_png(tmp_path / name, image)
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "dog" / ".hidden.png").write_bytes(b"junk that would not decode")

    got = load_images(tmp_path)

    order = sorted(range(5), key=lambda i: files[i])
    assert got.names == [files[i] for i in order]
    np.testing.assert_array_equal(got.images, images[order])
    assert got.class_names == ["cat", "dog", "emu"]
    assert got.labels.dtype == np.int64
    assert got.labels.tolist() == [0, 0, 1, 1, 2]
    assert got.image_shape == (3, 6, 7) and len(got) == 5
    assert got.source == str(tmp_path)
    assert got.spec == {
        "path": str(tmp_path),
        "size": None,
        "channels": None,
        "subset": None,
        "seed": 0,
    }


def test_flat_folder_has_no_labels(tmp_path):
    images = random_images(3, 1, 5, 5)
    for i, image in enumerate(images):
        save_png(tmp_path / f"img{i}.png", image)
    got = load_images(tmp_path)
    assert got.labels is None and got.class_names is None
    assert got.names == ["img0.png", "img1.png", "img2.png"]
    np.testing.assert_array_equal(got.images, images)
    assert "labels: none" in got.describe()


def test_png_jpg_bmp_webp_mix_with_any_letter_case(tmp_path):
    grey = np.full((1, 8, 8), 200, dtype=np.uint8)
    save_png(tmp_path / "a.PNG", grey)
    save_png(tmp_path / "b.jpg", grey)
    save_png(tmp_path / "c.JPEG", grey)
    save_png(tmp_path / "d.bmp", grey)
    save_png(tmp_path / "e.webp", grey)
    with pytest.raises(HCTreeError, match="channels"):
        load_images(tmp_path)  # WebP has no grey mode: Pillow writes it as RGB
    got = load_images(tmp_path, channels=1)
    assert got.names == ["a.PNG", "b.jpg", "c.JPEG", "d.bmp", "e.webp"]
    assert got.images.shape == (5, 1, 8, 8)
    # JPEG and WebP are lossy, but a flat grey survives within a level or two.
    assert np.abs(got.images.astype(int) - 200).max() <= 2


def test_rgba_and_palette_images_become_rgb(tmp_path):
    rgb = random_images(1, 3, 4, 4)[0].transpose(1, 2, 0)
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "a.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "b.png")
    got = load_images(tmp_path)
    assert got.image_shape == (3, 4, 4)
    np.testing.assert_array_equal(got.images[0], rgb.transpose(2, 0, 1))


# ---------------------------------------------------------------- arrays

LAYOUTS = {
    "NHW": lambda x: x[:, 0],
    "NHWC": lambda x: x.transpose(0, 2, 3, 1),
    "NCHW": lambda x: x,
}
DTYPES = {
    "uint8": lambda x: x,
    "int64": lambda x: x.astype(np.int64),
    "float32": lambda x: x.astype(np.float32) / 255,
    "float64": lambda x: x.astype(np.float64) / 255,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "layout, c", [("NHW", 1), ("NHWC", 1), ("NHWC", 3), ("NCHW", 1), ("NCHW", 3)]
)
def test_npy_layouts_and_dtypes(tmp_path, layout, dtype, c):
    images = random_images(4, c, 5, 6)
    np.save(tmp_path / "x.npy", DTYPES[dtype](LAYOUTS[layout](images)))
    got = load_images(tmp_path / "x.npy")
    np.testing.assert_array_equal(got.images, images)
    assert got.images.dtype == np.uint8 and got.images.flags.c_contiguous
    assert got.labels is None and got.names is None


def test_npz_with_labels_and_class_names(tmp_path):
    images = random_images(6, 3, 4, 4)
    labels = np.array([2, 0, 1, 2, 0, 1], dtype=np.uint8)
    path = tmp_path / "set.npz"
    np.savez_compressed(
        path,
        images=images.transpose(0, 2, 3, 1),
        labels=labels,
        class_names=np.array(["ant", "bee", "cow"]),
    )
    got = load_images(path)
    np.testing.assert_array_equal(got.images, images)
    assert got.labels.dtype == np.int64 and got.labels.tolist() == labels.tolist()
    assert got.class_names == ["ant", "bee", "cow"]
    text = got.describe()
    assert "classes: 3" in text and "0 ant: 2" in text and "2 cow: 2" in text


def test_npz_string_labels_become_sorted_classes(tmp_path):
    path = tmp_path / "set.npz"
    np.savez(path, images=random_images(3, 1, 4, 4)[:, 0], labels=np.array(["dog", "cat", "dog"]))
    got = load_images(path)
    assert got.class_names == ["cat", "dog"]
    assert got.labels.tolist() == [1, 0, 1]


@pytest.mark.parametrize("names_as", ["attribute", "dataset"])
def test_h5_round_trip(tmp_path, names_as):
    images = random_images(5, 1, 6, 6)
    path = tmp_path / "set.h5"
    with h5py.File(path, "w") as f:
        f["images"] = images[:, 0].astype(np.float32) / 255
        f["labels"] = np.array([0, 1, 1, 0, 1])
        if names_as == "attribute":
            f.attrs["class_names"] = ["left", "right"]
        else:
            f["class_names"] = np.array([b"left", b"right"])
    got = load_images(path)
    np.testing.assert_array_equal(got.images, images)
    assert got.labels.tolist() == [0, 1, 1, 0, 1]
    assert got.class_names == ["left", "right"]


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [True, False])
def test_idx_train_and_t10k_merge_train_first(tmp_path, gz):
    train, test = random_images(7, 1, 5, 4, seed=1), random_images(3, 1, 5, 4, seed=2)
    idx_split(tmp_path, "t10k", test[:, 0], np.array([3, 4, 5], dtype=np.uint8), gz)
    idx_split(tmp_path, "train", train[:, 0], np.arange(7, dtype=np.uint8), gz)
    got = load_images(tmp_path)
    np.testing.assert_array_equal(got.images, np.concatenate([train, test]))
    assert got.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 3, 4, 5]
    assert got.class_names is None  # the folder is not named like Fashion-MNIST

    one = load_images(tmp_path / f"t10k-images-idx3-ubyte{'.gz' if gz else ''}")
    np.testing.assert_array_equal(one.images, test)
    assert one.labels.tolist() == [3, 4, 5]


def test_idx_fashion_folder_gets_the_ten_class_names(tmp_path):
    folder = tmp_path / "my-fashion-copy"
    folder.mkdir()
    idx_split(
        folder,
        "train",
        random_images(20, 1, 28, 28)[:, 0],
        np.arange(20, dtype=np.uint8) % 10,
        True,
    )
    got = load_images(folder)
    assert got.class_names == FASHION_MNIST_CLASSES
    assert "Ankle boot: 2" in got.describe()


def test_read_idx_parses_big_endian_int32(tmp_path):
    array = np.arange(-6, 6, dtype=np.int32).reshape(3, 4) * 100000
    write_idx(tmp_path / "x.idx", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "x.idx"), array)


# ---------------------------------------------------------------- conversions


def test_size_resizes_like_pillow_bilinear(tmp_path):
    images = random_images(2, 3, 12, 10)
    save_png(tmp_path / "a.png", images[0])
    save_png(tmp_path / "b.png", images[1, :, :8, :8])  # a different size
    got = load_images(tmp_path, size=6)
    assert got.images.shape == (2, 3, 6, 6)
    expected = Image.fromarray(images[0].transpose(1, 2, 0)).resize((6, 6), Image.BILINEAR)
    np.testing.assert_array_equal(got.images[0], np.asarray(expected).transpose(2, 0, 1))
    assert got.spec["size"] == 6


def test_size_on_arrays_matches_size_on_files(tmp_path):
    images = random_images(3, 1, 9, 9)
    np.save(tmp_path / "x.npy", images)
    for i, image in enumerate(images):
        save_png(tmp_path / "files" / f"{i}.png", image)
    from_array = load_images(tmp_path / "x.npy", size=4)
    from_files = load_images(tmp_path / "files", size=4)
    np.testing.assert_array_equal(from_array.images, from_files.images)
    assert from_array.fingerprint == from_files.fingerprint


def test_channels_grey_to_rgb_repeats_and_rgb_to_grey_is_luma(tmp_path):
    grey = random_images(2, 1, 4, 4)
    np.save(tmp_path / "grey.npy", grey)
    rgb3 = load_images(tmp_path / "grey.npy", channels=3).images
    assert rgb3.shape == (2, 3, 4, 4)
    for c in range(3):
        np.testing.assert_array_equal(rgb3[:, c], grey[:, 0])

    rgb = random_images(2, 3, 4, 4, seed=5)
    np.save(tmp_path / "rgb.npy", rgb)
    got = load_images(tmp_path / "rgb.npy", channels=1).images
    pillow = [np.asarray(Image.fromarray(x.transpose(1, 2, 0)).convert("L")) for x in rgb]
    np.testing.assert_array_equal(got[:, 0], np.stack(pillow))


def test_channels_unifies_a_folder_of_grey_and_colour(tmp_path):
    save_png(tmp_path / "a.png", random_images(1, 1, 4, 4)[0])
    save_png(tmp_path / "b.png", random_images(1, 3, 4, 4)[0])
    assert load_images(tmp_path, channels=3).image_shape == (3, 4, 4)
    assert load_images(tmp_path, channels=1).image_shape == (1, 4, 4)


# ---------------------------------------------------------------- subset, fingerprint, spec


def test_subset_is_seeded_sorted_and_keeps_labels_aligned(tmp_path):
    images = random_images(40, 1, 3, 3)
    images[:, 0, 0, 0] = np.arange(40)  # each image carries its row index
    labels = np.arange(40) % 4
    np.savez(tmp_path / "s.npz", images=images, labels=labels)
    a = load_images(tmp_path / "s.npz", subset=10, seed=3)
    b = load_images(tmp_path / "s.npz", subset=10, seed=3)
    c = load_images(tmp_path / "s.npz", subset=10, seed=4)
    rows = a.images[:, 0, 0, 0].astype(int)
    expected = np.sort(np.random.default_rng(3).choice(40, size=10, replace=False))
    assert rows.tolist() == expected.tolist()
    assert a.labels.tolist() == (rows % 4).tolist()
    np.testing.assert_array_equal(a.images, b.images)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    assert len(c) == 10 and not np.array_equal(a.images, c.images)


def test_subset_of_a_folder_picks_matching_names(tmp_path):
    for i in range(12):
        save_png(tmp_path / f"k{i % 2}" / f"{i:02d}.png", np.full((1, 2, 2), i, dtype=np.uint8))
    got = load_images(tmp_path, subset=5, seed=1)
    for name, image, label in zip(got.names, got.images, got.labels, strict=True):
        value = int(Path(name).stem)
        assert image.max() == image.min() == value
        assert label == value % 2


def test_spec_reproduces_the_set(tmp_path):
    for i, image in enumerate(random_images(6, 3, 5, 5)):
        save_png(tmp_path / f"{i}.png", image)
    first = load_images(os.fspath(tmp_path), size=3, channels=1, subset=4, seed=9)
    again = load_images(**first.spec)
    assert again.fingerprint == first.fingerprint
    np.testing.assert_array_equal(again.images, first.images)


def test_fingerprint_is_stable_and_sensitive_to_one_pixel_and_shape():
    images = random_images(3, 1, 4, 4)
    base = fingerprint(images)
    assert base == fingerprint(images.copy())
    assert len(base) == 64 and int(base, 16) >= 0
    changed = images.copy()
    changed[2, 0, 3, 3] ^= 1
    assert fingerprint(changed) != base
    assert fingerprint(images.reshape(3, 1, 2, 8)) != base


# ---------------------------------------------------------------- bad inputs


def make_truncated_idx(tmp_path: Path, gz: bool) -> Path:
    idx_split(tmp_path, "train", random_images(10, 1, 6, 6)[:, 0], np.zeros(10, np.uint8), gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    raw = path.read_bytes()[:-7]
    if gz:
        path.unlink()
        path = tmp_path / "train-images-idx3-ubyte.gz"
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def bad_corrupt_image(p: Path):
    save_png(p / "good.png", random_images(1, 1, 4, 4)[0])
    (p / "bad.png").write_bytes(b"this is not a png")
    return p, {}, ("bad.png", "cannot be read")


def bad_truncated_png(p: Path):
    save_png(p / "full.png", random_images(1, 3, 64, 64)[0])
    raw = (p / "full.png").read_bytes()
    (p / "cut.png").write_bytes(raw[: len(raw) // 2])
    return p, {}, ("cut.png",)


def bad_mixed_sizes(p: Path):
    save_png(p / "a.png", random_images(1, 1, 4, 4)[0])
    save_png(p / "b.png", random_images(1, 1, 5, 4)[0])
    return p, {}, ("differ in size", "size")


def bad_mixed_channels(p: Path):
    save_png(p / "a.png", random_images(1, 1, 4, 4)[0])
    save_png(p / "b.png", random_images(1, 3, 4, 4)[0])
    return p, {}, ("channels",)


def bad_label_count_npz(p: Path):
    np.savez(p / "x.npz", images=random_images(4, 1, 3, 3), labels=np.zeros(3, int))
    return p / "x.npz", {}, ("3 labels for 4 images",)


def bad_label_count_h5(p: Path):
    with h5py.File(p / "x.h5", "w") as f:
        f["images"] = random_images(4, 1, 3, 3)
        f["labels"] = np.zeros(5, int)
    return p / "x.h5", {}, ("5 labels for 4 images",)


def bad_label_count_idx(p: Path):
    write_idx(p / "train-images-idx3-ubyte", random_images(4, 1, 3, 3)[:, 0])
    write_idx(p / "train-labels-idx1-ubyte", np.zeros(6, np.uint8))
    return p, {}, ("6 labels for 4 images",)


def with_array(array: np.ndarray, *words: str):
    def case(p: Path):
        np.save(p / "x.npy", array)
        return p / "x.npy", {}, words

    return case


nan_images = np.full((2, 3, 3), 0.5)
nan_images[1, 1, 1] = np.nan
inf_images = np.full((2, 3, 3), 0.5)
inf_images[0, 0, 0] = np.inf

BAD_INPUTS = {
    "missing path": lambda p: (p / "nowhere", {}, ("does not exist",)),
    "empty folder": lambda p: (p, {}, ("empty",)),
    "no image files": lambda p: ((p / "a.txt").write_text("x"), p, {}, ("no image files",))[1:],
    "corrupt image": bad_corrupt_image,
    "truncated png": bad_truncated_png,
    "mixed sizes": bad_mixed_sizes,
    "mixed channels": bad_mixed_channels,
    "truncated idx": lambda p: (make_truncated_idx(p, gz=False), {}, ("truncated", "train-images")),
    "truncated idx gz": lambda p: (
        make_truncated_idx(p, gz=True),
        {},
        ("truncated", "idx3-ubyte.gz"),
    ),
    "label count npz": bad_label_count_npz,
    "label count h5": bad_label_count_h5,
    "label count idx": bad_label_count_idx,
    "nan": with_array(nan_images, "NaN"),
    "inf": with_array(inf_images, "inf"),
    "rank 2": with_array(np.zeros((4, 9), np.uint8), "rank 2"),
    "rank 5": with_array(np.zeros((1, 2, 1, 3, 3), np.uint8), "rank 5"),
    "four channels": with_array(np.zeros((2, 4, 4, 4), np.uint8), "channel"),
    "floats above one": with_array(np.full((2, 3, 3), 255.0), "[0, 1]"),
    "floats below zero": with_array(np.full((2, 3, 3), -0.1), "[0, 1]"),
    "zero images": with_array(np.zeros((0, 3, 3), np.uint8), "zero images"),
    "integers above 255": with_array(np.full((2, 3, 3), 256), "0..255"),
    "unsupported extension": lambda p: (
        (p / "x.csv").write_text("1,2"),
        p / "x.csv",
        {},
        ("unsupported", ".csv"),
    )[1:],
    "corrupt npy": lambda p: ((p / "x.npy").write_bytes(b"nope"), p / "x.npy", {}, ("x.npy",))[1:],
    "npz without images": lambda p: (
        np.savez(p / "x.npz", pixels=np.zeros(3)),
        p / "x.npz",
        {},
        ("'images'", "pixels"),
    )[1:],
    "subset too large": lambda p: (
        np.save(p / "x.npy", np.zeros((3, 2, 2), np.uint8)),
        p / "x.npy",
        {"subset": 4},
        ("subset",),
    )[1:],
    "zero subset": lambda p: (p, {"subset": 0}, ("subset",)),
    "bad size": lambda p: (p, {"size": 0}, ("size",)),
    "bad channels": lambda p: (p, {"channels": 2}, ("channels",)),
    "negative seed": lambda p: (p, {"seed": -1}, ("seed",)),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_raises_one_clear_sentence(tmp_path, case):
    path, kwargs, words = BAD_INPUTS[case](tmp_path)
    with pytest.raises(HCTreeError) as exc:
        load_images(path, **kwargs)
    assert_user_error(exc, *words)


def test_missing_fashion_mnist_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", str(tmp_path / "absent"))
    for alias in ("fashion-mnist", "FMNIST"):
        with pytest.raises(HCTreeError) as exc:
            load_images(alias)
        assert_user_error(exc, "sudo apt-get install dataset-fashion-mnist")


def test_an_existing_path_wins_over_the_fashion_alias(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    save_png(tmp_path / "fmnist" / "a.png", random_images(1, 1, 3, 3)[0])
    assert load_images("fmnist").names == ["a.png"]


# ---------------------------------------------------------------- Fashion-MNIST


def test_fashion_mnist_has_70000_images_7000_per_class(fmnist):
    assert fmnist.images.shape == (70000, 1, 28, 28) and fmnist.images.dtype == np.uint8
    assert fmnist.class_names == FASHION_MNIST_CLASSES
    assert np.bincount(fmnist.labels).tolist() == [7000] * 10
    train = read_idx(Path(data.FASHION_MNIST_DIR) / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(fmnist.images[:60000, 0], train)
    assert "7 Sneaker: 7000" in fmnist.describe()


def test_fashion_mnist_loads_by_its_short_name(fmnist):
    again = load_images("fmnist")
    assert again.fingerprint == fmnist.fingerprint


def test_fmnist_classes_picks_balanced_seeded_classes(fmnist, fmnist_classes):
    small = fmnist_classes(fmnist, [7, 0], 30, seed=2)
    assert len(small) == 60 and small.class_names == FASHION_MNIST_CLASSES
    assert sorted(np.unique(small.labels, return_counts=True)[1].tolist()) == [30, 30]
    assert set(small.labels.tolist()) == {0, 7}
    assert small.fingerprint == fmnist_classes(fmnist, [0, 7], 30, seed=2).fingerprint
    assert small.fingerprint != fmnist_classes(fmnist, [0, 7], 30, seed=3).fingerprint
    # every picked image is a real row of the full set with the same label
    rows = {
        fmnist.images[i].tobytes(): fmnist.labels[i] for i in np.flatnonzero(fmnist.labels == 0)
    }
    zeros = small.images[small.labels == 0]
    assert all(rows.get(image.tobytes()) == 0 for image in zeros)
