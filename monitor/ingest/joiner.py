"""Join model inputs with model outputs, whichever arrives first, across blobs and instances.

Both halves of a request meet in one entity of the `joinhalves` table (keyed by join key). Every
write is conditional on what was read (create-if-absent or If-Match), so two instances offering
the two halves at the same moment cannot both decide "pending": one of them sees the other.

* first half: stored as `pending` (with its row) until the partner comes;
* second half: the record is returned to the caller, who claims it, then calls :meth:`mark_joined`,
  which replaces the entity with a slim `joined` marker (the rows are no longer needed);
* a half offered again after the join (re-delivery) gets :class:`AlreadyJoined`.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, UpdateMode

from monitor.ingest.envelopes import Half
from monitor.keys import hour_key, iso, join_shard, parse_time, safe_key
from monitor.storage.tables import pack_text, unpack_text

OTHER = {"input": "output", "output": "input"}
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Pending:
    half: Half


@dataclass(frozen=True)
class Completed:
    input: Half
    output: Half
    etag: str


@dataclass(frozen=True)
class AlreadyJoined:
    half: Half
    record_partition: str


Outcome = Pending | Completed | AlreadyJoined


class Joiner:
    def __init__(self, table: TableClient, monitor: str, blob: str) -> None:
        self._table = table
        self._monitor = monitor
        self._blob = blob

    def partition(self, key: str) -> str:
        return f"{self._monitor}|{join_shard(key)}"

    def offer(self, half: Half) -> Outcome:
        """Store or complete one half. Raises ValueError when the row is too large to store."""
        partition, row_key = self.partition(half.key), safe_key(half.key)
        for _ in range(MAX_ATTEMPTS):
            entity = self._get(partition, row_key)
            if entity is None:
                if self._create_pending(partition, row_key, half):
                    return Pending(half)
                continue
            if entity.get("state") == "joined":
                return AlreadyJoined(half, str(entity.get("record_partition", "")))
            other = OTHER[half.side]
            if f"{other}_row" not in entity:
                return Pending(half)  # our own half again, partner still missing
            partner = self._half_of(entity, other, half.key)
            pair = (half, partner) if half.side == "input" else (partner, half)
            return Completed(input=pair[0], output=pair[1], etag=str(entity.metadata["etag"]))
        raise RuntimeError(f"join key {half.key!r}: the join entity kept changing; try again")

    def mark_joined(self, done: Completed, record_partition: str) -> None:
        """Replace the join entity by a slim marker once the record is claimed (idempotent)."""
        key = done.input.key
        marker = {
            "PartitionKey": self.partition(key), "RowKey": safe_key(key), "key": key, "state": "joined",
            "joined_at": iso(datetime.now(UTC)), "record_partition": record_partition,
            "time": iso(done.input.time), "hour": hour_key(done.input.time),
            "deployment": done.input.deployment, "model_version": done.input.model_version,
        }
        marker = {k: v for k, v in marker.items() if v is not None}
        # A conflict means a concurrent re-delivery marked it already: the same marker.
        with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
            self._table.update_entity(marker, mode=UpdateMode.REPLACE, etag=done.etag,
                                      match_condition=MatchConditions.IfNotModified)

    def _get(self, partition: str, row_key: str) -> TableEntity | None:
        try:
            return self._table.get_entity(partition, row_key)
        except ResourceNotFoundError:
            return None

    def _create_pending(self, partition: str, row_key: str, half: Half) -> bool:
        now = iso(datetime.now(UTC))
        entity: dict[str, Any] = {
            "PartitionKey": partition, "RowKey": row_key, "key": half.key, "state": "pending",
            "pending_side": half.side, "time": iso(half.time), "hour": hour_key(half.time), "first_seen": now,
            f"{half.side}_time": iso(half.time), f"{half.side}_blob": self._blob, f"{half.side}_line": half.line,
            f"{half.side}_request_id": half.request_id,
            **pack_text(f"{half.side}_row", json.dumps(half.row, ensure_ascii=False, separators=(",", ":"))),
        }
        for name in ("endpoint", "deployment", "model_version"):
            value = getattr(half, name)
            if value is not None:
                entity[name] = value
        entity = {k: v for k, v in entity.items() if v is not None}
        try:
            self._table.create_entity(entity)
            return True
        except ResourceExistsError:
            return False

    @staticmethod
    def _half_of(entity: TableEntity, side: str, key: str) -> Half:
        row = json.loads(unpack_text(entity, f"{side}_row") or "{}")
        return Half(
            key=key, side="input" if side == "input" else "output", row=row,
            time=parse_time(str(entity.get(f"{side}_time") or entity["time"])),
            endpoint=entity.get("endpoint"), deployment=entity.get("deployment"),
            model_version=entity.get("model_version"), line=int(entity.get(f"{side}_line", 0)),
            request_id=entity.get(f"{side}_request_id"),
        )
