"""Seed a monitor with results, written with the documented table layout (docs/architecture.md).

:func:`seed_monitor` writes a config (through the config service), hourly windows for every
enabled metric and segment (one metric breached in one hour, recovered the hour after), the
matching alerts, and records with their scores (failing ones with the judge's reason). It needs
only `MONITOR_STORAGE` (Azurite in tests) and is usable from a script or the demo, e.g.

    from tests.support.seed import seed_monitor
    seed_monitor("contoso-chat")
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.config import MonitorConfig
from monitor.keys import iso, safe_key
from monitor.monitors import MonitorStore
from monitor.records import Record
from monitor.scores import Score
from monitor.storage.tables import Tables, write_entities

BREACHED_METRIC = "groundedness"
DEPLOYMENTS = ("blue", "green")
SEED_START = datetime(2026, 11, 20, 8, tzinfo=UTC)
FAILING_REASON = "The answer claims a 30-day refund window; the context says 14 days."


@dataclass
class Seeded:
    """What :func:`seed_monitor` wrote."""

    name: str
    config: MonitorConfig
    start: datetime
    hours: int
    breached_hour: int
    windows: int = 0
    alerts: int = 0
    records: list[Record] = field(default_factory=list)
    scores: list[Score] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)


def seed_config(name: str, *, judge: str = "heuristic") -> dict[str, Any]:
    """A monitor configuration; `judge` heuristic, or azure_openai with a made-up endpoint."""
    judge_cfg: dict[str, Any] = {"provider": "heuristic"}
    if judge == "azure_openai":
        judge_cfg = {"provider": "azure_openai", "endpoint": "https://example.openai.azure.com",
                     "deployment": "gpt-4o"}
    return {
        "name": name,
        "source": {"format": "mdc", "container": "azureml", "prefix": f"modelDataCollector/{name}/"},
        "judge": judge_cfg,
        "metrics": {"similarity": {"enabled": False}},
        "alerts": {"min_samples": 10},
    }


def seed_monitor(name: str, *, hours: int = 6, breached_hour: int = 3, start: datetime = SEED_START,
                 judge: str = "heuristic", tables: Tables | None = None) -> Seeded:
    """Write a config, windows, alerts, records and scores for monitor `name`; returns a summary."""
    tables = tables or Tables.default()
    config, _ = MonitorStore(tables).put(seed_config(name, judge=judge))
    seeded = Seeded(name, config, start, hours, breached_hour)
    windows = _windows(seeded)
    seeded.windows = write_entities(tables["windows"], windows)
    seeded.alerts = write_entities(tables["alerts"], _alerts(seeded, windows))
    seeded.records, seeded.scores = _records_and_scores(seeded)
    write_entities(tables["records"], [r.to_entity() for r in seeded.records])
    by_key = {r.key: r for r in seeded.records}
    write_entities(tables["scores"], [_score_entity(s, by_key[s.record_key]) for s in seeded.scores])
    return seeded


# --------------------------------------------------------------------------------------------
# windows and alerts


def _pass_rate(metric: str, hour: int, segment: str, breached_hour: int) -> float:
    if metric == BREACHED_METRIC and hour == breached_hour:
        return 0.45 if segment != "deployment=green" else 0.6
    base = {"coherence": 0.92, "fluency": 0.95, "groundedness": 0.82, "relevance": 0.86}.get(metric, 0.9)
    return round(base - 0.02 * (hour % 3), 2)


def _histogram(scored: int, passed: int) -> dict[str, int]:
    failed = scored - passed
    low = failed // 3
    high = passed // 2
    return {"1": low, "2": failed - low, "3": passed - high - passed // 4, "4": high, "5": passed // 4}


def _window(seeded: Seeded, metric: str, hour: int, segment: str) -> dict[str, Any]:
    config = seeded.config
    settings = config.metric_settings()[metric]
    begin = seeded.start + timedelta(hours=hour)
    scored = 40 if segment == "all" else 20
    rate = _pass_rate(metric, hour, segment, seeded.breached_hour)
    passed = round(scored * rate)
    histogram = _histogram(scored, passed)
    average = sum(int(b) * n for b, n in histogram.items()) / scored
    errors = 1 if metric == "relevance" else 0
    return {
        "PartitionKey": f"{seeded.name}|{metric}", "RowKey": f"{iso(begin)}|{safe_key(segment)}",
        "monitor": seeded.name, "metric": metric, "segment": segment, "window": "hour",
        "window_start": iso(begin), "window_end": iso(begin + timedelta(hours=1)),
        "row_count": scored + errors + 2, "scored": scored, "passed": passed,
        "pass_rate": passed / scored, "average_score": round(average, 6),
        "error_rate": round(errors / (scored + errors), 6),
        "histogram": json.dumps(histogram), "errors": errors, "not_applicable": 2, "skipped": 0,
        "unmatched": 0, "unmatched_pending": 0, "unmatched_expired": 0,
        "threshold": settings.pass_rate_threshold, "acceptable_score": settings.acceptable_score,
        "min_samples": config.alerts.min_samples,
        "breached": scored >= config.alerts.min_samples and passed / scored < settings.pass_rate_threshold,
        "final": True, "batches": 2, "computed_at": iso(begin + timedelta(hours=1, minutes=15)),
        "judge": "heuristic" if config.judge.provider == "heuristic" else
        f"{config.judge.provider}:{config.judge.model_name}",
        "approximate": config.judge.provider == "heuristic",
    }


def _windows(seeded: Seeded) -> list[dict[str, Any]]:
    segments = ["all", *(f"deployment={d}" for d in DEPLOYMENTS)]
    return [_window(seeded, metric, hour, segment)
            for metric in seeded.config.enabled_metrics()
            for hour in range(seeded.hours)
            for segment in segments]


def _alert(row: dict[str, Any], kind: str) -> dict[str, Any]:
    verb = "is below" if kind == "pass_rate" else "is back at or above"
    return {
        "PartitionKey": row["monitor"],
        "RowKey": f"{row['window_start']}|{row['metric']}|{safe_key(row['segment'])}|{kind}",
        "monitor": row["monitor"], "kind": kind, "metric": row["metric"], "segment": row["segment"],
        "window": "hour", "window_start": row["window_start"], "window_end": row["window_end"],
        "value": row["pass_rate"], "threshold": row["threshold"], "created_at": row["computed_at"],
        "message": f"Pass rate {row['pass_rate']:.3f} {verb} the threshold {row['threshold']:.3f}: "
                   f"metric {row['metric']}, segment {row['segment']}.",
        "row_count": row["row_count"], "scored": row["scored"], "passed": row["passed"], "errors": row["errors"],
        "judge": row["judge"], "approximate": row["approximate"],
        "webhook_status": "none", "webhook_attempts": 0, "webhook_error": "",
    }


def _alerts(seeded: Seeded, windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    recovered_start = iso(seeded.start + timedelta(hours=seeded.breached_hour + 1))
    breached = {(w["metric"], w["segment"]) for w in windows if w["breached"]}
    for row in windows:
        if row["breached"]:
            out.append(_alert(row, "pass_rate"))
        elif row["window_start"] == recovered_start and (row["metric"], row["segment"]) in breached:
            out.append(_alert(row, "recovered"))
    return out


# --------------------------------------------------------------------------------------------
# records and scores


def _records_and_scores(seeded: Seeded, per_hour: int = 4) -> tuple[list[Record], list[Score]]:
    records: list[Record] = []
    scores: list[Score] = []
    for hour in range(seeded.hours):
        for index in range(per_hour):
            record = _record(seeded, hour, index)
            records.append(record)
            scores += [_score(seeded, record, metric, hour, index) for metric in seeded.config.enabled_metrics()]
    return records, scores


def _record(seeded: Seeded, hour: int, index: int) -> Record:
    moment = seeded.start + timedelta(hours=hour, minutes=7 * index + 3)
    return Record(
        monitor=seeded.name, key=f"corr-{hour:02d}{index:02d}-0000_0", time=moment,
        prompt=f"How long do I have to return an item bought in store #{hour}{index}?",
        completion="You can return it within 30 days with the receipt." if index == 0 else
        "Returns are accepted within 14 days with the receipt.",
        context="Store policy: items can be returned within 14 days of purchase with a receipt.",
        endpoint="contoso-chat", deployment=DEPLOYMENTS[index % 2], model_version="3",
        origin_blob=f"modelDataCollector/{seeded.name}/seed.jsonl", batch_id=f"seed-{hour}",
    )


def _score(seeded: Seeded, record: Record, metric: str, hour: int, index: int) -> Score:
    acceptable = seeded.config.metric_settings()[metric].acceptable_score
    if metric == "relevance" and index == 3:
        return Score(record.key, metric, "error", reason=None, detail="parse", raw="I think it is fine",
                     approximate=True, provider="heuristic", model="heuristic")
    failing = index == 0 and metric in (BREACHED_METRIC, "relevance")
    value = (1.0 if hour == seeded.breached_hour else 2.0) if failing else 4.0 + (index % 2)
    reason = FAILING_REASON if failing and metric == BREACHED_METRIC else \
        "The answer addresses the question only partly." if failing else None
    return Score(record.key, metric, "ok", score=value, passed=value >= acceptable, reason=reason,
                 provider="heuristic", model="heuristic", approximate=True)


def _score_entity(score: Score, record: Record) -> dict[str, Any]:
    return score.to_entity(record.partition, extra={
        "time": iso(record.time), "deployment": record.deployment, "model_version": record.model_version,
        "batch_id": record.batch_id,
    })
