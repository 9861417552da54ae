"""Retry waits, token buckets, and the AIMD throttle (no network)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from monitor.judge.limits import MIN_FACTOR, Bucket, RetryPolicy, Throttle, retry_after


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after-ms": "250"}, 0.25),
    ({"retry-after": "3"}, 3.0),
    ({"retry-after-ms": "100", "retry-after": "9"}, 0.1),  # the precise header wins
    ({"retry-after-ms": "bogus", "retry-after": "2"}, 2.0),
    ({"retry-after": "600"}, 120.0),  # capped
    ({"retry-after": "-5"}, 0.0),
    ({"retry-after": "soon"}, None),
    ({}, None),
])
def test_retry_after_headers(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(headers) == expected


def test_retry_after_accepts_an_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    wait = retry_after({"retry-after": format_datetime(when, usegmt=True)})
    assert wait is not None and 25 <= wait <= 31


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (9, 8.0)]:
        waits = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # jitter spreads over the whole range
    assert policy.delay(1, {"retry-after-ms": "40"}, rng) == 0.04


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_paces_requests_evenly_and_lets_large_requests_run_into_debt() -> None:
    clock = FakeClock()
    bucket = Bucket(1200, clock)  # 20 per second, saving up at most 0.1 s of that
    assert bucket.wait_time(1, 1.0) == 0
    bucket.take(1)
    assert bucket.wait_time(1, 1.0) == pytest.approx(0.05)
    assert bucket.wait_time(1, 0.5) == pytest.approx(0.1)  # slowed down: half the refill rate
    clock.now += 10.0
    assert bucket.wait_time(1, 1.0) == 0 and bucket.level == 2.0  # only 0.1 s (2 requests) saved up
    tokens = Bucket(6000, clock)  # 100 tokens per second: a 500-token request goes into debt
    assert tokens.wait_time(500, 1.0) == 0
    tokens.take(500)
    assert tokens.wait_time(300, 1.0) == pytest.approx(5.0)


def test_throttle_halves_once_per_burst_of_429s_and_recovers_additively() -> None:
    clock = FakeClock()

    async def scenario() -> Throttle:
        throttle = Throttle(16, clock=clock)
        for _ in range(10):  # one overload, many 429s at once
            throttle.on_throttled(None)
        assert throttle.factor == 0.5 and throttle.limit == 8 and throttle.throttled == 10
        clock.now += 1.5
        throttle.on_throttled(None)
        assert throttle.limit == 4
        for _ in range(100):
            clock.now += 2
            throttle.on_throttled(None)
        assert throttle.factor == MIN_FACTOR and throttle.limit == 1
        for _ in range(60):
            throttle.on_success()
        return throttle

    assert asyncio.run(scenario()).factor == 1.0


def test_throttle_bounds_in_flight_calls_to_its_current_limit() -> None:
    async def scenario() -> int:
        throttle = Throttle(4)
        throttle.factor = 0.5  # limit 2
        peak = 0

        async def call() -> None:
            nonlocal peak
            async with throttle.slot(10):
                peak = max(peak, throttle.in_flight)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(call() for _ in range(12)))
        assert throttle.in_flight == 0
        return peak

    assert asyncio.run(scenario()) == 2


def test_a_429_pause_holds_back_every_new_call() -> None:
    async def scenario() -> float:
        throttle = Throttle(8)
        throttle.on_throttled(0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with throttle.slot(1):
            return loop.time() - started

    assert 0.18 <= asyncio.run(scenario()) < 1.0


def test_requests_per_minute_spaces_calls_out() -> None:
    async def scenario() -> float:
        throttle = Throttle(16, requests_per_minute=6000)  # 100 per second, paced
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def call() -> None:
            async with throttle.slot(1):
                pass

        await asyncio.gather(*(call() for _ in range(30)))
        return loop.time() - started

    assert 0.25 <= asyncio.run(scenario()) < 1.5  # 30 calls 10 ms apart
