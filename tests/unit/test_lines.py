"""Streaming line splitting: any chunking gives the same lines; long lines never buffer."""

from __future__ import annotations

import pytest

from monitor.ingest.lines import iter_lines

DATA = b'abc\n\n0123456789ABC\r\nxy\r\n   \nlast'


def _split(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 64])
def test_same_lines_whatever_the_chunking(chunk: int) -> None:
    lines = list(iter_lines(_split(DATA, chunk), max_bytes=10))
    assert [(ln.number, ln.data, ln.too_long) for ln in lines] == [
        (1, b"abc", False), (3, b"0123456789", True), (4, b"xy", False), (6, b"last", False)]
    assert lines[1].size == 14  # the whole long line was measured, not kept


def test_empty_and_blank_inputs_yield_nothing() -> None:
    assert list(iter_lines([], 10)) == []
    assert list(iter_lines([b"\n\r\n  \n"], 10)) == []


def test_unterminated_long_last_line() -> None:
    (line,) = iter_lines(_split(b"01234567890123", 4), 10)
    assert line.too_long and line.number == 1 and line.size == 14


def test_memory_is_bounded_by_the_limit_not_the_line() -> None:
    huge = [b"x" * 1_000_000 for _ in range(50)] + [b"\nok\n"]
    lines = list(iter_lines(huge, 1000))
    assert lines[0].too_long and len(lines[0].data) == 1000 and lines[0].size == 50_000_000
    assert lines[1].data == b"ok" and lines[1].number == 2
