"""What a monitor has seen so far: the object of `status --json` and `GET /api/monitors/{name}/status`.

Every number is a sum over entities with deterministic keys (ledger entries, partial aggregates,
join halves), never a running counter, so re-deliveries cannot inflate it.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.judge.limits import quota_status
from monitor.keys import iso, join_partitions, parse_time
from monitor.monitors import MonitorStore
from monitor.partials import counts_of_entity
from monitor.storage.tables import Tables, query_partition

_SUMMED = ("records", "quarantined", "rows", "lines", "batches", "queued", "bytes_read", "unsampled",
           "joined_in_memory")
MAX_LISTED = 20


def monitor_status(name: str, tables: Tables | None = None) -> dict[str, Any]:
    tables = tables or Tables.default()
    config = MonitorStore(tables).get(name)
    status: dict[str, Any] = {"monitor": name, **_ledger_totals(tables, name)}
    status.update(_unmatched(tables, name, config.source.join_ttl_minutes))
    status["scores"], status["records_counted"] = _score_totals(tables, name)
    status["poison_batches"] = sum(1 for _ in query_partition(tables["poison"], name, select=["RowKey"]))
    status["last_aggregation"] = _last_aggregation(name)
    status["judge"] = {"provider": config.judge.provider, "model": config.judge.model_name,
                       "approximate": config.judge.provider == "heuristic"}
    status["quota"] = quota_status(config.judge, tables)  # leases on the judge's fleet budget
    return status


def _ledger_totals(tables: Tables, name: str) -> dict[str, Any]:
    """Sums over the monitor's ledger entries (one per blob, committed with its offset)."""
    blobs: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    now = datetime.now(UTC)
    leased = unread = 0
    oldest: datetime | None = None
    replaced: list[dict[str, str]] = []
    for entry in query_partition(tables["ledger"], name):
        state = str(entry.get("state"))
        blobs[state] += 1
        for field in _SUMMED:
            totals[field] += int(entry.get(field, 0) or 0)
        reasons.update(json.loads(entry.get("reasons") or "{}"))
        if entry.get("lease_until") and parse_time(str(entry["lease_until"])) > now:
            leased += 1
        if state == "open":
            unread += max(0, int(entry.get("size", 0) or 0) - int(entry.get("offset", 0) or 0))
            since = entry.get("unread_since")
            if since and (oldest is None or parse_time(str(since)) < oldest):
                oldest = parse_time(str(since))
        if state in ("replaced", "deleted") and len(replaced) < MAX_LISTED:
            replaced.append({"blob": str(entry.get("blob")), "state": state, "detail": str(entry.get("detail", ""))})
    return {
        "blobs_processed": sum(blobs[s] for s in ("open", "closed", "replaced", "deleted")),
        "blobs_in_progress": leased,
        "open_blobs": blobs["open"],
        "closed_blobs": blobs["closed"],
        "blobs_replaced": blobs["replaced"] + blobs["deleted"],
        "replaced_blobs": replaced,
        "blobs_skipped": blobs["skipped"],
        "bytes_read": totals["bytes_read"],
        "bytes_unread": unread,
        "oldest_unread_at": iso(oldest) if oldest else None,
        "ingestion_lag_seconds": round((now - oldest).total_seconds()) if oldest else 0,
        "records": totals["records"],
        "entries": totals["rows"],   # entries parsed from the lines (docs/api.md, "Words")
        "lines": totals["lines"],
        "unsampled": totals["unsampled"],
        "joined_in_memory": totals["joined_in_memory"],
        "duplicate_keys": reasons["duplicate_key"],
        "batches": totals["batches"],
        "batches_queued": totals["queued"],
        "quarantined": totals["quarantined"],
        "quarantine_reasons": dict(sorted(reasons.items())),
    }


def _unmatched(tables: Tables, name: str, ttl_minutes: int) -> dict[str, Any]:
    """Join halves still alone: waiting (within the time-to-live) or expired (past it), the
    time-to-live counted from the half's request time, as the aggregation counts it."""
    from monitor.aggregate.store import half_expired

    now, ttl = datetime.now(UTC), timedelta(minutes=ttl_minutes)
    sides: Counter[str] = Counter()
    expired = 0
    for partition in join_partitions(name):
        for entity in query_partition(tables["joins"], partition, extra_filter="state eq 'pending'",
                                      select=["pending_side", "first_seen", "time"]):
            sides[str(entity.get("pending_side"))] += 1
            expired += int(half_expired(entity, now, ttl))
    total = sum(sides.values())
    return {"unmatched": total, "unmatched_detail": {"inputs": sides["input"], "outputs": sides["output"],
                                                      "waiting": total - expired, "expired": expired}}


def _score_totals(tables: Tables, name: str) -> tuple[dict[str, int], int]:
    """Scores by status (record x metric) and records counted, from the partial aggregates."""
    totals = {"ok": 0, "error": 0, "not_applicable": 0, "skipped": 0}
    records = 0
    entities = tables["partials"].query_entities(
        "PartitionKey ge @lo and PartitionKey lt @hi", parameters={"lo": f"{name}|", "hi": f"{name}|~"})
    for entity in entities:
        records += int(entity.get("records", 0) or 0)
        for counter in counts_of_entity(entity).get("all", {}).values():
            totals["ok"] += counter.scored
            totals["error"] += counter.errors
            totals["not_applicable"] += counter.not_applicable
            totals["skipped"] += counter.skipped
    return totals, records


def _last_aggregation(name: str) -> str | None:
    from monitor.aggregate import last_aggregation

    return last_aggregation(name)
