"""`hctree export`: write a tree to a file other tools read."""

from __future__ import annotations

import click

from hctree.export import FORMATS, export
from hctree.tree import open_tree


@click.command("export")
@click.argument("tree", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(),
    help=f"The file to write; its extension picks the format ({', '.join(FORMATS)}).",
)
@click.option(
    "--cut", type=int, default=None, help="Export the tree as it was at this many leaves."
)
def export_command(tree: str, out: str, cut: int | None) -> None:
    """Export TREE as CSV, NPZ, GraphML, JSON, a SciPy linkage or Newick (see docs/formats.md).

    Example: hctree export tree.h5 -o tree.linkage.npy
    """
    view = open_tree(tree)
    if cut is not None:
        view = view.cut(cut)
    click.echo(f"wrote {export(view, out)}")
