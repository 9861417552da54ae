"""Blob paths at every MDC rolling rate: the period a blob belongs to and when it ends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.ingest.paths import Period, parse_mdc_path, period_at, period_of_folders

BASE = "modelDataCollector/contoso-chat/blue/model_inputs/"
FILE = "4fda2efaa7364394a89c37989af9db93000000.jsonl"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(("folders", "rate", "start", "end"), [
    ("2026/", "year", utc(2026, 1, 1), utc(2027, 1, 1)),
    ("2026/02/", "month", utc(2026, 2, 1), utc(2026, 3, 1)),
    ("2028/02/", "month", utc(2028, 2, 1), utc(2028, 3, 1)),
    ("2026/12/", "month", utc(2026, 12, 1), utc(2027, 1, 1)),
    ("2026/12/31/", "day", utc(2026, 12, 31), utc(2027, 1, 1)),
    ("2026/11/20/23/", "hour", utc(2026, 11, 20, 23), utc(2026, 11, 21)),
    ("2026/11/20/14/59/", "minute", utc(2026, 11, 20, 14, 59), utc(2026, 11, 20, 15)),
])
def test_every_rolling_rate_has_its_period(folders: str, rate: str, start: datetime, end: datetime) -> None:
    path = parse_mdc_path(BASE + folders + FILE)
    assert path is not None and path.collection == "model_inputs" and path.side == "input"
    assert (path.period.rate, path.period.start, path.period.end) == (rate, start, end)
    assert path.period.folder() == folders
    assert period_of_folders(folders) == path.period


def test_copies_and_other_collections_are_recognised() -> None:
    copy = parse_mdc_path("modelDataCollector/ep/dep/model_outputs_block_blob/2026/11/20/" + FILE)
    traces = parse_mdc_path("modelDataCollector/ep/dep/app_traces/2026/11/20/14/" + FILE)
    assert copy is not None and copy.is_copy and copy.side is None
    assert traces is not None and not traces.is_copy and traces.side is None


@pytest.mark.parametrize("name", [BASE + "2026/13/" + FILE, BASE + "2026/02/30/" + FILE, BASE + FILE,
                                  "elsewhere/2026/11/20/14/" + FILE, BASE + "2026/11/20/14/00/00/" + FILE])
def test_not_an_mdc_path(name: str) -> None:
    assert parse_mdc_path(name) is None


def test_current_and_previous_periods() -> None:
    at = utc(2026, 1, 1, 0, 0)
    assert period_at("hour", at).previous() == Period("hour", utc(2025, 12, 31, 23))
    assert period_at("month", at).previous() == Period("month", utc(2025, 12, 1))
    assert period_at("minute", utc(2026, 3, 1, 0, 0, 30)).previous() == Period("minute", utc(2026, 2, 28, 23, 59))
