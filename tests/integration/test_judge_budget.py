"""The daily token budget against Azurite (`tokenusage` table) and the loopback judge."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.azurite import Azurite
from monitor.config import MonitorConfig
from monitor.judge import JudgeEngine, JudgeTask, RetryPolicy, TokenBudget, default_budget
from monitor.judge.budget import reset_budgets
from monitor.judge.runtime import reset_runtime
from monitor.records import Record
from monitor.storage.tables import Tables
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.azurite

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def server(azurite: Azurite) -> Iterator[FakeOpenAI]:
    reset_budgets()
    with FakeOpenAI() as fake:
        yield fake
    reset_runtime()
    reset_budgets()


def config(server: FakeOpenAI, name: str, budget: int | None, **judge: Any) -> MonitorConfig:
    return MonitorConfig.model_validate({
        "name": name, "source": {"prefix": "p/"},
        "judge": {"provider": "openai", "model": "judge-model", "base_url": server.openai_base_url,
                  "explain": "off", "daily_token_budget": budget, **judge},
    })


def tasks(name: str, count: int) -> list[JudgeTask]:
    return [JudgeTask(Record(monitor=name, key=f"r{i}", time=datetime(2026, 11, 28, tzinfo=UTC),
                             prompt="Why is the sky blue?", completion=f"Rayleigh scattering, {i}."), "fluency")
            for i in range(count)]


def stored_tokens(name: str) -> int:
    day = datetime.now(UTC).strftime("%Y%m%d")
    entity = Tables.default()["usage"].get_entity(name, day)
    return int(entity["tokens"])


def test_the_budget_stops_spending_and_skips_the_rest(server: FakeOpenAI, monitor_name: str) -> None:
    cfg = config(server, monitor_name, 1000, max_concurrency=16)
    budget = default_budget(cfg)
    assert isinstance(budget, TokenBudget) and default_budget(cfg) is budget  # one per monitor per process
    scores = JudgeEngine(cfg, budget=budget, retry=FAST).judge(tasks(monitor_name, 20))
    ok = [s for s in scores if s.status == "ok"]
    skipped = [s for s in scores if s.status == "skipped"]
    assert len(ok) + len(skipped) == 20 and skipped
    assert {s.detail for s in skipped} == {"budget"} and all(s.score is None for s in skipped)
    stats = server.stats
    assert stats.requests == len(ok) <= 3  # each call is ~320 tokens: at most 3 fit in 1000
    spent = stats.prompt_tokens + stats.completion_tokens
    assert stored_tokens(monitor_name) == spent == sum(s.prompt_tokens + s.completion_tokens for s in ok)
    assert spent <= 1000

    # Later the same day, even from a fresh engine: nothing more is spent.
    again = JudgeEngine(cfg, budget=default_budget(cfg), retry=FAST).judge(tasks(monitor_name, 5))
    assert [s.detail for s in again] == ["budget"] * 5
    assert server.stats.requests == stats.requests


def test_another_process_sees_the_stored_spending(server: FakeOpenAI, monitor_name: str) -> None:
    first = TokenBudget(monitor_name, 10_000)
    assert first.reserve(9_000)
    first.settle(9_000, 9_500)
    first.flush()
    second = TokenBudget(monitor_name, 10_000)  # a fresh process: reads the table
    assert second.spent() == 9_500
    assert not second.reserve(600) and second.reserve(500)


def test_concurrent_writers_never_lose_an_update(server: FakeOpenAI, monitor_name: str) -> None:
    budgets = [TokenBudget(monitor_name, 10**9, flush_tokens=1) for _ in range(4)]

    def spend(budget: TokenBudget) -> None:
        for _ in range(10):
            assert budget.reserve(7)
            budget.settle(7, 7)
            budget.flush()

    threads = [threading.Thread(target=spend, args=(b,)) for b in budgets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stored_tokens(monitor_name) == 4 * 10 * 7


def test_no_budget_for_the_heuristic_judge_or_without_a_limit(server: FakeOpenAI, monitor_name: str) -> None:
    assert default_budget(config(server, monitor_name, None)) is None
    heuristic = MonitorConfig.model_validate({"name": monitor_name, "source": {"prefix": "p/"},
                                              "judge": {"daily_token_budget": 10}})
    assert default_budget(heuristic) is None
