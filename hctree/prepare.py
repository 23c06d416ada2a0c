"""The images the networks see: a tree's set-level rules, applied in order.

Each rule (hctree.polarity, hctree.levels, hctree.position, then hctree.scale) looks at the whole
set once, when a tree is created, and decides whether to change its images; the
decisions are stored as root attributes under the rule's ``NAME``. Training,
resuming and ``assign`` then apply the stored decisions in the same order, so new
images are routed as the training images were seen.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from hctree import levels, polarity, position, scale
from hctree.errors import HCTreeError

RULES: tuple[ModuleType, ...] = (polarity, levels, position, scale)


def check_modes(modes: dict[str, str | None]) -> None:
    """Raise HCTreeError for a given mode that its rule does not take."""
    for rule in RULES:
        mode = modes.get(rule.NAME)
        if mode is not None and mode not in rule.MODES:
            raise HCTreeError(
                f"--{rule.NAME} must be one of {', '.join(rule.MODES)}, not {mode!r}."
            )


def decide(images: np.ndarray, modes: dict[str, str | None]) -> dict[str, str]:
    """Every rule's decision for a new tree (a missing or None mode is auto).

    Each rule decides on the images as the rules before it left them.
    """
    decisions = {}
    for rule in RULES:
        decisions[rule.NAME] = rule.decide(images, modes.get(rule.NAME) or "auto")
        images = rule.apply(images, decisions[rule.NAME])
    return decisions


def stored(attrs: dict) -> dict[str, str]:
    """A tree's stored decisions, one per rule; HCTreeError for one no rule makes."""
    problem = invalid(attrs)
    if problem:
        raise HCTreeError(problem)
    return {rule.NAME: rule.stored(attrs) for rule in RULES}


def invalid(attrs: dict) -> str | None:
    """One sentence on a stored decision that its rule never makes, or None."""
    for rule in RULES:
        value = rule.stored(attrs)
        if value not in rule.DECISIONS:
            return (
                f"the tree's {rule.NAME} decision {value!r} is not one of "
                f"{', '.join(rule.DECISIONS)}."
            )
    return None


def apply(images: np.ndarray, decisions: dict[str, str]) -> np.ndarray:
    """``images`` under ``decisions`` (``images`` itself when no rule changes them)."""
    return apply_counted(images, decisions)[0]


def apply_counted(
    images: np.ndarray, decisions: dict[str, str]
) -> tuple[np.ndarray, dict[str, int]]:
    """:func:`apply`, and how many images each rule that acts changed (a rule left
    at as-given is absent)."""
    counts = {}
    for rule in RULES:
        decision = decisions[rule.NAME]
        if decision != rule.AS_GIVEN:
            after = rule.apply(images, decision)
            counts[rule.NAME] = int((after != images).reshape(len(images), -1).any(1).sum())
            images = after
    return images, counts


def conflicts(images: np.ndarray, attrs: dict, modes: dict[str, str | None]) -> list[str]:
    """The rules whose given mode would decide otherwise than the tree stored (each
    judged on the images as the tree's earlier stored decisions leave them)."""
    have, out = stored(attrs), []
    for rule in RULES:
        mode = modes.get(rule.NAME)
        if mode is not None and rule.decide(images, mode) != have[rule.NAME]:
            out.append(rule.NAME)
        images = rule.apply(images, have[rule.NAME])
    return out
