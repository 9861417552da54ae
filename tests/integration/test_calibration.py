"""Judge calibration on Azurite with the real openai client against the loopback judge server:
due/not-due runs cost what they should, a changed judge re-judges everything, agreement history,
judge_drift alerts delivered once, calibration spend counted apart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.aggregate import query_alerts
from monitor.calibration.golden import load_golden, put_golden
from monitor.calibration.runs import calibrate, run_history
from monitor.judge.runtime import reset_runtime
from monitor.monitors import MonitorStore
from monitor.settings import reset_settings
from monitor.storage.tables import Tables
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.azurite

AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
HUMAN = [1, 2, 2, 3, 3, 4, 4, 5, 5, 1]


@pytest.fixture
def server(storage: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    monkeypatch.setenv("WEBHOOK_BACKOFF_SECONDS", "0")
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    reset_settings()
    with FakeOpenAI() as fake:
        yield fake
    reset_runtime()
    reset_settings()


def put_monitor(name: str, server: FakeOpenAI, *, model: str = "judge-model", webhook: str | None = None,
                **judge: Any) -> None:
    MonitorStore().put({
        "name": name, "source": {"prefix": f"p/{name}/"},
        "judge": {"provider": "openai", "model": model, "base_url": server.openai_base_url, "explain": "off",
                  **judge},
        "metrics": {"groundedness": {"enabled": False}, "relevance": {"enabled": False},
                    "similarity": {"enabled": False}},
        "alerts": {"webhook_url": webhook}, "calibration": {"min_records": 5},
    })


def golden_file(judge_scores: list[int]) -> bytes:
    """Ten records human-scored on coherence and fluency; the fake judge answers the marker's digit."""
    lines = []
    for i, (human, judged) in enumerate(zip(HUMAN, judge_scores, strict=True)):
        lines.append(json.dumps({"id": f"g{i}", "question": f"Question {i}?",
                                 "answer": f"Answer {i}. [[fake-score:{judged}]]",
                                 "human": {"coherence": human, "fluency": human}}))
    return "\n".join(lines).encode()


def upload(name: str, judge_scores: list[int]) -> None:
    put_golden(Tables.default(), MonitorStore().get(name), golden_file(judge_scores))


def test_runs_cost_nothing_until_due_and_a_judge_change_rejudges_everything(server: FakeOpenAI,
                                                                           monitor_name: str) -> None:
    put_monitor(monitor_name, server)
    upload(monitor_name, HUMAN)
    first = calibrate(monitor_name, at=AT)
    assert first.ran and first.reason == "first" and server.stats.requests == 20
    assert first.run is not None
    coherence = first.run["metrics"]["coherence"]
    assert coherence == {"n": 10, "spearman": 1.0, "kendall_tau_b": 1.0, "exact_accuracy": 1.0,
                         "within_one_accuracy": 1.0, "mean_bias": 0.0}
    assert (first.run["provider"], first.run["model"], first.run["judge_calls"]) == ("openai", "judge-model", 20)
    assert first.run["prompt_version"] and first.run["tokens"] == (server.stats.prompt_tokens
                                                                 + server.stats.completion_tokens)
    again = calibrate(monitor_name, at=AT + timedelta(hours=2))                   # same period, same judge
    assert not again.ran and again.reason == "not_due" and server.stats.requests == 20
    forced = calibrate(monitor_name, force=True, at=AT + timedelta(hours=3))
    assert forced.ran and forced.reason == "forced" and server.stats.requests == 40
    put_monitor(monitor_name, server, model="judge-model-2")                      # the judge changed
    changed = calibrate(monitor_name, at=AT + timedelta(hours=4))
    assert changed.ran and changed.reason == "judge_changed" and server.stats.requests == 60
    assert {r.body["model"] for r in server.stats.requests_log[40:]} == {"judge-model-2"}
    assert not calibrate(monitor_name, at=AT + timedelta(hours=5)).ran and server.stats.requests == 60
    scheduled = calibrate(monitor_name, at=AT + timedelta(days=1))                # the next daily period
    assert scheduled.reason == "schedule" and server.stats.requests == 80
    upload(monitor_name, [min(5, h + 1) for h in HUMAN])                         # a new golden set
    assert calibrate(monitor_name, at=AT + timedelta(days=1, hours=1)).reason == "golden_changed"
    history = run_history(Tables.default(), monitor_name)
    assert [r["trigger"] for r in history] == ["first", "forced", "judge_changed", "schedule", "golden_changed"]
    assert [r["model"] for r in history] == ["judge-model", "judge-model", "judge-model-2", "judge-model-2",
                                             "judge-model-2"]
    assert history[-1]["metrics"]["fluency"]["mean_bias"] == pytest.approx(0.8)  # +1 but for the two 5s
    # the bias moved 0 -> 0.8, but on another golden set: not a judge_drift
    assert query_alerts(monitor_name) == []


def test_judge_drift_on_low_correlation_and_on_a_bias_shift(server: FakeOpenAI, monitor_name: str) -> None:
    with WebhookReceiver() as hook:
        put_monitor(monitor_name, server, webhook=hook.url)
        upload(monitor_name, HUMAN)
        calibrate(monitor_name, at=AT)
        assert hook.bodies == []
        server.set_policy(lambda request: Reply(text="5", logprobs={"5": 1.0}))   # the judge now says 5
        shifted = calibrate(monitor_name, force=True, at=AT + timedelta(hours=1))
        assert sorted(shifted.alerts) == [f"judge_drift:{m}:calibration:{iso_at(1)}" for m in ("coherence", "fluency")]
        calibrate(monitor_name, at=AT + timedelta(hours=2))                      # not due: nothing new
        upload(monitor_name, list(reversed(HUMAN)))                              # judge disagrees: rho < 0
        server.set_policy(None)
        inverted = calibrate(monitor_name, at=AT + timedelta(hours=3))
    assert inverted.run is not None and inverted.run["metrics"]["coherence"]["spearman"] < 0.5
    alerts = [a for a in query_alerts(monitor_name) if a["kind"] == "judge_drift"]
    assert len(alerts) == 4 and len(hook.bodies) == 4
    bias = next(a for a in alerts if a["window_start"] == iso_at(1) and a["metric"] == "coherence")
    assert bias["value"] == pytest.approx(5 - 3.0) and "mean bias" in bias["message"]   # bias 0 -> +2.0
    low = next(b for b in hook.bodies if b["window_start"] == iso_at(3) and b["metric"] == "fluency")
    assert low["kind"] == "judge_drift" and low["threshold"] == 0.5 and "Spearman" in low["message"]
    assert low["spearman"] == pytest.approx(inverted.run["metrics"]["fluency"]["spearman"])


def iso_at(hours: int) -> str:
    return (AT + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_calibration_stays_within_the_daily_budget(server: FakeOpenAI, monitor_name: str) -> None:
    put_monitor(monitor_name, server, daily_token_budget=1500)
    upload(monitor_name, HUMAN)
    result = calibrate(monitor_name, at=AT)
    assert result.run is not None
    statuses = result.run["statuses"]
    assert statuses.get("skipped", 0) > 0 and server.stats.requests == statuses.get("ok", 0) < 20
    assert result.run["tokens"] <= 1500
    assert result.run["metrics"]["coherence"]["n"] + result.run["metrics"]["fluency"]["n"] == statuses["ok"]


def test_a_golden_set_is_replaced_whole(server: FakeOpenAI, monitor_name: str) -> None:
    put_monitor(monitor_name, server)
    upload(monitor_name, HUMAN)
    first = load_golden(Tables.default(), monitor_name)
    put_golden(Tables.default(), MonitorStore().get(monitor_name), golden_file(HUMAN).split(b"\n", 1)[0])
    second = load_golden(Tables.default(), monitor_name)
    assert first is not None and second is not None and first.digest != second.digest
    assert len(first.records) == 10 and len(second.records) == 1
    old_partition = f"{monitor_name}|{first.digest[:32]}"
    leftovers = list(Tables.default()["golden"].query_entities("PartitionKey eq @pk",
                                                               parameters={"pk": old_partition}))
    assert leftovers == []


def test_the_timer_function_calibrates_when_due(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """The timer as the host invokes it: the first run calibrates, the second finds it done."""
    import azure.functions as func
    from azure.functions.timer import TimerRequest

    from monitor.functions.aggregate import bp
    from tests.support.storage import private_azurite

    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    app = func.FunctionApp()
    app.register_functions(bp)
    timer = {str(f.get_function_name()): f for f in app.get_functions()}["aggregate_windows"].get_user_function()
    with private_azurite(), FakeOpenAI() as fake:
        put_monitor("t-calibrated", fake)
        upload("t-calibrated", HUMAN)
        put_monitor("t-no-golden", fake)
        with caplog.at_level("INFO", logger="monitor.functions.aggregate"):
            timer(TimerRequest(past_due=False))
            timer(TimerRequest(past_due=False))
        assert fake.stats.requests == 20
        assert len(run_history(Tables.default(), "t-calibrated")) == 1
        assert run_history(Tables.default(), "t-no-golden") == []
    reset_runtime()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("calibration of")]
    assert lines == ["calibration of t-calibrated: ran", "calibration of t-calibrated: not_due"]
