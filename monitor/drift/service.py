"""The drift step of the timer: store the windows' traffic shape, compute drift, propose alerts.

Runs after the window rows of a run are saved (monitor/aggregate/runner.py). For every closed
window the run planned, each series (metric scores and traffic shape) and segment is compared with
its baseline (monitor/drift/compute.py) and the result upserted into the `drift` table
(PartitionKey `{monitor}|{series}`, RowKey `{window_start}|{segment}`). Alerts (docs/alerts.md):
* `drift`: an evaluated window (min_samples on both sides) whose JS distance >= drift.threshold;
* `recovered` (with `recovered_from: "drift"`): an evaluated window back under the threshold whose
  previous evaluated window of the same series and segment had drifted.
The caller creates them once per key and notifies, as for every other alert kind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from monitor.aggregate.alerts import alert_row_key
from monitor.aggregate.rollup import RowContext
from monitor.aggregate.windows import Window, window_length
from monitor.config import MonitorConfig
from monitor.drift.compute import Baseline, DriftPoint, Rule, drift_points, previous_evaluated
from monitor.drift.series import TRAFFIC_SERIES, WindowPoint, metric_points, save_shape_rows, traffic_points
from monitor.keys import iso, safe_key
from monitor.storage.tables import Tables, write_entities

__all__ = ["compute_drift", "drift_alerts", "save_drift", "save_shape_rows"]

# Earlier windows computed (not stored) to find the previous evaluated window for `recovered`.
HISTORY_WINDOWS = 24


def baseline_of(config: MonitorConfig) -> Baseline:
    drift = config.drift
    length = window_length(config.window)
    if drift.baseline is not None:
        return Baseline(length, start=drift.baseline.start, end=drift.baseline.end)
    return Baseline(length, windows=drift.trailing(config.window))


def rule_of(config: MonitorConfig) -> Rule:
    return Rule(config.drift.threshold, config.drift.min_samples)


def read_points(tables: Tables, config: MonitorConfig, spans: Iterable[tuple[datetime, datetime]]
                ) -> dict[tuple[str, str], list[WindowPoint]]:
    """Every window point of every series in the spans, grouped by (series, segment), deduplicated."""
    seen: dict[tuple[str, str, datetime], WindowPoint] = {}
    for start, end in spans:
        for metric in config.enabled_metrics():
            for point in metric_points(tables, config.name, metric, start, end):
                seen[(point.series, point.segment, point.start)] = point
        for point in traffic_points(tables, config.name, start, end):
            seen[(point.series, point.segment, point.start)] = point
    grouped: dict[tuple[str, str], list[WindowPoint]] = defaultdict(list)
    for (series, segment, _), point in seen.items():
        grouped[(series, segment)].append(point)
    return grouped


def read_spans(baseline: Baseline, first: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    b_start, b_end = baseline.span(first)
    if baseline.start is None:  # trailing: one contiguous span
        return [(b_start, end)]
    return [(b_start, b_end), (first, end)]


def compute_drift(tables: Tables, config: MonitorConfig, windows: list[Window], at: datetime
                  ) -> tuple[list[DriftPoint], dict[tuple[str, str], list[DriftPoint]]]:
    """Drift points of the closed planned windows, and every computed point (history included)
    by (series, segment)."""
    targets = sorted(w for w in windows if w.closed(at))
    if not targets or not config.drift.enabled:
        return [], {}
    length = window_length(config.window)
    first = targets[0].start - HISTORY_WINDOWS * length
    starts = [first + i * length for i in range(int((targets[-1].start - first) / length) + 1)]
    baseline, rule = baseline_of(config), rule_of(config)
    wanted = {t.start_iso for t in targets}
    current: list[DriftPoint] = []
    history: dict[tuple[str, str], list[DriftPoint]] = {}
    for key, points in read_points(tables, config, read_spans(baseline, first, targets[-1].end)).items():
        computed = drift_points(points, starts, baseline, rule)
        history[key] = computed
        current.extend(p for p in computed if p.window_start in wanted)
    return current, history


def drift_entity(config: MonitorConfig, point: DriftPoint, computed_at: str) -> dict[str, Any]:
    return _present({
        "PartitionKey": f"{config.name}|{point.series}",
        "RowKey": f"{point.window_start}|{safe_key(point.segment)}",
        "monitor": config.name, "window": config.window, **point.to_json(),
        "baseline_kind": "fixed" if config.drift.baseline is not None else "trailing",
        "computed_at": computed_at,
    })


def _present(entity: dict[str, Any]) -> dict[str, Any]:
    """Without None values (absent properties in Table Storage)."""
    return {k: v for k, v in entity.items() if v is not None}


def save_drift(tables: Tables, config: MonitorConfig, points: list[DriftPoint], computed_at: str) -> int:
    return write_entities(tables["drift"], [drift_entity(config, p, computed_at) for p in points], "upsert")


def alerting(config: MonitorConfig, series: str) -> bool:
    return config.drift.traffic or series not in TRAFFIC_SERIES


def drift_alerts(config: MonitorConfig, ctx: RowContext, current: list[DriftPoint],
                 history: dict[tuple[str, str], list[DriftPoint]], created_at: datetime,
                 webhook: bool) -> list[dict[str, Any]]:
    """Alert entities the points raise (before de-duplication against stored alerts)."""
    out = []
    for point in current:
        if not alerting(config, point.series):
            continue
        if point.drifted:
            out.append(alert_entity(config, ctx, point, "drift", created_at, webhook))
            continue
        previous = previous_evaluated(history.get((point.series, point.segment), []), point.window_start)
        if point.evaluated and previous is not None and previous.drifted:
            out.append(alert_entity(config, ctx, point, "recovered", created_at, webhook))
    return out


def alert_message(config: MonitorConfig, point: DriftPoint, kind: str) -> str:
    where = (f"monitor {config.name}, {point.series}, segment {point.segment}, {config.window} window "
             f"{point.window_start} to {point.window_end}")
    base = (f"baseline {point.baseline_start} to {point.baseline_end} ({point.baseline_n} records, "
            f"window {point.n})")
    shift = ""
    if point.mean_shift is not None:
        stderr = f" +/- {point.mean_shift_stderr:.3f}" if point.mean_shift_stderr is not None else ""
        shift = f", mean {point.mean:.3f} vs {point.baseline_mean:.3f} (shift {point.mean_shift:+.3f}{stderr})"
    distance = f"Jensen-Shannon distance {point.js_distance:.3f}"
    if kind == "drift":
        return f"Drift: {distance} >= {point.threshold:.3f} against the {base}{shift}: {where}."
    return f"Recovered from drift: {distance} is back below {point.threshold:.3f} ({base}){shift}: {where}."


def alert_entity(config: MonitorConfig, ctx: RowContext, point: DriftPoint, kind: str, created_at: datetime,
                 webhook: bool) -> dict[str, Any]:
    key_kind = "drift" if kind == "drift" else "drift_recovered"
    return _present({
        "PartitionKey": config.name,
        "RowKey": alert_row_key(point.window_start, point.series, point.segment, key_kind),
        "monitor": config.name, "kind": kind, "metric": point.series, "segment": point.segment,
        "window": config.window, "window_start": point.window_start, "window_end": point.window_end,
        "value": point.js_distance, "threshold": point.threshold, "created_at": iso(created_at),
        "message": alert_message(config, point, kind), "row_count": point.n, "scored": point.n,
        "baseline_n": point.baseline_n, "psi": point.psi, "mean_shift": point.mean_shift,
        "mean_shift_stderr": point.mean_shift_stderr, "judge": ctx.judge, "approximate": ctx.approximate,
        **({"recovered_from": "drift"} if kind == "recovered" else {}),
        "webhook_status": "pending" if webhook else "none", "webhook_attempts": 0, "webhook_error": "",
    })
