"""Client-side throughput control: concurrency, requests/tokens per minute, and slow-down on 429.

One :class:`Throttle` is shared by every call to the same judge deployment in the process (it lives
on the judge loop), so all in-flight calls see the same limits:

* at most `limit` calls in flight, where `limit = max_concurrency x factor`;
* pacing for requests per minute and tokens per minute: token buckets without burst (refill
  `per_minute / 60 x factor` per second, capacity one request), so calls are spread evenly: Azure
  enforces quotas over windows as short as one second, where a burst would earn 429s. A request's
  tokens are its prompt estimate plus its `max_tokens`; a request larger than the bucket goes into
  debt that the following requests wait out;
* AIMD on `factor`: each 429 halves it (at most once per second, so a burst of 429s from one
  overload counts once; floor 1/32), each success adds 0.02 back (up to 1);
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

MAX_RETRY_AFTER = 120.0
DECREASE = 0.5
INCREASE = 0.02
MIN_FACTOR = 1 / 32
CUT_COOLDOWN = 1.0


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
    """A pacing token bucket measured per minute (capacity one unit: no burst). A request is let
    through when the level is positive and takes its full amount, going into debt if need be."""

    def __init__(self, per_minute: int, clock: Callable[[], float], capacity: float = 1.0) -> None:
        self.per_minute = per_minute
        self.capacity = capacity
        self.level = self.capacity
        self._clock = clock
        self._updated = clock()

    def wait_time(self, amount: float, factor: float) -> float:
        """Seconds until `amount` can be taken at the current rate (0: take it now)."""
        rate = self.per_minute / 60.0 * factor
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._updated) * rate)
        self._updated = now
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / rate

    def take(self, amount: float) -> None:
        self.level -= amount


class Throttle:
    """Concurrency slots, rate buckets and AIMD slow-down, shared by the calls to one judge."""

    def __init__(self, max_concurrency: int, requests_per_minute: int | None = None,
                 tokens_per_minute: int | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_concurrency = max_concurrency
        self.factor = 1.0
        self.in_flight = 0
        self.throttled = 0  # 429s seen
        self.cuts = 0  # AIMD decreases made
        self._clock = clock
        self._slots = asyncio.Condition()
        self._rate_lock = asyncio.Lock()
        self._requests = Bucket(requests_per_minute, clock) if requests_per_minute else None
        self._tokens = Bucket(tokens_per_minute, clock) if tokens_per_minute else None
        self._paused_until = 0.0
        self._last_cut = -math.inf

    @property
    def limit(self) -> int:
        """Calls allowed in flight right now."""
        return max(1, math.floor(self.max_concurrency * self.factor))

    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[None]:
        """Hold one in-flight slot, after waiting for pauses and for the rate buckets."""
        async with self._slots:
            await self._slots.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
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
        async with self._rate_lock:
            while True:
                waits = [b.wait_time(n, self.factor) for b, n in ((self._requests, 1), (self._tokens, tokens)) if b]
                wait = max(waits, default=0.0)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self._requests:
                self._requests.take(1)
            if self._tokens:
                self._tokens.take(tokens)

    def on_success(self) -> None:
        self.factor = min(1.0, self.factor + INCREASE)

    def on_throttled(self, pause: float | None) -> None:
        """A 429: slow everyone down (once per cooldown) and honour the server's pause."""
        self.throttled += 1
        now = self._clock()
        if now - self._last_cut >= CUT_COOLDOWN:
            self.factor = max(MIN_FACTOR, self.factor * DECREASE)
            self._last_cut = now
            self.cuts += 1
        if pause:
            self._paused_until = max(self._paused_until, now + pause)
