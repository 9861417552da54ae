"""The lease table: one entity per pool, updated with ETag optimistic concurrency.

Table `quotaleases`, PartitionKey = a digest of the pool name (pool names hold characters keys may
not), RowKey `pool`. Properties: `pool` (the name), `leases` (JSON: instance -> :class:`Lease`),
`slowdown_factor` / `slowdown_at` (the fleet's slow-down after a 429, see :class:`PoolState`) and
`updated`. Every change is read -> modify -> replace If-Match (create-if-absent for a new pool); a
412 means another instance wrote in between, and the caller reads again. See docs/quotas.md.

Storage calls here are short and never retried by the SDK more than once: a lease that cannot be
renewed in time is the caller's signal to fall back to a local share, not a reason to wait.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

ROW = "pool"
# Per storage request: one retry at most, and short socket timeouts (seconds).
REQUEST_OPTIONS: dict[str, Any] = {"retry_total": 1, "retry_backoff_factor": 0.2,
                                   "connection_timeout": 3, "read_timeout": 5}
# A 429 cuts the fleet's rate factor by FLEET_CUT; it then climbs back linearly, by 1 over
# RECOVERY_SECONDS (from 0.8 back to 1 in 10 s). The instance that saw the 429 also halves its own
# concurrency and rate at once (the throttle's AIMD), so the fleet cut can stay moderate.
FLEET_CUT = 0.8
RECOVERY_SECONDS = 50.0
MIN_SLOWDOWN = 1 / 16


class LeaseConflictError(Exception):
    """Another instance changed the pool entity since it was read (412 / already exists)."""


@dataclass(frozen=True)
class Lease:
    """One instance's slice of a pool: per dimension ("requests", "tokens", ...) its share, its
    demand and its recent use (all per minute), the limits it declared, and when the lease lapses
    (epoch seconds, wall clock)."""

    share: dict[str, float]
    demand: dict[str, float]
    used: dict[str, float]
    limits: dict[str, float]
    expires: float
    since: float

    def as_json(self) -> dict[str, Any]:
        return {"share": _rounded(self.share), "demand": _rounded(self.demand), "used": _rounded(self.used),
                "limits": self.limits, "expires": round(self.expires, 3), "since": round(self.since, 3)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Lease:
        return cls(share=_floats(data.get("share")), demand=_floats(data.get("demand")),
                   used=_floats(data.get("used")), limits=_floats(data.get("limits")),
                   expires=float(data.get("expires", 0.0)), since=float(data.get("since", 0.0)))


@dataclass
class PoolState:
    """What the pool entity holds, plus its ETag (None: the entity does not exist yet)."""

    pool: str
    leases: dict[str, Lease] = field(default_factory=dict)
    slowdown_factor: float = 1.0
    slowdown_at: float = 0.0
    etag: str | None = None

    def active(self, now: float) -> dict[str, Lease]:
        """Leases that have not lapsed at wall-clock time `now`."""
        return {name: lease for name, lease in self.leases.items() if lease.expires > now}

    def slowdown(self, now: float) -> float:
        """The fleet's rate factor at `now`: the last cut, recovered linearly since then."""
        return min(1.0, self.slowdown_factor + max(0.0, now - self.slowdown_at) / RECOVERY_SECONDS)

    def cut(self, now: float) -> None:
        """A 429 somewhere in the fleet: cut the current factor (never below MIN_SLOWDOWN)."""
        self.slowdown_factor = max(MIN_SLOWDOWN, self.slowdown(now) * FLEET_CUT)
        self.slowdown_at = now

    def budget(self, now: float, dimension: str, declared: float | None = None) -> float | None:
        """The pool's budget in a dimension: the smallest limit any active holder declared."""
        limits = [lease.limits[dimension] for lease in self.active(now).values() if dimension in lease.limits]
        if declared is not None:
            limits.append(declared)
        return min(limits) if limits else None


def partition_of(pool: str) -> str:
    return hashlib.sha256(pool.encode()).hexdigest()[:40]


class LeaseStore:
    """Reads and writes pool entities in one table (sync: callers run it in a worker thread)."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    def read(self, pool: str) -> PoolState:
        try:
            entity = self.table.get_entity(partition_of(pool), ROW, **REQUEST_OPTIONS)
        except ResourceNotFoundError:
            return PoolState(pool)
        leases = {name: Lease.from_json(data) for name, data in json.loads(entity.get("leases") or "{}").items()}
        return PoolState(pool, leases, float(entity.get("slowdown_factor", 1.0)),
                         float(entity.get("slowdown_at", 0.0)), entity.metadata["etag"])

    def write(self, state: PoolState) -> None:
        """Create or replace the pool entity if nobody changed it since `state` was read."""
        entity = {"PartitionKey": partition_of(state.pool), "RowKey": ROW, "pool": state.pool,
                  "leases": json.dumps({name: lease.as_json() for name, lease in state.leases.items()}),
                  "slowdown_factor": float(state.slowdown_factor), "slowdown_at": float(state.slowdown_at),
                  "updated": datetime.now(UTC).isoformat(timespec="milliseconds")}
        try:
            if state.etag is None:
                meta = self.table.create_entity(entity, **REQUEST_OPTIONS)
            else:
                meta = self.table.update_entity(entity, mode=UpdateMode.REPLACE, etag=state.etag,
                                                match_condition=MatchConditions.IfNotModified, **REQUEST_OPTIONS)
        except (ResourceModifiedError, ResourceExistsError) as exc:
            raise LeaseConflictError(state.pool) from exc
        state.etag = meta.get("etag", state.etag)


def _floats(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, int | float) and math.isfinite(v)}


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in values.items()}
