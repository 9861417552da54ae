"""One instance's lease on a pool's budget: acquire, renew in the background, hand back, degrade.

A :class:`FleetQuota` lives on the judge loop (one per throttle). While calls use it (between
:meth:`FleetQuota.enter` and :meth:`FleetQuota.leave`) a background task renews the lease every
`period` seconds (sooner while the instance holds less than its fair target): one read and one
conditional replace of the pool entity, in a worker thread, so the calls never wait for storage.
Each renewal publishes this instance's demand and use, lets go of what it does not need, and takes
its fair share of what the others leave free (:mod:`monitor.quota.allocation`).

Safety rules (see docs/quotas.md):

* a share is lowered locally *before* the lower value is written, and raised only after the write
  succeeded, so the shares in force never sum to more than the budget while storage works;
* a lease is used only until `ttl - SKEW_MARGIN` seconds after the renewal that granted it started;
  the other instances reclaim it `ttl` seconds after it was written, so a killed process's share
  comes back to the fleet within `ttl`;
* when the lease cannot be renewed in time (storage down or slow), the instance falls back to a
  conservative local share, logs a warning once, and keeps trying in the background: half of an
  even split between the holders it last saw, or budget / FALLBACK_SPLIT if it never held a lease;
* a 429 anywhere cuts the fleet's factor (the pool entity's slow-down) at the next renewal, which
  the throttled instance triggers at once; every instance applies it at its next renewal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monitor.quota.allocation import grant, waterfill
from monitor.quota.store import RECOVERY_SECONDS, Lease, LeaseConflictError, LeaseStore, PoolState

log = logging.getLogger(__name__)

SKEW_MARGIN = 2.0  # seconds a lease is given up early, for clock skew between instances
FALLBACK_SPLIT = 8  # a conservative guess of the instances sharing a budget never seen in storage
DEMAND_HEADROOM = 1.5  # a satisfied instance asks for its recent use times this
DEMAND_FLOOR = 0.02  # ... and at least this fraction of the budget
MAX_CONFLICTS = 8
LINGER = 1.0
# Paced 2% under the share: a quota enforced over short windows at exactly the rate answers the odd
# request that network jitter (or a bucket catching up 0.1 s after a late wake-up) bunches up with 429.
HEADROOM = 0.02  # seconds a lease is kept after the last call left, for the next invocation


def instance_name() -> str:
    """This process: the Functions instance (or host name), the process id and a random suffix."""
    host = os.environ.get("WEBSITE_INSTANCE_ID", "")[:12] or socket.gethostname()[:24]
    return f"{host}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Budget:
    """A shared budget: the pool's name and its limits per minute by dimension (e.g. requests,
    tokens). Any rate-limited provider can lease from one (the judge, a content-safety service)."""

    pool: str
    limits: dict[str, float]


@dataclass
class _Renewal:
    """The inputs and the result of one renewal (built on the loop, run in a worker thread)."""

    demand: dict[str, float]
    used: dict[str, float]
    cut: bool
    started: float  # monotonic
    share: dict[str, float] = field(default_factory=dict)
    target: dict[str, float] = field(default_factory=dict)
    names: frozenset[str] = frozenset()
    slowdown: tuple[float, float] = (1.0, 0.0)


class FleetQuota:
    """This instance's lease on `budget` (module docstring). Use it on the judge loop only."""

    def __init__(self, budget: Budget, store: Callable[[], LeaseStore], *, period: float = 5.0,
                 ttl: float = 15.0, first_wait: float = 3.0, instance: str | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.budget = budget
        self.instance = instance or instance_name()
        self.period, self.ttl, self.first_wait = period, ttl, first_wait
        self._store_factory = store
        self._store: LeaseStore | None = None
        self._clock, self._wall = clock, wall
        self._share: dict[str, float] = {}
        self._cap: dict[str, float] | None = None  # a lower share being written
        self._target: dict[str, float] = {}
        self._valid_until = -math.inf
        self._ever_held = False
        self._holders_seen = 0
        self._holders: frozenset[str] = frozenset()
        self._changing = True
        self._slowdown = (1.0, 0.0)  # (factor, wall time of the cut)
        self._used: dict[str, float] = {}
        self._counts: defaultdict[str, float] = defaultdict(float)
        self._counted_since = clock()
        self._hungry = True
        self._cut_pending = False
        self._users = 0
        self._task: asyncio.Task[None] | None = None
        self._linger: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._degraded = False
        self._generation = 0
        self.storage_requests = 0
        self.renewals = 0
        self.failures = 0

    # --- what the throttle asks ---------------------------------------------------------------
    def rate(self, dimension: str) -> float:
        """The rate per minute this instance may use in `dimension` right now."""
        if dimension not in self.budget.limits:
            return math.inf
        if self._clock() >= self._valid_until:
            self._degrade()
            return self.fallback(dimension)
        share = self._share.get(dimension, 0.0)
        if self._cap is not None:
            share = min(share, self._cap.get(dimension, 0.0))
        factor, at = self._slowdown
        return share * (1 - HEADROOM) * min(1.0, factor + max(0.0, self._wall() - at) / RECOVERY_SECONDS)

    def fallback(self, dimension: str) -> float:
        """The conservative local share: half an even split between the instances last seen holding
        leases (this one included), or 1/FALLBACK_SPLIT of the budget if it never held a lease."""
        total = self.budget.limits[dimension]
        if not self._ever_held:
            return total / FALLBACK_SPLIT
        return 0.5 * total / max(1, self._holders_seen)

    def admitted(self, dimension: str, amount: float) -> None:
        """A call went out with `amount` of `dimension` (1 request, its token estimate)."""
        self._counts[dimension] += amount

    def starved(self) -> None:
        """A call had to wait for the rate: this instance wants more than it holds."""
        self._hungry = True

    def throttled(self) -> None:
        """The server answered 429: cut the fleet's rate at the next renewal, which starts now."""
        self._cut_pending = True
        if self._wake is not None:
            self._wake.set()

    @property
    def degraded(self) -> bool:
        return self._degraded

    def snapshot(self) -> dict[str, Any]:
        """This instance's view, for logs and benchmarks."""
        return {"instance": self.instance, "share": dict(self._share), "valid": self._clock() < self._valid_until,
                "storage_requests": self.storage_requests, "renewals": self.renewals, "failures": self.failures}

    # --- lifecycle ----------------------------------------------------------------------------
    async def enter(self) -> None:
        """A caller starts using the budget: hold a lease (waiting at most `first_wait` for it)."""
        self._users += 1
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._task = asyncio.create_task(self._run(first), name=f"quota-lease:{self.budget.pool}")
            await asyncio.wait({first}, timeout=self.first_wait)

    async def leave(self) -> None:
        """A caller is done; the last one hands the lease back after a short linger."""
        self._users = max(0, self._users - 1)
        if self._users == 0 and self._linger is None:
            self._linger = asyncio.create_task(self._release_later())

    async def close(self) -> None:
        """Stop renewing and hand the lease back now (process shutdown)."""
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        await self._stop_and_release()

    async def _release_later(self) -> None:
        await asyncio.sleep(LINGER)
        self._linger = None
        if self._users == 0:
            await self._stop_and_release()

    async def _stop_and_release(self) -> None:
        task, self._task = self._task, None
        self._generation += 1  # a renewal still running in its thread must not write after this
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        held = bool(self._share)
        self._share, self._cap, self._valid_until, self._holders = {}, None, -math.inf, frozenset()
        if held:
            try:
                await asyncio.wait_for(asyncio.to_thread(self._release_sync), timeout=self.first_wait)
            except Exception as exc:  # it lapses by itself within ttl
                log.info("quota pool %s: could not hand the lease back (%s); it lapses in %.0f s",
                         self.budget.pool, exc, self.ttl)

    # --- renewal --------------------------------------------------------------------------------
    async def _run(self, first: asyncio.Future[None]) -> None:
        try:
            while True:
                await self._renew()
                if not first.done():
                    first.set_result(None)
                delay = self._next_renewal()
                assert self._wake is not None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self._wake.clear()
        finally:
            if not first.done():
                first.set_result(None)

    def _next_renewal(self) -> float:
        """Seconds to the next renewal: a period, or a fifth of it (at least 1 s) while this instance
        holds less than its fair target or no valid lease (the others give back at their renewals),
        and while the set of holders is changing (instances starting together: a new lease is looked
        at again after a fifth of a period, so the shares even out at once)."""
        short = any(self._share.get(d, 0.0) < 0.95 * t for d, t in self._target.items())
        if short or self._changing or self._clock() >= self._valid_until:
            return max(1.0, self.period / 5)
        return self.period

    async def _renew(self) -> None:
        renewal = self._prepare()
        try:
            await asyncio.to_thread(self._renew_sync, renewal)
        except Exception as exc:  # storage down, slow, or contended: keep the lease until it lapses
            self._cap = None
            self.failures += 1
            log.debug("quota pool %s: renewal failed: %s", self.budget.pool, exc)
            if self._clock() >= self._valid_until:
                self._degrade(exc)
            return
        self._share, self._cap, self._target = renewal.share, None, renewal.target
        self._changing = renewal.names != self._holders
        self._holders = renewal.names
        self._holders_seen, self._slowdown = len(renewal.names), renewal.slowdown
        self._valid_until = renewal.started + self.ttl - SKEW_MARGIN
        self._ever_held = True
        self.renewals += 1
        if self._degraded:
            log.warning("quota pool %s: lease renewed; back on the shared budget", self.budget.pool)
            self._degraded = False

    def _prepare(self) -> _Renewal:
        now = self._clock()
        elapsed = now - self._counted_since
        if elapsed >= 0.5:
            self._used = {d: self._counts[d] / elapsed * 60 for d in self.budget.limits}
            self._counts.clear()
            self._counted_since = now
        demand = {}
        for dim, total in self.budget.limits.items():
            if self._hungry or dim not in self._used:
                demand[dim] = total
            else:
                demand[dim] = min(total, max(self._used[dim] * DEMAND_HEADROOM, total * DEMAND_FLOOR))
        renewal = _Renewal(demand=demand, used=dict(self._used), cut=self._cut_pending, started=now)
        self._hungry = False
        self._cut_pending = False
        return renewal

    def _renew_sync(self, renewal: _Renewal) -> None:
        """Read the pool, take this instance's grant, write it back (If-Match); runs in a thread."""
        store = self._lease_store()
        generation = self._generation
        for _ in range(MAX_CONFLICTS):
            self.storage_requests += 1
            state = store.read(self.budget.pool)
            if generation != self._generation:
                raise asyncio.CancelledError  # released meanwhile: write nothing
            now = self._wall()
            self._compute(state, renewal, now)
            # Lower shares apply before they are written (others may take the rest at once).
            self._cap = {d: min(self._share.get(d, 0.0), s) for d, s in renewal.share.items()}
            self.storage_requests += 1
            try:
                store.write(state)
                return
            except LeaseConflictError:
                self._cap = None
                continue
        raise LeaseConflictError(f"{self.budget.pool}: {MAX_CONFLICTS} write conflicts in a row")

    def _compute(self, state: PoolState, renewal: _Renewal, now: float) -> None:
        active = state.active(now)
        active.pop(self.instance, None)
        if renewal.cut and now - state.slowdown_at >= self.period:
            state.cut(now)
        for dim, declared in self.budget.limits.items():
            total = state.budget(now, dim, declared) or declared
            demands = {name: lease.demand.get(dim, 0.0) for name, lease in active.items() if dim in lease.limits}
            demands[self.instance] = renewal.demand[dim]
            held = {name: lease.share.get(dim, 0.0) for name, lease in active.items()}
            renewal.target[dim] = waterfill(total, demands)[self.instance]
            renewal.share[dim] = grant(self.instance, total, demands, held)
        renewal.names = frozenset([*active, self.instance])
        renewal.slowdown = (state.slowdown_factor, state.slowdown_at)
        active[self.instance] = Lease(share=renewal.share, demand=renewal.demand, used=renewal.used,
                                      limits=dict(self.budget.limits), expires=now + self.ttl,
                                      since=_since(state, self.instance, now))
        state.leases = active

    def _release_sync(self) -> None:
        store = self._lease_store()
        for _ in range(MAX_CONFLICTS):
            self.storage_requests += 1
            state = store.read(self.budget.pool)
            if state.leases.pop(self.instance, None) is None:
                return
            now = self._wall()
            state.leases = state.active(now)
            self.storage_requests += 1
            try:
                store.write(state)
                return
            except LeaseConflictError:
                continue

    def _lease_store(self) -> LeaseStore:
        if self._store is None:
            self._store = self._store_factory()
        return self._store

    def _degrade(self, reason: object = "the lease lapsed before it could be renewed") -> None:
        if not self._degraded:
            self._degraded = True
            shares = ", ".join(f"{d} {self.fallback(d):.0f}/min" for d in self.budget.limits)
            log.warning("quota pool %s: cannot renew the lease (%s); using a conservative local share (%s) "
                        "until storage answers again", self.budget.pool, reason, shares)


def _since(state: PoolState, instance: str, now: float) -> float:
    lease = state.leases.get(instance)
    return lease.since if lease is not None else now

