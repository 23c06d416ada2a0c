"""Figures of a tree: image grids per node (HC-MGAN paper, Figure 5) and a dendrogram.

Every node is drawn as a grid of real images sampled in proportion to its
membership, with its name, mass and the classes holding most of its mass. Leaves
have a dashed red frame. Optionally each split also shows what its generators draw
for each child. ``render_curves`` draws every split's training curves. The output
format follows the file extension (.png, .svg, .pdf).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from hctree.curves import STEP  # noqa: E402
from hctree.data import ImageSet, load_images  # noqa: E402
from hctree.errors import HCTreeError  # noqa: E402
from hctree.export import linkage_matrix, merge_heights  # noqa: E402
from hctree.sample import generate_split, image_grid, node_rng, sample_real  # noqa: E402
from hctree.tree import Tree  # noqa: E402

FORMATS = (".png", ".svg", ".pdf")
LEAF_COLOUR = "#d62728"
GENERATED_COLOUR = "#1f77b4"
EDGE_COLOUR = "#888888"


# ---------------------------------------------------------------- layout


def tree_layout(tree: Tree) -> dict[str, tuple[float, float]]:
    """Node name -> ``(x, y)``: leaves at x = 0, 1, 2, ... in depth-first order, each
    parent centred over its first and last child; y = -depth (the root on top)."""
    leaf_x = {name: float(i) for i, name in enumerate(tree.leaves)}
    positions: dict[str, tuple[float, float]] = {}

    def place(name: str) -> float:
        node = tree.node(name)
        if node.is_leaf:
            x = leaf_x[name]
        else:
            xs = [place(child) for child in node.children]
            x = (xs[0] + xs[-1]) / 2
        positions[name] = (x, -float(node.depth))
        return x

    place("r")
    return positions


# ---------------------------------------------------------------- images


def tree_images(tree: Tree, data: str | os.PathLike | None = None) -> ImageSet:
    """The images the tree was grown on, reloaded from its stored data spec.

    ``data`` replaces the stored path (when the data moved); the spec's size,
    channels and subset still apply. HCTreeError when they cannot be loaded or are
    not the same images (fingerprint differs).
    """
    spec = json.loads(str(tree.attrs.get("data_spec", "{}")))
    if data is not None:
        spec["path"] = os.fspath(data)
    if not spec.get("path"):
        raise HCTreeError(
            "the tree does not record where its images are; pass them with --data PATH."
        )
    try:
        images = load_images(**spec)
    except HCTreeError as exc:
        reason = str(exc).rstrip(".")
        raise HCTreeError(
            f"the tree's images cannot be loaded from {spec['path']} ({reason}); "
            "pass their current location with --data PATH."
        ) from None
    check_images(tree, images)
    return images


def check_images(tree: Tree, images: ImageSet) -> None:
    """HCTreeError unless ``images`` are exactly the ones the tree was grown on."""
    expected = tree.attrs.get("dataset_fingerprint")
    if len(images) != tree.n or (expected and images.fingerprint != expected):
        raise HCTreeError(
            f"the images in {images.source} are not the ones the tree was grown on "
            f"({len(images):,} images, {tree.n:,} expected, or different pixels); "
            "pass the original data with --data PATH."
        )


def _class_shares(tree: Tree, name: str, top: int) -> list[tuple[int, str, float]]:
    """The ``top`` classes of a node: (class index, name, share of the node's mass)."""
    if tree.labels is None or top <= 0:
        return []
    node = tree.node(name)
    counts = np.bincount(tree.labels, weights=node.membership.astype(np.float64))
    names = tree.class_names or [str(i) for i in range(len(counts))]
    total = max(float(counts.sum()), 1e-12)
    order = np.argsort(-counts, kind="stable")[:top]
    return [
        (int(i), names[i] if i < len(names) else str(i), counts[i] / total)
        for i in order
        if counts[i] > 0
    ]


# ---------------------------------------------------------------- drawing


@dataclass
class _Geometry:
    """Sizes in inches, chosen from the number of leaves and depth levels."""

    slot: float  # width given to one leaf
    grid_w: float
    grid_h: float
    font: float
    line: float  # text line height
    text_h: float  # name line plus class lines
    level: float  # vertical distance between depth levels
    margin: float
    left: float  # x of the first leaf slot's left edge
    title_h: float
    width: float
    height: float


def _geometry(n_leaves: int, levels: int, grid_aspect: float, class_lines: int) -> _Geometry:
    slot = float(np.clip(36.0 / n_leaves, 1.05, 1.9))
    grid_w = 0.78 * slot
    grid_h = grid_w * grid_aspect
    font = float(np.clip(4.6 * slot, 5.5, 8.5))
    line = font / 72 * 1.4
    text_h = line * (1.1 + class_lines) + 0.1
    level = grid_h + text_h + 0.4
    margin, title_h = 0.25, 0.45
    width = max(n_leaves * slot + 2 * margin, 7.0)
    left = (width - n_leaves * slot) / 2
    height = levels * level - 0.3 + title_h + 2 * margin
    return _Geometry(
        slot, grid_w, grid_h, font, line, text_h, level, margin, left, title_h, width, height
    )


class _Canvas:
    """One figure whose single axes measures inches from the bottom-left corner."""

    def __init__(self, width: float, height: float):
        self.fig = plt.figure(figsize=(width, height))
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_axis_off()
        self.width, self.height = width, height

    def image(self, picture: np.ndarray, left: float, top: float, w: float, h: float) -> None:
        self.ax.imshow(
            picture,
            extent=(left, left + w, top - h, top),
            cmap="gray",
            vmin=0,
            vmax=255,
            interpolation="nearest",
            aspect="auto",
            zorder=2,
        )

    def frame(
        self,
        left: float,
        top: float,
        w: float,
        h: float,
        colour: str,
        dashed: bool,
        width: float = 1.0,
    ) -> None:
        self.ax.add_patch(
            Rectangle(
                (left, top - h),
                w,
                h,
                fill=False,
                edgecolor=colour,
                linewidth=width,
                linestyle="--" if dashed else "-",
                zorder=3,
            )
        )

    def save(self, path: Path, dpi: float) -> None:
        self.ax.set_xlim(0, self.width)
        self.ax.set_ylim(0, self.height)
        try:
            self.fig.savefig(path, dpi=dpi, facecolor="white")
        finally:
            plt.close(self.fig)


def _n_classes(tree: Tree) -> int:
    """How many classes the labels have (0 without labels)."""
    if tree.labels is None:
        return 0
    return max(len(tree.class_names or []), int(tree.labels.max(initial=-1)) + 1)


def _class_colours(n_classes: int) -> list:
    cmap = plt.get_cmap("tab10" if n_classes <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(max(n_classes, 1))]


def _mass_text(mass: float) -> str:
    return f"{mass:,.0f}" if mass >= 100 else f"{mass:,.2f}"


def _draw_text(
    canvas: _Canvas,
    g: _Geometry,
    tree: Tree,
    name: str,
    left: float,
    top: float,
    top_classes: int,
    colours: list,
) -> None:
    """Name and mass, then one bar per leading class, below a grid whose top-left is given."""
    node = tree.node(name)
    y = top - 0.07 - g.line * 0.5
    state = "" if node.status != "splitting" else "  (splitting)"
    canvas.ax.text(
        left, y, name, fontsize=g.font + 0.5, fontweight="bold", va="center", ha="left", zorder=4
    )
    canvas.ax.text(
        left + g.grid_w,
        y,
        f"mass {_mass_text(node.mass)}{state}",
        fontsize=g.font,
        va="center",
        ha="right",
        color="#333333",
        zorder=4,
    )
    for index, label, share in _class_shares(tree, name, top_classes):
        y -= g.line
        canvas.ax.add_patch(
            Rectangle(
                (left, y - g.line * 0.42),
                g.grid_w * share,
                g.line * 0.84,
                facecolor=colours[index % len(colours)],
                alpha=0.45,
                linewidth=0,
                zorder=2,
            )
        )
        text = label if len(label) <= 16 else label[:15] + "…"
        canvas.ax.text(
            left + 0.03,
            y,
            f"{text} {share:.0%}",
            fontsize=g.font - 0.5,
            va="center",
            ha="left",
            zorder=4,
        )


def _elbow(canvas: _Canvas, x0: float, y0: float, x1: float, y1: float) -> None:
    """A parent-to-child edge: down, across, down."""
    mid = y1 + 0.18
    canvas.ax.plot(
        [x0, x0, x1, x1],
        [y0, mid, mid, y1],
        color=EDGE_COLOUR,
        linewidth=1.0,
        solid_joinstyle="miter",
        zorder=1,
    )


def render_tree(
    tree: Tree,
    out_path: str | os.PathLike,
    images: ImageSet | None = None,
    n_images: int = 25,
    generated: bool = False,
    top_classes: int = 3,
    seed: int = 0,
    device: str = "cpu",
) -> Path:
    """Draw ``tree`` as image grids per node and write it to ``out_path`` (.png, .svg, .pdf).

    images: the tree's images (default: reloaded from the tree's data spec).
    n_images: real images per node, drawn with probability ∝ membership (seeded per node).
    generated: also show, beside each split, ``n_images`` images per child from its
    stored generators (splits without models show real images only).
    top_classes: leading classes listed per node when the tree has labels.
    Returns the written path.
    """
    out_path = _figure_path(out_path)
    if n_images < 1:
        raise HCTreeError(f"each node needs at least 1 image, not {n_images}.")
    images = images if images is not None else tree_images(tree)
    check_images(tree, images)
    layout = tree_layout(tree)
    pixels = images.images
    grid_shape = image_grid(pixels[:1].repeat(n_images, axis=0)).shape
    levels = max(node.depth for node in tree.nodes.values()) + 1
    n_classes = _n_classes(tree)
    class_lines = min(top_classes, n_classes)
    g = _geometry(len(tree.leaves), levels, grid_shape[0] / grid_shape[1], class_lines)
    canvas = _Canvas(g.width, g.height)
    colours = _class_colours(n_classes)

    def centre_x(name: str) -> float:
        return g.left + (layout[name][0] + 0.5) * g.slot

    def top_y(name: str) -> float:
        return g.height - g.margin - g.title_h - tree.node(name).depth * g.level

    anchors: dict[str, float] = {}  # left edge of each node's real grid
    for name, node in tree.nodes.items():
        fakes = (
            _generated(tree, name, n_images, seed, device) if generated and node.children else None
        )
        left = centre_x(name) - g.grid_w / 2
        if fakes is not None:
            left = _draw_generated(canvas, g, tree, name, fakes, centre_x(name), top_y(name))
        anchors[name] = left
        idx = sample_real(node.membership, n_images, node_rng(seed, name))
        picture = image_grid(pixels[idx] if len(idx) else pixels[:0])
        canvas.image(picture, left, top_y(name), g.grid_w, g.grid_h)
        if node.is_leaf:
            canvas.frame(
                left - 0.03,
                top_y(name) + 0.03,
                g.grid_w + 0.06,
                g.grid_h + 0.06,
                LEAF_COLOUR,
                dashed=True,
                width=1.4,
            )
        _draw_text(canvas, g, tree, name, left, top_y(name) - g.grid_h, top_classes, colours)

    for name, node in tree.nodes.items():
        for child in node.children:
            _elbow(
                canvas,
                anchors[name] + g.grid_w / 2,
                top_y(name) - g.grid_h - g.text_h,
                anchors[child] + g.grid_w / 2,
                top_y(child) + 0.04,
            )

    _draw_title(canvas, g, tree, generated)
    dpi = float(np.clip(grid_shape[1] / g.grid_w, 130, 220))
    canvas.save(out_path, dpi)
    return out_path


def _generated(tree: Tree, name: str, n: int, seed: int, device: str) -> np.ndarray | None:
    """``[k, n, C, H, W]`` images from a split's generators, or None when it has no models."""
    if not tree.models(name):
        return None
    return generate_split(tree, name, n, seed, device)


def _draw_generated(
    canvas: _Canvas,
    g: _Geometry,
    tree: Tree,
    name: str,
    fakes: np.ndarray,
    centre: float,
    top: float,
) -> float:
    """Draw the real grid's place and one generated grid per child; return the real grid's left."""
    children = tree.node(name).children
    k, gap = len(children), 0.08
    room = k * g.slot * 0.94
    small = min(0.8 * g.grid_w, (room - g.grid_w - k * gap) / k)
    left = centre - (g.grid_w + k * (gap + small)) / 2
    x = left + g.grid_w + gap
    for j, child in enumerate(children):
        picture = image_grid(fakes[j])
        h = small * picture.shape[0] / picture.shape[1]
        canvas.image(picture, x, top, small, h)
        canvas.frame(x, top, small, h, GENERATED_COLOUR, dashed=False, width=1.0)
        canvas.ax.text(
            x + small / 2,
            top - h - g.line * 0.55,
            f"generated {child}",
            fontsize=g.font - 1,
            color=GENERATED_COLOUR,
            ha="center",
            va="center",
        )
        x += small + gap
    return left


def _draw_title(canvas: _Canvas, g: _Geometry, tree: Tree, generated: bool) -> None:
    source = Path(tree.path).name if tree.path else "tree"
    head = (
        f"{source}: {len(tree.leaves)} leaves, {tree.n:,} images, "
        f"splitter {tree.attrs.get('splitter', '?')}"
    )
    key = "grids: real images drawn by membership; dashed red frame: leaf"
    if generated:
        key += "; blue frame: generated by the split's models"
    y = g.height - g.margin - 0.1
    canvas.ax.text(g.margin, y, head, fontsize=g.font + 3, fontweight="bold", va="center")
    canvas.ax.text(g.margin, y - 0.22, key, fontsize=g.font, color="#555555", va="center")


def _figure_path(out_path: str | os.PathLike) -> Path:
    path = Path(out_path)
    if path.suffix.lower() not in FORMATS:
        raise HCTreeError(
            f"cannot tell the figure format from {path.name}; end the name in .png, .svg or .pdf."
        )
    if not path.parent.is_dir():
        raise HCTreeError(
            f"folder {path.parent} does not exist; create it or choose another output."
        )
    return path


# ---------------------------------------------------------------- dendrogram


def _leaf_label(tree: Tree, name: str) -> str:
    label = f"{name}  {_mass_text(tree.node(name).mass)}"
    shares = _class_shares(tree, name, 1)
    if shares:
        label += f"  {shares[0][1]} {shares[0][2]:.0%}"
    return label


def render_dendrogram(tree: Tree, out_path: str | os.PathLike) -> Path:
    """A compact dendrogram of the leaves (labelled with name, mass and majority class);
    merge heights follow the split order, the root highest. Returns the written path."""
    from scipy.cluster.hierarchy import dendrogram

    out_path = _figure_path(out_path)
    if len(tree.leaves) < 2:
        raise HCTreeError("the tree has a single leaf; grow it before drawing a dendrogram.")
    matrix = linkage_matrix(tree)
    names = {h: name for name, h in merge_heights(tree).items() if h > 0}
    labels = [_leaf_label(tree, name) for name in tree.leaves]
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.3 * len(labels)))
    try:
        dendrogram(
            matrix,
            labels=labels,
            orientation="left",
            ax=ax,
            color_threshold=0,
            above_threshold_color="#555555",
            leaf_font_size=9,
        )
        heights = sorted(names)
        ax.set_xticks(heights)
        ax.set_xticklabels(
            [names[h] for h in heights], fontsize=8, rotation=90 if len(heights) > 10 else 0
        )
        ax.set_xlabel("merge height: the node split there (earlier splits are higher)")
        ax.invert_yaxis()
        ax.set_title(
            f"{Path(tree.path).name if tree.path else 'tree'}: "
            f"{len(labels)} leaves, {tree.n:,} images",
            fontsize=10,
        )
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        fig.tight_layout()
        fig.savefig(out_path, dpi=150, facecolor="white")
    finally:
        plt.close(fig)
    return out_path


# ---------------------------------------------------------------- training curves


def render_curves(tree: Tree, out_path: str | os.PathLike) -> Path:
    """Draw each split's training curves, one panel per split in growth order.

    The stages of a split share one iteration axis; a grey rule marks where each
    stage begins, labelled with its name and, for a refinement, the fraction of the
    node's mass it moved. Returns the path written.
    """
    path = _figure_path(out_path)
    panels = []
    for name in tree.split_sequence:
        stages = [
            (s, r) for s, r in tree.record.nodes[name].stages.items() if len(r.curves.get(STEP, ()))
        ]
        if stages:
            panels.append((name, stages))
    if not panels:
        raise HCTreeError(
            "this tree recorded no training curves (it was grown before hctree kept them)."
        )
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (name, stages) in zip(axes.flat, panels, strict=False):
        _draw_curves(ax, name, stages)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _draw_curves(ax, name: str, stages: list) -> None:
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colours: dict[str, str] = {}
    offset = 0
    for stage, rec in stages:
        steps = np.asarray(rec.curves[STEP]) + offset
        ax.axvline(offset, color="0.8", lw=0.8)
        label = (
            stage if "change" not in rec.metrics else f"{stage}\nmoved {rec.metrics['change']:.3f}"
        )
        ax.text(offset, 0.98, " " + label, transform=ax.get_xaxis_transform(), va="top", fontsize=7)
        for loss, values in rec.curves.items():
            if loss == STEP:
                continue
            if loss not in colours:
                colours[loss] = palette[len(colours) % len(palette)]
                ax.plot([], [], color=colours[loss], label=loss)
            ax.plot(steps, values, color=colours[loss], lw=0.9)
        offset = int(steps[-1])
    ax.set_title(f"split of {name}", fontsize=9)
    ax.set_xlabel("iteration", fontsize=8)
    ax.set_ylabel("loss", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper right", frameon=False)
