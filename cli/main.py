"""Entry point of the ``hctree`` command: the command group and error handling."""

from __future__ import annotations

import sys

import click

from hctree import __version__
from hctree.errors import HCTreeError, Interrupted


class HCTreeGroup(click.Group):
    """Maps user mistakes to ``error: <sentence>`` and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except HCTreeError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except Interrupted:
            click.echo(
                "stopped after saving a checkpoint; run the same command again to resume.", err=True
            )
            sys.exit(130)


@click.group(cls=HCTreeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hctree")
def cli() -> None:
    """Grow, inspect and use deep hierarchical clusterings of images.

    \b
    Example:
      hctree grow fashion-mnist --subset 10000 --leaves 10 -o tree.h5
      hctree info tree.h5
      hctree render tree.h5
    """


def _register() -> None:
    from cli import commands

    for command in commands.ALL:
        cli.add_command(command)


_register()


def main() -> None:
    cli(prog_name="hctree")


if __name__ == "__main__":
    main()
