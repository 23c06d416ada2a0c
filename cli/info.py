"""`hctree info`: print a tree as indented text."""

from __future__ import annotations

import click

from hctree.report import tree_text
from hctree.tree import open_tree


@click.command()
@click.argument("tree", type=click.Path(dir_okay=False))
@click.option("--cut", type=int, default=None, help="Show the tree as it was at this many leaves.")
def info(tree: str, cut: int | None) -> None:
    """Print TREE as an indented text tree with masses, status and class composition.

    Example: hctree info tree.h5
    """
    view = open_tree(tree)
    if cut is not None:
        view = view.cut(cut)
    click.echo(tree_text(view))
