"""Query and path parameters shared by the routes, declared once for validation and OpenAPI."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from monitor.config import NAME_PATTERN
from monitor.results import MAX_LIMIT

MonitorName = Annotated[str, Path(
    pattern=NAME_PATTERN.pattern, min_length=3, max_length=63,
    description="monitor name: 3-63 lowercase letters, digits and '-'",
)]
Start = Annotated[str | None, Query(
    description="ISO 8601 UTC time, inclusive (e.g. 2026-01-31T09:00:00Z); a time without offset is UTC",
    max_length=64, json_schema_extra={"format": "date-time"},
)]
End = Annotated[str | None, Query(
    description="ISO 8601 UTC time, exclusive", max_length=64, json_schema_extra={"format": "date-time"},
)]
Metric = Annotated[str | None, Query(description="one metric of the monitor, e.g. groundedness", max_length=64)]
Segment = Annotated[str | None, Query(
    description="`all`, `deployment=NAME` or `model_version=VERSION`", max_length=300,
)]
MaxScore = Annotated[float | None, Query(
    description="only records with a score at or below this (of `metric`, or of any metric)",
    allow_inf_nan=False,
)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"records per page, 1-{MAX_LIMIT}")]
Failing = Annotated[bool, Query(description="only scores that did not pass their metric's acceptable score")]
Continuation = Annotated[str | None, Query(
    max_length=2048, description="the `next` token of the previous page",
)]
At = Annotated[str | None, Query(
    description="ISO 8601 UTC time the run acts as of (default now), as `python -m monitor aggregate --at`",
    max_length=64, json_schema_extra={"format": "date-time"},
)]
Reason = Annotated[str | None, Query(description="only quarantined lines of this reason, e.g. invalid_json",
                                     max_length=64)]
Window = Annotated[str | None, Query(
    description="dashboard only: show the failing examples of the window starting at this ISO 8601 time",
    max_length=64, json_schema_extra={"format": "date-time"},
)]
First = Annotated[str | None, Query(
    description="dashboard only: the position of the first failing example on this page (display)", max_length=12,
)]
