"""Window numbers (CONTRACTS.md section 3) from merged partial counters: pure functions.

A window row is the `windows` table entity of one monitor x metric x segment x window:
PartitionKey `{monitor}|{metric}`, RowKey `{window_start}|{segment}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.aggregate.windows import Window
from monitor.config import AlertsConfig, JudgeConfig, MetricConfig, MonitorConfig
from monitor.keys import safe_key
from monitor.partials import Counter, Counts
from monitor.shape import Shapes

BUCKETS = ("1", "2", "3", "4", "5")
# Properties that change on every computation without the numbers changing.
VOLATILE = frozenset({"computed_at", "PartitionKey", "RowKey"})


@dataclass
class Unmatched:
    """Join halves of a window still alone: waiting for their partner, or past the join TTL."""

    pending: int = 0
    expired: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.expired


@dataclass
class WindowInput:
    """Everything read from storage for one window."""

    window: Window
    counts: Counts = field(default_factory=dict)
    batches: int = 0
    unmatched: dict[str, Unmatched] = field(default_factory=dict)
    shapes: Shapes = field(default_factory=dict)

    def segments(self) -> list[str]:
        names = set(self.counts) | set(self.unmatched)
        return sorted(names, key=lambda s: (s != "all", s))


@dataclass(frozen=True)
class RowContext:
    """Per-run facts every row of a monitor shares."""

    monitor: str
    judge: str
    approximate: bool
    alerts: AlertsConfig
    computed_at: str


def judge_label(judge: JudgeConfig) -> tuple[str, bool]:
    """`heuristic`, `azure_openai:{deployment}` or `openai:{model}`, and whether it is approximate."""
    if judge.provider == "heuristic":
        return "heuristic", True
    return f"{judge.provider}:{judge.model_name}", False


def row_context(config: MonitorConfig, computed_at: str) -> RowContext:
    label, approximate = judge_label(config.judge)
    return RowContext(config.name, label, approximate, config.alerts, computed_at)


def window_partition(monitor: str, metric: str) -> str:
    return f"{monitor}|{metric}"


def window_row_key(window_start: str, segment: str) -> str:
    return f"{window_start}|{safe_key(segment)}"


def histogram_json(histogram: Iterable[int]) -> str:
    return json.dumps(dict(zip(BUCKETS, histogram, strict=True)), separators=(",", ":"))


def rates(counter: Counter) -> dict[str, float]:
    """pass_rate and average_score (only when something was scored) and error_rate."""
    out: dict[str, float] = {}
    if counter.scored:
        out["pass_rate"] = counter.passed / counter.scored
        out["average_score"] = round(counter.score_sum / counter.scored, 6)
    judged = counter.scored + counter.errors
    out["error_rate"] = round(counter.errors / judged, 6) if judged else 0.0
    return out


def is_breached(counter: Counter, metric: MetricConfig, alerts: AlertsConfig) -> bool:
    return counter.scored >= alerts.min_samples and counter.passed / counter.scored < metric.pass_rate_threshold


def window_entity(ctx: RowContext, window: Window, final: bool, metric: str, metric_cfg: MetricConfig,
                  segment: str, counter: Counter, unmatched: Unmatched, batches: int) -> dict[str, Any]:
    return {
        "PartitionKey": window_partition(ctx.monitor, metric),
        "RowKey": window_row_key(window.start_iso, segment),
        "monitor": ctx.monitor, "metric": metric, "segment": segment, "window": window.kind,
        "window_start": window.start_iso, "window_end": window.end_iso,
        "row_count": counter.row_count, "scored": counter.scored, "passed": counter.passed,
        **rates(counter),
        "histogram": histogram_json(counter.histogram),
        "errors": counter.errors, "not_applicable": counter.not_applicable, "skipped": counter.skipped,
        "unmatched": unmatched.total, "unmatched_pending": unmatched.pending,
        "unmatched_expired": unmatched.expired,
        "threshold": metric_cfg.pass_rate_threshold, "acceptable_score": metric_cfg.acceptable_score,
        "min_samples": ctx.alerts.min_samples,
        "breached": is_breached(counter, metric_cfg, ctx.alerts),
        "final": final, "batches": batches,
        "computed_at": ctx.computed_at, "judge": ctx.judge, "approximate": ctx.approximate,
    }


def window_rows(ctx: RowContext, data: WindowInput, metrics: Mapping[str, MetricConfig],
                final: bool) -> list[dict[str, Any]]:
    """One entity per enabled metric x segment seen in the window; none for an empty window."""
    rows = []
    for segment in data.segments():
        per_metric = data.counts.get(segment, {})
        unmatched = data.unmatched.get(segment, Unmatched())
        for metric, metric_cfg in metrics.items():
            counter = per_metric.get(metric, Counter())
            rows.append(window_entity(ctx, data.window, final, metric, metric_cfg, segment, counter,
                                      unmatched, data.batches))
    return rows


def same_numbers(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Whether a stored row already holds these numbers (ignoring when it was computed)."""
    if old is None:
        return False
    keys = (set(new) | set(old)) - VOLATILE
    return all(new.get(k) == old.get(k) for k in keys)
