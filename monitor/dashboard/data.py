"""What the dashboard shows, gathered from the result services (:mod:`monitor.results`).

Every number on the page is read from the aggregated windows (which are merged from the partial
aggregates), never from individual scores, so a page costs the same for a monitor of any age. Only
the failing examples read scores, and only those of one window (see docs/api.md, "Dashboard").

Default range: the 7 days up to the time the last aggregation ran as (its `--at`, or when the timer
fired), rounded up to the hour; now when it never ran. When those 7 days hold no window (data stopped
arriving, or old data was backfilled), the 7 days up to the end of the newest window instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor import results
from monitor.config import MetricConfig, MonitorConfig
from monitor.dashboard.quality import QualityData, load_quality
from monitor.dashboard.svg import Point
from monitor.errors import UserError
from monitor.keys import iso, parse_time

FAILING_PAGE = 20
DEFAULT_SPAN = timedelta(days=7)
QUICK_SPANS: dict[str, timedelta] = {"24 h": timedelta(hours=24), "7 d": timedelta(days=7),
                                     "30 d": timedelta(days=30)}
MAX_CHOICES = 10


@dataclass(frozen=True)
class DashboardQuery:
    """The page's parameters. `window`/`metric`/`page` pick the failing examples shown."""

    start: datetime | None = None
    end: datetime | None = None
    segment: str = "all"
    window: datetime | None = None
    metric: str | None = None
    page: str | None = None
    first: int = 1
    # What the user typed in the From/To form, shown again next to an error.
    typed_start: str | None = None
    typed_end: str | None = None


def parse_query(params: Mapping[str, str | None]) -> tuple[DashboardQuery, list[str]]:
    """The query from raw request parameters and the problems found; a bad value is reported on the
    page (and ignored) instead of failing the whole page."""
    notices: list[str] = []

    def moment(key: str, label: str) -> datetime | None:
        try:
            return results.parse_time_parameter(key, params.get(key))
        except results.ParameterError as exc:
            notices.append(f"{label}: {exc.details[0]['message']}; showing the default range instead")
            return None

    start, end = moment("start", "From"), moment("end", "To")
    if start is not None and end is not None and end <= start:
        notices.append("To must be later than From; showing the default range instead")
        start = end = None
    segment = params.get("segment") or "all"
    try:
        results.check_segment(segment)
    except results.ParameterError as exc:
        notices.append(f"Segment {segment!r}: {exc.details[0]['message']}; showing all traffic")
        segment = "all"
    try:
        first = max(1, int(params.get("first") or 1))
    except ValueError:
        first = 1
    query = DashboardQuery(start=start, end=end, segment=segment, window=moment("window", "Window"),
                           metric=params.get("metric") or None, page=params.get("page") or None, first=first,
                           typed_start=params.get("start"), typed_end=params.get("end"))
    return query, notices


@dataclass(frozen=True)
class MetricView:
    """One metric over the selected range and segment."""

    name: str
    settings: MetricConfig
    points: list[Point]
    threshold: float
    histogram: list[int]
    records_seen: int = 0
    scored: int = 0
    passed: int = 0
    errors: int = 0
    not_applicable: int = 0
    breaches: int = 0
    average: float | None = None
    latest: Mapping[str, Any] | None = None      # the latest complete (final) window, else the latest
    breached: Mapping[str, Any] | None = None    # the latest breached window in range

    @property
    def pass_rate(self) -> float | None:
        """Of the whole range: passed / scored summed over its windows."""
        return self.passed / self.scored if self.scored else None

    @property
    def latest_breached(self) -> bool:
        return bool(self.latest and self.latest.get("breached"))


@dataclass(frozen=True)
class WindowChoice:
    """A window with failing scores the reader can switch the examples to."""

    window_start: str
    segment: str
    failing: int


@dataclass(frozen=True)
class FailingView:
    """The failing examples of one window (and segment, and metric when one is picked)."""

    window_start: str | None = None
    window_end: str | None = None
    segment: str = "all"
    metric: str | None = None
    why: str = ""
    total: int = 0
    per_metric: dict[str, int] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    next: str | None = None
    first: int = 1
    page: str | None = None
    error: str | None = None
    choices: list[WindowChoice] = field(default_factory=list)


@dataclass(frozen=True)
class DashboardData:
    name: str
    config: MonitorConfig
    segment: str
    segments: list[str]
    start: datetime | None
    end: datetime | None
    metrics: list[MetricView]
    alerts: list[dict[str, Any]]
    failing: FailingView
    judge: str
    approximate: bool
    default_range: bool = False
    anchor: datetime | None = None
    notices: list[str] = field(default_factory=list)
    query: DashboardQuery = DashboardQuery()
    unmatched: dict[str, int] = field(default_factory=dict)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # drift lines, traffic shape and judge calibration (monitor/dashboard/quality.py)
    quality: QualityData | None = None
    ingestion: dict[str, Any] | None = None  # the ingestion fields of `status` (docs/ingestion.md)


def _ceil_hour(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + timedelta(hours=1)


def anchor_of(name: str, now: datetime | None = None) -> datetime:
    """Where the default range ends: the last aggregation's time, else now (rounded up to the hour)."""
    now = now or datetime.now(UTC)
    at = results.aggregated_as_of(name)
    return _ceil_hour(min(at, now) if at else now)


def resolve_range(name: str, config: MonitorConfig, query: DashboardQuery
                  ) -> tuple[datetime | None, datetime | None, datetime, list[dict[str, Any]]]:
    """(start, end, anchor, windows of every metric and segment in range)."""
    anchor = anchor_of(name)
    if query.start is not None or query.end is not None:
        return query.start, query.end, anchor, results.metrics(name, start=query.start, end=query.end)["windows"]
    windows = results.metrics(name, start=anchor - DEFAULT_SPAN, end=anchor)["windows"]
    metrics = list(config.enabled_metrics())
    if not windows and metrics:
        newest = results.newest_window_end(name, metrics[0])
        if newest is not None:
            anchor = _ceil_hour(newest)
            windows = results.metrics(name, start=anchor - DEFAULT_SPAN, end=anchor)["windows"]
    return anchor - DEFAULT_SPAN, anchor, anchor, windows


def load_dashboard(name: str, query: DashboardQuery | None = None, *,
                   notices: Sequence[str] = ()) -> DashboardData:
    """Everything one dashboard page shows; 404 for an unknown monitor."""
    query = query or DashboardQuery()
    config = results.load_config(name)
    found = list(notices)
    start, end, anchor, windows = resolve_range(name, config, query)
    segments = segments_of(windows)
    if query.segment not in segments:
        found.append(f"The segment {query.segment} has no data in this range"
                     + (f" (segments with data: {', '.join(segments)})" if windows else "") + ".")
    chosen = [w for w in windows if w.get("segment") == query.segment]
    alerts = [a for a in results.alerts(name, start=start, end=end)["alerts"]
              if query.segment == "all" or a.get("segment") == query.segment]
    metrics = config.enabled_metrics()
    if query.metric is not None and query.metric not in metrics:
        found.append(f"Metric {query.metric!r} is not a metric of this monitor ({', '.join(metrics)}); "
                     "showing every metric's failing examples.")
        query = replace(query, metric=None)
    return DashboardData(
        name=name, config=config, segment=query.segment, segments=segments, start=start, end=end,
        metrics=[metric_view(m, s, [w for w in chosen if w.get("metric") == m]) for m, s in metrics.items()],
        alerts=sorted(alerts, key=lambda a: str(a.get("window_start")), reverse=True),
        failing=failing_view(name, config, query, windows),
        judge=judge_label(config, windows), approximate=is_approximate(config, windows),
        default_range=query.start is None and query.end is None, anchor=anchor, notices=found, query=query,
        quality=load_quality(name, start=start, end=end, segment=query.segment),
        unmatched=unmatched_of(chosen, metrics), ingestion=ingestion_status(name),
    )


INGESTION_FIELDS = ("open_blobs", "ingestion_lag_seconds", "oldest_unread_at", "bytes_read", "blobs_replaced")


def ingestion_status(name: str) -> dict[str, Any]:
    """Open blobs and the age of the oldest unread byte (the status panel)."""
    from monitor.status import monitor_status

    status = monitor_status(name)
    return {key: status.get(key) for key in INGESTION_FIELDS}


def unmatched_of(windows: Sequence[Mapping[str, Any]], metrics: Mapping[str, MetricConfig]) -> dict[str, int]:
    """Records seen and unmatched halves (expired / waiting) in range, from one metric's windows."""
    first = next(iter(metrics), None)
    own = [w for w in windows if w.get("metric") == first]
    return {"records_seen": _total(own, "row_count"), "expired": _total(own, "unmatched_expired"),
            "waiting": _total(own, "unmatched_pending")}


# --------------------------------------------------------------------------------------------
# Failing examples: one window at a time


def _failing_count(window: Mapping[str, Any]) -> int:
    return max(0, int(window.get("scored") or 0) - int(window.get("passed") or 0))


def _scope(config: MonitorConfig, query: DashboardQuery, windows: Sequence[Mapping[str, Any]]
           ) -> tuple[str, str, str | None, str] | None:
    """(window_start, segment, metric, why) of the examples to show, or None."""
    enabled = config.enabled_metrics()
    own = [w for w in windows if w.get("metric") in enabled and query.metric in (None, w.get("metric"))]
    if query.window is not None:
        return iso(query.window), query.segment, query.metric, "selected"
    # The page's segment first; on all traffic, then a breach of any deployment or model version.
    rounds = [[query.segment]] + ([[s for s in segments_of(own) if s != "all"]] if query.segment == "all" else [])
    for segments in rounds:
        breached = [w for w in own if w.get("breached") and w.get("segment") in segments]
        if breached:
            latest = max(str(w["window_start"]) for w in breached)
            # The metric with the most failing scores (most examples to read), then the lowest pass rate.
            worst = min((w for w in breached if str(w["window_start"]) == latest),
                        key=lambda w: (-_failing_count(w), float(w.get("pass_rate") or 0), str(w["segment"])))
            return latest, str(worst["segment"]), query.metric or str(worst["metric"]), "breached"
    failing = [w for w in own if w.get("segment") == query.segment and _failing_count(w)]
    if failing:
        return max(str(w["window_start"]) for w in failing), query.segment, query.metric, "latest"
    return None


def failing_view(name: str, config: MonitorConfig, query: DashboardQuery,
                 windows: Sequence[Mapping[str, Any]]) -> FailingView:
    scope = _scope(config, query, windows)
    if scope is None:
        return FailingView(segment=query.segment, choices=_choices(windows, query.segment))
    window_start, segment, metric, why = scope
    start = parse_time(window_start)
    these = results.metrics(name, segment=segment, start=start, end=start + timedelta(seconds=1))["windows"]
    these = [w for w in these if w["window_start"] == window_start and w.get("metric") in config.enabled_metrics()]
    per_metric = {str(w["metric"]): _failing_count(w) for w in these if _failing_count(w)}
    window_end = str(these[0]["window_end"]) if these else None
    base = FailingView(window_start=window_start, window_end=window_end, segment=segment, metric=metric, why=why,
                       total=per_metric.get(metric, 0) if metric else sum(per_metric.values()),
                       per_metric=per_metric, first=query.first, page=query.page,
                       choices=_choices(windows, segment))
    if window_end is None:
        return replace(base, error=f"no window starts at {window_start} for segment {segment}")
    try:
        answer = results.records(name, results.RecordQuery(
            metric=metric, start=start, end=parse_time(window_end), segment=segment, failing=True,
            limit=FAILING_PAGE, continuation=query.page))
    except UserError as exc:
        return replace(base, error=exc.message)
    return replace(base, records=answer["records"], next=answer["next"])


def _choices(windows: Sequence[Mapping[str, Any]], segment: str) -> list[WindowChoice]:
    """Windows of `segment` with failing scores, newest first."""
    counts: dict[str, int] = defaultdict(int)
    for w in windows:
        if w.get("segment") == segment:
            counts[str(w["window_start"])] += _failing_count(w)
    ordered = sorted(((s, n) for s, n in counts.items() if n), reverse=True)[:MAX_CHOICES]
    return [WindowChoice(s, segment, n) for s, n in ordered]


# --------------------------------------------------------------------------------------------
# Metrics


def segments_of(windows: Iterable[Mapping[str, Any]]) -> list[str]:
    """`all` first, then deployments, then model versions, each sorted."""
    found = {str(w.get("segment")) for w in windows if w.get("segment")}
    found.discard("all")
    order = {"deployment": 0, "model_version": 1}
    return ["all", *sorted(found, key=lambda s: (order.get(s.partition("=")[0], 2), s))]


def judge_label(config: MonitorConfig, windows: Sequence[Mapping[str, Any]]) -> str:
    """The judge that produced the numbers: the latest window's, else the config's."""
    for window in reversed(windows):
        if window.get("judge"):
            return str(window["judge"])
    judge = config.judge
    return judge.provider if judge.provider == "heuristic" else f"{judge.provider}:{judge.model_name}"


def is_approximate(config: MonitorConfig, windows: Iterable[Mapping[str, Any]]) -> bool:
    if config.judge.provider == "heuristic":
        return True
    return any(bool(w.get("approximate")) or str(w.get("judge", "")).startswith("heuristic") for w in windows)


def metric_view(name: str, settings: MetricConfig, windows: Sequence[Mapping[str, Any]]) -> MetricView:
    ordered = sorted(windows, key=lambda w: str(w["window_start"]))
    scored = sum(int(w.get("scored") or 0) for w in ordered)
    weighted = sum(float(w["average_score"]) * int(w.get("scored") or 0)
                   for w in ordered if w.get("average_score") is not None)
    thresholds = [w["threshold"] for w in ordered if w.get("threshold") is not None]
    final = [w for w in ordered if w.get("final", True)]
    breached = [w for w in ordered if w.get("breached")]
    return MetricView(
        name=name,
        settings=settings,
        points=[_point(w) for w in ordered],
        threshold=float(thresholds[-1]) if thresholds else settings.pass_rate_threshold,
        histogram=[sum(int(w["histogram"].get(str(b), 0)) for w in ordered) for b in range(1, 6)],
        records_seen=_total(ordered, "row_count"),
        scored=scored,
        passed=_total(ordered, "passed"),
        errors=_total(ordered, "errors"),
        not_applicable=_total(ordered, "not_applicable"),
        breaches=len(breached),
        average=weighted / scored if scored else None,
        latest=(final or ordered)[-1] if ordered else None,
        breached=breached[-1] if breached else None,
    )


def _total(windows: Iterable[Mapping[str, Any]], key: str) -> int:
    return sum(int(w.get(key) or 0) for w in windows)


def _point(window: Mapping[str, Any]) -> Point:
    rate = window.get("pass_rate")
    start = parse_time(str(window["window_start"]))
    label = f"{window['window_start']}: "
    if rate is None:
        label += (f"no scores ({window.get('row_count', 0)} records seen, {window.get('errors', 0)} errors)")
    else:
        label += (f"pass rate {float(rate):.0%} of {window.get('scored', 0)} scored, "
                  f"threshold {float(window.get('threshold') or 0):.0%}")
        if window.get("breached"):
            label += " - BREACHED"
    return Point(start=start, pass_rate=None if rate is None else float(rate),
                 breached=bool(window.get("breached")), label=label)
