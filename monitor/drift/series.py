"""The series drift is computed on, and the one typed accessor that reads them from window rows.

A series is one distribution per window and segment over fixed buckets: each metric's score
histogram ("1".."5") from the `windows` table, and three traffic-shape series from the
`shapewindows` table the timer writes beside it (monitor/shape.py counts them at ingestion):
`traffic.prompt_tokens`, `traffic.completion_tokens` (token buckets) and `traffic.answers`
(answered, empty, refused). Reads are RowKey range queries of one partition each: the cost of a
drift computation depends on the windows it covers, never on the number of scores.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.aggregate.rollup import WindowInput
from monitor.aggregate.store import add_row_range, query
from monitor.aggregate.windows import Window
from monitor.keys import iso, parse_time, safe_key
from monitor.shape import ANSWER_KINDS, TOKEN_BUCKETS, ShapeCounter
from monitor.storage.tables import Tables, write_entities

SCORE_VALUES: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0)
PROMPT_TOKENS = "traffic.prompt_tokens"
COMPLETION_TOKENS = "traffic.completion_tokens"
ANSWERS = "traffic.answers"
TRAFFIC_SERIES: tuple[str, ...] = (PROMPT_TOKENS, COMPLETION_TOKENS, ANSWERS)
# Per-bucket values for the mean of a series: the score itself; for answers, 1 for an empty or
# refused answer (so the mean is their share); token buckets have no mean (the last is open).
SERIES_VALUES: dict[str, tuple[float, ...] | None] = {
    PROMPT_TOKENS: None, COMPLETION_TOKENS: None, ANSWERS: (0.0, 1.0, 1.0),
}
SERIES_BUCKETS: dict[str, tuple[str, ...]] = {
    PROMPT_TOKENS: TOKEN_BUCKETS, COMPLETION_TOKENS: TOKEN_BUCKETS, ANSWERS: ANSWER_KINDS,
}
_WINDOW_COLUMNS = ["RowKey", "segment", "window_start", "window_end", "histogram", "scored", "average_score"]


@dataclass(frozen=True)
class WindowPoint:
    """One window of one series and segment: its bucket counts and, when known, the exact mean."""

    series: str
    segment: str
    start: datetime
    end: datetime
    counts: tuple[int, ...]
    mean: float | None = None

    @property
    def n(self) -> int:
        return sum(self.counts)


def values_of(series: str) -> tuple[float, ...] | None:
    return SERIES_VALUES.get(series, SCORE_VALUES)


def buckets_of(series: str) -> tuple[str, ...]:
    return SERIES_BUCKETS.get(series, ("1", "2", "3", "4", "5"))


# --- metric windows -----------------------------------------------------------------------------

def metric_point(metric: str, entity: Mapping[str, Any]) -> WindowPoint:
    histogram = json.loads(str(entity.get("histogram") or "{}"))
    counts = tuple(int(histogram.get(b, 0)) for b in ("1", "2", "3", "4", "5"))
    mean = entity.get("average_score")
    return WindowPoint(metric, str(entity["segment"]), parse_time(str(entity["window_start"])),
                       parse_time(str(entity["window_end"])), counts,
                       float(mean) if mean is not None and any(counts) else None)


def metric_points(tables: Tables, monitor: str, metric: str, start: datetime,
                  end: datetime) -> Iterator[WindowPoint]:
    """Window rows of one metric with window_start in [start, end): one partition range query."""
    flt = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
    params = {"pk": f"{monitor}|{metric}", "lo": iso(start), "hi": iso(end)}
    for entity in tables["windows"].query_entities(flt, parameters=params, select=_WINDOW_COLUMNS):
        yield metric_point(metric, dict(entity))


# --- traffic-shape windows ----------------------------------------------------------------------

def shape_entity(monitor: str, window: Window, segment: str, counter: ShapeCounter, final: bool,
                 computed_at: str) -> dict[str, Any]:
    return {
        "PartitionKey": monitor, "RowKey": f"{window.start_iso}|{safe_key(segment)}",
        "monitor": monitor, "segment": segment, "window": window.kind,
        "window_start": window.start_iso, "window_end": window.end_iso, "final": final,
        "records": counter.records,
        "prompt_tokens": json.dumps(counter.prompt_tokens), "completion_tokens": json.dumps(counter.completion_tokens),
        "answers": json.dumps(counter.answers), "computed_at": computed_at,
    }


def shape_rows(monitor: str, data: WindowInput, final: bool, computed_at: str) -> list[dict[str, Any]]:
    """One `shapewindows` row per segment with records in the window."""
    return [shape_entity(monitor, data.window, segment, counter, final, computed_at)
            for segment, counter in sorted(data.shapes.items()) if counter.records]


def save_shape_rows(tables: Tables, rows: Iterable[dict[str, Any]]) -> int:
    return write_entities(tables["shapes"], rows, "upsert")


def shape_points(entity: Mapping[str, Any]) -> list[WindowPoint]:
    """The three traffic series of one stored shape row."""
    segment = str(entity["segment"])
    start, end = parse_time(str(entity["window_start"])), parse_time(str(entity["window_end"]))
    out = []
    for series in TRAFFIC_SERIES:
        counts = tuple(int(x) for x in json.loads(str(entity.get(series.split(".", 1)[1]) or "[]")))
        out.append(WindowPoint(series, segment, start, end, counts))
    return out


def shape_windows(tables: Tables, monitor: str, start: datetime | None,
                  end: datetime | None) -> Iterator[dict[str, Any]]:
    """Stored shape rows with window_start in [start, end) (either bound optional)."""
    clauses: list[str] = ["PartitionKey eq @pk"]
    params: dict[str, Any] = {"pk": monitor}
    add_row_range(clauses, params, start, end)
    return query(tables["shapes"], " and ".join(clauses), params)


def traffic_points(tables: Tables, monitor: str, start: datetime, end: datetime) -> Iterator[WindowPoint]:
    for entity in shape_windows(tables, monitor, start, end):
        yield from shape_points(entity)
