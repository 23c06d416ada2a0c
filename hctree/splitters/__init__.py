"""Splitters: the ways a node can be divided into children (see base.py)."""

from hctree.splitters.base import (
    SplitContext,
    Splitter,
    StageResult,
    get_splitter,
    make_config,
    register,
    splitter_names,
    stored_splitter,
)


def _hcmgan() -> type:
    from hctree.splitters.hcmgan import HCMGANSplitter

    return HCMGANSplitter


def _c3gan() -> type:
    from hctree.splitters.c3gan import C3GANSplitter

    return C3GANSplitter


def _slcgan() -> type:
    from hctree.splitters.slcgan import SLCGANSplitter

    return SLCGANSplitter


register("hcmgan", _hcmgan)
register("c3gan", _c3gan)
register("slcgan", _slcgan)

__all__ = [
    "SplitContext",
    "Splitter",
    "StageResult",
    "get_splitter",
    "make_config",
    "register",
    "splitter_names",
    "stored_splitter",
]
