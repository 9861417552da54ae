"""Results for the HTTP API and the dashboard: windows, alerts, status and the records drill-down.

Every function first loads the monitor's config (404 for an unknown monitor) and checks the
filters against it (422 naming the parameter), then reads through the aggregation service
(:mod:`monitor.aggregate`), the status service (:mod:`monitor.status`) or, for the drill-down,
the `scores` and `records` tables directly.

Cost of the records drill-down
------------------------------
Scores are partitioned by hour (`{monitor}|{yyyymmddHH}`), not by score, so "lowest scores first"
needs every score in the requested range: one query over the PartitionKey range of the hours
overlapping [`start`, `end`) (both optional; without them, every hour of the monitor), reading only
the small score properties (`select`), never the texts. That is one entity read per
record x metric in range: about 5 reads per record with the five built-in metrics, i.e. roughly
1 000 entities (a few table pages) per hour at 200 sampled records an hour. Only the records of
the returned page are then read (one point read each, `limit` at most 200) to attach prompt,
completion and context. A range of more than :data:`MAX_SCAN_SCORES` scores is refused with a
422 asking for a narrower `start`/`end` (the dashboard asks for one window at a time). Order:
lowest score first, newest first among equal scores. Pages are cut by a keyset continuation token
(the sort key of the last item), so a page never repeats or skips an item when new scores arrive,
but each page re-reads the range.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor.config import MonitorConfig
from monitor.errors import UserError
from monitor.keys import hour_key, iso, parse_time, safe_key, stable_hash
from monitor.monitors import MonitorStore
from monitor.records import Record
from monitor.storage.tables import Tables, get_entity

MAX_SCAN_SCORES = 200_000
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
SEGMENT_PATTERN = re.compile(r"^(all|deployment=[^\x00-\x1f]{1,256}|model_version=[^\x00-\x1f]{1,256})$")
_SCORE_COLUMNS = ["PartitionKey", "record_key", "metric", "status", "score", "passed", "reason",
                  "approximate", "detail", "time", "deployment", "model_version"]
_COUNT_FIELDS = ("row_count", "scored", "passed", "errors", "not_applicable", "skipped", "unmatched")


class ParameterError(UserError):
    """A query parameter is malformed or does not fit the monitor; details name it."""

    code = "invalid_parameter"
    status = 422

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}", details=[{"field": parameter, "location": "query",
                                                                 "message": message}])


# --------------------------------------------------------------------------------------------
# Parameters shared by every result route


def parse_time_parameter(name: str, value: str | None) -> datetime | None:
    """An ISO 8601 time (UTC when it has no offset) or None; ParameterError otherwise.

    Times are bounded to [1970, 9000) so that window arithmetic (a day before `start`, an hour
    after `end`) can never overflow.
    """
    if value is None or value == "":
        return None
    try:
        moment = parse_time(value)
    except (ValueError, OverflowError):
        raise ParameterError(name, f"{value!r} is not an ISO 8601 time, e.g. 2026-01-31T09:00:00Z") from None
    if not EARLIEST <= moment < LATEST:
        raise ParameterError(name, f"{value!r} is out of range: use a time between {EARLIEST.year} and {LATEST.year}")
    return moment


def check_range(start: datetime | None, end: datetime | None) -> None:
    if start is not None and end is not None and end <= start:
        raise ParameterError("end", "end must be later than start")


def check_segment(segment: str | None) -> None:
    if segment is not None and not SEGMENT_PATTERN.fullmatch(segment):
        raise ParameterError("segment", "a segment is `all`, `deployment=NAME` or `model_version=VERSION`")


def check_metric(config: MonitorConfig, metric: str | None) -> None:
    known = config.metric_settings()
    if metric is not None and metric not in known:
        raise ParameterError("metric", f"unknown metric {metric!r}; this monitor has {sorted(known)}")


def load_config(name: str, store: MonitorStore | None = None) -> MonitorConfig:
    """The monitor's config; NotFoundError (404) when there is none."""
    return (store or MonitorStore()).get(name)


# --------------------------------------------------------------------------------------------
# Windows, alerts, status


def metrics(name: str, *, metric: str | None = None, segment: str | None = None,
            start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
    """`{"monitor", "windows": [...]}`: the aggregated windows in range, oldest first."""
    check_metric(load_config(name), metric)
    check_segment(segment)
    check_range(start, end)
    from monitor.aggregate import query_windows

    windows = query_windows(name, metric=metric, segment=segment, start=start, end=end)
    rows = sorted((normalize_window(w) for w in windows),
                  key=lambda w: (str(w["window_start"]), str(w["metric"]), str(w["segment"])))
    return {"monitor": name, "windows": rows}


def alerts(name: str, *, start: datetime | None = None, end: datetime | None = None, metric: str | None = None,
           segment: str | None = None) -> dict[str, Any]:
    """`{"monitor", "alerts": [...]}`: alerts of windows in range, oldest first; optionally of one
    metric and one segment."""
    check_metric(load_config(name), metric)
    check_segment(segment)
    check_range(start, end)
    from monitor.aggregate import query_alerts

    rows = [normalize_times(a) for a in query_alerts(name, start=start, end=end)
            if (metric is None or a.get("metric") == metric) and (segment is None or a.get("segment") == segment)]
    rows.sort(key=lambda a: (str(a.get("window_start")), str(a.get("metric")), str(a.get("kind"))))
    return {"monitor": name, "alerts": rows}


def quarantine(name: str, *, reason: str | None = None, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """Bad input lines of a monitor: blob, line, reason, detail and an excerpt."""
    load_config(name)
    from monitor.ingest.quarantine import read_quarantine

    return {"monitor": name, "entries": read_quarantine(Tables.default()["quarantine"], name, reason=reason,
                                                          limit=limit)}


def status(name: str) -> dict[str, Any]:
    """The object `status --monitor NAME --json` prints."""
    from monitor.status import monitor_status

    return normalize_times(monitor_status(name))


def normalize_times(row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy with datetimes as ISO 8601 UTC strings and table bookkeeping removed."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in ("PartitionKey", "RowKey", "Timestamp", "etag"):
            continue
        out[key] = iso(value) if isinstance(value, datetime) else value
    return out


def normalize_window(window: Mapping[str, Any]) -> dict[str, Any]:
    """A window with a `histogram` dict of buckets "1".."5" and finite or null numbers."""
    out = normalize_times(window)
    out["histogram"] = normalize_histogram(out.get("histogram"))
    for key in ("pass_rate", "average_score", "threshold", "error_rate"):
        value = out.get(key)
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
    for key in _COUNT_FIELDS:
        if key in out and out[key] is not None:
            out[key] = int(out[key])
    out["breached"] = bool(out.get("breached", False))
    return out


def normalize_histogram(value: Any) -> dict[str, int]:
    if isinstance(value, str):
        try:
            value = json.loads(value) if value else {}
        except json.JSONDecodeError:
            value = {}
    if isinstance(value, list):
        value = {str(i + 1): v for i, v in enumerate(value[:5])}
    if not isinstance(value, Mapping):
        value = {}
    return {str(b): int(value.get(str(b), 0) or 0) for b in range(1, 6)}


# --------------------------------------------------------------------------------------------
# Records drill-down


@dataclass(frozen=True)
class RecordQuery:
    """Filters of the drill-down. `failing`: only scores that did not pass (dashboard)."""

    metric: str | None = None
    max_score: float | None = None
    start: datetime | None = None
    end: datetime | None = None
    segment: str | None = None
    failing: bool = False
    limit: int = DEFAULT_LIMIT
    continuation: str | None = None

    def fingerprint(self, monitor: str) -> str:
        """Identifies the filters, so a token cannot be replayed with other filters."""
        parts = [monitor, self.metric, self.max_score, self.start and iso(self.start),
                 self.end and iso(self.end), self.segment, self.failing]
        return stable_hash(json.dumps(parts))[:16]


@dataclass
class _Candidate:
    partition: str
    key: str
    time: str
    deployment: str | None
    model_version: str | None
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    sort_value: float = math.inf

    @property
    def sort_key(self) -> tuple[float, float, str]:
        """Lowest score first, newest first among equal scores, then by key."""
        return (self.sort_value, -_epoch(self.time), self.key)


def records(name: str, query: RecordQuery, *, tables: Tables | None = None) -> dict[str, Any]:
    """`{"monitor", "records": [...], "next": token | null}`: lowest score first, newest first among ties."""
    config = load_config(name)
    _check_record_query(config, query)
    tables = tables or Tables.default()
    after = decode_continuation(query.continuation, query.fingerprint(name))
    candidates = sorted(_candidates(tables, name, query), key=lambda c: c.sort_key)
    if after is not None:
        candidates = [c for c in candidates if c.sort_key > after]
    page = candidates[:query.limit]
    more = len(candidates) > query.limit
    return {
        "monitor": name,
        "records": [_item(tables, c) for c in page],
        "next": encode_continuation(page[-1].sort_key, query.fingerprint(name)) if more and page else None,
    }


def _check_record_query(config: MonitorConfig, query: RecordQuery) -> None:
    check_metric(config, query.metric)
    check_segment(query.segment)
    check_range(query.start, query.end)
    if not 1 <= query.limit <= MAX_LIMIT:
        raise ParameterError("limit", f"limit must be within 1-{MAX_LIMIT}")
    if query.max_score is not None and not math.isfinite(query.max_score):
        raise ParameterError("max_score", "max_score must be a finite number")


def _scan_filter(monitor: str, start: datetime | None, end: datetime | None) -> tuple[str, dict[str, Any]]:
    """The PartitionKey range of the hours overlapping [start, end): `end` on an hour boundary
    excludes that hour (a window reads exactly its own hours); '~' sorts after every digit."""
    low = f"{monitor}|{hour_key(start)}" if start else f"{monitor}|"
    if end is None:
        high = f"{monitor}|~"
    elif end == end.replace(minute=0, second=0, microsecond=0):
        high = f"{monitor}|{hour_key(end)}"
    else:
        high = f"{monitor}|{hour_key(end)}~"
    return "PartitionKey ge @low and PartitionKey lt @high", {"low": low, "high": high}


def _scan_scores(tables: Tables, monitor: str, query: RecordQuery) -> Iterable[dict[str, Any]]:
    text, params = _scan_filter(monitor, query.start, query.end)
    for count, entity in enumerate(tables["scores"].query_entities(text, parameters=params, select=_SCORE_COLUMNS)):
        if count >= MAX_SCAN_SCORES:
            raise ParameterError("start", f"the range holds more than {MAX_SCAN_SCORES} scores; "
                                            "narrow it with start and end")
        yield dict(entity)


def _in_range(entity: Mapping[str, Any], query: RecordQuery) -> bool:
    if query.start is None and query.end is None:
        return True
    try:
        moment = parse_time(str(entity.get("time")))
    except ValueError:
        return False
    return (query.start is None or moment >= query.start) and (query.end is None or moment < query.end)


def _in_segment(entity: Mapping[str, Any], segment: str | None) -> bool:
    if segment is None or segment == "all":
        return True
    kind, _, value = segment.partition("=")
    return str(entity.get(kind) or "") == value


def _matches(entity: Mapping[str, Any], query: RecordQuery) -> bool:
    """Whether this score selects its record for the drill-down."""
    if query.metric is not None and entity.get("metric") != query.metric:
        return False
    ok = entity.get("status") == "ok" and entity.get("score") is not None
    if query.failing and not (ok and entity.get("passed") is False):
        return False
    return not (query.max_score is not None and not (ok and float(entity["score"]) <= query.max_score))


def _candidates(tables: Tables, monitor: str, query: RecordQuery) -> list[_Candidate]:
    found: dict[tuple[str, str], _Candidate] = {}
    selected: set[tuple[str, str]] = set()
    for entity in _scan_scores(tables, monitor, query):
        if not (_in_range(entity, query) and _in_segment(entity, query.segment)):
            continue
        ident = (str(entity["PartitionKey"]), str(entity.get("record_key") or ""))
        if ident not in found:
            found[ident] = _new_candidate(ident, entity)
        candidate = found[ident]
        metric = str(entity.get("metric"))
        candidate.scores[metric] = _score_view(entity)
        if _matches(entity, query):
            selected.add(ident)
            if entity.get("status") == "ok" and entity.get("score") is not None:
                candidate.sort_value = min(candidate.sort_value, float(entity["score"]))
    return [found[ident] for ident in selected]


def _new_candidate(ident: tuple[str, str], entity: Mapping[str, Any]) -> _Candidate:
    return _Candidate(partition=ident[0], key=ident[1], time=str(entity.get("time") or ""),
                      deployment=entity.get("deployment"), model_version=entity.get("model_version"))


def _score_view(entity: Mapping[str, Any]) -> dict[str, Any]:
    score = entity.get("score")
    return {
        "score": float(score) if score is not None else None,
        "status": entity.get("status"),
        "passed": entity.get("passed"),
        "reason": entity.get("reason") or entity.get("detail"),
        "approximate": bool(entity.get("approximate", False)),
    }


def _item(tables: Tables, candidate: _Candidate) -> dict[str, Any]:
    entity = get_entity(tables["records"], candidate.partition, safe_key(candidate.key))
    record = Record.from_entity(entity) if entity else None
    return {
        "key": candidate.key,
        "time": candidate.time or (iso(record.time) if record else None),
        "prompt": record.prompt if record else None,
        "completion": record.completion if record else None,
        "context": record.context if record else None,
        "deployment": (record.deployment if record else None) or candidate.deployment,
        "model_version": (record.model_version if record else None) or candidate.model_version,
        "lowest_score": None if math.isinf(candidate.sort_value) else candidate.sort_value,
        "scores": dict(sorted(candidate.scores.items())),
    }


def _epoch(time: str) -> float:
    """Seconds since 1970 of an ISO time; records without a readable time sort as the oldest."""
    try:
        return parse_time(time).timestamp()
    except ValueError:
        return -math.inf


def encode_continuation(sort_key: tuple[float, float, str], fingerprint: str) -> str:
    value, negative_time, key = sort_key
    payload = {"v": None if math.isinf(value) else value,
               "t": None if math.isinf(negative_time) else -negative_time, "k": key, "f": fingerprint}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_continuation(token: str | None, fingerprint: str) -> tuple[float, float, str] | None:
    """The sort key after which the next page starts; ParameterError for a foreign token."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        value = math.inf if payload["v"] is None else float(payload["v"])
        after = (value, math.inf if payload["t"] is None else -float(payload["t"]), str(payload["k"]))
        matches = payload["f"] == fingerprint
    except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error):
        raise ParameterError("continuation", "not a continuation token of this API") from None
    if not matches:
        raise ParameterError("continuation", "this token belongs to a query with other filters")
    return after


# --------------------------------------------------------------------------------------------
# Where the data ends (the dashboard's default range)


def aggregated_as_of(name: str) -> datetime | None:
    """The time the last aggregation ran as (`--at`, or when the timer fired); one point read."""
    from monitor.aggregate.store import read_run

    return read_run(Tables.default(), name).at


def newest_window_end(name: str, metric: str) -> datetime | None:
    """The end of the newest window of one metric: a scan of that metric's window partition reading
    only `window_end` (one small entity per window x segment; used when the recent range is empty)."""
    entities = Tables.default()["windows"].query_entities(
        "PartitionKey eq @pk", parameters={"pk": f"{name}|{metric}"}, select=["window_end"])
    ends = [parse_time(str(e["window_end"])) for e in entities if e.get("window_end")]
    return max(ends, default=None)
