"""The list of commands the `hctree` group offers."""

from cli.assign import assign
from cli.check import check
from cli.evaluate import eval_command
from cli.export import export_command
from cli.grow import grow
from cli.info import info
from cli.render import render
from cli.sample import sample

ALL = [grow, info, check, assign, eval_command, export_command, render, sample]
