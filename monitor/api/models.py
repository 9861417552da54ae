"""Response models: they document the API in /api/openapi.json and check what routes return.

Models of result rows allow extra fields: the aggregation and status services may add fields
(the contract says extend freely) and the API passes them through.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable: validation_error, invalid_parameter, not_found, ...")
    message: str = Field(description="what is wrong and what to do about it")
    details: Any = Field(default=None, description="e.g. [{\"field\": \"judge.max_concurrency\", \"message\": ...}]")


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str = "ok"


class Window(_Open):
    window_start: str
    window_end: str | None = None
    metric: str
    segment: str
    row_count: int = 0
    scored: int = 0
    passed: int = 0
    pass_rate: float | None = None
    average_score: float | None = None
    histogram: dict[str, int] = Field(description='counts of buckets "1".."5"')
    errors: int = 0
    not_applicable: int = 0
    threshold: float | None = None
    breached: bool = False


class Metrics(BaseModel):
    monitor: str
    windows: list[Window]


class Alert(_Open):
    kind: str = Field(description="pass_rate, no_scores, error_rate or recovered")
    metric: str | None = None
    segment: str | None = None
    window_start: str | None = None
    window_end: str | None = None
    value: float | None = None
    threshold: float | None = None
    created_at: str | None = None
    message: str | None = None


class Alerts(BaseModel):
    monitor: str
    alerts: list[Alert]


class MetricScore(BaseModel):
    score: float | None = None
    status: str | None = Field(default=None, description="ok, error, not_applicable or skipped")
    passed: bool | None = None
    reason: str | None = Field(default=None, description="the judge's reason, or why the score failed")
    approximate: bool = False


class RecordItem(BaseModel):
    key: str = Field(description="the join key (correlation id, or correlation id _ row index)")
    time: str | None = None
    prompt: str | None = None
    completion: str | None = None
    context: str | None = None
    deployment: str | None = None
    model_version: str | None = None
    lowest_score: float | None = Field(default=None, description="the sort key: lowest selected score")
    scores: dict[str, MetricScore]


class Records(BaseModel):
    monitor: str
    records: list[RecordItem]
    next: str | None = Field(default=None, description="pass as `continuation` for the next page; null at the end")


class QuarantinedLine(BaseModel):
    blob: str | None = None
    line: int | None = Field(default=None, description="1-based line number; 0 for the whole blob")
    reason: str | None = None
    detail: str | None = None
    excerpt: str | None = None
    at: str | None = None


class Quarantine(BaseModel):
    monitor: str
    entries: list[QuarantinedLine]


class Status(_Open):
    """The object `python -m monitor status --monitor NAME --json` prints (CONTRACTS.md section 4)."""

    quota: dict[str, Any] | None = Field(
        default=None, description="the judge's fleet budget (docs/quotas.md): pool, limits_per_minute, instances, "
                                  "leased_per_minute, used_per_minute, slowdown and leases (instance, "
                                  "share_per_minute, used_per_minute, expires_in_s); null without a budget")


class AggregationRun(_Open):
    """What one aggregation run did for one monitor (the report the timer logs)."""

    monitor: str
    at: str = Field(description="the time the run acted as of (ISO 8601 UTC)")
    past_due: bool = False
    windows: list[str] = Field(description="window starts computed in this run")
    final_windows: int = 0
    dirty_hours: int = 0
    rows_written: int = 0
    rows_unchanged: int = 0
    alerts: list[str] = Field(description="new alerts, `kind:metric:segment:window_start`")
    webhooks_sent: int = 0
    webhooks_failed: int = 0
    duration_ms: float = 0.0
    error: str | None = None
