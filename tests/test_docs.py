"""The documentation's own cross-references: docs/benchmarks.md's index of sections."""

from __future__ import annotations

import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- sections -->", "<!-- /sections -->"


def anchor(heading: str) -> str:
    """The link anchor a Markdown renderer (GitHub's rule) gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def expected_index(text: str) -> str:
    """One link per ``## `` heading after the index, in the file's order."""
    after = text.split(END, 1)[1]
    headings = re.findall(r"^## (.+)$", after, flags=re.M)
    return "\n".join(f"- [{h}](#{anchor(h)})" for h in headings)


def test_the_benchmarks_index_lists_every_section_in_order():
    text = BENCHMARKS.read_text()
    assert text.count(START) == 1 and text.count(END) == 1
    index = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert index == expected_index(text), "rewrite the index with: python -m tests.test_docs"


def test_anchors_follow_the_renderers_rule():
    assert anchor("The contrastive temperature: `contrast_tau` (2026-12-06)") == (
        "the-contrastive-temperature-contrast_tau-2026-12-06"
    )
    assert (
        anchor("Raw 8x8 digits, resized by `grow` itself")
        == "raw-8x8-digits-resized-by-grow-itself"
    )


if __name__ == "__main__":  # rewrite the index in place
    text = BENCHMARKS.read_text()
    head, rest = text.split(START, 1)
    BENCHMARKS.write_text(f"{head}{START}\n{expected_index(text)}\n{END}{rest.split(END, 1)[1]}")
