"""Progress hooks: where long work reports itself (the library never prints directly)."""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

from hctree.splitters.base import NullProgress

__all__ = ["NullProgress", "TextProgress"]


class _Lines:
    """A stream adapter for logs: each bar tqdm redraws with ``\\r`` becomes its own line."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip("\n")
        if line.strip():
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


class TextProgress:
    """A tqdm bar per stage (iterations, it/s, ETA, losses) on a text stream.

    On a terminal the bar is redrawn in place; elsewhere (logs, CI) a line is written
    about every ``log_every`` seconds, so that output stays short.
    """

    def __init__(self, stream: TextIO | None = None, log_every: float = 15.0):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.out: TextIO | _Lines = self.stream if self.tty else _Lines(self.stream)
        self.interval = 0.1 if self.tty else log_every
        self.bar: tqdm | None = None

    def start(self, title: str, total: int, done: int = 0) -> None:
        self._close()
        self.bar = tqdm(
            total=max(1, total),
            initial=done,
            desc=title,
            file=self.out,
            mininterval=self.interval,
            maxinterval=max(self.interval, 10.0),
            miniters=1,
            dynamic_ncols=self.tty,
            ncols=None if self.tty else 110,
            ascii=not self.tty,
            leave=True,
        )

    def update(self, done: int, losses: dict[str, float] | None = None) -> None:
        if self.bar is None:
            return
        if losses:
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        self.bar.update(done - self.bar.n)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.update(self.bar.total - self.bar.n)
        self._close()

    def message(self, text: str) -> None:
        if self.tty:
            tqdm.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
