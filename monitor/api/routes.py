"""The routes of CONTRACTS.md section 5. Each one is thin: parse parameters, call a service.

Config CRUD goes through :class:`monitor.monitors.MonitorStore`, results through
:mod:`monitor.results`, the HTML through :mod:`monitor.dashboard`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from monitor import results
from monitor.api.models import AggregationRun, Alerts, ErrorBody, Health, Metrics, Quarantine, Records, Status
from monitor.api.params import (
    At,
    Continuation,
    End,
    Failing,
    First,
    Limit,
    MaxScore,
    Metric,
    MonitorName,
    Reason,
    Segment,
    Start,
    Window,
)
from monitor.config import MonitorConfig
from monitor.errors import UserError
from monitor.monitors import MonitorStore, overlap_warnings
from monitor.results import RecordQuery, parse_time_parameter

MAX_BODY_BYTES = 1_000_000
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "MONITOR_API_KEY is set and the key is missing or wrong"},
    404: {"model": ErrorBody, "description": "no such monitor"},
    422: {"model": ErrorBody, "description": "a parameter or the body is invalid; details name it"},
}
_CONFIG_BODY = {
    "requestBody": {
        "required": True,
        "description": "a monitor configuration (CONTRACTS.md section 2); `name` may be omitted: "
                       "the name in the path is used, and a different one is rejected",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MonitorConfig"}}},
    },
}

router = APIRouter(prefix="/api")


class PayloadTooLargeError(UserError):
    code = "payload_too_large"
    status = 413


def _link_params(request: Request) -> dict[str, str]:
    """Query parameters every dashboard link must carry: the `code` key when one was given."""
    code = request.query_params.get("code")
    return {"code": code} if code else {}


@router.get("/health", response_model=Health, tags=["health"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/monitors", response_model=list[MonitorConfig], responses=_ERRORS, tags=["monitors"])
def list_monitors() -> list[MonitorConfig]:
    return MonitorStore().list()


@router.get("/monitors/{name}", response_model=MonitorConfig, responses=_ERRORS, tags=["monitors"])
def get_monitor(name: MonitorName) -> MonitorConfig:
    return MonitorStore().get(name)


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the body has {len(body)} bytes; a configuration has at most {MAX_BODY_BYTES}")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError("the body is not valid JSON: send a monitor configuration object",
                        details=[{"field": "(body)", "message": str(exc)}]) from None


@router.put("/monitors/{name}", response_model=MonitorConfig, openapi_extra=_CONFIG_BODY, tags=["monitors"],
            responses={**_ERRORS, 201: {"model": MonitorConfig, "description": "created"},
                       200: {"description": "replaced"}, 400: {"model": ErrorBody, "description": "not JSON"}})
async def put_monitor(name: MonitorName, request: Request) -> JSONResponse:
    data = await _json_body(request)
    config, created, warnings = await run_in_threadpool(_put_config, data, name)
    response = JSONResponse(config.model_dump(mode="json"), status_code=201 if created else 200)
    if warnings:
        # Accepted, with a warning the caller can read (docs/api.md): header values are ASCII.
        text = " | ".join(warnings).encode("ascii", "backslashreplace").decode("ascii")
        response.headers[WARNING_HEADER] = text
    return response


WARNING_HEADER = "X-Monitor-Warning"


def _put_config(data: Any, name: str) -> tuple[MonitorConfig, bool, list[str]]:
    store = MonitorStore()
    config, created = store.put(data, name=name)
    return config, created, overlap_warnings(config, store.list())


@router.delete("/monitors/{name}", status_code=204, responses=_ERRORS, tags=["monitors"])
def delete_monitor(name: MonitorName) -> Response:
    MonitorStore().delete(name)
    return Response(status_code=204)


@router.get("/monitors/{name}/metrics", response_model=Metrics, responses=_ERRORS, tags=["results"])
def get_metrics(name: MonitorName, start: Start = None, end: End = None, metric: Metric = None,
                segment: Segment = None) -> dict[str, Any]:
    return results.metrics(name, metric=metric, segment=segment,
                           start=parse_time_parameter("start", start), end=parse_time_parameter("end", end))


@router.get("/monitors/{name}/alerts", response_model=Alerts, responses=_ERRORS, tags=["results"])
def get_alerts(name: MonitorName, start: Start = None, end: End = None, metric: Metric = None,
               segment: Segment = None) -> dict[str, Any]:
    return results.alerts(name, start=parse_time_parameter("start", start), end=parse_time_parameter("end", end),
                          metric=metric, segment=segment)


@router.get("/monitors/{name}/records", response_model=Records, responses=_ERRORS, tags=["results"])
def get_records(name: MonitorName, metric: Metric = None, max_score: MaxScore = None, start: Start = None,
                end: End = None, segment: Segment = None, failing: Failing = False,
                limit: Limit = results.DEFAULT_LIMIT, continuation: Continuation = None) -> dict[str, Any]:
    query = RecordQuery(metric=metric, max_score=max_score, start=parse_time_parameter("start", start),
                        end=parse_time_parameter("end", end), segment=segment, failing=failing,
                        limit=limit, continuation=continuation)
    return results.records(name, query)


@router.get("/monitors/{name}/quarantine", response_model=Quarantine, responses=_ERRORS, tags=["results"])
def get_quarantine(name: MonitorName, reason: Reason = None, limit: Limit = results.DEFAULT_LIMIT) -> dict[str, Any]:
    return results.quarantine(name, reason=reason, limit=limit)


@router.get("/monitors/{name}/status", response_model=Status, responses=_ERRORS, tags=["results"])
def get_status(name: MonitorName) -> dict[str, Any]:
    return results.status(name)


@router.post("/monitors/{name}/aggregate", response_model=AggregationRun, responses=_ERRORS, tags=["results"],
             summary="Aggregate this monitor now",
             description="Runs exactly what the aggregation timer runs, for this monitor, as of `at` "
                         "(default now): windows, alerts, webhooks. Idempotent. Needs the function key in Azure.")
def post_aggregate(name: MonitorName, at: At = None) -> dict[str, Any]:
    from monitor.aggregate import aggregate_command

    return aggregate_command(name, parse_time_parameter("at", at)).to_dict()


@router.get("/monitors/{name}/dashboard", response_class=HTMLResponse, responses=_ERRORS, tags=["dashboard"])
def get_dashboard(request: Request, name: MonitorName, start: Start = None, end: End = None,
                  segment: Segment = None, window: Window = None, metric: Metric = None,
                  page: Continuation = None, first: First = None) -> HTMLResponse:
    """The page; a malformed parameter is reported on the page itself (status 422), never as JSON."""
    from monitor.dashboard import dashboard_page

    params = {"start": start, "end": end, "segment": segment, "window": window, "metric": metric, "page": page,
              "first": first}
    html, rejected = dashboard_page(name, params, link_params=_link_params(request))
    return HTMLResponse(html, status_code=422 if rejected else 200)


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def get_docs(request: Request) -> HTMLResponse:
    """The API reference, rendered on the server from the OpenAPI document (works offline)."""
    from monitor.api.reference import reference_html

    return HTMLResponse(reference_html(request.app.openapi(), link_params=_link_params(request)))


@router.get("/dashboard", response_class=HTMLResponse, responses=_ERRORS, tags=["dashboard"])
def get_index(request: Request) -> HTMLResponse:
    from monitor.dashboard import index_html

    return HTMLResponse(index_html(link_params=_link_params(request)))


root_router = APIRouter()


@root_router.get("/", include_in_schema=False)
def root(request: Request) -> RedirectResponse:
    query = urlencode(_link_params(request))
    return RedirectResponse("/api/dashboard" + (f"?{query}" if query else ""), status_code=307)
