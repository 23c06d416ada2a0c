"""`hctree eval`: score a tree against true class labels."""

from __future__ import annotations

import json

import click

from hctree.evaluate import evaluate, format_report, load_labels
from hctree.tree import open_tree


@click.command("eval")
@click.argument("tree", type=click.Path(dir_okay=False))
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Class labels to score against (.npy, .txt one integer per line, or .csv with one "
    "column or a 'label' column), instead of those stored in the tree file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
@click.option("--cut", type=int, default=None, help="Score the tree as it was at this many leaves.")
def eval_command(tree: str, labels_path: str | None, as_json: bool, cut: int | None) -> None:
    """Score TREE: ACC, NMI, ARI, purity, leaf and dendrogram purity, per cut and per split.

    Example: hctree eval tree.h5 --labels labels.txt --json
    """
    view = open_tree(tree)
    if cut is not None:
        view = view.cut(cut)
    labels = load_labels(labels_path) if labels_path is not None else None
    result = evaluate(view, labels)
    click.echo(json.dumps(result, indent=1) if as_json else format_report(result))
