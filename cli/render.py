"""`hctree render`: draw a tree as image grids per node, or as a dendrogram."""

from __future__ import annotations

from pathlib import Path

import click

from hctree.render import render_curves, render_dendrogram, render_tree, tree_images
from hctree.tree import open_tree


@click.command()
@click.argument("tree", type=click.Path(dir_okay=False))
@click.option(
    "-o", "--out", default=None, help="Figure file (.png, .svg or .pdf) [default: TREE as .png]."
)
@click.option("--generated", is_flag=True, help="Also show images from each split's generators.")
@click.option("--cut", type=int, default=None, help="Draw the tree as it was at this many leaves.")
@click.option("--data", default=None, help="Where the tree's images are now, if they moved.")
@click.option("--images", "n_images", default=25, show_default=True, help="Images per grid.")
@click.option("--seed", default=0, show_default=True, help="Seed for picking the images.")
@click.option(
    "--device", default="cpu", show_default=True, help="Where generators run (cpu or cuda)."
)
@click.option("--dendrogram", is_flag=True, help="Draw a compact dendrogram of the leaves instead.")
@click.option(
    "--curves", is_flag=True, help="Draw every split's training losses instead, one panel each."
)
def render(tree, out, generated, cut, data, n_images, seed, device, dendrogram, curves) -> None:
    """Draw TREE as a figure: every node a grid of its images with name, mass and classes.

    Prints the path of the written figure.

    \b
    Example:
      hctree render tree.h5 -o tree.pdf --generated
      hctree render tree.h5 --dendrogram
      hctree render tree.h5 --curves
    """
    if dendrogram and curves:
        raise click.UsageError("choose one of --dendrogram and --curves.")
    view = open_tree(tree)
    if cut is not None:
        view = view.cut(cut)
    if curves:
        written = render_curves(view, out or Path(tree).with_suffix(".curves.png"))
    elif dendrogram:
        written = render_dendrogram(view, out or Path(tree).with_suffix(".dendrogram.png"))
    else:
        images = tree_images(view, data)
        written = render_tree(
            view,
            out or Path(tree).with_suffix(".png"),
            images=images,
            n_images=n_images,
            generated=generated,
            seed=seed,
            device=device,
        )
    click.echo(str(written))
