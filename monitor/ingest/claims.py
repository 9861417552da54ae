"""Claim records into batches: the step that makes accounting exactly-once.

A record is inserted with *create* in a per-partition transaction together with the rest of its
batch, carrying `origin_blob` and `batch_id`. The insert that succeeds owns the record for ever; a
record that already exists belongs to whoever created it. When it names this blob as its origin
(a re-run after a crash), its batch is adopted again so that it still gets judged.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from azure.data.tables import TableClient, TableTransactionError

from monitor.keys import safe_key, stable_hash
from monitor.records import Record
from monitor.storage.tables import get_entity

MAX_ROUNDS = 10
TRANSACTION_BYTES = 3_000_000
ENTITY_BYTES = 960_000
# A queue message holds 64 KiB once base64-encoded.
MAX_MESSAGE_CHARS = 45_000


def sampled(key: str, rate: float) -> bool:
    """Deterministic sampling on the join key: the same key is in or out everywhere, every time."""
    if rate >= 1.0:
        return True
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@dataclass(frozen=True)
class BatchRef:
    """A batch of records of one hour partition; `keys` is None when only the id is known (adopted)."""

    monitor: str
    partition: str
    batch_id: str
    keys: tuple[str, ...] | None = None

    def to_message(self) -> str:
        """The queue message; without `keys` when they would not fit one (long join keys): the
        evaluator then finds the members by batch id."""
        message = {"monitor": self.monitor, "partition": self.partition, "batch_id": self.batch_id,
                   "keys": list(self.keys) if self.keys is not None else None}
        text = json.dumps(message)
        return text if len(text) <= MAX_MESSAGE_CHARS else json.dumps({**message, "keys": None})

    @classmethod
    def from_message(cls, text: str | bytes) -> BatchRef:
        data = json.loads(text)
        keys = data.get("keys")
        return cls(monitor=str(data["monitor"]), partition=str(data["partition"]), batch_id=str(data["batch_id"]),
                   keys=tuple(str(k) for k in keys) if keys is not None else None)

    @property
    def size(self) -> int:
        return len(self.keys) if self.keys is not None else 0


@dataclass
class ClaimResult:
    batches: list[BatchRef] = field(default_factory=list)
    claimed: int = 0  # records this blob owns (new or adopted)
    foreign: int = 0  # records already owned by another blob
    foreign_keys: list[tuple[str, str]] = field(default_factory=list)  # (key, owner blob)

    def add(self, other: ClaimResult) -> None:
        self.batches += other.batches
        self.claimed += other.claimed
        self.foreign += other.foreign
        self.foreign_keys += other.foreign_keys


class Claimer:
    def __init__(self, table: TableClient, origin: str, batch_size: int, pool: ThreadPoolExecutor) -> None:
        self._table = table
        self._origin = origin
        self._origin_id = stable_hash(origin)[:10]
        self._batch_size = batch_size
        self._pool = pool

    def claim(self, records: Sequence[Record]) -> ClaimResult:
        result = ClaimResult()
        by_partition: dict[str, list[Record]] = defaultdict(list)
        for record in records:
            by_partition[record.partition].append(record)
        for group in by_partition.values():
            group.sort(key=lambda r: r.key)
            for chunk in self._chunks(group):
                result.add(self._claim_chunk(chunk))
        return result

    def _chunks(self, group: list[Record]) -> Iterable[list[Record]]:
        """At most `batch_size` records and about 3 MB of payload (a transaction carries 4 MiB)."""
        chunk: list[Record] = []
        size = 0
        for record in group:
            record_size = entity_bytes(record)
            if chunk and (len(chunk) >= self._batch_size or size + record_size > TRANSACTION_BYTES):
                yield chunk
                chunk, size = [], 0
            chunk.append(record)
            size += record_size
        if chunk:
            yield chunk

    def adopt_existing(self, refs: Iterable[tuple[str, str]]) -> ClaimResult:
        """Records known to be joined (partition, key): adopt the batches of those this blob
        created; the others belong to the blob whose half completed them (not duplicates)."""
        return self._adopt(refs, None, count_foreign=False)[0]

    def _adopt(self, refs: Iterable[tuple[str, str]], idents: dict[str, str] | None = None,
               count_foreign: bool = True) -> tuple[ClaimResult, set[str]]:
        """Look the records up once and return the keys that exist. A stored record built from the
        same input line (`input_ref`, see :func:`record_ref`) is the same record read again: its
        batch is adopted (judged if it never was; ok scores are kept), and it counts for this blob
        only when this blob created it. A record of the same key from another line is a duplicate
        key (`foreign`)."""
        result = ClaimResult()
        adopted: dict[tuple[str, str], list[str]] = defaultdict(list)
        present: set[str] = set()
        pairs = list(refs)
        entities = self._pool.map(lambda p: get_entity(self._table, p[0], safe_key(p[1])), pairs)
        for (partition, key), entity in zip(pairs, entities, strict=True):
            if entity is None:
                continue
            present.add(key)
            mine = entity.get("origin_blob") == self._origin
            stored, expected = entity.get("input_ref"), (idents or {}).get(key)
            same = stored == expected if stored is not None and expected is not None else mine
            if same:
                adopted[(partition, str(entity.get("batch_id", "")))].append(key)
                result.claimed += int(mine)
            elif count_foreign:
                result.foreign += 1
                result.foreign_keys.append((key, str(entity.get("origin_blob", ""))))
        result.batches += [self._ref(partition, batch_id, None) for (partition, batch_id) in adopted]
        return result, present

    def _claim_chunk(self, chunk: list[Record]) -> ClaimResult:
        result = ClaimResult()
        pending = chunk
        for _ in range(MAX_ROUNDS):
            if not pending:
                return result
            batch_id = self._batch_id(pending)
            owned = [replace(r, origin_blob=self._origin, batch_id=batch_id) for r in pending]
            try:
                self._table.submit_transaction([("create", _entity(r)) for r in owned])
            except TableTransactionError as exc:
                if getattr(exc, "error_code", None) != "EntityAlreadyExists":
                    raise
                idents = {r.key: str(r.extra["ref"]) for r in pending if "ref" in r.extra}
                existing, present = self._adopt(((r.partition, r.key) for r in pending), idents or None)
                result.add(existing)
                pending = [r for r in pending if r.key not in present]
                continue
            result.batches.append(self._ref(pending[0].partition, batch_id, tuple(r.key for r in pending)))
            result.claimed += len(pending)
            return result
        raise RuntimeError(f"could not claim {len(pending)} records of {self._origin}: the partition kept changing")

    def _batch_id(self, records: Sequence[Record]) -> str:
        members = stable_hash("\n".join(r.key for r in records))[:16]
        return f"{self._origin_id}-{members}"

    def _ref(self, partition: str, batch_id: str, keys: tuple[str, ...] | None) -> BatchRef:
        monitor = partition.rsplit("|", 1)[0]
        return BatchRef(monitor=monitor, partition=partition, batch_id=batch_id, keys=keys)


def _entity(record: Record) -> dict[str, object]:
    """The stored record, with `input_ref`: which line it was built from (see :meth:`Claimer._adopt`)."""
    entity = record.to_entity()
    if "ref" in record.extra:
        entity["input_ref"] = str(record.extra["ref"])
    return entity


def record_ref(blob: str, line: int) -> str:
    """The identity of a record: the blob and line of its input half (or of its custom JSONL line)."""
    return f"{blob}#{line}"


def entity_bytes(record: Record) -> int:
    """Stored size estimate: strings count 2 bytes a character (UTF-16), plus per-property overhead."""
    total = 0
    for name in ("prompt", "completion", "context", "ground_truth", "chat_history"):
        value = getattr(record, name)
        total += 2 * len(value) if value else 0
    return total + 1024


def check_size(record: Record) -> str | None:
    """Why a record cannot be stored in one table entity (1 MiB), or None when it fits."""
    try:
        record.to_entity()
    except ValueError as exc:
        return str(exc)
    size = entity_bytes(record)
    if size > ENTITY_BYTES:
        return f"the record needs about {size} bytes; a table entity holds at most 1 MiB"
    return None
