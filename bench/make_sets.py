"""Write the held-out image sets that test whether defaults generalise.

    .venv/bin/python bench/make_sets.py --out bench/out

Each set is an ``.npz`` with ``images`` (uint8, N x H x W or N x H x W x 3),
``labels`` and ``class_names``, for ``hctree grow bench/out/<set>.npz``:

- ``digits28``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10
  classes), upsampled bilinearly to 28x28.
- ``digits-moved``: the same digits at 20x20, each placed at a random spot of a 28x28
  frame (up to 8 px from the corner each way): handwritten digits whose position
  is a nuisance, made after the position rule was fixed, to test it.
- ``tinted4``: 4,000 Fashion-MNIST images of four classes (trouser, pullover,
  sneaker, bag), each multiplied by one of four colour casts drawn independently of
  the class: a method that clusters by colour scores about 0.25-0.4 ACC.
- ``tinted-dev``: the same construction with four other classes (T-shirt, dress,
  sandal, ankle boot) and another palette: the set on which colour-invariance
  settings are chosen, so that ``tinted4`` stays held out.
- ``shifted``: 5,000 Fashion-MNIST images on a 36x36 canvas at a random offset,
  cropped back to 28x28 around a random point (objects move by up to 4 px).
- ``shifted-dev``: 4,000 images of the four ``tinted-dev`` classes, shifted the same
  way, with each image's offset (``nuisance``: which third of the range its row and
  column offsets fall in): the set on which position settings are chosen, so that
  ``shifted`` stays held out.
- ``inverted``: 5,000 Fashion-MNIST images, half of them (chosen independently of
  the class) with inverted grey levels.
- ``inverted-dev``: 4,000 images of the four ``tinted-dev`` classes, half inverted:
  the set on which inversion settings are chosen, so that ``inverted`` stays held out.
- ``dimmed``: 5,000 Fashion-MNIST images, each multiplied by one of four brightness
  gains (1, 0.75, 0.5, 0.3) drawn independently of the class: brightness is a nuisance.
- ``dimmed-dev``: 4,000 images of the four ``tinted-dev`` classes, dimmed the same
  way: the set on which brightness settings are chosen, so that ``dimmed`` stays held out.
- ``washed``: 5,000 Fashion-MNIST images, each with its contrast cut to one of 1, 0.8,
  0.6 or 0.4 and lifted by a random offset that keeps it in range (``a x + b``, the
  background grey up to 0.6), drawn independently of the class.
- ``noisy``: 5,000 Fashion-MNIST images with Gaussian pixel noise of a standard
  deviation drawn per image from 0, 16, 32 and 48 grey levels (clipped to 0..255).
- ``zoomed-dev``: 4,000 images of the four ``tinted-dev`` classes, zoomed the same
  way as ``zoomed``, with each image's scale bin stored as ``nuisance``: the set on
  which size settings are chosen, so that ``zoomed`` stays held out.
- ``rotated``: 5,000 Fashion-MNIST images turned about their centre by an angle
  drawn uniformly from [-25, 25] degrees (bilinear): orientation is a nuisance (the
  angle's quarter of the range stored as ``nuisance``, the angle in degrees as ``angle``).
- ``rotated-dev``: 4,000 images of the four ``tinted-dev`` classes, turned the same
  way, with the angle's quarter of the range as ``nuisance``: the set on which
  orientation settings are chosen, so that ``rotated`` stays held out.
- ``rotated-dev6``: 4,000 images of the six other classes (trouser, pullover, coat,
  shirt, sneaker, bag), turned and labelled with their angle the same way: a
  development set for whole trees, whose deeper splits part similar classes.
- ``rotated-dev10``: another draw of 5,000 Fashion-MNIST images of all ten classes, turned
  the same way as ``rotated``: a development set for whole trees of ten leaves,
  made after ``rotated`` had been scored, for settings that set suggested.
- ``scattered``: 5,000 Fashion-MNIST images shrunk by a factor drawn from [0.5, 0.9]
  and placed at a random spot where the whole object stays in the frame: size and
  position are both nuisances. Both made after the scale rule was fixed.
- ``noisy-dev``: 4,000 images of the four ``tinted-dev`` classes with noise added the
  same way and each image's noise level stored as ``nuisance``: the set on which
  noise settings are chosen, so that ``noisy`` stays held out.
- ``zoomed``: 5,000 Fashion-MNIST images shrunk about their centre by a factor drawn
  uniformly from [0.6, 1] (bilinear): object size is a nuisance.
- ``backdrop``: 5,000 Fashion-MNIST images laid as light objects over a plain
  background of one of four colours, drawn independently of the class.
- ``digits-tinted``, ``digits-inverted``, ``tinted10``: digits28 under four colour
  casts (a palette no setting was chosen on), digits28 with half the images in
  negative, and 5,000 Fashion-MNIST images of all ten classes under the same four
  casts (each image's cast stored as ``nuisance``); made on 2026-12-07 and scored
  once with the default as it stood.
- ``tinted10-dev``: the ``tinted10`` construction under the ``tinted-dev`` casts, on
  which colour settings are chosen so that the three sets above stay held out.
- ``printed-dev``: 2,000 printed digits (ten glyphs in eight of matplotlib's bundled
  typefaces, each randomly rotated by up to 12 degrees, scaled, sheared, shifted,
  thickened and blurred) on 28x28: a second digit set, with classes that
  differ by orientation, on which settings are chosen so that ``digits28`` stays
  held out.

- ``compound``, ``digits-compound``: 5,000 Fashion-MNIST images and digits28 under
  several nuisances at once, each drawn independently of the class and of the
  others: turned by up to 15 degrees, shrunk by 0.7-1 and moved within the frame,
  dimmed by a gain of 1, 0.75 or 0.5 and cast in one of four colours (a palette no
  setting was chosen on; the cast stored as ``nuisance``). Made on 2026-12-07 and
  scored once with the default as it stood, to see whether the rules that settle
  each nuisance alone also hold when they meet.

- ``zoomed-mild-dev``, ``zoomed-mild``: the ``zoomed-dev`` and ``zoomed``
  constructions with objects shrunk by a factor from [0.75, 1] (a spread of sizes
  between the ordinary sets' and ``zoomed``'s; ``zoomed-mild`` another draw of
  images than ``zoomed``): the development set and the held-out set of the scale
  rule's threshold, made on 2026-12-07.

Every set is drawn with a fixed seed from images the 10,000-image benchmark subset
(``--subset 10000 --seed 0``) may also contain; the point is the nuisance, not
unseen pixels.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hctree.data import load_images

TINTS = np.array([[1.0, 0.35, 0.35], [0.35, 1.0, 0.35], [0.35, 0.45, 1.0], [1.0, 0.9, 0.3]])
DEV_TINTS = np.array([[0.8, 0.3, 1.0], [0.3, 0.9, 0.9], [1.0, 0.6, 0.2], [0.5, 0.5, 0.8]])
LATE_TINTS = np.array([[1.0, 0.5, 0.2], [0.2, 0.6, 1.0], [0.9, 0.2, 0.7], [0.4, 1.0, 0.4]])


def digits28() -> tuple[np.ndarray, np.ndarray, list[str]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    up = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    images = (up[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return images, bunch.target.astype(np.int64), [str(d) for d in range(10)]


def digits_tinted(rng: np.random.Generator):
    """digits28, each multiplied by one of four colour casts drawn independently of the digit."""
    images, labels, names = digits28()
    rgb, which = _cast(images, LATE_TINTS, rng)
    return rgb, labels, names, {"nuisance": which}


def digits_inverted(rng: np.random.Generator):
    """digits28, half of them (drawn independently of the digit) in negative."""
    images, labels, names = digits28()
    flip = rng.random(len(images)) < 0.5
    images = images.copy()
    images[flip] = 255 - images[flip]
    return images, labels, names


def tinted10(rng: np.random.Generator, palette=LATE_TINTS):
    """5,000 Fashion-MNIST images of all ten classes under the four casts of ``palette``."""
    images, labels, names = _fashion(5000, rng)
    rgb, which = _cast(images, palette, rng)
    return rgb, labels, names, {"nuisance": which}


def digits_moved(rng: np.random.Generator):
    """The bundled digits at 20x20, each placed at a random spot of a 28x28 frame."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0)[:, None]
    small = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    small = (small[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    out = np.zeros((len(small), 28, 28), np.uint8)
    for i, (dy, dx) in enumerate(rng.integers(0, 9, size=(len(small), 2))):
        out[i, dy : dy + 20, dx : dx + 20] = small[i]
    return out, bunch.target.astype(np.int64), [str(d) for d in range(10)]


def _fashion(n: int, rng: np.random.Generator, classes: list[int] | None = None):
    data = load_images("fashion-mnist")
    keep = (
        np.arange(len(data)) if classes is None else np.flatnonzero(np.isin(data.labels, classes))
    )
    pick = rng.choice(keep, n, replace=False)
    images = data.images[pick, 0]
    labels = data.labels[pick]
    names = list(data.class_names)
    if classes is not None:
        remap = {c: i for i, c in enumerate(classes)}
        labels = np.array([remap[int(c)] for c in labels])
        names = [names[c] for c in classes]
    return images, labels.astype(np.int64), names


def _cast(images: np.ndarray, palette: np.ndarray, rng: np.random.Generator):
    """Grey ``images`` (uint8 ``[N, H, W]``) each multiplied by a colour of ``palette``
    drawn independently of anything else: uint8 ``[N, H, W, 3]`` and the colours' indices."""
    which = rng.integers(len(palette), size=len(images))
    rgb = images[..., None].astype(np.float32) * palette[which][:, None, None, :]
    return np.clip(rgb, 0, 255).round().astype(np.uint8), which


def tinted4(rng: np.random.Generator, classes=(1, 2, 7, 8), palette=TINTS):
    images, labels, names = _fashion(4000, rng, classes=list(classes))
    return _cast(images, palette, rng)[0], labels, names


def shifted(rng: np.random.Generator, classes=None, n=5000, offsets=False):
    images, labels, names = _fashion(n, rng, classes=None if classes is None else list(classes))
    canvas = np.zeros((len(images), 36, 36), np.uint8)
    out = np.empty_like(images)
    moves = np.empty((len(images), 2), np.int64)
    for i, img in enumerate(images):
        canvas[i] = 0
        canvas[i, 4:32, 4:32] = img
        dy, dx = rng.integers(0, 9, size=2)
        out[i] = canvas[i, dy : dy + 28, dx : dx + 28]
        moves[i] = dy, dx
    if offsets:  # the nuisance itself: the offset's row and column, each cut into thirds
        return out, labels, names, {"nuisance": (moves[:, 0] // 3) * 3 + moves[:, 1] // 3}
    return out, labels, names


def inverted(rng: np.random.Generator, classes=None, n=5000):
    images, labels, names = _fashion(n, rng, classes=None if classes is None else list(classes))
    flip = rng.random(len(images)) < 0.5
    images = images.copy()
    images[flip] = 255 - images[flip]
    return images, labels, names


GAINS = np.array([1.0, 0.75, 0.5, 0.3])


def dimmed(rng: np.random.Generator, classes=None, n=5000):
    images, labels, names = _fashion(n, rng, classes=None if classes is None else list(classes))
    gain = GAINS[rng.integers(len(GAINS), size=len(images))]
    out = np.clip(images.astype(np.float32) * gain[:, None, None], 0, 255).round()
    return out.astype(np.uint8), labels, names


CONTRASTS = np.array([1.0, 0.8, 0.6, 0.4])


def washed(rng: np.random.Generator, n=5000):
    images, labels, names = _fashion(n, rng)
    a = CONTRASTS[rng.integers(len(CONTRASTS), size=len(images))]
    b = rng.random(len(images)) * 255 * (1 - a)
    out = images.astype(np.float32) * a[:, None, None] + b[:, None, None]
    return np.clip(out, 0, 255).round().astype(np.uint8), labels, names


NOISE = np.array([0.0, 16.0, 32.0, 48.0])


def noisy(rng: np.random.Generator, n=5000, classes=None, levels=False):
    images, labels, names = _fashion(n, rng, classes=None if classes is None else list(classes))
    which = rng.integers(len(NOISE), size=len(images))
    sigma = NOISE[which]
    noise = rng.standard_normal(images.shape).astype(np.float32) * sigma[:, None, None]
    out = np.clip(images.astype(np.float32) + noise, 0, 255).round().astype(np.uint8)
    if levels:  # the nuisance itself: which of the NOISE levels each image got
        return out, labels, names, {"nuisance": which}
    return out, labels, names


def zoomed(rng: np.random.Generator, n=5000, classes=None, scales=False, low=0.6):
    images, labels, names = _fashion(n, rng, classes=None if classes is None else list(classes))
    scale = rng.uniform(low, 1.0, size=len(images)).astype(np.float32)
    theta = torch.zeros(len(images), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = torch.from_numpy(1.0 / scale)
    x = torch.from_numpy(images).float()[:, None]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out[:, 0].clamp(0, 255).round().to(torch.uint8).numpy()
    if scales:  # the nuisance itself: the scale cut into four bins
        return (
            out,
            labels,
            names,
            {"nuisance": np.minimum((scale - low) // round((1 - low) / 4, 6), 3).astype(np.int64)},
        )
    return out, labels, names


def _warped(images: np.ndarray, theta: torch.Tensor) -> np.ndarray:
    """``images`` (uint8 ``[N, H, W]``) resampled bilinearly under the affine maps ``theta``
    (output to input, grid_sample's normalised coordinates), zeros coming in."""
    x = torch.from_numpy(images).float()[:, None]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[:, 0].clamp(0, 255).round().to(torch.uint8).numpy()


def rotated(rng: np.random.Generator, n=5000, classes=None, angles=False):
    images, labels, names = _fashion(n, rng, classes=None if classes is None else list(classes))
    degrees = rng.uniform(-25, 25, size=len(images))
    angle = np.deg2rad(degrees)
    theta = torch.zeros(len(images), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = torch.from_numpy(np.cos(angle)).float()
    theta[:, 0, 1] = torch.from_numpy(-np.sin(angle)).float()
    theta[:, 1, 0] = torch.from_numpy(np.sin(angle)).float()
    if angles:  # the nuisance itself: the angle's quarter of the range
        return (
            _warped(images, theta),
            labels,
            names,
            {"nuisance": np.digitize(degrees, [-12.5, 0, 12.5]), "angle": degrees},
        )
    return _warped(images, theta), labels, names


def scattered(rng: np.random.Generator, n=5000):
    images, labels, names = _fashion(n, rng)
    scale = rng.uniform(0.5, 0.9, size=len(images))
    # the shrunk object may move by (1 - scale) of the half-frame each way
    move = rng.uniform(-1, 1, size=(len(images), 2)) * (1 - scale)[:, None]
    theta = torch.zeros(len(images), 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = torch.from_numpy(1 / scale).float()
    theta[:, :, 2] = torch.from_numpy(-move / scale[:, None]).float()
    return _warped(images, theta), labels, names


BACKDROPS = np.array([[150.0, 40.0, 40.0], [40.0, 120.0, 60.0], [50.0, 60.0, 160.0], [90, 90, 90]])


def backdrop(rng: np.random.Generator, n=5000):
    images, labels, names = _fashion(n, rng)
    colour = BACKDROPS[rng.integers(len(BACKDROPS), size=len(images))]
    alpha = images[..., None].astype(np.float32) / 255.0
    out = alpha * 255.0 + (1.0 - alpha) * colour[:, None, None, :]
    return np.clip(out, 0, 255).round().astype(np.uint8), labels, names


COMPOUND_TINTS = np.array([[1.0, 0.7, 0.5], [0.5, 0.8, 1.0], [0.8, 1.0, 0.6], [1.0, 0.55, 0.9]])
COMPOUND_GAINS = np.array([1.0, 0.75, 0.5])


def compound(rng: np.random.Generator, images: np.ndarray):
    """``images`` (uint8 ``[N, H, W]``) under several nuisances at once, each drawn
    independently of the class and of the others: turned by up to 15 degrees, shrunk
    by a factor from [0.7, 1] and moved where the object stays in the frame, dimmed by
    a gain of COMPOUND_GAINS and cast in a colour of COMPOUND_TINTS. Returns uint8
    ``[N, H, W, 3]`` and each nuisance per image: the cast's index (``nuisance``), the
    angle's and the shrink factor's quarter of their ranges (``turn``, ``shrink``), the
    gain's index (``gain``) and the offset's side along each axis (``offset_x``,
    ``offset_y``: 0 left/up, 1 within 0.05 of the middle, 2 right/down)."""
    n = len(images)
    angle = np.deg2rad(rng.uniform(-15, 15, size=n))
    scale = rng.uniform(0.7, 1.0, size=n)
    move = rng.uniform(-1, 1, size=(n, 2)) * (1 - scale)[:, None]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = torch.from_numpy(np.cos(angle) / scale).float()
    theta[:, 0, 1] = torch.from_numpy(-np.sin(angle) / scale).float()
    theta[:, 1, 0] = torch.from_numpy(np.sin(angle) / scale).float()
    theta[:, :, 2] = torch.from_numpy(-move / scale[:, None]).float()
    warped = _warped(images, theta).astype(np.float32)
    gain = COMPOUND_GAINS[rng.integers(len(COMPOUND_GAINS), size=n)]
    dimmed = np.clip(warped * gain[:, None, None], 0, 255).round().astype(np.uint8)
    rgb, cast = _cast(dimmed, COMPOUND_TINTS, rng)
    kinds = {
        "nuisance": cast,
        "turn": np.digitize(np.rad2deg(angle), [-7.5, 0, 7.5]),
        "shrink": np.digitize(scale, [0.775, 0.85, 0.925]),
        "gain": np.searchsorted(-COMPOUND_GAINS, -gain),
        "offset_x": np.digitize(move[:, 0], [-0.05, 0.05]),
        "offset_y": np.digitize(move[:, 1], [-0.05, 0.05]),
    }
    return rgb, kinds


def fashion_compound(rng: np.random.Generator):
    """5,000 Fashion-MNIST images of all ten classes under :func:`compound`'s nuisances."""
    images, labels, names = _fashion(5000, rng)
    rgb, kinds = compound(rng, images)
    return rgb, labels, names, kinds


def digits_compound(rng: np.random.Generator):
    """digits28 under :func:`compound`'s nuisances."""
    images, labels, names = digits28()
    rgb, kinds = compound(rng, images)
    return rgb, labels, names, kinds


PRINT_FONTS = ["DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "DejaVu Sans Condensed",
               "DejaVu Serif Condensed", "STIXGeneral", "cmr10", "cmss10"]  # fmt: skip


def _glyphs(size: int = 112) -> np.ndarray:
    """Every digit in every typeface, white on black: float32 ``[fonts, 10, size, size]``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = np.zeros((len(PRINT_FONTS), 10, size, size), np.float32)
    for f, font in enumerate(PRINT_FONTS):
        for d in range(10):
            fig = plt.figure(figsize=(1, 1), dpi=size)
            fig.patch.set_facecolor("black")
            fig.text(0.5, 0.5, str(d), color="white", fontsize=64, family=font,
                     ha="center", va="center")  # fmt: skip
            fig.canvas.draw()
            out[f, d] = np.asarray(fig.canvas.buffer_rgba())[..., 0] / 255.0
            plt.close(fig)
    return out


def printed(rng: np.random.Generator, n=2000):
    glyphs = torch.from_numpy(_glyphs())
    labels = rng.integers(10, size=n)
    fonts = rng.integers(len(PRINT_FONTS), size=n)
    x = glyphs[fonts, labels][:, None]
    angle = np.deg2rad(rng.uniform(-12, 12, n))
    scale = rng.uniform(0.75, 1.05, n)
    shear = rng.uniform(-0.2, 0.2, n)
    shift = rng.uniform(-0.1, 0.1, (n, 2))
    c, s = np.cos(angle) / scale, np.sin(angle) / scale
    theta = np.stack(
        [np.stack([c, -s + shear, shift[:, 0]], 1), np.stack([s, c, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(torch.from_numpy(theta).float(), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)
    width = torch.from_numpy(rng.integers(3, size=n))[:, None, None, None]  # strokes: 1x, 2x, 3x
    x = torch.where(width == 0, x, F.max_pool2d(x, 5, 1, 2))
    x = torch.where(width == 2, F.max_pool2d(x, 5, 1, 2), x)
    x = F.interpolate(x, size=(28, 28), mode="area")
    blur = torch.tensor([0.25, 0.5, 0.25])
    kernel = (blur[:, None] * blur[None, :])[None, None]
    soft = F.conv2d(x, kernel, padding=1)
    x = torch.where(torch.from_numpy(rng.random(n) < 0.5)[:, None, None, None], soft, x)
    images = (x[:, 0] / x.amax(dim=(1, 2, 3))[:, None, None].clamp_min(1e-6) * 255).round()
    return (
        images.clamp(0, 255).to(torch.uint8).numpy(),
        labels.astype(np.int64),
        [str(d) for d in range(10)],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/out")
    parser.add_argument(
        "--sets",
        default="digits28,tinted4,shifted,inverted,tinted-dev,inverted-dev,dimmed,dimmed-dev,"
        "washed,noisy,zoomed,backdrop,printed-dev",
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    makers = {"digits28": lambda rng: digits28(), "tinted4": tinted4, "shifted": shifted,
              "inverted": inverted,
              "tinted-dev": lambda rng: tinted4(rng, (0, 3, 5, 9), DEV_TINTS),
              "inverted-dev": lambda rng: inverted(rng, (0, 3, 5, 9), 4000),
              "dimmed": dimmed, "washed": washed, "noisy": noisy, "zoomed": zoomed,
              "backdrop": backdrop, "printed-dev": printed,
              "dimmed-dev": lambda rng: dimmed(rng, (0, 3, 5, 9), 4000),
              "shifted-dev": lambda rng: shifted(rng, (0, 3, 5, 9), 4000, offsets=True),
              "noisy-dev": lambda rng: noisy(rng, 4000, (0, 3, 5, 9), levels=True),
              "zoomed-dev": lambda rng: zoomed(rng, 4000, (0, 3, 5, 9), scales=True),
              "rotated": lambda rng: rotated(rng, angles=True), "scattered": scattered,
              "rotated-dev": lambda rng: rotated(rng, 4000, (0, 3, 5, 9), angles=True),
              "rotated-dev6": lambda rng: rotated(rng, 4000, (1, 2, 4, 6, 7, 8), angles=True),
              # other images than rotated's (the same seed would draw the same ones)
              "rotated-dev10": lambda rng: rotated(np.random.default_rng([2026, 25]), angles=True),
              "digits-moved": digits_moved, "digits-tinted": digits_tinted,
              "digits-inverted": digits_inverted, "tinted10": tinted10,
              # other images than tinted10's (the same seed would draw the same ones)
              "tinted10-dev": lambda rng: tinted10(np.random.default_rng([2026, 10]), DEV_TINTS),
              "compound": fashion_compound, "digits-compound": digits_compound,
              "zoomed-mild-dev": lambda rng: zoomed(rng, 4000, (0, 3, 5, 9), scales=True, low=0.75),
              # other images than zoomed's (the same seed would draw the same ones)
              "zoomed-mild": lambda rng: zoomed(np.random.default_rng([2026, 75]), low=0.75)}  # fmt: skip
    for name in args.sets.split(","):
        images, labels, names, *extra = makers[name](np.random.default_rng(2026))
        path = out / f"{name}.npz"
        np.savez_compressed(
            path, images=images, labels=labels, class_names=np.array(names), **(extra or [{}])[0]
        )
        print(f"{path}: {images.shape} {images.dtype}, {len(names)} classes")


if __name__ == "__main__":
    main()
