"""Split a stream of byte chunks into numbered lines, in memory bounded by the line size limit.

A line longer than the limit is not buffered: its bytes are skipped up to the next newline and the
line is reported as too long, so one huge line never costs more than `max_bytes` of memory and
never hides the lines after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    data: bytes  # without the newline; the first `max_bytes` bytes when too long
    too_long: bool = False
    size: int = 0


def iter_lines(chunks: Iterable[bytes], max_bytes: int) -> Iterator[Line]:
    """Yield every line of the concatenated chunks (LF or CRLF endings; blank lines skipped)."""
    buffer = bytearray()
    number = 0
    skipping = False  # inside a line that already exceeded the limit
    skipped = 0
    head = b""
    for chunk in chunks:
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            piece = chunk[start:] if newline < 0 else chunk[start:newline]
            if skipping:
                skipped += len(piece)
            else:
                buffer += piece
                if len(buffer) > max_bytes:
                    skipping, skipped = True, len(buffer)
                    head = bytes(buffer[:max_bytes])
                    buffer.clear()
            if newline < 0:
                break
            number += 1
            if skipping:
                yield Line(number, head, too_long=True, size=skipped)
                skipping, skipped = False, 0
            else:
                line = _strip_cr(buffer)
                if line.strip():
                    yield Line(number, line, size=len(line))
                buffer.clear()
            start = newline + 1
    if skipping:
        yield Line(number + 1, head, too_long=True, size=skipped)
    elif buffer.strip():
        line = _strip_cr(buffer)
        yield Line(number + 1, line, size=len(line))


def _strip_cr(buffer: bytearray) -> bytes:
    return bytes(buffer[:-1]) if buffer.endswith(b"\r") else bytes(buffer)
