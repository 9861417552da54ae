"""The whole path on the reference hour: blob trigger -> join -> LLM judge (the real openai client
against the loopback server) -> scores and partials -> timer -> windows and alerts -> HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from azure.storage.blob import ContainerClient
from fastapi.testclient import TestClient

from monitor.aggregate import aggregate_command, query_alerts, query_windows
from monitor.api.app import create_app
from monitor.backfill import backfill
from monitor.judge.runtime import reset_runtime
from monitor.monitors import MonitorStore
from monitor.services import get_services
from monitor.status import monitor_status
from tests.support.fake_openai import ChatRequest, FakeOpenAI, Reply
from tests.support.host import fire_blob
from tests.support.mdc import INPUTS, OUTPUTS, monitor_config, upload_reference

pytestmark = pytest.mark.azurite
REASON = "The answer states facts that the context does not contain."


def policy(request: ChatRequest) -> Reply:
    """Groundedness: 50/50 between 2 and 3 (expected value 2.5, a fail at 3); others 4.25."""
    system = str(request.messages[0].get("content", ""))
    if "GROUNDEDNESS" in system.upper():
        if request.json_mode:
            return Reply.explain(2, REASON)
        return Reply(text="2", logprobs={"2": 0.5, "3": 0.5})
    return Reply(text="4", logprobs={"4": 0.75, "5": 0.25})


@pytest.fixture
def judge() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(policy=policy) as fake:
        yield fake
    reset_runtime()


def test_reference_hour_end_to_end(mdc_container: ContainerClient, monitor_name: str, judge: FakeOpenAI) -> None:
    upload_reference(mdc_container)
    config = monitor_config(monitor_name, mdc_container.container_name,
                            judge={"provider": "openai", "model": "judge-model", "base_url": judge.openai_base_url},
                            alerts={"min_samples": 3})
    MonitorStore().put(config)
    for name in (OUTPUTS, INPUTS, OUTPUTS):
        fire_blob(mdc_container.container_name, name)
    # 4 records x 4 applicable metrics (no ground truth: similarity is not applicable) + one
    # explain call per failing groundedness score; the re-delivered blob costs nothing.
    assert judge.stats.requests == 4 * 4 + 4

    report = aggregate_command(monitor_name, datetime(2026, 11, 21, tzinfo=UTC))
    assert report.error is None
    windows = {(w["metric"], w["segment"]): w for w in query_windows(monitor_name)}
    grounded = windows[("groundedness", "all")]
    assert (grounded["row_count"], grounded["scored"], grounded["passed"]) == (4, 4, 0)
    assert grounded["average_score"] == pytest.approx(2.5)
    assert grounded["histogram"] == {"1": 0, "2": 0, "3": 4, "4": 0, "5": 0}  # 2.5 rounds half up
    assert grounded["breached"] is True and grounded["unmatched"] == 1
    coherence = windows[("coherence", "deployment=blue")]
    assert coherence["pass_rate"] == 1.0 and coherence["average_score"] == pytest.approx(4.25)
    similarity = windows[("similarity", "all")]
    assert similarity["not_applicable"] == 4 and similarity["scored"] == 0 and similarity["pass_rate"] is None
    kinds = {(a["kind"], a["metric"], a["segment"]) for a in query_alerts(monitor_name)}
    assert ("pass_rate", "groundedness", "all") in kinds
    assert not any(metric == "similarity" for _, metric, _ in kinds)

    # Re-running the timer, re-delivering and backfilling (even re-evaluating) change nothing.
    aggregate_command(monitor_name, datetime(2026, 11, 21, tzinfo=UTC))
    backfill(get_services(), monitor_name, datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC),
             reevaluate=True)
    assert judge.stats.requests == 4 * 4 + 4  # ok scores are kept: nothing is paid twice
    aggregate_command(monitor_name, datetime(2026, 11, 21, tzinfo=UTC))
    assert {(w["metric"], w["segment"]): w["scored"] for w in query_windows(monitor_name)} == \
        {k: w["scored"] for k, w in windows.items()}
    assert len(query_alerts(monitor_name)) == len(kinds)

    status = monitor_status(monitor_name)
    assert status["records"] == 4 and status["scores"] == {"ok": 16, "error": 0, "not_applicable": 4, "skipped": 0}

    with TestClient(create_app()) as client:
        page = client.get(f"/api/monitors/{monitor_name}/records", params={"metric": "groundedness"}).json()
        first = page["records"][0]
        assert first["scores"]["groundedness"]["reason"] == REASON
        assert first["scores"]["groundedness"]["score"] == pytest.approx(2.5)
        html = client.get(f"/api/monitors/{monitor_name}/dashboard").text
        assert REASON in html and "openai:judge-model" in html


def test_a_changed_acceptable_score_applies_on_reevaluation_without_new_judge_calls(
        mdc_container: ContainerClient, monitor_name: str, judge: FakeOpenAI) -> None:
    upload_reference(mdc_container)
    config = monitor_config(monitor_name, mdc_container.container_name,
                            judge={"provider": "openai", "model": "judge-model", "base_url": judge.openai_base_url,
                                   "explain": "off"})
    MonitorStore().put(config)
    for name in (INPUTS, OUTPUTS):
        fire_blob(mdc_container.container_name, name)
    at = datetime(2026, 11, 21, tzinfo=UTC)
    aggregate_command(monitor_name, at)
    assert query_windows(monitor_name, metric="groundedness", segment="all")[0]["passed"] == 0
    calls = judge.stats.requests

    MonitorStore().put({**config, "metrics": {"groundedness": {"acceptable_score": 2.5}}})
    backfill(get_services(), monitor_name, datetime(2026, 11, 20, tzinfo=UTC), at, reevaluate=True)
    aggregate_command(monitor_name, at)
    window = query_windows(monitor_name, metric="groundedness", segment="all")[0]
    assert (window["passed"], window["pass_rate"], window["acceptable_score"]) == (4, 1.0, 2.5)
    assert judge.stats.requests == calls


def test_a_changed_judge_re_judges_on_reevaluation(mdc_container: ContainerClient, monitor_name: str,
                                                   judge: FakeOpenAI) -> None:
    upload_reference(mdc_container)
    config = monitor_config(monitor_name, mdc_container.container_name)  # heuristic judge
    MonitorStore().put(config)
    for name in (INPUTS, OUTPUTS):
        fire_blob(mdc_container.container_name, name)
    assert judge.stats.requests == 0
    MonitorStore().put({**config, "judge": {"provider": "openai", "model": "judge-model",
                                            "base_url": judge.openai_base_url, "explain": "off"}})
    at = datetime(2026, 11, 21, tzinfo=UTC)
    backfill(get_services(), monitor_name, datetime(2026, 11, 20, tzinfo=UTC), at, reevaluate=True)
    assert judge.stats.requests == 4 * 4  # every applicable score again, by the new judge
    aggregate_command(monitor_name, at)
    window = query_windows(monitor_name, metric="coherence", segment="all")[0]
    assert window["average_score"] == pytest.approx(4.25) and window["approximate"] is False


def test_queue_fan_out_judges_every_record_exactly_once(mdc_container: ContainerClient, monitor_name: str,
                                                        judge: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.test_ingest_scale import T0, _pair
    from tests.support.host import queue_message, user_function
    from tests.support.mdc import hour_path
    from tests.support.storage import reset_caches

    monkeypatch.setenv("INLINE_BATCH_LIMIT", "20")
    monkeypatch.setenv("EVALUATION_QUEUE", f"e2e-{monitor_name[:40]}".lower().replace("_", "-").rstrip("-"))
    reset_caches()
    inputs, outputs = _pair(120)
    mdc_container.upload_blob(hour_path("model_inputs", T0), inputs)
    mdc_container.upload_blob(hour_path("model_outputs", T0), outputs)
    MonitorStore().put(monitor_config(monitor_name, mdc_container.container_name, prefix="modelDataCollector/",
                                      judge={"provider": "openai", "model": "judge-model",
                                             "base_url": judge.openai_base_url, "explain": "off"}))
    for name in (hour_path("model_inputs", T0), hour_path("model_outputs", T0), hour_path("model_outputs", T0)):
        fire_blob(mdc_container.container_name, name)
    assert judge.stats.requests == 0  # over the inline limit: everything went to the queue
    function = user_function("evaluate_batch")
    drained = get_services().queue.drain(lambda body, count: function(queue_message(body, count)))
    assert drained.processed == 3 and drained.failures == 0
    assert judge.stats.requests == 120 * 4  # each record x applicable metric judged once
    status = monitor_status(monitor_name)
    assert status["scores"] == {"ok": 480, "error": 0, "not_applicable": 120, "skipped": 0}
