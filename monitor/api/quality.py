"""Routes of drift and judge calibration (docs/drift.md, docs/calibration.md): thin, as routes.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from monitor.api.models import ErrorBody
from monitor.api.params import End, Metric, MonitorName, Segment, Start
from monitor.api.routes import _ERRORS, PayloadTooLargeError
from monitor.results import parse_time_parameter
from monitor.settings import get_settings

_GOLDEN_BODY = {
    "requestBody": {
        "required": True,
        "description": "JSONL: one record per line with the monitor's columns plus `human: {metric: score}`",
        "content": {"application/x-ndjson": {"schema": {"type": "string"}},
                    "text/plain": {"schema": {"type": "string"}}},
    },
}

quality_router = APIRouter(prefix="/api")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class DriftPoint(_Open):
    series: str = Field(description="a metric, or traffic.prompt_tokens / traffic.completion_tokens / traffic.answers")
    segment: str
    window_start: str
    window_end: str
    n: int
    baseline_n: int
    js_distance: float | None = Field(description="Jensen-Shannon distance to the baseline, 0-1")
    psi: float | None
    mean_shift: float | None
    mean_shift_stderr: float | None
    threshold: float
    evaluated: bool
    drifted: bool


class Drift(_Open):
    monitor: str
    threshold: float
    min_samples: int
    baseline: dict[str, Any]
    points: list[DriftPoint]
    traffic: list[dict[str, Any]]


class GoldenSummary(_Open):
    monitor: str
    digest: str
    records: int
    human_scores: dict[str, int]
    uploaded_at: str


class Calibration(_Open):
    monitor: str
    golden: GoldenSummary | None
    settings: dict[str, Any]
    latest: dict[str, Any] | None
    runs: list[dict[str, Any]]
    spend: dict[str, Any]


class CalibrationRun(_Open):
    monitor: str
    ran: bool
    reason: str
    run: dict[str, Any] | None
    alerts: list[str]


@quality_router.get("/monitors/{name}/drift", response_model=Drift, responses=_ERRORS, tags=["results"])
def get_drift(name: MonitorName, start: Start = None, end: End = None, metric: Metric = None,
              segment: Segment = None) -> dict[str, Any]:
    from monitor.drift.query import drift_report

    return drift_report(name, series=metric, segment=segment, start=parse_time_parameter("start", start),
                        end=parse_time_parameter("end", end))


@quality_router.get("/monitors/{name}/calibration", response_model=Calibration, responses=_ERRORS,
                    tags=["results"])
def get_calibration(name: MonitorName, start: Start = None, end: End = None) -> dict[str, Any]:
    from monitor.calibration.query import calibration_report

    return calibration_report(name, start=parse_time_parameter("start", start), end=parse_time_parameter("end", end))


@quality_router.put("/monitors/{name}/golden", response_model=GoldenSummary, openapi_extra=_GOLDEN_BODY,
                    responses={**_ERRORS, 413: {"model": ErrorBody, "description": "over GOLDEN_MAX_BYTES"}},
                    tags=["calibration"])
async def put_golden(name: MonitorName, request: Request) -> dict[str, Any]:
    from monitor.calibration.query import upload_golden

    limit = get_settings().GOLDEN_MAX_BYTES
    body = await request.body()
    if len(body) > limit:
        raise PayloadTooLargeError(f"the golden set has {len(body)} bytes; at most {limit} (GOLDEN_MAX_BYTES)")
    return await run_in_threadpool(upload_golden, name, body)


@quality_router.get("/monitors/{name}/golden", response_model=GoldenSummary | None, responses=_ERRORS,
                    tags=["calibration"])
def get_golden(name: MonitorName) -> dict[str, Any] | None:
    """The stored golden set's summary (null when none was uploaded)."""
    from monitor.calibration.query import golden_summary

    return golden_summary(name)


@quality_router.post("/monitors/{name}/calibrate", response_model=CalibrationRun, responses=_ERRORS,
                     tags=["calibration"])
def post_calibrate(name: MonitorName,
                   force: Annotated[bool, Query(description="re-judge even when not due")] = False) -> dict[str, Any]:
    from monitor.calibration.runs import calibrate

    return calibrate(name, force=force).to_dict()
