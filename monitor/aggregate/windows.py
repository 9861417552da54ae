"""Window arithmetic: UTC-aligned hour and day windows, which of them a run computes, finality.

Pure functions of times and hour keys; nothing here touches storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from monitor.keys import hour_key, hour_start, iso

WindowKind = Literal["hour", "day"]

# How far back a run that follows a long pause goes to mark windows final (catch-up bound).
MAX_CATCH_UP = timedelta(days=31)


def window_length(kind: WindowKind) -> timedelta:
    return timedelta(hours=1) if kind == "hour" else timedelta(days=1)


def floor_to_window(moment: datetime, kind: WindowKind) -> datetime:
    """The start of the UTC hour or day holding `moment`."""
    utc = moment.astimezone(UTC)
    if kind == "hour":
        return utc.replace(minute=0, second=0, microsecond=0)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, order=True)
class Window:
    """One window: [start, start + length) in UTC."""

    start: datetime
    kind: WindowKind

    @property
    def end(self) -> datetime:
        return self.start + window_length(self.kind)

    @property
    def start_iso(self) -> str:
        return iso(self.start)

    @property
    def end_iso(self) -> str:
        return iso(self.end)

    @property
    def first_hour(self) -> str:
        """`yyyymmddHH` of the first hour inside the window."""
        return hour_key(self.start)

    @property
    def end_hour(self) -> str:
        """`yyyymmddHH` of the first hour after the window (exclusive bound)."""
        return hour_key(self.end)

    def previous(self) -> Window:
        return Window(self.start - window_length(self.kind), self.kind)

    def closed(self, at: datetime) -> bool:
        """Whether the window has ended at `at` (rows may still arrive late)."""
        return at >= self.end

    def final(self, at: datetime, lookback: timedelta) -> bool:
        """Whether the lookback for late data has passed: the numbers are not expected to change."""
        return at >= self.end + lookback


def window_of(moment: datetime, kind: WindowKind) -> Window:
    return Window(floor_to_window(moment, kind), kind)


def window_of_hour(hour: str, kind: WindowKind) -> Window:
    return window_of(hour_start(hour), kind)


def windows_between(first: datetime, last: datetime, kind: WindowKind) -> list[Window]:
    """Every window from the one holding `first` to the one holding `last`, in order."""
    out = []
    current = window_of(first, kind)
    stop = floor_to_window(last, kind)
    while current.start <= stop:
        out.append(current)
        current = Window(current.end, kind)
    return out


def plan_windows(*, kind: WindowKind, at: datetime, lookback: timedelta, dirty_hours: Iterable[str],
                 previous_at: datetime | None) -> list[Window]:
    """The windows a run at `at` (re)computes, oldest first.

    * every window holding a dirty hour (partials changed since the last run);
    * every window overlapping the lookback before `at`;
    * every window that became final since the previous run (so that `final` gets recorded even when
      runs were missed), bounded by MAX_CATCH_UP.
    Windows starting after `at` are never computed.
    """
    since = at if previous_at is None else min(previous_at, at)
    since = max(since, at - MAX_CATCH_UP)
    planned = set(windows_between(since - lookback, at, kind))
    planned.update(window_of_hour(hour, kind) for hour in dirty_hours)
    return sorted(w for w in planned if w.start <= at)


def history_spans(windows: Iterable[Window], history: int) -> list[tuple[datetime, datetime]]:
    """Merged time ranges [start - history windows, end) covering `windows` and their predecessors."""
    spans: list[tuple[datetime, datetime]] = []
    for window in sorted(windows):
        start = window.start - history * window_length(window.kind)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], window.end))
        else:
            spans.append((start, window.end))
    return spans
