"""Webhook delivery of alerts: one JSON POST, retried with exponential backoff.

A failure is returned, never raised: the caller records it on the alert and a later run retries.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from monitor.outbound import (
    OutboundError,
    OutboundPolicy,
    OutboundRefusedError,
    current_policy,
    guarded_connection,
)

USER_AGENT = "genai-quality-monitor/0.1 (alert webhook)"
RETRYABLE_STATUS = frozenset({408, 425, 429})
MAX_RESPONSE_BYTES = 64 * 1024  # a receiver's reply is drained up to this, never buffered whole
PAYLOAD_FIELDS = (
    "monitor", "kind", "metric", "segment", "window", "window_start", "window_end", "value", "threshold",
    "message", "created_at", "row_count", "scored", "passed", "errors", "judge", "approximate",
    # drift and judge_drift alerts (docs/alerts.md)
    "recovered_from", "baseline_n", "psi", "mean_shift", "mean_shift_stderr", "run_id", "spearman", "mean_bias",
    "previous_mean_bias",
)


@dataclass(frozen=True)
class Delivery:
    status: Literal["sent", "failed"]
    attempts: int
    error: str = ""


class _DeliveryError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def alert_payload(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON body a webhook receives; `id` is stable, so receivers can drop duplicates."""
    body = {k: alert[k] for k in PAYLOAD_FIELDS if k in alert}
    return {"id": f"{alert['PartitionKey']}|{alert['RowKey']}", **body}


def post_json(url: str, body: Mapping[str, Any], timeout: float, policy: OutboundPolicy | None = None) -> None:
    """POST `body`; raise _DeliveryError on a transport error, a non-2xx status or a URL the outbound
    policy refuses (checked now, and every resolved address checked when connecting; redirects are
    not followed)."""
    policy = policy or current_policy()
    try:
        policy.check_url(url, "alerts.webhook_url")
    except OutboundError as exc:
        raise _DeliveryError(f"refused: {exc.message}", retryable=False) from None
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT})
    try:
        with _opener(policy).open(request, timeout=timeout) as response:
            response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        retryable = exc.code >= 500 or exc.code in RETRYABLE_STATUS
        raise _DeliveryError(f"HTTP {exc.code} {exc.reason}", retryable=retryable) from exc
    except OutboundRefusedError as exc:
        raise _DeliveryError(f"refused: {exc}", retryable=False) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, OutboundRefusedError):
            raise _DeliveryError(f"refused: {exc.reason}", retryable=False) from exc
        raise _DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
    except (TimeoutError, OSError) as exc:
        raise _DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure (4xx-like): the app posts only to the URL the config names."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to another URL refused ({msg})", headers, fp)


def _opener(policy: OutboundPolicy) -> urllib.request.OpenerDirector:
    """urllib with connections that resolve and check every address before connecting."""
    connect = guarded_connection(policy)

    class _HTTP(http.client.HTTPConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = connect

    class _HTTPS(http.client.HTTPSConnection):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._create_connection = connect

    class _HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(_HTTP, req)

    class _HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(_HTTPS, req, context=ssl.create_default_context())

    return urllib.request.build_opener(_HTTPHandler, _HTTPSHandler, _NoRedirect,
                                       urllib.request.ProxyHandler({}))


def deliver(url: str, body: Mapping[str, Any], *, attempts: int, timeout: float, backoff: float,
            sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """Up to `attempts` POSTs, waiting backoff, 2*backoff, ... between them; stops on a 4xx."""
    error = ""
    for attempt in range(1, attempts + 1):
        try:
            post_json(url, body, timeout)
            return Delivery("sent", attempt)
        except _DeliveryError as exc:
            error = str(exc)
            if not exc.retryable or attempt == attempts:
                return Delivery("failed", attempt, error)
            sleep(backoff * 2 ** (attempt - 1))
    return Delivery("failed", 0, error or "no attempt made")
