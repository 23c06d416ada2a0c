"""`hctree check`: validate a tree file."""

from __future__ import annotations

import sys

import click

from hctree.check import check_tree


@click.command()
@click.argument("tree", type=click.Path(dir_okay=False))
def check(tree: str) -> None:
    """Check that TREE is a sound tree file: format, structure, memberships, models.

    Prints `ok` and exits 0, or prints the first problem and exits 1.

    Example: hctree check tree.h5
    """
    problem = check_tree(tree)
    if problem is not None:
        click.echo(f"problem: {problem}", err=True)
        sys.exit(1)
    click.echo(f"ok: {tree} is a sound tree file")
