"""Scores whose explain call failed get their reason on re-evaluation (`backfill --reevaluate`),
without paying for the score call again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from azure.storage.blob import ContainerClient

from monitor.backfill import backfill
from monitor.judge.runtime import reset_runtime
from monitor.monitors import MonitorStore
from monitor.services import get_services
from monitor.status import monitor_status
from monitor.storage.tables import Tables
from tests.support.fake_openai import ChatRequest, FakeOpenAI, Reply
from tests.support.host import fire_blob
from tests.support.mdc import INPUTS, OUTPUTS, monitor_config, upload_reference

pytestmark = pytest.mark.azurite
REASON = "The answer adds facts the context does not hold."


class Judge:
    """Groundedness fails (score 2) and needs a reason; the explain reply is broken until healed."""

    def __init__(self) -> None:
        self.healed = False

    def __call__(self, request: ChatRequest) -> Reply:
        grounded = "GROUNDEDNESS" in str(request.messages[0].get("content", "")).upper()
        if request.json_mode:
            return Reply.explain(2, REASON) if self.healed else Reply(text="I'd rather not say.")
        return Reply(text="2", logprobs={"2": 1.0}) if grounded else Reply(text="5", logprobs={"5": 1.0})


@pytest.fixture
def judge() -> Iterator[tuple[FakeOpenAI, Judge]]:
    policy = Judge()
    with FakeOpenAI(policy=policy) as fake:
        yield fake, policy
    reset_runtime()


def grounded_scores(monitor: str) -> list[dict[str, object]]:
    scores = Tables.default()["scores"]
    return [e for e in scores.query_entities("metric eq 'groundedness'") if e["PartitionKey"].startswith(monitor)]


def test_missing_reasons_are_filled_on_reevaluation(mdc_container: ContainerClient, monitor_name: str,
                                                    judge: tuple[FakeOpenAI, Judge]) -> None:
    fake, policy = judge
    upload_reference(mdc_container)
    MonitorStore().put(monitor_config(monitor_name, mdc_container.container_name, judge={
        "provider": "openai", "model": "judge-model", "base_url": fake.openai_base_url}))
    for name in (INPUTS, OUTPUTS):
        fire_blob(mdc_container.container_name, name)
    first = grounded_scores(monitor_name)
    assert len(first) == 4
    assert all(s["status"] == "ok" and "reason" not in s and s["detail"] == "explain_parse" for s in first)
    score_calls = sum(1 for r in fake.stats.requests_log if not r.json_mode)

    policy.healed = True
    backfill(get_services(), monitor_name, datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC),
             reevaluate=True)
    again = grounded_scores(monitor_name)
    assert [s["reason"] for s in again] == [REASON] * 4
    assert all(s["status"] == "ok" and s["score"] == 2.0 and "detail" not in s for s in again)
    assert sum(1 for r in fake.stats.requests_log if not r.json_mode) == score_calls  # no score paid twice
    assert sum(1 for r in fake.stats.requests_log if r.json_mode) == 8  # 4 failed explains, 4 new ones
    assert monitor_status(monitor_name)["scores"]["ok"] == 16

    calls = fake.stats.requests
    backfill(get_services(), monitor_name, datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC),
             reevaluate=True)
    assert fake.stats.requests == calls  # explained scores are kept as they are
