"""Pure ASGI middleware: the local API-key check and the last-resort error handler.

Both are plain ASGI (no BaseHTTPMiddleware) so that they behave the same under uvicorn, the test
client and the Functions host's ``AsgiMiddleware``, which does not survive an exception escaping
the application: every unexpected error becomes a JSON 500 here instead of a crashed invocation.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.api.errors import error_body
from monitor.jsondepth import too_deep
from monitor.settings import get_settings

log = logging.getLogger(__name__)

KEY_HEADER = "x-functions-key"
KEY_PARAMETER = "code"
OPEN_PATHS = frozenset({"/api/health"})
# A key is 1-256 printable ASCII characters, no spaces (function keys are base64url-like).
WELL_FORMED_KEY = re.compile(r"[\x21-\x7e]{1,256}")
# Configurations nest four levels; anything far deeper is refused before a parser recurses into it.
MAX_JSON_DEPTH = 64


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


class _HttpMiddleware:
    """Pure ASGI middleware that acts on HTTP requests only (lifespan and others pass through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class CatchAllMiddleware(_HttpMiddleware):
    """Turns an exception no handler took into a generic JSON 500 (logged, never shown)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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


def presented_keys(scope: Scope) -> list[str]:
    """Every key a request carries: each `x-functions-key` header and each `code` query parameter."""
    keys = [value.decode("latin-1") for name, value in scope.get("headers", [])
            if name.decode("latin-1").lower() == KEY_HEADER]
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return keys + query.get(KEY_PARAMETER, [])


def presented_key(scope: Scope) -> str | None:
    """The one well-formed key a request carries, else None: two keys (two headers, a header and a
    parameter, two parameters), an empty key, surrounding spaces or non-printable characters are
    refused rather than guessed at."""
    keys = presented_keys(scope)
    if len(keys) != 1 or not WELL_FORMED_KEY.fullmatch(keys[0]):
        return None
    return keys[0]


def key_matches(presented: str | None, expected: str) -> bool:
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


class ApiKeyMiddleware(_HttpMiddleware):
    """When `MONITOR_API_KEY` is set (read per request), every route but health needs it.

    In Azure the Functions host enforces function keys itself (authLevel FUNCTION); this is the
    same check for the locally served app.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        expected = get_settings().MONITOR_API_KEY
        if expected and not key_matches(presented_key(scope), expected):
            await send_json(send, 401, error_body(
                "unauthorized",
                f"this API needs exactly one key: send the `{KEY_HEADER}` header or the `{KEY_PARAMETER}` "
                "query parameter, once, without surrounding spaces",
            ), headers=[(b"www-authenticate", b'ApiKey header="x-functions-key"')])
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware(_HttpMiddleware):
    """Reads a request body only up to MAX_REQUEST_BYTES, then hands it to the app.

    A declared `content-length` over the limit is answered 413 before a byte is read; a body that
    turns out longer is answered 413 as soon as the limit is crossed (the server discards the rest),
    so memory stays bounded by the limit whatever the client sends. A JSON body nested deeper than
    MAX_JSON_DEPTH is answered 400 before any parser sees it. The app receives the body as one
    message, so every route (and FastAPI's own body parsing) sees the same bytes.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = body_limit(scope)
        refusal = _declared_length_refusal(scope, limit)
        body = None if refusal else await _read_bounded(receive, limit)
        if refusal is None and body is None:
            refusal = (413, "payload_too_large", f"the body is longer than {limit} bytes (MAX_REQUEST_BYTES)")
        if refusal is None and body is not None and json_depth_exceeds(body, MAX_JSON_DEPTH):
            refusal = (400, "bad_request", f"the body is JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if refusal is not None:
            status, code, message = refusal
            await send_json(send, status, error_body(code, message), headers=[(b"connection", b"close")])
            return
        await self.app(scope, _replay(body or b"", receive), send)


def body_limit(scope: Scope) -> int:
    """MAX_REQUEST_BYTES; a golden set (PUT .../golden, docs/calibration.md) may be up to GOLDEN_MAX_BYTES."""
    settings = get_settings()
    if scope.get("method") == "PUT" and str(scope.get("path", "")).endswith("/golden"):
        return max(settings.MAX_REQUEST_BYTES, settings.GOLDEN_MAX_BYTES)
    return settings.MAX_REQUEST_BYTES


def _declared_length_refusal(scope: Scope, limit: int) -> tuple[int, str, str] | None:
    lengths = [v for n, v in scope.get("headers", []) if n.decode("latin-1").lower() == "content-length"]
    if not lengths:
        return None
    if len(lengths) > 1 or not lengths[0].isdigit():
        return 400, "bad_request", "one content-length header with a number is expected"
    if int(lengths[0]) > limit:
        return 413, "payload_too_large", (f"the body has {int(lengths[0])} bytes; at most {limit} "
                                          "(MAX_REQUEST_BYTES)")
    return None


async def _read_bounded(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it exceeds `limit` (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server would send

    return replay


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays/objects deeper than `limit` (strings ignored), in linear time
    (monitor.jsondepth, shared with ingestion)."""
    return too_deep(body.decode("utf-8", errors="replace"), limit)
