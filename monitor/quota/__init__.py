"""Budgets shared by the whole fleet: rate limits (per minute) that every instance and every monitor
using the same deployment share, through short leases in Table Storage. See docs/quotas.md.

    quota = FleetQuota(Budget(pool, {"requests": 1200}), default_store)   # on the judge loop
    await quota.enter(); quota.rate("requests"); quota.admitted("requests", 1); await quota.leave()

The module knows nothing about the judge: a provider names its pool and its dimensions. The LLM
judge's pool is :func:`judge_pool`; a content-safety provider would name its own the same way.
"""

from __future__ import annotations

from typing import Any

from monitor.quota.lease import SKEW_MARGIN, Budget, FleetQuota
from monitor.quota.store import LeaseStore, PoolState

__all__ = ["Budget", "FleetQuota", "LeaseStore", "PoolState", "default_store", "fleet_quota", "pool_status"]


def default_store() -> LeaseStore:
    """The lease table in the monitor's own storage account (MONITOR_STORAGE)."""
    from monitor.storage.tables import Tables

    return LeaseStore(Tables.default()["quota"])


def fleet_quota(budget: Budget) -> FleetQuota:
    """This process's lease on `budget` in the monitor's storage, timed by the app settings
    (QUOTA_LEASE_SECONDS, QUOTA_LEASE_TTL_SECONDS; the ttl is kept above one period)."""
    from monitor.settings import get_settings

    settings = get_settings()
    period = settings.QUOTA_LEASE_SECONDS
    ttl = max(settings.QUOTA_LEASE_TTL_SECONDS, period + SKEW_MARGIN + 1.0)
    return FleetQuota(budget, default_store, period=period, ttl=ttl)


def pool_status(store: LeaseStore, pool: str, limits: dict[str, float], now: float) -> dict[str, Any]:
    """The leases in force on a pool, for `status`: its limits, the instances holding leases, each
    one's share and recent use, and the totals (all per minute, by dimension)."""
    state = store.read(pool)
    active = state.active(now)
    budget = {dim: state.budget(now, dim, declared) or declared for dim, declared in limits.items()}

    def total(values: str) -> dict[str, float]:
        return {dim: round(sum(getattr(x, values).get(dim, 0.0) for x in active.values()), 1) for dim in limits}

    leases = [{"instance": name, "share_per_minute": {d: round(x.share.get(d, 0.0), 1) for d in limits},
               "used_per_minute": {d: round(x.used.get(d, 0.0), 1) for d in limits},
               "expires_in_s": round(x.expires - now, 1)} for name, x in sorted(active.items())]
    return {"pool": pool, "limits_per_minute": budget, "instances": len(active),
            "leased_per_minute": total("share"), "used_per_minute": total("used"),
            "slowdown": round(state.slowdown(now), 3), "leases": leases}
