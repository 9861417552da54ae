"""The ledger of processed blobs: skip re-deliveries, redo crashed runs, and hold per-blob counts.

Counts are per blob and recomputed in full by every run of that blob, so summing them over the
ledger gives exact totals however often a blob is delivered.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableClient, UpdateMode

from monitor.keys import iso, stable_hash
from monitor.storage.tables import get_entity, query_partition


def blob_hash(container: str, name: str) -> str:
    return stable_hash(f"{container}/{name}")


@dataclass
class BlobCounts:
    lines: int = 0
    rows: int = 0  # halves (mdc) or records (jsonl) parsed
    records: int = 0  # records this blob created (owns)
    pending: int = 0  # halves left waiting for their partner
    foreign: int = 0  # completed records already owned by another blob
    quarantined: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    queued: int = 0
    judged_inline: int = 0

    def reject(self, reason: str) -> None:
        self.quarantined += 1
        self.reasons[reason] += 1

    def as_properties(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = json.dumps(dict(self.reasons), sort_keys=True)
        return data


class Ledger:
    def __init__(self, table: TableClient, monitor: str) -> None:
        self._table = table
        self._monitor = monitor

    def is_done(self, container: str, name: str, etag: str | None) -> bool:
        entity = get_entity(self._table, self._monitor, blob_hash(container, name))
        return bool(entity and entity.get("state") == "done" and (etag is None or entity.get("etag") == etag))

    def start(self, container: str, name: str, etag: str | None) -> None:
        self._table.upsert_entity({
            "PartitionKey": self._monitor, "RowKey": blob_hash(container, name), "blob": f"{container}/{name}",
            "etag": etag or "", "state": "processing", "started_at": iso(datetime.now(UTC)),
        })

    def finish(self, container: str, name: str, etag: str | None, counts: BlobCounts, state: str = "done") -> None:
        self._table.upsert_entity({
            "PartitionKey": self._monitor, "RowKey": blob_hash(container, name), "blob": f"{container}/{name}",
            "etag": etag or "", "state": state, "finished_at": iso(datetime.now(UTC)), **counts.as_properties(),
        }, mode=UpdateMode.MERGE)

    def entries(self) -> Iterator[dict[str, Any]]:
        return query_partition(self._table, self._monitor)
