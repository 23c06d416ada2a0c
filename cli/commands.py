"""The list of commands the `hctree` group offers."""

from cli.assign import assign
from cli.grow import grow
from cli.info import info

ALL = [grow, info, assign]
