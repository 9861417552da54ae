"""Pure ASGI middleware: the local API-key check and the last-resort error handler.

Both are plain ASGI (no BaseHTTPMiddleware) so that they behave the same under uvicorn, the test
client and the Functions host's ``AsgiMiddleware``, which does not survive an exception escaping
the application: every unexpected error becomes a JSON 500 here instead of a crashed invocation.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.api.errors import error_body
from monitor.settings import get_settings

log = logging.getLogger(__name__)

KEY_HEADER = "x-functions-key"
KEY_PARAMETER = "code"
OPEN_PATHS = frozenset({"/api/health"})


async def send_json(send: Send, status: int, body: dict[str, Any],
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()), *(headers or [])],
    })
    await send({"type": "http.response.body", "body": payload})


class CatchAllMiddleware:
    """Turns an exception no handler took into a generic JSON 500 (logged, never shown)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await send_json(send, 500, error_body(
                    "internal_error", "the server failed to answer this request; it has been logged"))


def presented_key(scope: Scope) -> str | None:
    """The key a request carries: the `x-functions-key` header, else the `code` query parameter."""
    for name, value in scope.get("headers", []):
        if name.decode("latin-1").lower() == KEY_HEADER:
            return str(value.decode("latin-1"))
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values = query.get(KEY_PARAMETER)
    return values[0] if values else None


def key_matches(presented: str | None, expected: str) -> bool:
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


class ApiKeyMiddleware:
    """When `MONITOR_API_KEY` is set (read per request), every route but health needs it.

    In Azure the Functions host enforces function keys itself (authLevel FUNCTION); this is the
    same check for the locally served app.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        expected = get_settings().MONITOR_API_KEY
        if expected and not key_matches(presented_key(scope), expected):
            await send_json(send, 401, error_body(
                "unauthorized",
                f"this API needs a key: send the `{KEY_HEADER}` header or the `{KEY_PARAMETER}` query parameter",
            ), headers=[(b"www-authenticate", b'ApiKey header="x-functions-key"')])
            return
        await self.app(scope, receive, send)
