"""Every error the API returns has the contract's shape: ``{"error": {"code", "message", "details"}}``.

Exception handlers for the package's own errors, FastAPI's request validation, Starlette's HTTP
errors (404 unknown route, 405) and storage failures; unexpected exceptions are caught by
:class:`monitor.api.middleware.CatchAllMiddleware` (500, generic message, no stack trace).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from azure.core.exceptions import AzureError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.errors import MonitorError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
# Where FastAPI reports a request parameter: the first element of an error's `loc`.
_PARAMETER_LOCATIONS = ("query", "path", "header", "cookie")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(status: int, code: str, message: str, details: Any = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=dict(headers or {}))


def validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's errors as `[{"field", "location", "message"}]`: `limit` in `query`, `judge.x` in `body`."""
    out = []
    for item in exc.errors():
        loc = [str(part) for part in item.get("loc", ())]
        location = loc[0] if loc else "request"
        field = ".".join(loc[1:]) or location
        out.append({"field": field, "location": location, "message": str(item.get("msg", "invalid"))})
    return out


async def _monitor_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MonitorError)
    if exc.status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    return JSONResponse(exc.to_dict(), status_code=exc.status)


async def _request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = validation_details(exc)
    if all(d["location"] in _PARAMETER_LOCATIONS for d in details):
        names = ", ".join(sorted({d["field"] for d in details}))
        return error_response(422, "invalid_parameter", f"invalid request parameter(s): {names}", details)
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return error_response(422, "validation_error", f"invalid request: {summary}", details)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "http_error" if status < 500 else "internal_error")
    message = str(exc.detail)
    if status == 404 and message == "Not Found":
        message = f"no route {request.url.path}; GET /api/openapi.json lists the routes"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    return error_response(status, code, message, None, exc.headers)


async def _storage_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s: storage failed: %s", request.method, request.url.path, type(exc).__name__)
    return error_response(503, "storage_unavailable",
                          "the monitor's storage did not answer as expected; retry later")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MonitorError, _monitor_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(AzureError, _storage_error)
