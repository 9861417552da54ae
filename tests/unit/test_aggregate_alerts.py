"""Alert rules, webhook delivery (loopback receiver) and the Application Insights event."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from monitor.aggregate import telemetry
from monitor.aggregate.alerts import AlertCandidate, alert_entity, evaluate_row, previous_evaluated
from monitor.aggregate.webhook import alert_payload, deliver
from monitor.settings import reset_settings
from tests.support.webhook import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "monitor": "m-one", "metric": "coherence", "segment": "all", "window": "hour",
        "window_start": "2026-11-20T14:00:00Z", "window_end": "2026-11-20T15:00:00Z",
        "row_count": 10, "scored": 10, "passed": 8, "pass_rate": 0.8, "errors": 0, "error_rate": 0.0,
        "not_applicable": 0, "skipped": 0, "threshold": 0.7, "acceptable_score": 3.0, "min_samples": 5,
        "breached": False, "final": False, "judge": "heuristic", "approximate": True,
    }
    return {**base, **overrides}


def kinds(r: dict[str, Any], *, closed: bool = True, previous: dict[str, Any] | None = None) -> list[str]:
    return [c.kind for c in evaluate_row(r, closed=closed, previous=previous, error_rate_limit=0.2)]


def test_pass_rate_alert_on_breach_only() -> None:
    assert kinds(row(passed=5, pass_rate=0.5, breached=True)) == ["pass_rate"]
    assert kinds(row()) == []


def test_error_rate_needs_min_samples_judged() -> None:
    # 3 errors of 5 judged: above 0.2 and 5 >= min_samples.
    assert kinds(row(scored=2, passed=2, pass_rate=1.0, errors=3, error_rate=0.6)) == ["error_rate"]
    # 3 errors of 4 judged: too few to say.
    assert kinds(row(scored=1, passed=1, pass_rate=1.0, errors=3, error_rate=0.75)) == []
    # exactly at the limit does not fire
    assert kinds(row(scored=8, passed=8, pass_rate=1.0, errors=2, error_rate=0.2)) == []


@pytest.mark.parametrize(("fields", "closed", "fires"), [
    # an in-progress window with rows not judged yet: quiet
    ({"row_count": 4, "errors": 0}, False, False),
    # an in-progress window whose rows all failed, but fewer than min_samples: quiet until it ends
    ({"row_count": 4, "errors": 4}, False, False),
    ({"row_count": 4, "errors": 4}, True, True),
    # an in-progress window with min_samples rows, all judged, none scored: fires early
    ({"row_count": 6, "errors": 2, "skipped": 4}, False, True),
    # every row not applicable (no ground truth, say): never
    ({"row_count": 6, "not_applicable": 6, "final": True}, True, False),
    # a final window fires even if some rows never got an outcome
    ({"row_count": 6, "errors": 1, "final": True}, True, True),
    # no rows at all: nothing to say
    ({"row_count": 0, "final": True}, True, False),
])
def test_no_scores_rule(fields: dict[str, Any], closed: bool, fires: bool) -> None:
    r = row(scored=0, passed=0, pass_rate=None, **{"errors": 0, **fields})
    r["error_rate"] = 1.0 if r["errors"] else 0.0
    assert ("no_scores" in kinds(r, closed=closed)) is fires


def test_recovered_after_a_breach_in_an_ended_window() -> None:
    breached = row(window_start="2026-11-20T13:00:00Z", passed=2, pass_rate=0.2, breached=True)
    assert kinds(row(), previous=breached) == ["recovered"]
    assert kinds(row(), previous=breached, closed=False) == []
    assert kinds(row(scored=3, passed=3, pass_rate=1.0), previous=breached) == []  # too few samples
    assert kinds(row(), previous=row(window_start="2026-11-20T13:00:00Z")) == []


def test_previous_evaluated_skips_thin_windows() -> None:
    timeline = {
        "2026-11-20T11:00:00Z": row(window_start="2026-11-20T11:00:00Z", breached=True),
        "2026-11-20T12:00:00Z": row(window_start="2026-11-20T12:00:00Z", scored=2),
        "2026-11-20T13:00:00Z": row(window_start="2026-11-20T13:00:00Z", scored=1),
        "2026-11-20T14:00:00Z": row(),
    }
    found = previous_evaluated(timeline, "2026-11-20T14:00:00Z")
    assert found is not None and found["window_start"] == "2026-11-20T11:00:00Z"


def test_alert_entity_and_payload() -> None:
    candidate = AlertCandidate("pass_rate", row(segment="deployment=blue/x", passed=5, pass_rate=0.5), 0.5, 0.7)
    entity = alert_entity(candidate, created_at=datetime(2026, 11, 20, 16, 5, tzinfo=UTC), webhook=True)
    assert entity["RowKey"] == "2026-11-20T14:00:00Z|coherence|deployment=blue!2Fx|pass_rate"
    assert entity["webhook_status"] == "pending" and entity["webhook_attempts"] == 0
    for word in ("m-one", "coherence", "deployment=blue/x", "2026-11-20T14:00:00Z", "0.500", "0.700", "5/10"):
        assert word in entity["message"]
    payload = alert_payload(entity)
    assert payload["id"] == "m-one|2026-11-20T14:00:00Z|coherence|deployment=blue!2Fx|pass_rate"
    assert payload["kind"] == "pass_rate" and payload["value"] == 0.5 and "webhook_status" not in payload


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


def test_deliver_retries_5xx_with_backoff(receiver: WebhookReceiver) -> None:
    receiver.fail_next(2, 500)
    waits: list[float] = []
    result = deliver(receiver.url, {"a": 1}, attempts=3, timeout=5, backoff=0.5, sleep=waits.append)
    assert (result.status, result.attempts, waits) == ("sent", 3, [0.5, 1.0])
    assert receiver.bodies == [{"a": 1}]
    assert receiver.requests[0]["headers"]["Content-Type"] == "application/json"


def test_deliver_gives_up_and_reports(receiver: WebhookReceiver) -> None:
    receiver.fail_always(503)
    result = deliver(receiver.url, {"a": 1}, attempts=2, timeout=5, backoff=0, sleep=lambda _: None)
    assert (result.status, result.attempts) == ("failed", 2) and "503" in result.error


def test_deliver_stops_on_4xx(receiver: WebhookReceiver) -> None:
    receiver.fail_always(404)
    result = deliver(receiver.url, {"a": 1}, attempts=3, timeout=5, backoff=0, sleep=lambda _: None)
    assert (result.status, result.attempts) == ("failed", 1)


def test_deliver_unreachable_does_not_raise() -> None:
    result = deliver("http://127.0.0.1:9/hook", {"a": 1}, attempts=2, timeout=1, backoff=0, sleep=lambda _: None)
    assert result.status == "failed" and result.error


def test_alert_is_logged_without_application_insights(monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    reset_settings()
    telemetry.reset_telemetry()
    entity = alert_entity(AlertCandidate("pass_rate", row(passed=5, pass_rate=0.5), 0.5, 0.7),
                          created_at=datetime(2026, 11, 20, 16, 5, tzinfo=UTC), webhook=False)
    with caplog.at_level(logging.INFO, logger=telemetry.EVENT_LOGGER):
        telemetry.emit_alert(entity)
    (record,) = [r for r in caplog.records if r.name == telemetry.EVENT_LOGGER]
    assert record.levelno == logging.WARNING and record.getMessage() == entity["message"]
    fields = vars(record)
    assert fields["microsoft.custom_event.name"] == "QualityAlert"
    assert {k: fields[k] for k in telemetry.DIMENSIONS} == {
        "monitor": "m-one", "metric": "coherence", "segment": "all", "kind": "pass_rate",
        "window_start": "2026-11-20T14:00:00Z", "value": 0.5, "threshold": 0.7}
    telemetry.reset_telemetry()
    reset_settings()


class _Ingestion(BaseHTTPRequestHandler):
    """A loopback stand-in for the Application Insights ingestion endpoint."""

    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            import gzip
            body = gzip.decompress(body)
        type(self).received.append(body)
        payload = b'{"itemsReceived": 1, "itemsAccepted": 1, "errors": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_custom_event_reaches_application_insights_ingestion(tmp_path: Path) -> None:
    """configure_azure_monitor in a child process, ingestion endpoint on loopback: the alert arrives as
    a custom event named QualityAlert with its customDimensions, and the quality_alerts metric."""
    import threading

    _Ingestion.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ingestion)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        env = {**os.environ,
               "APPLICATIONINSIGHTS_CONNECTION_STRING":
                   f"InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:{port}/",
               "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
               "OTEL_TRACES_EXPORTER": "none",
               "PYTHONPATH": str(ROOT)}
        script = textwrap.dedent(f"""
            import json
            from monitor.aggregate import telemetry
            alert = json.loads({json.dumps(alert_entity(
                AlertCandidate("pass_rate", row(passed=5, pass_rate=0.5), 0.5, 0.7),
                created_at=datetime(2026, 11, 20, 16, 5, tzinfo=UTC), webhook=False))!r})
            telemetry.emit_alert(alert)
            telemetry.flush()
        """)
        subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, check=True, timeout=120)
    finally:
        server.shutdown()
        server.server_close()
    items = [item for body in _Ingestion.received for item in json.loads(body)]
    events = [i for i in items if i["data"]["baseType"] == "EventData"]
    assert [e["data"]["baseData"]["name"] for e in events] == ["QualityAlert"]
    props = events[0]["data"]["baseData"]["properties"]
    assert {k: props[k] for k in ("monitor", "metric", "segment", "kind", "window_start")} == {
        "monitor": "m-one", "metric": "coherence", "segment": "all", "kind": "pass_rate",
        "window_start": "2026-11-20T14:00:00Z"}
    assert float(props["value"]) == 0.5 and float(props["threshold"]) == 0.7
    metrics = [i for i in items if i["data"]["baseType"] == "MetricData"]
    names = {m["name"] for i in metrics for m in i["data"]["baseData"]["metrics"]}
    assert "quality_alerts" in names
