"""What the dashboard shows, gathered from the result services (:mod:`monitor.results`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monitor import results
from monitor.config import MetricConfig, MonitorConfig
from monitor.dashboard.quality import QualityData, load_quality
from monitor.dashboard.svg import Point
from monitor.keys import parse_time

FAILING_EXAMPLES = 20


@dataclass(frozen=True)
class MetricView:
    """One metric over the selected range and segment."""

    name: str
    settings: MetricConfig
    points: list[Point]
    threshold: float
    histogram: list[int]
    rows: int = 0
    scored: int = 0
    passed: int = 0
    errors: int = 0
    not_applicable: int = 0
    breaches: int = 0
    average: float | None = None

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.scored if self.scored else None

    @property
    def latest_breached(self) -> bool:
        scored = [p for p in self.points if p.pass_rate is not None]
        return bool(scored) and scored[-1].breached


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
    failing: list[dict[str, Any]]
    judge: str
    approximate: bool
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # drift lines, traffic shape and judge calibration (monitor/dashboard/quality.py)
    quality: QualityData | None = None


def load_dashboard(name: str, *, start: datetime | None = None, end: datetime | None = None,
                   segment: str = "all") -> DashboardData:
    """Everything one dashboard page shows; 404 for an unknown monitor, 422 for bad filters."""
    config = results.load_config(name)
    results.check_segment(segment)
    windows = results.metrics(name, start=start, end=end)["windows"]
    chosen = [w for w in windows if w.get("segment") == segment]
    alerts = [a for a in results.alerts(name, start=start, end=end)["alerts"]
              if segment == "all" or a.get("segment") == segment]
    failing = results.records(name, results.RecordQuery(
        start=start, end=end, segment=segment, failing=True, limit=FAILING_EXAMPLES))["records"]
    return DashboardData(
        name=name, config=config, segment=segment, segments=segments_of(windows), start=start, end=end,
        metrics=[metric_view(m, s, [w for w in chosen if w.get("metric") == m])
                 for m, s in config.enabled_metrics().items()],
        alerts=sorted(alerts, key=lambda a: str(a.get("window_start")), reverse=True),
        failing=failing,
        judge=judge_label(config, windows),
        approximate=is_approximate(config, windows),
        quality=load_quality(name, start=start, end=end, segment=segment),
    )


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
    return MetricView(
        name=name,
        settings=settings,
        points=[_point(w) for w in ordered],
        threshold=float(thresholds[-1]) if thresholds else settings.pass_rate_threshold,
        histogram=[sum(int(w["histogram"].get(str(b), 0)) for w in ordered) for b in range(1, 6)],
        rows=_total(ordered, "row_count"),
        scored=scored,
        passed=_total(ordered, "passed"),
        errors=_total(ordered, "errors"),
        not_applicable=_total(ordered, "not_applicable"),
        breaches=sum(1 for w in ordered if w.get("breached")),
        average=weighted / scored if scored else None,
    )


def _total(windows: Iterable[Mapping[str, Any]], key: str) -> int:
    return sum(int(w.get(key) or 0) for w in windows)


def _point(window: Mapping[str, Any]) -> Point:
    rate = window.get("pass_rate")
    start = parse_time(str(window["window_start"]))
    label = f"{window['window_start']}: "
    if rate is None:
        label += f"no scores ({window.get('row_count', 0)} rows, {window.get('errors', 0)} errors)"
    else:
        label += (f"pass rate {float(rate):.0%} of {window.get('scored', 0)} scored, "
                  f"threshold {float(window.get('threshold') or 0):.0%}")
        if window.get("breached"):
            label += " - BREACHED"
    return Point(start=start, pass_rate=None if rate is None else float(rate),
                 breached=bool(window.get("breached")), label=label)
