"""Webhook delivery of alerts: one JSON POST, retried with exponential backoff.

A failure is returned, never raised: the caller records it on the alert and a later run retries.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

USER_AGENT = "genai-quality-monitor/0.1 (alert webhook)"
RETRYABLE_STATUS = frozenset({408, 425, 429})
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


def post_json(url: str, body: Mapping[str, Any], timeout: float) -> None:
    """POST `body`; raise _DeliveryError on a transport error or a non-2xx status."""
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        retryable = exc.code >= 500 or exc.code in RETRYABLE_STATUS
        raise _DeliveryError(f"HTTP {exc.code} {exc.reason}", retryable=retryable) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise _DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc


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
