"""Progress hooks: where long work reports itself (the library never prints directly)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from hctree.splitters.base import NullProgress

__all__ = ["NullProgress", "TextProgress"]


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class TextProgress:
    """A one-line progress bar per stage (iterations, it/s, ETA, losses) on a text stream.

    On a terminal the line is redrawn in place; elsewhere (logs, CI) a line is
    written about every ``log_every`` seconds so that output stays short.
    """

    def __init__(self, stream: TextIO | None = None, width: int = 24, log_every: float = 15.0):
        self.stream = stream or sys.stderr
        self.width = width
        self.log_every = log_every
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.title, self.total, self.first, self.done = "", 0, 0, 0
        self.started = self.last_log = 0.0

    def start(self, title: str, total: int, done: int = 0) -> None:
        self.title, self.total, self.first, self.done = title, max(1, total), done, done
        self.started = self.last_log = time.monotonic()
        self._draw({})

    def update(self, done: int, losses: dict[str, float] | None = None) -> None:
        self.done = done
        now = time.monotonic()
        if self.tty or now - self.last_log >= self.log_every:
            self.last_log = now
            self._draw(losses or {})

    def finish(self) -> None:
        self.done = self.total
        self._draw({}, end="\n")

    def message(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def _draw(self, losses: dict[str, float], end: str = "") -> None:
        elapsed = time.monotonic() - self.started
        rate = (self.done - self.first) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        filled = int(self.width * self.done / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        loss_text = " ".join(f"{k}={v:.3f}" for k, v in losses.items())
        line = (
            f"{self.title:<14} [{bar}] {self.done}/{self.total} "
            f"{rate:5.1f} it/s {_clock(elapsed)}<{_clock(eta)} {loss_text}"
        ).rstrip()
        if self.tty:
            self.stream.write("\r\033[K" + line + end)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
