"""Fleet budgets without storage: the fair split, the fleet slow-down, pool names, adaptive
concurrency, and the lease's local fallback (narrow units; the storage protocol is tested against
Azurite in tests/integration/test_quota.py)."""

from __future__ import annotations

import asyncio
import logging
import math
import random

import pytest

from monitor.config import JudgeConfig
from monitor.judge.limits import AdaptiveLimit, Throttle, judge_budget, judge_pool
from monitor.quota import Budget, FleetQuota
from monitor.quota.allocation import grant, waterfill
from monitor.quota.lease import FALLBACK_SPLIT
from monitor.quota.store import FLEET_CUT, RECOVERY_SECONDS, Lease, PoolState


def test_waterfill_gives_small_demands_in_full_and_splits_the_rest_evenly() -> None:
    assert waterfill(1200, {"a": 100, "b": 2000, "c": 2000}) == {"a": 100, "b": 550, "c": 550}
    assert waterfill(1200, {"a": 1200}) == {"a": 1200}
    assert waterfill(1200, {"a": 10, "b": 20}) == {"a": 10, "b": 20}  # nobody gets more than it wants
    assert waterfill(0, {"a": 5}) == {"a": 0}


@pytest.mark.parametrize("seed", range(20))
def test_grants_never_sum_above_the_budget_whatever_the_order(seed: int) -> None:
    rng = random.Random(seed)
    total = 1000.0
    names = [f"i{n}" for n in range(rng.randint(1, 8))]
    demands = {n: rng.choice([total, rng.uniform(0, total)]) for n in names}
    held: dict[str, float] = {}
    for _ in range(50):  # renewals in a random order, each seeing the others' current shares
        me = rng.choice(names)
        held[me] = grant(me, total, demands, held)
        assert sum(held.values()) <= total + 1e-6
    for me in names:  # once everyone has renewed twice the split is the fair one
        held[me] = grant(me, total, demands, held)
    for me in names:
        held[me] = grant(me, total, demands, held)
    assert held == pytest.approx(waterfill(total, demands))


def test_a_newcomer_gets_only_what_the_holders_leave_free_until_they_give_back() -> None:
    demands = {"old": 1200.0, "new": 1200.0}
    assert grant("new", 1200, demands, {"old": 1200.0}) == 0  # old still holds everything
    assert grant("old", 1200, demands, {"old": 1200.0, "new": 0.0}) == 600  # old gives back half
    assert grant("new", 1200, demands, {"old": 600.0, "new": 0.0}) == 600


def test_fleet_slowdown_cuts_and_recovers_linearly() -> None:
    state = PoolState("p")
    assert state.slowdown(100.0) == 1.0
    state.cut(100.0)
    assert state.slowdown(100.0) == pytest.approx(FLEET_CUT)
    assert state.slowdown(105.0) == pytest.approx(FLEET_CUT + 5 / RECOVERY_SECONDS)
    state.cut(105.0)  # a second cut compounds on the partly recovered factor
    assert state.slowdown(105.0) == pytest.approx((FLEET_CUT + 5 / RECOVERY_SECONDS) * FLEET_CUT)
    assert state.slowdown(105.0 + RECOVERY_SECONDS) == 1.0


def test_pool_budget_is_the_smallest_limit_declared_by_an_active_holder() -> None:
    lease = Lease(share={}, demand={}, used={}, limits={"requests": 600}, expires=200.0, since=0.0)
    lapsed = Lease(share={}, demand={}, used={}, limits={"requests": 100}, expires=50.0, since=0.0)
    state = PoolState("p", {"a": lease, "b": lapsed})
    assert state.budget(100.0, "requests", 1200) == 600
    assert state.budget(100.0, "tokens", None) is None


def test_pools_follow_endpoint_and_deployment_unless_named() -> None:
    a = JudgeConfig(provider="azure_openai", endpoint="https://X.openai.azure.com/", deployment="gpt-4o",
                    requests_per_minute=600)
    b = JudgeConfig(provider="azure_openai", endpoint="https://x.openai.azure.com", deployment="gpt-4o",
                    requests_per_minute=600, max_concurrency=8)
    c = JudgeConfig(provider="azure_openai", endpoint="https://x.openai.azure.com", deployment="gpt-4o-mini",
                    requests_per_minute=600)
    named = JudgeConfig(provider="openai", model="m", base_url="http://gw/v1", quota_pool="team-gpt4o",
                        requests_per_minute=600)
    assert judge_pool(a) == judge_pool(b) != judge_pool(c)
    assert judge_pool(named) == "pool:team-gpt4o"
    budget = judge_budget(JudgeConfig(provider="openai", model="m", requests_per_minute=600, tokens_per_minute=9000))
    assert budget is not None and budget.limits == {"requests": 600.0, "tokens": 9000.0}
    assert judge_budget(JudgeConfig(provider="openai", model="m")) is None  # no limits: no lease
    assert judge_budget(JudgeConfig(requests_per_minute=600)) is None  # the heuristic judge calls nobody


def test_adaptive_limit_grows_while_latency_holds_and_calls_queue() -> None:
    limit = AdaptiveLimit(ceiling=64, initial=16)
    for _ in range(20):
        for _ in range(int(limit.value)):
            limit.sample(0.3, queued=True)
    assert limit.value == 64 and limit.shrunk == 0


def test_adaptive_limit_does_not_grow_when_nobody_queues_or_the_rate_holds_calls() -> None:
    idle = AdaptiveLimit(ceiling=64, initial=16)
    for _ in range(200):
        idle.sample(0.3, queued=False)
    assert idle.value == 16

    async def paced(rpm: int | None) -> Throttle:
        throttle = Throttle(64, requests_per_minute=rpm, adaptive=True)

        async def call() -> None:
            async with throttle.slot(1):
                await asyncio.sleep(0.001)
            throttle.on_success(0.001)

        await asyncio.gather(*(call() for _ in range(200)))
        return throttle

    assert asyncio.run(paced(6000)).adaptive.value == 16  # type: ignore[union-attr]  # the rate holds calls
    assert asyncio.run(paced(None)).adaptive.value > 16  # type: ignore[union-attr]  # the slots hold calls


def test_adaptive_limit_shrinks_when_latency_rises() -> None:
    limit = AdaptiveLimit(ceiling=64, initial=32)
    for _ in range(32):
        limit.sample(0.3, queued=True)  # baseline
    before = limit.value
    for _ in range(3 * 40):
        limit.sample(0.9, queued=True)  # three times slower: the server is saturating
    assert limit.value < before and limit.shrunk >= 1


def test_fixed_concurrency_when_adaptive_is_off() -> None:
    async def run() -> tuple[int, int]:
        fixed, adaptive = Throttle(50), Throttle(50, adaptive=True)
        return fixed.limit, adaptive.limit

    assert asyncio.run(run()) == (50, 16)


def test_lease_that_cannot_be_reached_falls_back_to_a_local_share_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    def unreachable() -> object:
        raise ConnectionError("storage is down")

    async def run() -> tuple[float, float]:
        quota = FleetQuota(Budget("p", {"requests": 800.0}), unreachable, period=1, ttl=4, first_wait=0.5)  # type: ignore[arg-type]
        await quota.enter()
        rate = quota.rate("requests")
        tokens = quota.rate("tokens")
        await quota.close()
        return rate, tokens

    with caplog.at_level(logging.WARNING, logger="monitor.quota.lease"):
        rate, tokens = asyncio.run(run())
    assert rate == 800.0 / FALLBACK_SPLIT and math.isinf(tokens)
    assert "conservative local share" in caplog.text and "storage is down" in caplog.text


class MemoryStore:
    """An in-memory pool entity with ETags (narrow unit tests only; Azurite in the integration tests)."""

    def __init__(self) -> None:
        self.states: dict[str, PoolState] = {}
        self.version = 0
        self.down = False

    def read(self, pool: str) -> PoolState:
        if self.down:
            raise ConnectionError("storage is down")
        state = self.states.get(pool)
        if state is None:
            return PoolState(pool)
        return PoolState(pool, dict(state.leases), state.slowdown_factor, state.slowdown_at, state.etag)

    def write(self, state: PoolState) -> None:
        if self.down:
            raise ConnectionError("storage is down")
        current = self.states.get(state.pool)
        if (current.etag if current else None) != state.etag:
            from monitor.quota.store import LeaseConflictError

            raise LeaseConflictError(state.pool)
        self.version += 1
        state.etag = str(self.version)
        self.states[state.pool] = state


def test_a_lease_handed_back_then_unreachable_still_gets_a_local_share(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()

    async def run() -> tuple[float, float, int]:
        quota = FleetQuota(Budget("p", {"requests": 800.0}), lambda: store, period=1, ttl=4,  # type: ignore[arg-type,return-value]
                           first_wait=0.5)
        await quota.enter()
        held = quota.rate("requests")
        await quota.close()
        holders_after_release = len(store.states["p"].leases)
        store.down = True
        await quota.enter()
        local = quota.rate("requests")
        await quota.close()
        return held, local, holders_after_release

    with caplog.at_level(logging.WARNING, logger="monitor.quota.lease"):
        held, local, holders = asyncio.run(run())
    assert held == pytest.approx(800 * 0.98) and holders == 0  # the lone holder had it all, then gave it back
    assert local == 400.0  # half an even split between the one holder it last saw: never zero
    assert "conservative local share" in caplog.text


def test_adaptive_limit_keeps_its_value_when_the_rate_limit_sets_the_load() -> None:
    limit = AdaptiveLimit(ceiling=64, initial=16)
    for _ in range(16):
        limit.sample(0.3, paced=True)
    for _ in range(10 * 16):
        limit.sample(0.9, paced=True)  # slower replies while paced: a busy machine, not too many calls
    assert limit.value == 16 and limit.shrunk == 0
