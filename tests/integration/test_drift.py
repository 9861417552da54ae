"""Drift through the timer path on Azurite: partials (with traffic shape) -> windows -> drift rows
-> `drift` and `recovered` alerts, once per key over a doubled run, delivered like other alerts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from monitor.aggregate import aggregate_command, query_alerts
from monitor.drift.query import drift_report
from monitor.keys import iso
from monitor.monitors import MonitorStore
from monitor.settings import reset_settings
from tests.support.drift import AT, H10, seed_regression
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.azurite


@pytest.fixture
def env(storage: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AGGREGATION_LOOKBACK_HOURS", "6")
    monkeypatch.setenv("WEBHOOK_BACKOFF_SECONDS", "0")
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    reset_settings()
    yield
    reset_settings()


def put_monitor(name: str, *, drift: dict[str, Any], webhook: str | None = None) -> None:
    MonitorStore().put({
        "name": name, "source": {"prefix": f"modelDataCollector/{name}/"}, "window": "hour",
        "judge": {"provider": "heuristic"},
        "metrics": {m: {"enabled": m == "coherence"} for m in
                    ("coherence", "fluency", "groundedness", "relevance", "similarity")},
        "alerts": {"min_samples": 5, "webhook_url": webhook}, "drift": drift,
    })


def drift_alerts(monitor: str) -> list[tuple[str, str, str, str]]:
    return sorted((a["kind"], a["metric"], a["segment"], a["window_start"]) for a in query_alerts(monitor)
                  if a["kind"] == "drift" or a.get("recovered_from") == "drift")


FIXED = {"baseline": {"start": "2026-11-20T10:00:00Z", "end": "2026-11-20T13:00:00Z"}, "min_samples": 5}


def test_drift_alerts_once_per_key_over_a_doubled_run(env: None, monitor_name: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    put_monitor(monitor_name, drift=FIXED)
    seed_regression(monitor_name)
    with WebhookReceiver() as hook:
        put_monitor(monitor_name, drift=FIXED, webhook=hook.url)
        with caplog.at_level(logging.INFO, logger="monitor.events"):
            first = aggregate_command(monitor_name, AT)
        second = aggregate_command(monitor_name, AT)
        third = aggregate_command(monitor_name, AT + timedelta(minutes=15))
    h13, h14 = iso(H10 + timedelta(hours=3)), iso(H10 + timedelta(hours=4))
    expected = sorted([(kind, series, segment, start)
                       for kind, start in (("drift", h13), ("recovered", h14))
                       for series in ("coherence", "traffic.answers")
                       for segment in ("all", "deployment=blue", "model_version=1")])
    assert drift_alerts(monitor_name) == expected
    assert not [a for a in second.alerts + third.alerts if "drift" in a or "recovered" in a]
    bodies = [b for b in hook.bodies if b["kind"] == "drift" or b.get("recovered_from") == "drift"]
    assert len(bodies) == len(expected)  # each delivered once
    coherence = next(b for b in bodies if b["kind"] == "drift" and b["metric"] == "coherence"
                     and b["segment"] == "all")
    assert coherence["value"] == pytest.approx(1.0, abs=2e-3) and coherence["threshold"] == 0.2
    assert coherence["id"] == f"{monitor_name}|{h13}|coherence|all|drift"
    events = [r for r in caplog.records if getattr(r, "kind", None) == "drift"]
    assert len(events) == 6 and len([a for a in first.alerts if a.startswith("drift:")]) == 6


def test_drift_rows_hold_every_measure(env: None, monitor_name: str) -> None:
    put_monitor(monitor_name, drift={"trailing_windows": 3, "min_samples": 5})
    seed_regression(monitor_name)
    aggregate_command(monitor_name, AT)
    report = drift_report(monitor_name, segment="all")
    assert report["baseline"] == {"kind": "trailing", "windows": 3}
    assert report["threshold"] == 0.2 and report["min_samples"] == 5
    by_key = {(p["series"], p["window_start"][11:13]): p for p in report["points"]}
    bad = by_key[("coherence", "13")]
    # baseline = hours 10-12: 18 scores of 4.6 (bucket 5); window: 6 of 1.4 (bucket 1)
    assert (bad["n"], bad["baseline_n"], bad["drifted"], bad["evaluated"]) == (6, 18, True, True)
    assert bad["mean_shift"] == pytest.approx(1.4 - 4.6) and bad["mean_shift_stderr"] == 0.0
    assert bad["psi"] > 10
    # hour 14 against hours 11-13 (12 good, 6 bad): still drifted with a trailing baseline
    after = by_key[("coherence", "14")]
    assert after["baseline_n"] == 18 and after["drifted"]
    assert after["mean_shift"] == pytest.approx(4.6 - (12 * 4.6 + 6 * 1.4) / 18)
    share = by_key[("traffic.answers", "13")]
    assert share["mean"] == 1.0 and share["baseline_mean"] == 0.0 and share["drifted"]
    assert not by_key[("traffic.prompt_tokens", "13")]["drifted"]
    assert by_key[("traffic.prompt_tokens", "13")]["js_distance"] == 0.0
    # hour 10 has no baseline; traffic rows are served beside the drift points
    assert by_key[("coherence", "10")]["baseline_n"] == 0 and not by_key[("coherence", "10")]["evaluated"]
    traffic = {t["window_start"][11:13]: t for t in report["traffic"]}
    assert traffic["13"]["answers"] == {"answered": 0, "empty": 0, "refused": 6}
    assert traffic["12"]["prompt_tokens"]["1-16"] == 6


def test_traffic_alerts_can_be_turned_off_and_drift_disabled(env: None, monitor_name: str) -> None:
    put_monitor(monitor_name, drift={**FIXED, "traffic": False})
    seed_regression(monitor_name)
    aggregate_command(monitor_name, AT)
    assert {a[1] for a in drift_alerts(monitor_name)} == {"coherence"}
    other = monitor_name + "-off"
    put_monitor(other, drift={**FIXED, "enabled": False})
    seed_regression(other)
    aggregate_command(other, AT)
    assert drift_alerts(other) == [] and drift_report(other)["points"] == []
