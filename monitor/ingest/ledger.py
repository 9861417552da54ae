"""The tail ledger: one entity per (monitor, blob) holding how far the blob has been read.

The entity is the commit point of ingestion (docs/ingestion.md): the byte offset consumed, the
bytes of a line not yet complete (`carry`), the blob's state (open, closed, replaced, skipped) and
the blob's counts so far. A pass takes a lease on the entity (a conditional update on its ETag)
before reading, and commits offset, counts and release in one conditional update: two passes can
never both commit, and a pass that crashes before its commit leaves the old offset, so the bytes
are read again and the counts recomputed from the old ones.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from monitor.keys import iso, parse_time, stable_hash
from monitor.storage.tables import query_partition

# Bytes of a held-back line kept in the entity (one binary property holds 64 KiB); a longer
# unfinished line is read again from its first byte on the next pass instead.
MAX_CARRY = 60 * 1024
# Bytes before the offset remembered to recognise a blob overwritten with other content.
CHECK_BYTES = 32
STATES = ("open", "closed", "replaced", "skipped")


def blob_hash(container: str, name: str) -> str:
    return stable_hash(f"{container}/{name}")


@dataclass
class BlobCounts:
    lines: int = 0  # complete lines consumed (line numbers continue from here)
    rows: int = 0  # halves (mdc) or records (jsonl) parsed
    records: int = 0  # records this blob created (owns)
    pending: int = 0  # sampled halves left waiting for their partner in the join table
    joined_in_memory: int = 0  # records whose halves met inside one pass (nothing persisted for them)
    unsampled: int = 0  # requests outside the sample: counted in row_count, never stored
    foreign: int = 0  # completed records already owned by another blob (quarantined as duplicate_key)
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    queued: int = 0
    judged_inline: int = 0
    bytes_read: int = 0

    def reject(self, reason: str) -> None:
        self.quarantined += 1
        self.reasons[reason] += 1

    def as_properties(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = json.dumps(dict(self.reasons), sort_keys=True)
        return data

    @classmethod
    def of_entity(cls, entity: dict[str, Any]) -> BlobCounts:
        counts = cls()
        for item in fields(cls):
            if item.name != "reasons":
                setattr(counts, item.name, int(entity.get(item.name, 0) or 0))
        counts.reasons = Counter(json.loads(entity.get("reasons") or "{}"))
        return counts


@dataclass
class TailState:
    """Where a blob stands for one monitor (the ledger entity, decoded)."""

    monitor: str
    container: str
    name: str
    state: str = "open"
    offset: int = 0  # bytes consumed, carry included
    size: int = 0  # the blob's size at the last look
    blob_etag: str = ""
    carry: bytes = b""  # an unfinished last line
    carry_start: int = 0  # where the unfinished line starts (== offset - len(carry) when kept)
    check: bytes = b""  # the CHECK_BYTES before `offset`
    period_end: datetime | None = None
    changed_at: datetime | None = None  # when a look last saw the size change
    unread_since: datetime | None = None  # first look that saw bytes not yet read
    unsampled_hours: dict[str, dict[str, int]] = field(default_factory=dict)  # partition -> segment -> n
    counts: BlobCounts = field(default_factory=BlobCounts)
    detail: str = ""
    etag: str | None = None  # the entity's ETag (None: not stored yet)
    lease: str = ""

    @property
    def blob(self) -> str:
        return f"{self.container}/{self.name}"

    @property
    def row_key(self) -> str:
        return blob_hash(self.container, self.name)

    def to_entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": self.monitor, "RowKey": self.row_key, "blob": self.blob, "container": self.container,
            "name": self.name, "state": self.state, "offset": self.offset, "size": self.size,
            "blob_etag": self.blob_etag, "carry": self.carry, "carry_start": self.carry_start,
            "check": self.check, "period_end": iso(self.period_end) if self.period_end else "",
            "changed_at": iso(self.changed_at) if self.changed_at else "",
            "unread_since": iso(self.unread_since) if self.unread_since else "",
            "unsampled_hours": json.dumps(self.unsampled_hours, sort_keys=True, separators=(",", ":")),
            "detail": self.detail[:2000], "lease": "", "lease_until": "",
            **self.counts.as_properties(),
        }
        return entity

    @classmethod
    def of_entity(cls, entity: dict[str, Any]) -> TailState:
        def moment(name: str) -> datetime | None:
            value = entity.get(name)
            return parse_time(str(value)) if value else None

        return cls(
            monitor=str(entity["PartitionKey"]), container=str(entity.get("container", "")),
            name=str(entity.get("name", "")), state=str(entity.get("state", "open")),
            offset=int(entity.get("offset", 0) or 0), size=int(entity.get("size", 0) or 0),
            blob_etag=str(entity.get("blob_etag", "")), carry=bytes(entity.get("carry") or b""),
            carry_start=int(entity.get("carry_start", 0) or 0), check=bytes(entity.get("check") or b""),
            period_end=moment("period_end"), changed_at=moment("changed_at"), unread_since=moment("unread_since"),
            unsampled_hours=json.loads(entity.get("unsampled_hours") or "{}"),
            counts=BlobCounts.of_entity(entity), detail=str(entity.get("detail", "")),
            lease=str(entity.get("lease", "")),
        )


class Ledger:
    def __init__(self, table: TableClient, monitor: str) -> None:
        self._table = table
        self._monitor = monitor

    def get(self, container: str, name: str) -> tuple[TailState | None, bool]:
        """The state of one blob and whether its lease is free now."""
        try:
            entity = self._table.get_entity(self._monitor, blob_hash(container, name))
        except ResourceNotFoundError:
            return None, True
        return _decode(entity), _lease_free(entity)

    def open_states(self) -> Iterator[tuple[TailState, bool]]:
        """The monitor's open blobs (one filtered partition query: closed blobs are never read back)."""
        for entity in self._table.query_entities("PartitionKey eq @pk and state eq 'open'",
                                                 parameters={"pk": self._monitor}):
            yield _decode(entity), _lease_free(entity)

    def acquire(self, state: TailState, lease_seconds: float) -> bool:
        """Take the lease on a blob's entity (create it when new). False: another pass holds it or
        changed it since it was read."""
        state.lease = uuid.uuid4().hex
        until = iso(datetime.now(UTC) + timedelta(seconds=lease_seconds))
        entity = {**state.to_entity(), "lease": state.lease, "lease_until": until}
        try:
            if state.etag is None:
                meta = self._table.create_entity(entity)
            else:
                meta = self._table.update_entity(entity, mode=UpdateMode.REPLACE, etag=state.etag,
                                                 match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False
        state.etag = str(meta["etag"])
        return True

    def commit(self, state: TailState) -> bool:
        """Write the state and release the lease, only if the lease is still ours (ETag)."""
        try:
            if state.etag is None:
                meta = self._table.create_entity(state.to_entity())
            else:
                meta = self._table.update_entity(state.to_entity(), mode=UpdateMode.REPLACE, etag=state.etag,
                                                 match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
            return False
        state.etag = str(meta["etag"])
        state.lease = ""
        return True

    def release(self, state: TailState) -> None:
        """Give the lease back without committing (a pass that failed but whose process lives on):
        the next pass reads the same bytes at once instead of waiting for the lease to expire."""
        if state.etag is None or not state.lease:
            return
        with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
            self._table.update_entity({"PartitionKey": self._monitor, "RowKey": state.row_key, "lease": "",
                                       "lease_until": ""}, mode=UpdateMode.MERGE, etag=state.etag,
                                      match_condition=MatchConditions.IfNotModified)

    def entries(self) -> Iterator[dict[str, Any]]:
        return query_partition(self._table, self._monitor)


def _decode(entity: Any) -> TailState:
    state = TailState.of_entity(dict(entity))
    state.etag = str(entity.metadata["etag"])
    return state


def _lease_free(entity: Any) -> bool:
    until = entity.get("lease_until")
    return not until or parse_time(str(until)) <= datetime.now(UTC)
