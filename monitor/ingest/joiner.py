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
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, TableEntity, TableTransactionError, UpdateMode

from monitor.ingest.envelopes import Half
from monitor.keys import hour_key, iso, join_shard, parse_time, safe_key
from monitor.storage.tables import TRANSACTION_LIMIT, TextTooLargeError, pack_text, unpack_text

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
    input_blob: str = ""
    output_blob: str = ""


@dataclass(frozen=True)
class AlreadyJoined:
    half: Half
    record_partition: str
    input_blob: str = ""  # the blob that owns the record


@dataclass(frozen=True)
class Duplicate:
    """A half whose side is already held for this join key by another line (docs/ingestion.md)."""

    half: Half
    first: str  # where the first one came from: `blob line N`


Outcome = Pending | Completed | AlreadyJoined | Duplicate
# A half and the blob it was read from.
Offer = tuple[Half, str]
TRANSACTION_BYTES = 1_000_000  # per transaction (4 MiB allowed; shards are written in parallel)
QUERY_KEYS = 15  # row keys per lookup query (a filter holds at most 15 comparisons)


class Joiner:
    def __init__(self, table: TableClient, monitor: str, blob: str = "") -> None:
        self._table = table
        self._monitor = monitor
        self._blob = blob

    def partition(self, key: str) -> str:
        return f"{self._monitor}|{join_shard(key)}"

    def offer(self, half: Half, blob: str | None = None) -> Outcome:
        """Store or complete one half. Raises TextTooLargeError when the row is too large to store."""
        blob = self._blob if blob is None else blob
        partition, row_key = self.partition(half.key), safe_key(half.key)
        for _ in range(MAX_ATTEMPTS):
            entity = self._get(partition, row_key)
            if entity is None:
                if self._create_pending(partition, row_key, half, blob):
                    return Pending(half)
                continue
            return self._decide(entity, half, blob)
        raise RuntimeError(f"join key {half.key!r}: the join entity kept changing; try again")

    def offer_many(self, offers: list[Offer], pool: ThreadPoolExecutor) -> list[Outcome | TextTooLargeError]:
        """Offer lonely halves in batches: one lookup query per 15 keys of a shard, new pending
        halves created in per-shard transactions; anything contended falls back to :meth:`offer`."""
        by_partition: dict[str, list[int]] = defaultdict(list)
        for index, (half, _) in enumerate(offers):
            by_partition[self.partition(half.key)].append(index)
        outcomes: list[Outcome | TextTooLargeError | None] = [None] * len(offers)
        jobs = [(p, ix[i:i + QUERY_KEYS]) for p, ix in by_partition.items() for i in range(0, len(ix), QUERY_KEYS)]
        found: dict[tuple[str, str], TableEntity] = {}
        for part in pool.map(lambda job: self._lookup(job[0], [offers[i][0].key for i in job[1]]), jobs):
            found.update(part)
        missing: dict[str, list[int]] = defaultdict(list)
        for index, (half, blob) in enumerate(offers):
            partition = self.partition(half.key)
            entity = found.get((partition, safe_key(half.key)))
            if entity is not None:
                outcomes[index] = self._decide(entity, half, blob)
            else:
                missing[partition].append(index)
        creates = [(p, ix[i:i + TRANSACTION_LIMIT]) for p, ix in missing.items()
                   for i in range(0, len(ix), TRANSACTION_LIMIT)]
        for indexes, created in zip((c[1] for c in creates), pool.map(lambda c: self._create_many(
                c[0], [offers[i] for i in c[1]]), creates), strict=True):
            for i in indexes:
                outcomes[i] = Pending(offers[i][0]) if created else None
        rest = [i for i, outcome in enumerate(outcomes) if outcome is None]
        for i, outcome in zip(rest, pool.map(lambda i: self._offer_safely(*offers[i]), rest), strict=True):
            outcomes[i] = outcome
        return [o for o in outcomes if o is not None]

    def _offer_safely(self, half: Half, blob: str) -> Outcome | TextTooLargeError:
        try:
            return self.offer(half, blob)
        except TextTooLargeError as exc:
            return exc

    def _lookup(self, partition: str, keys: list[str]) -> dict[tuple[str, str], TableEntity]:
        names = {f"r{i}": safe_key(k) for i, k in enumerate(dict.fromkeys(keys))}
        flt = "PartitionKey eq @pk and ( " + " or ".join(f"RowKey eq @{n}" for n in names) + " )"
        entities = self._table.query_entities(flt, parameters={"pk": partition, **names})
        return {(partition, str(e["RowKey"])): e for e in entities}

    def _create_many(self, partition: str, offers: list[Offer]) -> bool:
        """Create pending entities in transactions (at most ~3 MB each); False when any is
        contended or too large (the caller then offers those one by one: creates are idempotent)."""
        keys = [safe_key(h.key) for h, _ in offers]
        if len(set(keys)) != len(keys):
            return False
        try:
            entities = [self._pending_entity(partition, safe_key(h.key), h, b) for h, b in offers]
            chunk: list[Any] = []
            size = 0
            for entity in entities:
                entity_size = sum(2 * len(v) for v in entity.values() if isinstance(v, str)) + 512
                if chunk and size + entity_size > TRANSACTION_BYTES:
                    self._table.submit_transaction(chunk)
                    chunk, size = [], 0
                chunk.append(("create", entity))
                size += entity_size
            if chunk:
                self._table.submit_transaction(chunk)
        except (TableTransactionError, ValueError, HttpResponseError):
            return False
        return True

    def _decide(self, entity: TableEntity, half: Half, blob: str) -> Outcome:
        """What an existing join entity means for a half offered against it."""
        mine = (str(entity.get(f"{half.side}_blob", "")), int(entity.get(f"{half.side}_line", 0) or 0))
        if entity.get("state") == "joined":
            if mine[0] and mine != (blob, half.line):
                return Duplicate(half, f"{mine[0]} line {mine[1]}")
            return AlreadyJoined(half, str(entity.get("record_partition", "")), str(entity.get("input_blob", "")))
        other = OTHER[half.side]
        if f"{half.side}_row" in entity and mine != (blob, half.line):
            return Duplicate(half, f"{mine[0]} line {mine[1]}")
        if f"{other}_row" not in entity:
            return Pending(half)  # our own half again (a re-read), partner still missing
        partner = self._half_of(entity, other, half.key)
        partner_blob = str(entity.get(f"{other}_blob", ""))
        if half.side == "input":
            return Completed(half, partner, str(entity.metadata["etag"]), blob, partner_blob)
        return Completed(partner, half, str(entity.metadata["etag"]), partner_blob, blob)

    def mark_joined(self, done: Completed, record_partition: str) -> None:
        """Replace the join entity by a slim marker once the record is claimed (idempotent)."""
        key = done.input.key
        marker = {
            "PartitionKey": self.partition(key), "RowKey": safe_key(key), "key": key, "state": "joined",
            "joined_at": iso(datetime.now(UTC)), "record_partition": record_partition,
            "time": iso(done.input.time), "hour": hour_key(done.input.time),
            "input_blob": done.input_blob, "input_line": done.input.line,
            "output_blob": done.output_blob, "output_line": done.output.line,
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

    def _create_pending(self, partition: str, row_key: str, half: Half, blob: str) -> bool:
        try:
            self._table.create_entity(self._pending_entity(partition, row_key, half, blob))
            return True
        except ResourceExistsError:
            return False

    def _pending_entity(self, partition: str, row_key: str, half: Half, blob: str) -> dict[str, Any]:
        """Raises TextTooLargeError when the row is too large for one entity."""
        now = iso(datetime.now(UTC))
        entity: dict[str, Any] = {
            "PartitionKey": partition, "RowKey": row_key, "key": half.key, "state": "pending",
            "pending_side": half.side, "time": iso(half.time), "hour": hour_key(half.time), "first_seen": now,
            f"{half.side}_time": iso(half.time), f"{half.side}_blob": blob, f"{half.side}_line": half.line,
            f"{half.side}_request_id": half.request_id,
            **pack_text(f"{half.side}_row", json.dumps(half.row, ensure_ascii=False, separators=(",", ":"))),
        }
        for name in ("endpoint", "deployment", "model_version"):
            value = getattr(half, name)
            if value is not None:
                entity[name] = value
        return {k: v for k, v in entity.items() if v is not None}

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
