"""Failure handling through the real openai client: retry-after headers, 5xx, timeouts, hard
failures that stop the batch, content filters, and slowing down under a server quota."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.config import MonitorConfig
from monitor.errors import JudgeFatalError
from monitor.judge import JudgeEngine, JudgeTask, RetryPolicy
from monitor.judge.runtime import get_runtime, reset_runtime
from monitor.records import Record
from tests.support.fake_openai import FakeOpenAI, Reply

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)
OK = Reply(text="4", logprobs={"4": 1.0})


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake
    reset_runtime()


def config(server: FakeOpenAI, **judge: Any) -> MonitorConfig:
    return MonitorConfig.model_validate({
        "name": "judge-fail", "source": {"prefix": "p/"},
        "judge": {"provider": "openai", "model": "judge-model", "base_url": server.openai_base_url,
                  "explain": "off", **judge},
    })


def tasks(count: int, metric: str = "fluency") -> list[JudgeTask]:
    return [JudgeTask(Record(monitor="judge-fail", key=f"r{i}", time=datetime(2026, 11, 28, tzinfo=UTC),
                             prompt="Why is the sky blue?", completion=f"Rayleigh scattering, {i}."), metric)
            for i in range(count)]


def gaps(server: FakeOpenAI) -> list[float]:
    stamps = server.stats.timestamps
    return [b - a for a, b in itertools.pairwise(stamps)]


def test_retry_after_ms_is_honoured(server: FakeOpenAI) -> None:
    server.script(Reply.rate_limited(retry_after_ms=300), OK)
    [score] = JudgeEngine(config(server), retry=FAST).judge(tasks(1))
    assert score.status == "ok" and server.stats.requests == 2 and server.stats.throttled == 1
    assert 0.28 <= gaps(server)[0] < 3.0


def test_retry_after_seconds_is_honoured(server: FakeOpenAI) -> None:
    server.script(Reply.rate_limited(retry_after="1"), OK)
    [score] = JudgeEngine(config(server), retry=FAST).judge(tasks(1))
    assert score.status == "ok"
    assert 0.95 <= gaps(server)[0] < 4.0


def test_retry_after_ms_wins_over_retry_after(server: FakeOpenAI) -> None:
    server.script(Reply.rate_limited(retry_after_ms=200, retry_after="30"), OK)
    [score] = JudgeEngine(config(server), retry=FAST).judge(tasks(1))
    assert score.status == "ok"
    assert 0.18 <= gaps(server)[0] < 5.0


def test_a_500_then_success_scores_the_record(server: FakeOpenAI) -> None:
    server.script(Reply.server_error(500), Reply.server_error(503), OK)
    [score] = JudgeEngine(config(server), retry=FAST).judge(tasks(1))
    assert (score.status, score.score) == ("ok", 4.0)
    assert server.stats.statuses == {500: 1, 503: 1, 200: 1}


def test_a_record_that_fails_every_attempt_is_an_error_not_dropped(server: FakeOpenAI) -> None:
    server.set_policy(lambda request: Reply.server_error(500) if "scattering, 0." in request.user_text else OK)
    scores = JudgeEngine(config(server), retry=FAST).judge(tasks(3))
    assert [(s.status, s.detail) for s in scores] == [("error", "http_500"), ("ok", None), ("ok", None)]
    assert scores[0].raw == "Fake server error 500."  # what the server said, for diagnosis
    assert server.stats.requests == FAST.max_attempts + 2


def test_a_timeout_is_retried_then_an_error(server: FakeOpenAI) -> None:
    server.script(Reply(delay=3.0), Reply(delay=3.0))
    engine = JudgeEngine(config(server, timeout_seconds=0.3), retry=RetryPolicy(max_attempts=2, base_delay=0.01))
    started = time.monotonic()
    [score] = engine.judge(tasks(1))
    assert (score.status, score.detail) == ("error", "timeout")
    assert score.raw is not None and "timeout_seconds=0.3" in score.raw
    assert server.stats.requests == 2
    assert time.monotonic() - started < 2.5


def test_a_timeout_then_success(server: FakeOpenAI) -> None:
    server.script(Reply(delay=3.0), OK)
    [score] = JudgeEngine(config(server, timeout_seconds=0.3), retry=FAST).judge(tasks(1))
    assert score.status == "ok"


def test_401_stops_the_batch_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_KEY_TEST", "wrong-key")
    with FakeOpenAI(api_key="right-key", latency=0.02) as fake:
        engine = JudgeEngine(config(fake, api_key_setting="JUDGE_KEY_TEST", max_concurrency=4), retry=FAST)
        started = time.monotonic()
        with pytest.raises(JudgeFatalError, match=r"rejected the credentials.*JUDGE_KEY_TEST") as caught:
            engine.judge(tasks(60))
        elapsed = time.monotonic() - started
        time.sleep(0.1)  # anything still in flight would land now
        requests = fake.stats.requests
    reset_runtime()
    assert requests <= 8 and elapsed < 5
    assert "401" in caught.value.message


def test_404_deployment_names_the_setting_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUDGE_KEY_AOAI", "k")
    with FakeOpenAI(api_key="k", deployments={"other"}) as fake:
        cfg = MonitorConfig.model_validate({
            "name": "judge-fail", "source": {"prefix": "p/"},
            "judge": {"provider": "azure_openai", "endpoint": fake.azure_endpoint, "deployment": "gpt-4o",
                      "api_key_setting": "JUDGE_KEY_AOAI", "max_concurrency": 4}})
        with pytest.raises(JudgeFatalError) as caught:
            JudgeEngine(cfg, retry=FAST).judge(tasks(50))
        time.sleep(0.1)
        requests = fake.stats.requests
    reset_runtime()
    message = caught.value.message
    assert "deployment 'gpt-4o' was not found at " + fake.azure_endpoint in message
    assert "check judge.deployment" in message
    assert requests <= 8


def test_a_scripted_404_for_an_openai_model(server: FakeOpenAI) -> None:
    server.script(Reply.not_found())
    with pytest.raises(JudgeFatalError, match=r"model 'judge-model' was not found.*check judge\.model"):
        JudgeEngine(config(server, max_concurrency=1), retry=FAST).judge(tasks(5))
    assert server.stats.requests == 1


def test_a_content_filter_400_fails_only_that_record(server: FakeOpenAI) -> None:
    server.script(Reply.content_filtered())
    scores = JudgeEngine(config(server, max_concurrency=1), retry=FAST).judge(tasks(3))
    assert [(s.status, s.detail) for s in scores] == [("error", "content_filter"), ("ok", None), ("ok", None)]
    assert server.stats.requests == 3


def test_other_400s_are_fatal_with_advice(server: FakeOpenAI) -> None:
    server.script(Reply(status=400, error={"code": "invalid_request", "message": "logprobs not supported"}))
    with pytest.raises(JudgeFatalError, match=r"logprobs not supported.*use_logprobs"):
        JudgeEngine(config(server, max_concurrency=1), retry=FAST).judge(tasks(3))


def test_insufficient_quota_is_fatal(server: FakeOpenAI) -> None:
    server.script(Reply(status=429, error={"code": "insufficient_quota", "message": "You exceeded your quota."}))
    with pytest.raises(JudgeFatalError, match="no quota left"):
        JudgeEngine(config(server, max_concurrency=1), retry=FAST).judge(tasks(3))
    assert server.stats.requests == 1


def test_under_a_server_quota_every_record_is_scored_and_the_judge_slows_down() -> None:
    # 20 requests per 0.5 s window (2400/min); 50 tasks at up to 16 in flight overrun it at first.
    with FakeOpenAI(requests_per_minute=2400, quota_window=0.5, latency=0.01) as fake:
        engine = JudgeEngine(config(fake, max_concurrency=16), retry=RetryPolicy(max_attempts=10))
        scores = engine.judge(tasks(50))
        stats = fake.stats
        throttle = next(v for k, v in get_runtime()._shared.items() if k[0] == "throttle")
    reset_runtime()
    assert [s.status for s in scores] == ["ok"] * 50
    assert stats.throttled >= 1 and stats.statuses[200] == 50
    assert stats.quota_throttled == stats.throttled  # every 429 came from the quota
    assert throttle.throttled == stats.throttled and throttle.cuts >= 1  # the shared throttle slowed down


@pytest.mark.azurite
def test_client_side_requests_per_minute_avoids_429s(storage: Any) -> None:
    # The client paces at 50/s, a little under the server's 60 per second (the budget is leased
    # from Azurite: a lone instance holds all of it).
    with FakeOpenAI(requests_per_minute=3600, quota_window=1.0) as fake:
        engine = JudgeEngine(config(fake, requests_per_minute=3000, max_concurrency=16), retry=FAST)
        started = time.monotonic()
        scores = engine.judge(tasks(30))
        elapsed = time.monotonic() - started
        stats = fake.stats
    reset_runtime()
    assert [s.status for s in scores] == ["ok"] * 30
    assert stats.throttled == 0 and stats.requests == 30
    assert elapsed >= 0.5  # 30 requests paced at 50 per second
