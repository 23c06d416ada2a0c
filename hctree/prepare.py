"""The images the networks see: a tree's set-level rules, applied in order.

Each rule (hctree.colour, hctree.polarity, hctree.levels, hctree.position,
hctree.scale, then hctree.orientation) looks at the whole set once, when a tree is created, and
decides whether to change its images; the decisions are stored as root attributes
under the rule's ``NAME``, and what a rule fitted on the set (orientation's
landmarks, say: a rule with ``ARRAYS``) under ``/prepared/<NAME>``. Training,
resuming and ``assign`` then apply the stored decisions in the same order, so new
images are routed as the training images were seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from hctree import colour, levels, orientation, polarity, position, scale
from hctree.errors import HCTreeError
from hctree.store import TreeRecord

RULES: tuple[ModuleType, ...] = (colour, polarity, levels, position, scale, orientation)

Arrays = dict[str, dict[str, np.ndarray]]  # rule name -> what it fitted


@dataclass(frozen=True)
class Decisions:
    """Every rule's decision (``rules``: name -> decision) and what the acting rules
    with ``ARRAYS`` fitted (``arrays``: name -> arrays; ``tilts`` and the like only
    when the decisions are for the training images themselves)."""

    rules: dict[str, str]
    arrays: Arrays = field(default_factory=dict)

    def __getitem__(self, name: str) -> str:
        return self.rules[name]

    def for_new_images(self) -> Decisions:
        """The same decisions for other images than the training set's: only what
        every image is judged against (a rule's ``ARRAYS``) is kept."""
        kept = {
            rule.NAME: {k: self.arrays[rule.NAME][k] for k in rule.ARRAYS}
            for rule in RULES
            if hasattr(rule, "ARRAYS") and rule.NAME in self.arrays
        }
        return Decisions(dict(self.rules), kept)


def check_modes(modes: dict[str, str | None]) -> None:
    """Raise HCTreeError for a given mode that its rule does not take."""
    for rule in RULES:
        mode = modes.get(rule.NAME)
        if mode is not None and mode not in rule.MODES:
            raise HCTreeError(
                f"--{rule.NAME} must be one of {', '.join(rule.MODES)}, not {mode!r}."
            )


def decide(images: np.ndarray, modes: dict[str, str | None]) -> Decisions:
    """Every rule's decision for a new tree (a missing or None mode is the rule's
    ``DEFAULT``, or auto), and
    what the acting rules fitted on ``images``, the training images.

    Each rule decides on the images as the rules before it left them.
    """
    rules, arrays = {}, {}
    for rule in RULES:
        mode = modes.get(rule.NAME) or getattr(rule, "DEFAULT", "auto")
        if hasattr(rule, "ARRAYS"):
            rules[rule.NAME], fitted = rule.decide_fitted(images, mode)
            if fitted:
                arrays[rule.NAME] = fitted
        else:
            rules[rule.NAME] = rule.decide(images, mode)
        images = _applied(rule, images, Decisions(rules, arrays))
    return Decisions(rules, arrays)


def stored(record: TreeRecord) -> Decisions:
    """A tree's stored decisions, one per rule, with its stored arrays (those of its
    training images); HCTreeError for a decision no rule makes or arrays missing."""
    problem = invalid(record.attrs, record.prepared)
    if problem:
        raise HCTreeError(problem)
    return Decisions({rule.NAME: rule.stored(record.attrs) for rule in RULES}, record.prepared)


def _n(attrs: dict) -> int | None:
    """A tree's stored image count, or None."""
    return int(attrs["n"]) if "n" in attrs else None


def _image_shape(attrs: dict) -> tuple[int, ...] | None:
    """A tree's stored image shape ``(C, H, W)``, or None."""
    shape = attrs.get("image_shape")
    return tuple(int(v) for v in shape) if shape is not None else None


def invalid(attrs: dict, arrays: Arrays | None = None) -> str | None:
    """One sentence on a stored decision that its rule never makes, or on an acting
    rule's missing arrays or arrays that do not fit the tree's images (its ``n`` and
    ``image_shape``, where stored), or None."""
    arrays, n, shape = arrays or {}, _n(attrs), _image_shape(attrs)
    for rule in RULES:
        value = rule.stored(attrs)
        if value not in rule.DECISIONS:
            return (
                f"the tree's {rule.NAME} decision {value!r} is not one of "
                f"{', '.join(rule.DECISIONS)}."
            )
        if hasattr(rule, "ARRAYS") and value != rule.AS_GIVEN:
            problem = rule.invalid_arrays(arrays.get(rule.NAME, {}), n, shape)
            if problem:
                return f"the tree's {rule.NAME} rule is {value} but {problem}"
    return None


def apply(images: np.ndarray, decisions: Decisions) -> np.ndarray:
    """``images`` under ``decisions`` (``images`` itself when no rule changes them)."""
    return apply_counted(images, decisions)[0]


def apply_counted(images: np.ndarray, decisions: Decisions) -> tuple[np.ndarray, dict[str, int]]:
    """:func:`apply`, and how many images each rule that acts changed (a rule left
    at as-given is absent)."""
    counts = {}
    for rule in RULES:
        if decisions[rule.NAME] != rule.AS_GIVEN:
            after = _applied(rule, images, decisions)
            counts[rule.NAME] = int((after != images).reshape(len(images), -1).any(1).sum())
            images = after
    return images, counts


def _applied(rule: ModuleType, images: np.ndarray, decisions: Decisions) -> np.ndarray:
    if hasattr(rule, "ARRAYS"):
        return rule.apply(images, decisions[rule.NAME], decisions.arrays.get(rule.NAME, {}))
    return rule.apply(images, decisions[rule.NAME])


def conflicts(images: np.ndarray, have: Decisions, modes: dict[str, str | None]) -> list[str]:
    """The rules whose given mode would decide otherwise than the tree stored (each
    judged on the images as the tree's earlier stored decisions leave them): act where
    the tree does not, or not act where it does. An older way of acting that the
    tree stored (``box-centred`` where a new tree gets ``object-box-centred``) is no
    conflict: the tree goes on as it began."""
    out = []
    for rule in RULES:
        mode = modes.get(rule.NAME)
        if mode is not None:
            acts = rule.decide(images, mode) != rule.AS_GIVEN
            if acts != (have[rule.NAME] != rule.AS_GIVEN):
                out.append(rule.NAME)
        images = _applied(rule, images, have)
    return out
