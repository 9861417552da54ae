"""A small progress bar for the command line (stderr; plain lines when not a terminal)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO


class Progress:
    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._last = 0.0
        self._start = time.monotonic()

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._draw(force=True)
        self._stream.write("\n" if self._tty else "")
        self._stream.flush()

    def advance(self, steps: int = 1, note: str = "") -> None:
        self.done += steps
        self._draw(note=note)

    def _draw(self, force: bool = False, note: str = "") -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.1 if self._tty else 5.0):
            return
        self._last = now
        elapsed = now - self._start
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = "#" * int(share * 30)
            text = f"{self.label:<24} [{bar:<30}] {self.done}/{self.total} {elapsed:5.1f}s {note}"
        else:
            text = f"{self.label:<24} {self.done} {elapsed:5.1f}s {note}"
        if self._tty:
            self._stream.write("\r" + text[:120].ljust(120))
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
