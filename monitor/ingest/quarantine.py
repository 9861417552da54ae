"""Bad input, kept: each rejected line is recorded with blob, line number, reason and an excerpt."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import TableClient

from monitor.errors import UserError
from monitor.keys import iso

# Reasons a line (or a whole blob, line 0) is quarantined; each is explained in docs/ingest.md.
REASONS = (
    "empty_file", "invalid_utf8", "line_too_long", "invalid_json", "not_an_envelope", "wrong_type",
    "missing_data", "dataref_not_found", "dataref_invalid", "missing_join_key", "record_too_large",
    "bad_path", "json_too_deep", "number_too_long", "invalid_unicode", "invalid_time", "time_out_of_range",
    "join_key_too_long", "dataref_outside_container", "unexpected_error", "duplicate_key", "blob_replaced",
)
EXCERPT_CHARS = 300
QUARANTINE_BLOCK = 1000


class RejectedInputError(ValueError):
    """Input refused for a known reason: `reason` is a quarantine reason (REASONS), `detail` says
    what is wrong, naming the field."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Rejection:
    line: int
    reason: str
    detail: str
    excerpt: str = ""
    row: int | None = None  # the row of a batched line, where only that row is bad

    def entity(self, monitor: str, blob: str, blob_hash: str) -> dict[str, Any]:
        return {
            "PartitionKey": quarantine_partition(monitor, blob_hash, self.line),
            "RowKey": f"{blob_hash}:{self.line:09d}" + ("" if self.row is None else f":{self.row:05d}"),
            "blob": blob,
            "line": self.line,
            "reason": self.reason,
            "detail": self.detail[:1000],
            "excerpt": self.excerpt[:EXCERPT_CHARS],
            "at": iso(datetime.now(UTC)),
        }


def quarantine_partition(monitor: str, blob_hash: str, line: int) -> str:
    """`{monitor}|{blob}-{block}`: a partition per blob and block of QUARANTINE_BLOCK lines.

    A monitor's quarantine spread over many small partitions (rather than one) keeps writes cheap
    however many lines a file loses: a partition takes a bounded write rate, and Azurite looks
    entities up by scanning their partition (one huge partition made every write slower)."""
    return f"{monitor}|{blob_hash[:12]}-{line // QUARANTINE_BLOCK:07d}"


def quarantine_entries(table: TableClient, monitor: str, *, reason: str | None = None,
                       select: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every quarantine entity of a monitor (by blob, in line order), optionally of one reason.

    Also reads entries written before the table was partitioned by blob (partition = monitor)."""
    query = "( PartitionKey eq @pk or ( PartitionKey ge @lo and PartitionKey lt @hi ) )"  # blanks around @names
    parameters: dict[str, Any] = {"pk": monitor, "lo": f"{monitor}|", "hi": f"{monitor}}}"}
    if reason is not None:
        query += " and reason eq @reason"
        parameters["reason"] = reason
    for entity in table.query_entities(query, parameters=parameters, select=select):
        yield dict(entity)


def quarantine_entities(rejections: Iterable[Rejection], monitor: str, blob: str,
                        blob_hash: str) -> list[dict[str, Any]]:
    """The entities of a blob's rejections, with distinct RowKeys (a line can be rejected more than
    once, e.g. two oversized rows of one batched line): a repeat gets `:2`, `:3`... in the order given,
    so a re-run of the blob rewrites the same entities. Write them with `write_entities` (table
    transactions of up to 100 per partition): a file of bad lines costs what a file of good lines does."""
    seen: Counter[str] = Counter()
    entities = []
    for rejection in rejections:
        entity = rejection.entity(monitor, blob, blob_hash)
        seen[entity["RowKey"]] += 1
        if seen[entity["RowKey"]] > 1:
            entity["RowKey"] = f"{entity['RowKey']}:{seen[entity['RowKey']]}"
        entities.append(entity)
    return entities


def excerpt_of(data: bytes) -> str:
    return data[:EXCERPT_CHARS].decode("utf-8", errors="replace")


def count_reasons(rejections: list[Rejection]) -> dict[str, int]:
    return dict(Counter(r.reason for r in rejections))


def read_quarantine(table: TableClient, monitor: str, *, reason: str | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
    """Quarantined lines of a monitor (grouped by blob, in line order), optionally of one reason."""
    if reason is not None and reason not in REASONS:
        raise UserError(f"unknown quarantine reason {reason!r}; reasons are {', '.join(REASONS)}",
                        details=[{"field": "reason", "message": "unknown reason"}])
    fields = ("blob", "line", "reason", "detail", "excerpt", "at")
    entries = []
    for entity in quarantine_entries(table, monitor, reason=reason, select=list(fields)):
        entries.append({name: entity.get(name) for name in fields})
        if len(entries) >= limit:
            break
    return entries
