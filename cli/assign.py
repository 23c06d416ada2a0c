"""`hctree assign`: route new images down a tree's stored split classifiers."""

from __future__ import annotations

import click

from hctree.assign import assign as assign_images
from hctree.assign import load_for_tree
from hctree.export import membership_csv
from hctree.tree import open_tree


@click.command()
@click.argument("tree", type=click.Path(dir_okay=False))
@click.argument("data")
@click.option(
    "-o", "--out", default="assignments.csv", show_default=True, help="CSV file to write."
)
@click.option(
    "--size",
    type=int,
    default=None,
    help="Resize images to SIZE x SIZE first (default: the tree's).",
)
@click.option(
    "--channels",
    type=click.Choice(["1", "3"]),
    default=None,
    help="Convert to 1 or 3 channels first.",
)
@click.option(
    "--subset", type=int, default=None, help="Use a seeded random subset of this many images."
)
@click.option("--seed", default=0, show_default=True, help="Seed for --subset.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
def assign(tree, data, out, size, channels, subset, seed, device) -> None:
    """Assign the images in DATA to the leaves of TREE and write one CSV row per image.

    Each row holds the image's index, source name and label (where known), its leaf,
    that leaf's probability and its soft membership of every leaf (the columns of
    `hctree export tree.h5 -o tree.csv`). Images of another size or channel count
    are converted to the tree's unless --size/--channels say otherwise.

    \b
    Example:
      hctree assign tree.h5 new-images/ -o assignments.csv
    """
    view = open_tree(tree)
    channels = int(channels) if channels else None
    images = load_for_tree(view, data, size=size, channels=channels, subset=subset, seed=seed)
    memberships = assign_images(view, images, device=device)
    with open(out, "w") as fh:
        fh.write(membership_csv(view.leaves, memberships, images.names, images.labels))
    counts = memberships.argmax(0)
    sizes = ", ".join(f"{leaf} {int((counts == i).sum())}" for i, leaf in enumerate(view.leaves))
    click.echo(f"{out}: {len(images)} images assigned ({sizes})")
