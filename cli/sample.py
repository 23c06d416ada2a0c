"""`hctree sample`: save a grid of images generated for one node."""

from __future__ import annotations

from pathlib import Path

import click

from hctree.sample import sample_node, save_grid
from hctree.tree import open_tree


@click.command()
@click.argument("tree", type=click.Path(dir_okay=False))
@click.option("--node", required=True, help="The node to generate images for, e.g. r01.")
@click.option("-n", "n_images", default=64, show_default=True, help="How many images.")
@click.option("-o", "--out", default=None, help="PNG file [default: TREE.NODE.png].")
@click.option("--seed", default=0, show_default=True, help="Seed for the generators' noise.")
@click.option(
    "--device", default="cpu", show_default=True, help="Where generators run (cpu or cuda)."
)
def sample(tree, node, n_images, out, seed, device) -> None:
    """Generate images for NODE of TREE from its stored models and save them as a PNG grid.

    A split node gets images from all its children's generators; a leaf gets its
    parent's generator for it. Prints the path of the written grid.

    \b
    Example:
      hctree sample tree.h5 --node r01 -n 64 -o r01.png
    """
    view = open_tree(tree)
    images = sample_node(view, node, n=n_images, seed=seed, device=device)
    written = save_grid(images, out or Path(tree).with_suffix(f".{node}.png"))
    click.echo(str(written))
