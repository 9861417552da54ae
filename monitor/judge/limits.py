"""Client-side throughput control: concurrency, requests/tokens per minute, and slow-down on 429.

One :class:`Throttle` is shared by every call to the same judge deployment in the process (it lives
on the judge loop), so all in-flight calls see the same limits:

* at most `limit` calls in flight, where `limit = concurrency x factor`; `concurrency` is fixed at
  `max_concurrency`, or adaptive (:class:`AdaptiveLimit`: from 16, grows while latency holds and
  calls queue for a slot, shrinks when latency rises; never above `max_concurrency`);
* pacing for requests per minute and tokens per minute: token buckets (refill `per_minute / 60 x
  factor` per second, saving up at most 0.1 s of it), so calls are spread evenly: Azure enforces
  quotas over windows as short as a few seconds, where a burst would earn 429s. A request's
  tokens are its prompt estimate plus its `max_tokens`; a request larger than the bucket goes into
  debt that the following requests wait out. With a :class:`~monitor.quota.FleetQuota` the
  per-minute rates are this instance's leased share of the fleet's budget (docs/quotas.md);
* AIMD on `factor`: each 429 halves it (at most once per second, so a burst of 429s from one
  overload counts once; floor 1/32), each success adds 0.02 back (up to 1); the 429 also cuts the
  fleet's rate through the lease;
* a 429 carrying a retry-after delay pauses *every* new call until then, not only the one retried.

:class:`RetryPolicy` computes the waits of the engine's single retry loop: the server's
`retry-after-ms`, then `Retry-After` (seconds or an HTTP date), capped at 120 s; otherwise
exponential backoff with full jitter.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.config import JudgeConfig
    from monitor.quota import Budget, FleetQuota
    from monitor.storage.tables import Tables

MAX_RETRY_AFTER = 120.0
DECREASE = 0.5
INCREASE = 0.02
MIN_FACTOR = 1 / 32
CUT_COOLDOWN = 1.0
INITIAL_CONCURRENCY = 16
# Adaptive concurrency: latency above baseline x RISE (+ RISE_SLACK seconds) counts as rising.
RISE = 1.5
RISE_SLACK = 0.005
GROW = 0.25  # a healthy, saturated interval grows the limit by this fraction (at least 1)
SHRINK = 0.8
EMPTY_RATE_WAIT = 0.25  # seconds between looks at a rate that is zero for now (no share yet)
QUOTA_RECHECK = 1.0
# A bucket saves up at most this much of its rate: enough to absorb a late wake-up of a busy loop,
# too little to matter to a quota enforced over 10 s or a minute (paced 2% under the share).
BURST_SECONDS = 0.1


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between attempts of one judge call."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = MAX_RETRY_AFTER

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(max_delay, base x 2^(attempt-1))] (attempt counts from 1)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(0, attempt - 1))
        return (rng or random).uniform(0.0, ceiling)

    def delay(self, attempt: int, headers: Mapping[str, str] | None, rng: random.Random | None = None) -> float:
        hinted = retry_after(headers, self.max_retry_after)
        return hinted if hinted is not None else self.backoff(attempt, rng)


def retry_after(headers: Mapping[str, str] | None, cap: float = MAX_RETRY_AFTER) -> float | None:
    """The server's requested wait in seconds: `retry-after-ms` first, then `Retry-After` (seconds or
    an HTTP date); None when absent or unreadable. Capped at `cap`."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        seconds = _seconds(value, scale)
        if seconds is not None:
            return min(cap, seconds)
    return None


def _seconds(value: str, scale: float) -> float | None:
    try:
        number = float(value) * scale
    except ValueError:
        if scale != 1.0:
            return None
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        number = (moment - datetime.now(UTC)).total_seconds()
    return max(0.0, number) if math.isfinite(number) else None


class Bucket:
    """A pacing token bucket measured per minute. It starts with one unit and saves up at most
    BURST_SECONDS of its rate (at least one unit), so a loop that woke up late catches up on that
    much, never more. A request is let through when the level covers one unit and takes its full
    amount, going into debt if need be. `per_minute` may change between calls (a leased share)."""

    def __init__(self, per_minute: float, clock: Callable[[], float]) -> None:
        self.per_minute = per_minute
        self.level = 1.0
        self._clock = clock
        self._updated = clock()

    def wait_time(self, amount: float, factor: float) -> float:
        """Seconds until `amount` can be taken at the current rate (0: take it now)."""
        rate = self.per_minute / 60.0 * factor
        now = self._clock()
        need = min(amount, 1.0)
        if rate <= 0:
            self._updated = now
            return EMPTY_RATE_WAIT if self.level < need else 0.0
        capacity = max(1.0, rate * BURST_SECONDS)
        self.level = min(capacity, self.level + (now - self._updated) * rate)
        self._updated = now
        return 0.0 if self.level >= need else (need - self.level) / rate

    def take(self, amount: float) -> None:
        self.level -= amount


class AdaptiveLimit:
    """Concurrency that follows latency. Every interval (as many completions as the limit, and at
    least 8) compares the interval's mean latency with a baseline that falls at once and rises
    slowly: latency above baseline x RISE shrinks the limit (x SHRINK), unless calls were waiting for
    the rate limit (it, not concurrency, sets the load then); otherwise, when calls had to
    queue for a slot while every slot was busy with a call to the server (none waiting for the rate:
    then the rate, not concurrency, is the bottleneck), the limit grows (x (1 + GROW))."""

    def __init__(self, ceiling: int, initial: int = INITIAL_CONCURRENCY, floor: int = 1) -> None:
        self.ceiling, self.floor = ceiling, floor
        self.value = float(max(floor, min(ceiling, initial)))
        self.baseline: float | None = None
        self._latencies: list[float] = []
        self.queued = False  # calls waited for a slot, with every slot busy at the server
        self.paced = False  # calls waited for the rate limit during this interval
        self.grown = 0
        self.shrunk = 0

    def sample(self, latency: float, queued: bool = False, paced: bool = False) -> None:
        """One completed call's latency; `queued`: when it completed, calls were waiting for a slot
        and no slot was held by a call waiting for the rate; `paced`: calls were waiting for the rate
        (then the rate limit, not concurrency, sets the load: latency does not shrink the limit)."""
        self.queued = self.queued or queued
        self.paced = self.paced or paced
        self._latencies.append(latency)
        if len(self._latencies) >= max(8, int(self.value)):
            self._adjust(sum(self._latencies) / len(self._latencies))
            self._latencies.clear()
            self.queued = self.paced = False

    def _adjust(self, mean: float) -> None:
        if self.baseline is None:
            self.baseline = mean
            return
        if mean > self.baseline * RISE + RISE_SLACK:
            if not self.paced:
                self.value = max(self.floor, self.value * SHRINK)
                self.shrunk += 1
        elif self.queued:
            self.value = min(self.ceiling, self.value + max(1.0, self.value * GROW))
            self.grown += 1
        # The baseline follows falls at once and rises by 5% of the gap per interval.
        self.baseline = mean if mean < self.baseline else self.baseline + 0.05 * (mean - self.baseline)


class Throttle:
    """Concurrency slots, rate buckets and AIMD slow-down, shared by the calls to one judge."""

    def __init__(self, max_concurrency: int, requests_per_minute: int | None = None,
                 tokens_per_minute: int | None = None, *, adaptive: bool = False,
                 quota: FleetQuota | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_concurrency = max_concurrency
        self.adaptive = AdaptiveLimit(max_concurrency) if adaptive else None
        self.quota = quota
        self.factor = 1.0
        self.in_flight = 0
        self.waiting = 0  # calls waiting for a slot
        self.pacing = 0  # calls holding a slot, waiting for the rate
        self.throttled = 0  # 429s seen
        self.cuts = 0  # AIMD decreases made
        self.peak_limit = 0
        self._clock = clock
        self._slots = asyncio.Condition()
        self._rate_lock = asyncio.Lock()
        self._requests = Bucket(requests_per_minute, clock) if requests_per_minute else None
        self._tokens = Bucket(tokens_per_minute, clock) if tokens_per_minute else None
        self._paused_until = 0.0
        self._last_cut = -math.inf

    @property
    def concurrency(self) -> int:
        """Calls allowed in flight before the 429 factor: adaptive or fixed."""
        return int(self.adaptive.value) if self.adaptive else self.max_concurrency

    @property
    def limit(self) -> int:
        """Calls allowed in flight right now."""
        return max(1, math.floor(self.concurrency * self.factor))

    @asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """Around a batch of calls: holds the fleet lease (if any) while the batch runs."""
        if self.quota is None:
            yield
            return
        await self.quota.enter()
        try:
            yield
        finally:
            await self.quota.leave()

    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[None]:
        """Hold one in-flight slot, after waiting for pauses and for the rate buckets."""
        async with self._slots:
            self.waiting += 1
            try:
                await self._slots.wait_for(lambda: self.in_flight < self.limit)
            finally:
                self.waiting -= 1
            self.in_flight += 1
            self.peak_limit = max(self.peak_limit, self.limit)
        try:
            await self._wait_pause()
            await self._wait_rate(tokens)
            yield
        finally:
            async with self._slots:
                self.in_flight -= 1
                # Wake as many waiters as there are free slots, not all of them: with thousands of
                # tasks waiting, waking all on every release costs quadratic CPU.
                self._slots.notify(max(1, self.limit - self.in_flight))

    async def _wait_pause(self) -> None:
        while (wait := self._paused_until - self._clock()) > 0:
            await asyncio.sleep(wait)

    async def _wait_rate(self, tokens: int) -> None:
        self.pacing += 1
        try:
            await self._take_rate(tokens)
        finally:
            self.pacing -= 1

    async def _take_rate(self, tokens: int) -> None:
        async with self._rate_lock:
            while True:
                self._follow_quota()
                waits = [b.wait_time(n, self.factor) for b, n in ((self._requests, 1), (self._tokens, tokens)) if b]
                wait = max(waits, default=0.0)
                if wait <= 0:
                    break
                self._starved()
                # A leased share may grow meanwhile: look again at least every QUOTA_RECHECK seconds.
                await asyncio.sleep(wait if self.quota is None else min(wait, QUOTA_RECHECK))
            if self._requests:
                self._requests.take(1)
            if self._tokens:
                self._tokens.take(tokens)
            if self.quota is not None:
                self.quota.admitted("requests", 1)
                self.quota.admitted("tokens", tokens)

    def _follow_quota(self) -> None:
        """Pace at this instance's current share of the fleet budget."""
        if self.quota is None:
            return
        if self._requests:
            self._requests.per_minute = self.quota.rate("requests")
        if self._tokens:
            self._tokens.per_minute = self.quota.rate("tokens")

    def _starved(self) -> None:
        if self.quota is not None:
            self.quota.starved()

    def on_success(self, latency: float | None = None) -> None:
        self.factor = min(1.0, self.factor + INCREASE)
        if self.adaptive is not None and latency is not None:
            self.adaptive.sample(latency, queued=self.waiting > 0 and self.pacing == 0, paced=self.pacing > 0)

    def on_throttled(self, pause: float | None) -> None:
        """A 429: slow everyone down (once per cooldown), the fleet too, and honour the pause."""
        self.throttled += 1
        now = self._clock()
        if now - self._last_cut >= CUT_COOLDOWN:
            self.factor = max(MIN_FACTOR, self.factor * DECREASE)
            self._last_cut = now
            self.cuts += 1
        if pause:
            self._paused_until = max(self._paused_until, now + pause)
        if self.quota is not None:
            self.quota.throttled()

    async def close(self) -> None:
        """Hand the fleet lease back (runtime shutdown)."""
        if self.quota is not None:
            await self.quota.close()


def judge_budget(judge: JudgeConfig) -> Budget | None:
    """The fleet budget a judge config declares (None without requests/tokens per minute). Its pool
    is `judge.quota_pool` when set, else the endpoint + deployment (base URL + model for openai)."""
    from monitor.quota import Budget

    limits = {dim: float(value) for dim, value in (("requests", judge.requests_per_minute),
                                                    ("tokens", judge.tokens_per_minute)) if value}
    if not limits or judge.provider == "heuristic":
        return None
    return Budget(judge_pool(judge), limits)


def judge_pool(judge: JudgeConfig) -> str:
    """The quota pool of a judge: monitors with the same pool share one budget."""
    if judge.quota_pool:
        return f"pool:{judge.quota_pool}"
    if judge.provider == "azure_openai":
        return f"azure_openai:{str(judge.endpoint).rstrip('/').lower()}/{judge.deployment}"
    return f"openai:{(judge.base_url or 'https://api.openai.com/v1').rstrip('/').lower()}/{judge.model}"


def build_throttle(judge: JudgeConfig) -> Throttle:
    """The throttle of one judge deployment in this process, leasing from the fleet budget when the
    config declares one (lease timing from the app settings)."""
    budget = judge_budget(judge)
    quota = None
    if budget is not None:
        from monitor.quota import fleet_quota

        quota = fleet_quota(budget)
    return Throttle(judge.max_concurrency, judge.requests_per_minute, judge.tokens_per_minute,
                    adaptive=judge.adaptive_concurrency, quota=quota)


def quota_status(judge: JudgeConfig, tables: Tables) -> dict[str, Any] | None:
    """The judge's fleet budget as `status` shows it: the pool, its limits per minute, the instances
    holding leases and each one's share and recent use (None when the judge declares no budget)."""
    budget = judge_budget(judge)
    if budget is None:
        return None
    from monitor.quota import LeaseStore, pool_status

    return pool_status(LeaseStore(tables["quota"]), budget.pool, budget.limits, time.time())
