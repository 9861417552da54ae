"""The aggregation run: what the timer trigger and `python -m monitor aggregate` execute.

For each monitor: plan the windows (dirty hours since the last run + lookback), merge the partials
of their hours, upsert the rows whose numbers changed, raise new alerts (create-if-absent), notify
them, retry undelivered webhooks, and record the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import UpdateMode

from monitor.aggregate import alerts as rules
from monitor.aggregate import store
from monitor.aggregate.rollup import RowContext, WindowInput, row_context, same_numbers, window_rows
from monitor.aggregate.telemetry import emit_alert
from monitor.aggregate.webhook import alert_payload, deliver
from monitor.aggregate.windows import Window, history_spans, plan_windows, window_of_hour
from monitor.config import MonitorConfig
from monitor.keys import iso, parse_time
from monitor.monitors import MonitorStore
from monitor.settings import Settings, get_settings
from monitor.storage.tables import Tables

logger = logging.getLogger(__name__)

# Dirty hours are re-read from this long before the previous run started (clock skew between instances).
CURSOR_MARGIN = timedelta(minutes=5)
# How many earlier windows `recovered` looks through for the previous evaluated window.
HISTORY_WINDOWS = 24
# A dirty hour in the future holds the cursor back only when it is this close (bad clocks are ignored).
DEFER_LIMIT = timedelta(days=1)

Timeline = dict[tuple[str, str], dict[str, dict[str, Any]]]


@dataclass
class AggregationReport:
    """What one run did for one monitor."""

    monitor: str
    at: str
    past_due: bool = False
    windows: list[str] = field(default_factory=list)
    final_windows: int = 0
    dirty_hours: int = 0
    rows_written: int = 0
    rows_unchanged: int = 0
    alerts: list[str] = field(default_factory=list)
    webhooks_sent: int = 0
    webhooks_failed: int = 0
    duration_ms: float = 0.0
    error: str | None = None

    def summary(self) -> str:
        if self.error:
            return f"aggregate {self.monitor} at {self.at}: FAILED: {self.error}"
        alerts = ", ".join(self.alerts) if self.alerts else "none"
        return (f"aggregate {self.monitor} at {self.at}{' (past due)' if self.past_due else ''}: "
                f"{len(self.windows)} windows ({self.final_windows} final, {self.dirty_hours} dirty hours), "
                f"{self.rows_written} rows written, {self.rows_unchanged} unchanged; new alerts: {alerts}; "
                f"webhooks {self.webhooks_sent} sent, {self.webhooks_failed} failed; {self.duration_ms:.0f} ms")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Run:
    tables: Tables
    settings: Settings
    at: datetime
    past_due: bool
    # Webhook URLs that failed in this run: later alerts wait for the next run instead of each
    # spending attempts x timeout on a receiver that is down.
    broken_urls: set[str] = field(default_factory=set)

    @property
    def lookback(self) -> timedelta:
        return timedelta(hours=self.settings.AGGREGATION_LOOKBACK_HOURS)


# --- public entry points ------------------------------------------------------------------------

def run_aggregation(*, at: datetime | None = None, monitor: str | None = None,
                    past_due: bool = False) -> list[AggregationReport]:
    """Aggregate every monitor (or one) as of `at` (default: now). With `monitor` given, errors
    propagate (NotFoundError for an unknown name); otherwise each monitor's failure is logged and
    reported, and the other monitors still run."""
    moment = as_utc(at or datetime.now(UTC))
    run = _Run(Tables.default(), get_settings(), moment, past_due)
    monitors = MonitorStore(run.tables)
    if monitor is not None:
        return [aggregate_monitor(run, monitors.get(monitor))]
    return [_guarded(run, config) for config in monitors.list()]


def as_utc(moment: datetime) -> datetime:
    """A naive time is taken as UTC (as everywhere in the monitor)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def aggregate_command(monitor: str, at: datetime | None) -> AggregationReport:
    """`python -m monitor aggregate --monitor NAME [--at ISO]`: exactly the timer path, one monitor."""
    return run_aggregation(at=at, monitor=monitor)[0]


def last_aggregation(monitor: str) -> str | None:
    """When aggregation last ran for the monitor (ISO 8601 UTC), or None: for `status`."""
    return store.read_run(Tables.default(), monitor).last_run_at


def _guarded(run: _Run, config: MonitorConfig) -> AggregationReport:
    try:
        return aggregate_monitor(run, config)
    except Exception as exc:  # one monitor's failure must not stop the others
        logger.exception("aggregation of monitor %s failed", config.name)
        return AggregationReport(config.name, iso(run.at), run.past_due, error=f"{type(exc).__name__}: {exc}")


# --- one monitor --------------------------------------------------------------------------------

def aggregate_monitor(run: _Run, config: MonitorConfig) -> AggregationReport:
    started = datetime.now(UTC)
    clock = time.perf_counter()
    report = AggregationReport(config.name, iso(run.at), run.past_due)
    state = store.read_run(run.tables, config.name)
    dirty = store.dirty_hours(run.tables, config.name, state.cursor)
    windows = plan_windows(kind=config.window, at=run.at, lookback=run.lookback,
                           dirty_hours=[h for h, _ in dirty], previous_at=state.at)
    ctx = row_context(config, iso(started))
    shapes: list[dict[str, Any]] = []
    rows = compute_rows(run, config, windows, ctx, shapes)
    timeline = save_changed(run, config, windows, rows, report)
    raise_alerts(run, config, rows, timeline, report)
    raise_drift_alerts(run, config, windows, shapes, ctx, report)
    retry_webhooks(run, config, report)
    report.windows = [w.start_iso for w in windows]
    report.final_windows = sum(1 for w in windows if w.final(run.at, run.lookback))
    report.dirty_hours = len(dirty)
    report.duration_ms = (time.perf_counter() - clock) * 1000
    record_run(run, config, started, deferred_cursor(run, config, dirty, started), report)
    return report


def compute_rows(run: _Run, config: MonitorConfig, windows: list[Window], ctx: RowContext,
                 shapes: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The window rows of every planned window, from partials and lonely join halves; the traffic
    shape rows of the windows go into `shapes` when given (docs/drift.md)."""
    if not windows:
        return []
    ttl = timedelta(minutes=config.source.join_ttl_minutes)
    halves = store.lonely_halves(run.tables, config.name, windows[0].first_hour, windows[-1].end_hour, run.at, ttl)
    metrics = config.enabled_metrics()
    rows: list[dict[str, Any]] = []
    for window in windows:
        data: WindowInput = store.window_counts(run.tables, config.name, window)
        store.add_unmatched(data, halves)
        rows.extend(window_rows(ctx, data, metrics, window.final(run.at, run.lookback)))
        if shapes is not None:
            from monitor.drift.series import shape_rows

            shapes.extend(shape_rows(config.name, data, window.final(run.at, run.lookback), ctx.computed_at))
    return rows


def save_changed(run: _Run, config: MonitorConfig, windows: list[Window], rows: list[dict[str, Any]],
                 report: AggregationReport) -> Timeline:
    """Upsert the rows whose numbers changed; return stored + new rows by (metric, segment) -> start."""
    timeline: Timeline = {}
    stored: dict[tuple[str, str], dict[str, Any]] = {}
    for metric in config.enabled_metrics():
        for start, end in history_spans(windows, HISTORY_WINDOWS):
            for row_key, entity in store.stored_windows(run.tables, config.name, metric, start, end).items():
                stored[(entity["PartitionKey"], row_key)] = entity
                _place(timeline, entity)
    changed = [r for r in rows if not same_numbers(r, stored.get((r["PartitionKey"], r["RowKey"])))]
    report.rows_written = store.save_windows(run.tables, changed)
    report.rows_unchanged = len(rows) - len(changed)
    for row in rows:
        _place(timeline, row)
    return timeline


def _place(timeline: Timeline, row: Mapping[str, Any]) -> None:
    timeline.setdefault((str(row["metric"]), str(row["segment"])), {})[str(row["window_start"])] = dict(row)


# --- alerts -------------------------------------------------------------------------------------

def raise_alerts(run: _Run, config: MonitorConfig, rows: list[dict[str, Any]], timeline: Timeline,
                 report: AggregationReport) -> None:
    """Create the alerts the rows raise (once each), then emit and deliver the new ones."""
    url = config.alerts.webhook_url
    if not rows:
        return
    known = rules.alert_keys(run.tables, config.name, min(str(r["window_start"]) for r in rows),
                             max(str(r["window_end"]) for r in rows))
    for row in rows:
        closed = run.at >= parse_time(str(row["window_end"]))
        previous = rules.previous_evaluated(timeline.get((str(row["metric"]), str(row["segment"])), {}),
                                            str(row["window_start"]))
        for candidate in rules.evaluate_row(row, closed=closed, previous=previous,
                                            error_rate_limit=config.alerts.error_rate_limit):
            entity = rules.alert_entity(candidate, created_at=datetime.now(UTC), webhook=url is not None)
            if entity["RowKey"] not in known:
                publish(run, url, entity, report)


def publish(run: _Run, url: str | None, entity: dict[str, Any], report: AggregationReport) -> bool:
    """Create the alert if absent (once per key); when new, emit it and deliver its webhook."""
    if not rules.create_alert(run.tables, entity):
        return False
    report.alerts.append(f"{entity['kind']}:{entity['metric']}:{entity['segment']}:{entity['window_start']}")
    emit_alert(entity)
    if url is not None:
        notify(run, url, entity, report)
    return True


def publish_alerts(config: MonitorConfig, entities: list[dict[str, Any]], at: datetime) -> list[str]:
    """Publish alerts raised outside a window run (judge calibration): once per key, emitted to
    Application Insights and delivered to the monitor's webhook like every other kind."""
    run = _Run(Tables.default(), get_settings(), at, False)
    report = AggregationReport(config.name, iso(at))
    for entity in entities:
        publish(run, config.alerts.webhook_url, entity, report)
    return report.alerts


def raise_drift_alerts(run: _Run, config: MonitorConfig, windows: list[Window], shapes: list[dict[str, Any]],
                       ctx: RowContext, report: AggregationReport) -> None:
    """Store the windows' traffic shape, compute and store drift, raise `drift` / `recovered`."""
    from monitor.drift import service as drift

    drift.save_shape_rows(run.tables, shapes)
    current, history = drift.compute_drift(run.tables, config, windows, run.at)
    drift.save_drift(run.tables, config, current, ctx.computed_at)
    url = config.alerts.webhook_url
    for entity in drift.drift_alerts(config, ctx, current, history, datetime.now(UTC), url is not None):
        publish(run, url, entity, report)


def notify(run: _Run, url: str, alert: dict[str, Any], report: AggregationReport) -> None:
    """POST the alert; record the outcome on its entity. Never raises for a webhook failure.
    After one failure in a run, the URL is left alone until the next run (the alerts stay pending)."""
    if url in run.broken_urls:
        return
    s = run.settings
    done = int(alert.get("webhook_attempts", 0))
    attempts = min(s.WEBHOOK_ATTEMPTS, s.WEBHOOK_MAX_ATTEMPTS - done)
    if attempts <= 0:
        return
    result = deliver(url, alert_payload(alert), attempts=attempts, timeout=s.WEBHOOK_TIMEOUT_SECONDS,
                     backoff=s.WEBHOOK_BACKOFF_SECONDS)
    update = {"PartitionKey": alert["PartitionKey"], "RowKey": alert["RowKey"],
              "webhook_status": result.status, "webhook_attempts": done + result.attempts,
              "webhook_error": result.error, "webhook_at": iso(datetime.now(UTC))}
    run.tables["alerts"].upsert_entity(update, mode=UpdateMode.MERGE)
    if result.status == "sent":
        report.webhooks_sent += 1
    else:
        report.webhooks_failed += 1
        run.broken_urls.add(url)
        logger.warning("webhook for alert %s failed after %d attempts: %s", update["RowKey"],
                       update["webhook_attempts"], result.error)


def retry_webhooks(run: _Run, config: MonitorConfig, report: AggregationReport) -> None:
    """Deliver alerts left pending or failed by earlier runs (attempts left); skip this run's new ones."""
    url = config.alerts.webhook_url
    if url is None:
        return
    fresh = set(report.alerts)
    for alert in list(rules.undelivered(run.tables, config.name, run.settings.WEBHOOK_MAX_ATTEMPTS)):
        key = f"{alert['kind']}:{alert['metric']}:{alert['segment']}:{alert['window_start']}"
        if key not in fresh:
            notify(run, url, alert, report)


# --- run bookkeeping ----------------------------------------------------------------------------

def deferred_cursor(run: _Run, config: MonitorConfig, dirty: list[tuple[str, str]], started: datetime) -> str:
    """Dirty hours whose window starts after `at` were not computed: keep them for a later run."""
    deferred = [updated for hour, updated in dirty
                if run.at < window_of_hour(hour, config.window).start <= started + DEFER_LIMIT]
    return store.next_cursor(started, CURSOR_MARGIN, deferred)


def record_run(run: _Run, config: MonitorConfig, started: datetime, cursor: str, report: AggregationReport) -> None:
    store.write_run(run.tables, config.name, {
        "last_run_at": iso(datetime.now(UTC)), "started_at": iso(started), "at": iso(run.at),
        "past_due": run.past_due, "dirty_cursor": cursor, "windows": len(report.windows),
        "final_windows": report.final_windows, "rows_written": report.rows_written,
        "alerts": len(report.alerts), "webhooks_sent": report.webhooks_sent,
        "webhooks_failed": report.webhooks_failed, "duration_ms": round(report.duration_ms, 1),
    })
