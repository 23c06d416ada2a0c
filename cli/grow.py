"""`hctree grow`: grow or resume a clustering tree."""

from __future__ import annotations

import click

from hctree.data import load_images
from hctree.errors import HCTreeError
from hctree.grow import grow as grow_tree
from hctree.progress import TextProgress
from hctree.splitters import splitter_names


def parse_settings(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("width=32", "refinements=2")`` -> ``{"width": "32", "refinements": "2"}``."""
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise HCTreeError(f"--set takes key=value, not {pair!r}.")
        settings[key.strip()] = value.strip()
    return settings


def parse_leaves(text: str) -> int | str:
    """``"10"`` -> 10, ``"auto"`` -> ``"auto"``; anything else is one sentence."""
    text = str(text).strip().lower()
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise HCTreeError(f"--leaves takes a whole number or 'auto', not {text!r}.") from None


def _rule_option(name: str, when: str, default: str = "auto"):
    """``--NAME auto|off`` for a set rule (hctree.prepare); ``when``: what auto does."""
    return click.option(
        f"--{name}",
        type=click.Choice(["auto", "off"]),
        default=None,
        help=f"auto: {when}; off: as given [default: {default}; stored with the tree].",
    )


@click.command()
@click.argument("data")
@click.option("-o", "--out", default="tree.h5", show_default=True, help="The tree file to grow.")
@click.option(
    "--leaves",
    default="10",
    show_default=True,
    help="Grow until the tree has this many leaves; 'auto': while the data support a split.",
)
@click.option(
    "--max-leaves",
    type=int,
    default=20,
    show_default=True,
    help="With --leaves auto: stop at this many leaves.",
)
@click.option(
    "--splitter",
    type=click.Choice(splitter_names()),
    default="hcmgan",
    show_default=True,
    help="How each node is divided: HC-MGAN raw split and refinements, or a flat C3-GAN/slcGAN split.",
)
@click.option(
    "--preset", default=None, help="paper, fast, cpu or tiny [default: fast on CUDA, cpu on CPU]."
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one preset field (repeatable).",
)
@click.option("--branching", type=int, default=None, help="Children per split [default: 2].")
@click.option(
    "--leaf-order",
    type=click.Choice(["mass", "supported"]),
    default=None,
    help="Which leaf to split next: the heaviest, or the heaviest whose split the data "
    "support first [default: mass; stored with the tree].",
)
@_rule_option(
    "polarity",
    "when the images mix dark and light plain backgrounds, train on all of them light on dark",
)
@_rule_option(
    "levels",
    "when the images' exposure varies, stretch each image from black to white for training",
)
@_rule_option(
    "position",
    "when the objects sit at varying places, move each image to put its object's bounding box "
    "in the middle for training",
)
@_rule_option(
    "scale",
    "when the objects come at varying sizes, resample each image so that its object fills "
    "the frame for training",
)
@_rule_option(
    "colour",
    "when each image holds a single colour and the colours differ between images, train on "
    "the pictures without it",
    default="off",
)
@_rule_option(
    "orientation",
    "when the objects come tilted by varying angles, turn each image back by the tilt that "
    "lines it up with the images most like it, for training",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--seed", default=0, show_default=True, help="Seed for the subset and all training.")
@click.option("--size", type=int, default=None, help="Resize images to SIZE x SIZE.")
@click.option(
    "--channels",
    type=click.Choice(["1", "3"]),
    default=None,
    help="Convert images to 1 or 3 channels.",
)
@click.option(
    "--subset", type=int, default=None, help="Use a seeded random subset of this many images."
)
@click.option(
    "--checkpoint-every",
    default=60.0,
    show_default=True,
    help="Seconds between mid-stage checkpoints.",
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="CPU threads, per worker with --workers [default: $HCTREE_THREADS or all cores; cores / workers].",
)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Splits run at once, on Ray workers when above 1 (the same tree for any count at the same --threads).",
)
@click.option(
    "--ray-address",
    default=None,
    help="Join this Ray cluster with --workers [default: start one on this machine].",
)
@click.option(
    "--batch-splits",
    type=int,
    default=1,
    show_default=True,
    help="Train up to this many leaves' splits at once here, as one batched step (for a GPU).",
)
@click.option(
    "--deterministic",
    is_flag=True,
    help="Deterministic kernels only: a CUDA run then repeats itself exactly (slower).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
def grow(
    data,
    out,
    leaves,
    max_leaves,
    splitter,
    preset,
    settings,
    branching,
    leaf_order,
    polarity,
    levels,
    position,
    scale,
    orientation,
    colour,
    device,
    seed,
    size,
    channels,
    subset,
    checkpoint_every,
    threads,
    workers,
    ray_address,
    batch_splits,
    deterministic,
    quiet,
) -> None:
    """Grow a clustering tree over the images in DATA, or resume the one in --out.

    DATA is a folder of images (class sub-folders become labels), IDX files, a
    .npy/.npz/.h5 array file, or the name fashion-mnist. Rerunning the same command
    after an interruption resumes; a larger --leaves grows a finished tree further.

    \b
    Example:
      hctree grow fashion-mnist --subset 10000 --leaves 10 -o tree.h5
      hctree grow digits.npz --leaves auto --max-leaves 20
      hctree grow fashion-mnist --leaves 10 --workers 2 --threads 1
    """
    leaves = parse_leaves(leaves)
    channels = int(channels) if channels else None
    images = load_images(data, size=size, channels=channels, subset=subset, seed=seed)
    progress = TextProgress() if not quiet else None
    tree = grow_tree(
        images,
        out,
        leaves,
        splitter=splitter,
        preset=preset,
        overrides=parse_settings(settings),
        device=device,
        seed=seed,
        branching=branching,
        leaf_order=leaf_order,
        polarity=polarity,
        levels=levels,
        position=position,
        scale=scale,
        orientation=orientation,
        colour=colour,
        checkpoint_every=checkpoint_every,
        progress=progress,
        threads=threads,
        max_leaves=max_leaves,
        workers=workers,
        ray_address=ray_address,
        deterministic=deterministic,
        batch_splits=batch_splits,
    )
    click.echo(f"{out}: {len(tree.leaves)} leaves")
    if tree.labels is not None:
        from hctree.metrics import cluster_scores

        scores = cluster_scores(tree.labels, tree.assignments())
        click.echo("  ".join(f"{k.upper()} {v:.3f}" for k, v in scores.items()))
