"""Load an image collection into memory as one :class:`ImageSet`.

``load_images(path)`` decides the format by what ``path`` is:

- a folder of image files (png, jpg, jpeg, bmp, webp; any letter case), searched
  recursively in sorted order, hidden files skipped. When no image sits directly in
  the folder, the first-level sub-folder names (sorted) become class names and labels;
  otherwise the set has no labels;
- a folder holding IDX files ``<prefix>-images-idx3-ubyte`` with matching
  ``<prefix>-labels-idx1-ubyte`` (optionally ``.gz``); all splits are merged, ``train``
  first, then ``t10k``/``test``, then the rest by name. A path to one IDX file loads
  that split only;
- a ``.npy`` file (images), a ``.npz`` file (``images``, optional ``labels`` and
  ``class_names``) or a ``.h5``/``.hdf5`` file (dataset ``images``, optional dataset
  ``labels``, class names as a ``class_names`` dataset or attribute). Arrays may be
  ``[N,H,W]``, ``[N,H,W,C]`` or ``[N,C,H,W]`` with C in {1, 3} (the axis that is 1 or 3
  is the channel axis; ``[N,C,H,W]`` wins a tie), uint8, integers in 0..255, or floats
  in [0, 1] (scaled by 255 and rounded);
- the name ``fashion-mnist`` (or ``fmnist``) when no such path exists: the IDX files in
  :data:`FASHION_MNIST_DIR`.

Fashion-MNIST's ten class names are attached to IDX data whose folder name contains
"fashion" and whose 28x28 images carry the labels 0..9 (plain MNIST has the same shape,
so the folder name decides).

Optional conversions, in this order: a seeded ``subset`` (drawn before any image is
decoded), ``channels`` (grey -> RGB by repetition, RGB -> grey by ITU-R 601-2 luma, as
Pillow does), ``size`` (Pillow bilinear resize, antialiased when shrinking).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hctree.errors import HCTreeError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_ALIASES = ("fashion-mnist", "fmnist")
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
ARRAY_EXTENSIONS = (".npy", ".npz", ".h5", ".hdf5")

_IDX_RE = re.compile(
    r"^(?P<prefix>.+)[-.](?P<kind>images|labels)[-.]idx(?P<rank>\d)[-.]ubyte(\.gz)?$"
)
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_FORMATS_HINT = "a folder of images, a folder of IDX files, or a .npy, .npz, .h5 or .hdf5 file"


@dataclass(eq=False, repr=False)
class ImageSet:
    """Images in memory with optional labels.

    images: uint8 ``[N, C, H, W]``, C in {1, 3}. labels: int64 ``[N]`` or None.
    class_names: names for label values 0..K-1, or None. source: the path as given.
    names: per-image relative file path (image folders only), else None.
    spec: the :func:`load_images` keyword arguments that reproduce the set.
    fingerprint: :func:`fingerprint` of ``images``.
    """

    images: np.ndarray
    labels: np.ndarray | None
    class_names: list[str] | None
    source: str
    names: list[str] | None
    spec: dict
    fingerprint: str

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)``."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def describe(self) -> str:
        """A few lines for people: source, count, image shape, classes with counts."""
        c, h, w = self.image_shape
        lines = [f"source: {self.source}", f"images: {len(self)} x {c}x{h}x{w} (uint8)"]
        if self.labels is None:
            lines.append("labels: none")
            return "\n".join(lines)
        counts = Counter(self.labels.tolist())
        lines.append(f"classes: {len(counts)}")
        for value in sorted(counts):
            known = self.class_names is not None and value < len(self.class_names)
            name = f" {self.class_names[value]}" if known else ""
            lines.append(f"  {value}{name}: {counts[value]}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        k = "no labels" if self.labels is None else f"{len(np.unique(self.labels))} classes"
        return f"ImageSet(source={self.source!r}, n={len(self)}, shape={c}x{h}x{w}, {k})"


def fingerprint(images: np.ndarray) -> str:
    """sha256 hex of the text ``"N,C,H,W;"`` followed by the C-order pixel bytes.

    images: uint8 ``[N, C, H, W]``.
    """
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"fingerprint wants uint8 [N,C,H,W], got {images.dtype} {images.shape}")
    digest = hashlib.sha256(",".join(str(d) for d in images.shape).encode() + b";")
    digest.update(memoryview(np.ascontiguousarray(images)).cast("B"))
    return digest.hexdigest()


def load_images(
    path: str | os.PathLike | Any,
    size: int | None = None,
    channels: int | None = None,
    subset: int | None = None,
    seed: int = 0,
    labels: Any = None,
    class_names: Any = None,
) -> ImageSet:
    """Load images from ``path`` (see the module docstring for formats and conversions).

    ``path`` may also be images already in memory: a numpy array or torch tensor
    (the array layouts and dtypes of array files), or a dataset object such as a
    torchvision dataset (its ``data``/``targets``/``classes`` when it has them, else
    its ``(image, label)`` items). ``labels`` and ``class_names`` go with in-memory
    images; a dataset's own labels are used when ``labels`` is None. In-memory sets
    record no path, so commands that reload a tree's images then ask for ``--data``.

    size: resize every image to ``size x size``. channels: 1 or 3. subset: keep that many
    images drawn with ``numpy.random.default_rng(seed)`` (indices sorted).
    Raises HCTreeError for anything the user can fix.
    """
    _check_options(size, channels, subset, seed)
    if not isinstance(path, (str, os.PathLike)):
        return _load_memory(path, labels, class_names, size, channels, subset, seed)
    if labels is not None or class_names is not None:
        raise HCTreeError(
            "labels and class_names go with images in memory; a file or folder brings its own."
        )
    source = os.fspath(path)
    source = source if isinstance(source, str) else os.fsdecode(source)
    where = _resolve(source)
    if where.is_dir() and not _idx_files(where):  # a folder of image files
        files, labels, class_names = _list_folder(where)
        keep = _subset_indices(len(files), subset, seed)
        files = [files[i] for i in keep]
        labels = None if labels is None else labels[keep]
        images = _decode_files(where, files, channels, size)
        names: list[str] | None = files
    else:
        images, labels, class_names = _read_arrays(where)
        keep = _subset_indices(len(images), subset, seed)
        images = _resize(_to_channels(images[keep], channels), size)
        labels = None if labels is None else labels[keep]
        names = None
    images = np.ascontiguousarray(images)
    spec = {"path": source, "size": size, "channels": channels, "subset": subset, "seed": seed}
    return ImageSet(
        images=images,
        labels=labels,
        class_names=class_names,
        source=source,
        names=names,
        spec=spec,
        fingerprint=fingerprint(images),
    )


def resized(data: ImageSet, size: int) -> ImageSet:
    """``data`` with every image resized to ``size x size``: the set that
    :func:`load_images` gives with ``size`` (its spec says so, for reloading)."""
    images = np.ascontiguousarray(_resize(data.images, size))
    return replace(
        data, images=images, spec={**data.spec, "size": size}, fingerprint=fingerprint(images)
    )


def _load_memory(
    obj: Any,
    labels: Any,
    class_names: Any,
    size: int | None,
    channels: int | None,
    subset: int | None,
    seed: int,
) -> ImageSet:
    """An ImageSet from an array, a tensor or a dataset object (see :func:`load_images`)."""
    kind = type(obj).__name__
    where = Path(f"the {kind} given")
    if isinstance(obj, np.ndarray) or _is_tensor(obj):
        raw = _numpy(obj)
    elif hasattr(obj, "__len__") and hasattr(obj, "__getitem__"):
        raw, own_labels, own_names = _dataset_arrays(obj, where)
        labels = own_labels if labels is None else labels
        class_names = own_names if class_names is None else class_names
    else:
        raise HCTreeError(
            f"images must be a path, a numpy array, a torch tensor or a dataset, not a {kind}."
        )
    if raw.dtype == object:
        raise HCTreeError(f"the {kind} given does not hold numbers; pass pixel values.")
    images = _as_images(raw, where)
    labels, class_names = _as_labels(
        None if labels is None else _numpy(labels), class_names, len(images), where
    )
    keep = _subset_indices(len(images), subset, seed)
    images = np.ascontiguousarray(_resize(_to_channels(images[keep], channels), size))
    labels = None if labels is None else labels[keep]
    spec = {"path": "", "size": size, "channels": channels, "subset": subset, "seed": seed}
    return ImageSet(
        images=images,
        labels=labels,
        class_names=class_names,
        source=f"<{kind} in memory>",
        names=None,
        spec=spec,
        fingerprint=fingerprint(images),
    )


def _is_tensor(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach")


def _numpy(obj: Any) -> np.ndarray:
    if _is_tensor(obj):
        return obj.detach().cpu().numpy()
    return np.asarray(obj)


def _dataset_arrays(ds: Any, where: Path) -> tuple[np.ndarray, Any, Any]:
    """(images, labels or None, class names or None) of a dataset object."""
    names = getattr(ds, "classes", None)
    data, targets = getattr(ds, "data", None), getattr(ds, "targets", None)
    if data is not None and len(data) == len(ds) and getattr(ds, "transform", None) is None:
        return _numpy(data), None if targets is None else _numpy(targets), names
    if len(ds) == 0:
        raise HCTreeError(f"{where} holds zero images; pass a non-empty dataset.")
    images, labels = [], []
    for i in range(len(ds)):
        item = ds[i]
        image, label = (item[0], item[1]) if isinstance(item, (tuple, list)) else (item, None)
        images.append(_numpy(image))
        labels.append(label)
    shapes = {a.shape for a in images}
    if len(shapes) > 1:
        raise HCTreeError(
            f"the images of {where} have {len(shapes)} different shapes; "
            "give the dataset a transform that makes them one size."
        )
    known = all(label is not None for label in labels)
    return np.stack(images), np.array([int(v) for v in labels]) if known else None, names


# ---------------------------------------------------------------- options and paths


def _check_options(size: Any, channels: Any, subset: Any, seed: Any) -> None:
    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if size is not None and not (is_int(size) and size >= 1):
        raise HCTreeError(f"size must be a positive whole number of pixels, got {size!r}.")
    if channels is not None and channels not in (1, 3):
        raise HCTreeError(f"channels must be 1 (grey) or 3 (RGB), got {channels!r}.")
    if subset is not None and not (is_int(subset) and subset >= 1):
        raise HCTreeError(f"subset must be a positive number of images, got {subset!r}.")
    if not (is_int(seed) and seed >= 0):
        raise HCTreeError(f"seed must be a non-negative whole number, got {seed!r}.")


def _resolve(source: str) -> Path:
    where = Path(source).expanduser()
    if where.exists():
        return where
    if source.strip().lower() in FASHION_MNIST_ALIASES:
        fmnist = Path(FASHION_MNIST_DIR)
        if not fmnist.is_dir():
            raise HCTreeError(
                f"Fashion-MNIST is not installed in {fmnist}; install it with "
                "`sudo apt-get install dataset-fashion-mnist`."
            )
        return fmnist
    raise HCTreeError(f"{source} does not exist; check the path for typos.")


def _subset_indices(n: int, subset: int | None, seed: int) -> np.ndarray:
    if subset is None:
        return np.arange(n)
    if subset > n:
        raise HCTreeError(
            f"subset={subset} is larger than the {n} images available; ask for fewer."
        )
    return np.sort(np.random.default_rng(seed).choice(n, size=subset, replace=False))


# ---------------------------------------------------------------- image folders


def _list_folder(root: Path) -> tuple[list[str], np.ndarray | None, list[str] | None]:
    """Sorted relative posix paths of the images under ``root``, labels, class names."""
    files = []
    any_file = False
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            any_file = True
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                files.append(Path(dirpath, name).relative_to(root).as_posix())
    if not any_file:
        raise HCTreeError(
            f"folder {root} is empty; put image files in it or point at {_FORMATS_HINT}."
        )
    if not files:
        raise HCTreeError(
            f"no image files ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) found under {root}; "
            f"point at {_FORMATS_HINT}."
        )
    files.sort()
    if any("/" not in f for f in files):
        return files, None, None
    folders = [f.split("/", 1)[0] for f in files]
    class_names = sorted(set(folders))
    index = {name: i for i, name in enumerate(class_names)}
    return files, np.array([index[f] for f in folders], dtype=np.int64), class_names


def _decode_files(
    root: Path, files: list[str], channels: int | None, size: int | None
) -> np.ndarray:
    """Decode, convert and stack the files: uint8 ``[N, C, H, W]``."""
    arrays = []
    for name in files:
        one = _decode(root / name, name)[None]
        arrays.append(_resize(_to_channels(one, channels), size)[0])
    _check_uniform(arrays, files)
    return np.stack(arrays)


def _decode(path: Path, name: str) -> np.ndarray:
    """One image file as uint8 ``[C, H, W]`` with C in {1, 3}."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("L", "RGB"):
                pixels = np.asarray(im)
            elif im.mode in ("1", "LA"):
                pixels = np.asarray(im.convert("L"))
            elif im.mode.startswith("I;16"):
                pixels = (np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8)
            elif im.mode in ("I", "F"):
                raise HCTreeError(
                    f"image {name} has 32-bit {im.mode} pixels; save it as 8-bit grey or RGB."
                )
            else:
                pixels = np.asarray(im.convert("RGB"))
    except HCTreeError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise HCTreeError(
            f"image file {name} cannot be read ({type(exc).__name__}); replace or delete it."
        ) from None
    if pixels.ndim == 2:
        return pixels[None].copy()
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def _check_uniform(arrays: list[np.ndarray], files: list[str]) -> None:
    first = arrays[0].shape
    for array, name in zip(arrays, files, strict=True):
        if array.shape[0] != first[0]:
            raise HCTreeError(
                f"images mix {first[0]} and {array.shape[0]} channels ({files[0]}, {name}); "
                "pass channels=1 or channels=3 (--channels) to convert them."
            )
        if array.shape[1:] != first[1:]:
            a, b = "x".join(map(str, first[1:])), "x".join(map(str, array.shape[1:]))
            raise HCTreeError(
                f"images differ in size ({a} in {files[0]}, {b} in {name}); "
                "pass size=N (--size N) to resize them all to NxN."
            )


# ---------------------------------------------------------------- conversions


def _to_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """uint8 ``[N, C, H, W]`` -> uint8 ``[N, channels, H, W]``."""
    if channels is None or images.shape[1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=1)
    r, g, b = (images[:, i].astype(np.uint32) for i in range(3))
    grey = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16
    return grey.astype(np.uint8)[:, None]


def _resize(images: np.ndarray, size: int | None) -> np.ndarray:
    """uint8 ``[N, C, H, W]`` -> uint8 ``[N, C, size, size]`` (Pillow bilinear)."""
    if size is None or images.shape[2:] == (size, size):
        return images
    from PIL import Image

    out = np.empty(images.shape[:2] + (size, size), dtype=np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0))
        resized = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR))
        out[i] = resized[None] if resized.ndim == 2 else resized.transpose(2, 0, 1)
    return out


# ---------------------------------------------------------------- array formats


def _read_arrays(where: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Images as uint8 ``[N, C, H, W]``, labels int64 ``[N]`` or None, class names."""
    if where.is_dir():
        return _read_idx_folder(where, _idx_files(where))
    idx_name = _IDX_RE.match(where.name)
    if idx_name:
        return _read_idx_folder(where.parent, _idx_files(where.parent, idx_name["prefix"]))
    suffix = where.suffix.lower()
    if suffix == ".npy":
        raw = _load_numpy(where)
        if not isinstance(raw, np.ndarray):
            raise HCTreeError(f"{where} is not a .npy array; save the images with np.save.")
        return _as_images(raw, where), None, None
    if suffix == ".npz":
        return _read_npz(where)
    if suffix in (".h5", ".hdf5"):
        return _read_h5(where)
    raise HCTreeError(
        f"unsupported file type {suffix or '(none)'!r} for {where}; use {_FORMATS_HINT}."
    )


def _load_numpy(where: Path) -> Any:
    try:
        return np.load(where, allow_pickle=False)
    except PermissionError:
        raise HCTreeError(f"{where} cannot be read: permission denied.") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise HCTreeError(
            f"{where} cannot be read as numpy data ({type(exc).__name__}); save it again."
        ) from None


def _read_npz(where: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    archive = _load_numpy(where)
    try:
        if "images" not in archive.files:
            found = ", ".join(archive.files) or "nothing"
            raise HCTreeError(
                f"{where} has no 'images' array (found {found}); "
                "save it with np.savez(path, images=..., labels=...)."
            )
        images = _as_images(archive["images"], where)
        labels = archive["labels"] if "labels" in archive.files else None
        names = archive["class_names"] if "class_names" in archive.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise HCTreeError(
            f"{where} cannot be read as numpy data ({type(exc).__name__}); save it again."
        ) from None
    finally:
        archive.close()
    return images, *_as_labels(labels, names, len(images), where)


def _read_h5(where: Path) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    import h5py

    try:
        with h5py.File(where, "r") as f:
            if not isinstance(f.get("images"), h5py.Dataset):
                raise HCTreeError(
                    f"{where} has no 'images' dataset; write the images to a dataset named images."
                )
            images = f["images"][()]
            labels = f["labels"][()] if isinstance(f.get("labels"), h5py.Dataset) else None
            names = None
            for holder in (f, f["images"], f.get("labels")):
                if holder is not None and "class_names" in holder.attrs:
                    names = holder.attrs["class_names"]
            if isinstance(f.get("class_names"), h5py.Dataset):
                names = f["class_names"][()]
    except OSError as exc:
        raise HCTreeError(f"{where} cannot be read as HDF5 ({exc}); save it again.") from None
    images = _as_images(images, where)
    return images, *_as_labels(labels, names, len(images), where)


def _as_images(raw: np.ndarray, where: Path) -> np.ndarray:
    """Any accepted array layout and dtype -> uint8 ``[N, C, H, W]``."""
    shape = tuple(raw.shape)
    if raw.ndim == 3:
        raw = raw[:, None]
    elif raw.ndim == 4:
        if raw.shape[1] not in (1, 3):
            if raw.shape[3] not in (1, 3):
                raise HCTreeError(
                    f"images in {where} have shape {shape} with no channel axis of size 1 or 3; "
                    "save grey or RGB images as [N,H,W], [N,H,W,C] or [N,C,H,W]."
                )
            raw = raw.transpose(0, 3, 1, 2)
    else:
        raise HCTreeError(
            f"images in {where} have rank {raw.ndim} (shape {shape}); "
            "reshape them to [N,H,W], [N,H,W,C] or [N,C,H,W]."
        )
    if raw.shape[0] == 0:
        raise HCTreeError(f"{where} holds zero images (shape {shape}); save a non-empty array.")
    if 0 in raw.shape:
        raise HCTreeError(f"images in {where} have an empty axis (shape {shape}); fix the array.")
    return np.ascontiguousarray(_as_uint8(raw, where))


def _as_uint8(raw: np.ndarray, where: Path) -> np.ndarray:
    if raw.dtype == np.uint8:
        return raw
    if raw.dtype.kind in "iu":
        lo, hi = int(raw.min()), int(raw.max())
        if lo < 0 or hi > 255:
            raise HCTreeError(
                f"integer images in {where} range from {lo} to {hi} but must lie in 0..255; "
                "rescale them."
            )
        return raw.astype(np.uint8)
    if raw.dtype.kind == "f":
        if not np.isfinite(raw).all():
            raise HCTreeError(
                f"images in {where} contain NaN or inf values; replace them before loading."
            )
        lo, hi = float(raw.min()), float(raw.max())
        if lo < 0.0 or hi > 1.0:
            raise HCTreeError(
                f"float images in {where} range from {lo:g} to {hi:g} but must lie in [0, 1]; "
                "rescale them (or save uint8 pixels 0..255)."
            )
        return np.rint(raw * 255.0).astype(np.uint8)
    raise HCTreeError(
        f"images in {where} have dtype {raw.dtype}; save uint8 pixels or floats in [0, 1]."
    )


def _as_labels(
    labels: Any, names: Any, n: int, where: Path
) -> tuple[np.ndarray | None, list[str] | None]:
    """Validated int64 ``[N]`` labels (or None) and class names (or None)."""
    class_names = None if names is None else _strings(names)
    if labels is None:
        return None, class_names
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise HCTreeError(
            f"labels in {where} have shape {labels.shape}; "
            "save one class index per image, shape [N]."
        )
    if len(labels) != n:
        raise HCTreeError(
            f"{where} has {len(labels)} labels for {n} images; save exactly one label per image."
        )
    if labels.dtype.kind in "SUO":
        text = _strings(labels)
        found = sorted(set(text))
        if class_names is None:
            class_names = found
        unknown = [t for t in found if t not in class_names]
        if unknown:
            raise HCTreeError(
                f"label {unknown[0]!r} in {where} is not among its class_names; add it."
            )
        index = {name: i for i, name in enumerate(class_names)}
        return np.array([index[t] for t in text], dtype=np.int64), class_names
    if labels.dtype.kind == "f" and not (np.isfinite(labels).all() and (labels % 1 == 0).all()):
        raise HCTreeError(f"labels in {where} are not whole numbers; save integer class indices.")
    if labels.dtype.kind not in "iuf":
        raise HCTreeError(
            f"labels in {where} have dtype {labels.dtype}; save integer class indices."
        )
    labels = labels.astype(np.int64)
    if n and labels.min() < 0:
        raise HCTreeError(f"labels in {where} include {labels.min()}; class indices start at 0.")
    if class_names is not None and n and labels.max() >= len(class_names):
        raise HCTreeError(
            f"labels in {where} go up to {labels.max()} but only {len(class_names)} class_names "
            "are given; name every class."
        )
    return labels, class_names


def _strings(values: Any) -> list[str]:
    items = [values] if isinstance(values, (str, bytes)) else list(np.asarray(values).ravel())
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in items]


# ---------------------------------------------------------------- IDX


def _idx_files(folder: Path, only: str | None = None) -> list[tuple[str, Path, Path | None]]:
    """``(prefix, images file, labels file or None)`` per split, train first."""
    found: dict[tuple[str, str], Path] = {}
    for entry in sorted(folder.iterdir()):
        match = _IDX_RE.match(entry.name)
        if match and entry.is_file() and (only is None or match["prefix"] == only):
            key = (match["prefix"], match["kind"])
            if key not in found or not entry.name.endswith(".gz"):
                found[key] = entry  # the uncompressed copy wins: it reads faster

    def order(prefix: str) -> tuple[int, str]:
        low = prefix.lower()
        return (0 if "train" in low else 1 if ("t10k" in low or "test" in low) else 2, prefix)

    prefixes = sorted({p for p, kind in found if kind == "images"}, key=order)
    return [(p, found[(p, "images")], found.get((p, "labels"))) for p in prefixes]


def _read_idx_folder(
    folder: Path, splits: list[tuple[str, Path, Path | None]]
) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """Merge the IDX splits; labels only when every split has a labels file."""
    if not splits:
        raise HCTreeError(
            f"no '<name>-images-idx3-ubyte' file found in {folder}; point at {_FORMATS_HINT}."
        )
    images, labels = [], []
    for _, image_file, label_file in splits:
        part = _as_images(read_idx(image_file), image_file)
        images.append(part)
        if label_file is not None:
            label_array = read_idx(label_file)
            labels.append(_as_labels(label_array, None, len(part), label_file)[0])
    all_images = np.concatenate(images) if len(images) > 1 else images[0]
    all_labels = np.concatenate(labels) if len(labels) == len(images) else None
    class_names = None
    if _is_fashion_mnist(folder, all_images, all_labels):
        class_names = list(FASHION_MNIST_CLASSES)
    return all_images, all_labels, class_names


def _is_fashion_mnist(folder: Path, images: np.ndarray, labels: np.ndarray | None) -> bool:
    named = (
        "fashion" in folder.resolve().name.lower()
        or folder.resolve() == Path(FASHION_MNIST_DIR).resolve()
    )
    return (
        named
        and labels is not None
        and images.shape[1:] == (1, 28, 28)
        and set(np.unique(labels).tolist()) == set(range(10))
    )


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file (gzipped when its name ends in .gz) into a numpy array.

    The header is two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the rank, then one big-endian uint32 per
    dimension. Returns the array in the file's shape, native byte order.
    """
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _IDX_DTYPES:
                raise HCTreeError(f"{path} is not an IDX file (bad header); download it again.")
            rank = head[3]
            dims_raw = f.read(4 * rank)
            if len(dims_raw) < 4 * rank:
                raise HCTreeError(f"IDX file {path} is truncated in its header; download it again.")
            dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
            dtype = _IDX_DTYPES[head[2]]
            data = np.empty(int(np.prod(dims, dtype=np.int64)), dtype=dtype)
            got = _read_into(f, memoryview(data.view(np.uint8)))
            extra = f.read(1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise HCTreeError(
            f"IDX file {path} is truncated or corrupt ({type(exc).__name__}); download it again."
        ) from None
    if got < data.nbytes:
        raise HCTreeError(
            f"IDX file {path} is truncated ({got} of {data.nbytes} data bytes); download it again."
        )
    if extra:
        raise HCTreeError(f"IDX file {path} is longer than its header says; download it again.")
    return data.reshape(dims).astype(dtype.newbyteorder("="), copy=False)


def _read_into(f: Any, buffer: memoryview) -> int:
    total = 0
    while total < len(buffer):
        n = f.readinto(buffer[total:])
        if not n:
            break
        total += n
    return total
