"""Table Storage helpers shared by every stage.

* :class:`Tables` hands out table clients by logical name and creates each table once per process.
* :func:`write_entities` writes entities in entity-group transactions of at most 100 per partition
  (Azure's limit; Azurite rejects larger ones with a reply the SDK cannot parse).
* :func:`pack_text` / :func:`unpack_text` store strings longer than a property allows (32K UTF-16
  characters) across numbered properties.

See docs/architecture.md for the layout of every table.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from monitor.settings import get_settings
from monitor.storage.clients import table_service

# Logical table names -> Azure table names (alphanumeric, 3-63 characters).
TABLES: dict[str, str] = {
    "monitors": "monitors",
    "ledger": "blobledger",
    "quarantine": "quarantine",
    "joins": "joinhalves",
    "records": "records",
    "scores": "scores",
    "partials": "partials",
    "dirty": "dirtyhours",
    "usage": "tokenusage",
    "windows": "windows",
    "alerts": "alerts",
    "runs": "aggregationruns",
    "poison": "poisonbatches",
    "quota": "quotaleases",
    "shapes": "shapewindows",
    "drift": "drift",
    "golden": "goldenset",
    "calibration": "calibrationruns",
}

TRANSACTION_LIMIT = 100
# A string property holds at most 64 KiB, i.e. 32K UTF-16 code units; stay below it.
TEXT_CHUNK = 30_000
# An entity holds at most 1 MiB in all; leave room for the other properties.
MAX_PACKED_CHARS = TEXT_CHUNK * 14

Operation = Literal["upsert", "create", "merge"]


class Tables:
    """Table clients of one storage account, by logical name, created on first use."""

    def __init__(self, service: TableServiceClient) -> None:
        self._service = service
        self._clients: dict[str, TableClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> Tables:
        return _default_tables()

    def __getitem__(self, logical: str) -> TableClient:
        client = self._clients.get(logical)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(logical)
            if client is None:
                name = TABLES[logical]
                with contextlib.suppress(ResourceExistsError):
                    self._service.create_table(name)
                client = self._service.get_table_client(name)
                self._clients[logical] = client
        return client


_default_lock = threading.Lock()
_default: dict[str, Tables] = {}


def _default_tables() -> Tables:
    conn = get_settings().monitor_storage()
    key = repr(conn)
    with _default_lock:
        if key not in _default:
            _default[key] = Tables(table_service(conn))
        return _default[key]


def reset_tables() -> None:
    with _default_lock:
        _default.clear()


def chunks_by_partition(
    entities: Iterable[Mapping[str, Any]], size: int = TRANSACTION_LIMIT
) -> Iterator[list[Mapping[str, Any]]]:
    """Group entities by PartitionKey and cut each group into lists of at most `size`."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for entity in entities:
        groups[entity["PartitionKey"]].append(entity)
    for group in groups.values():
        for start in range(0, len(group), size):
            yield group[start:start + size]


def write_entities(table: TableClient, entities: Iterable[Mapping[str, Any]], op: Operation = "upsert") -> int:
    """Write entities in per-partition transactions of at most 100; returns how many were written.

    `upsert` replaces whole entities, `merge` updates only the given properties; both are idempotent.
    """
    written = 0
    for chunk in chunks_by_partition(entities):
        ops: list[Any]
        if op == "upsert":
            ops = [("upsert", dict(e), {"mode": UpdateMode.REPLACE}) for e in chunk]
        elif op == "merge":
            ops = [("upsert", dict(e), {"mode": UpdateMode.MERGE}) for e in chunk]
        else:
            ops = [("create", dict(e)) for e in chunk]
        table.submit_transaction(ops)
        written += len(chunk)
    return written


def get_entity(table: TableClient, partition: str, row: str) -> dict[str, Any] | None:
    try:
        return dict(table.get_entity(partition, row))
    except ResourceNotFoundError:
        return None


def query_partition(table: TableClient, partition: str, *, row_from: str | None = None,
                    row_to: str | None = None, select: list[str] | None = None,
                    extra_filter: str | None = None,
                    parameters: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Entities of one partition, optionally within a RowKey range [row_from, row_to)."""
    clauses = ["PartitionKey eq @pk"]
    params: dict[str, Any] = {"pk": partition, **(parameters or {})}
    if row_from is not None:
        clauses.append("RowKey ge @rfrom")
        params["rfrom"] = row_from
    if row_to is not None:
        clauses.append("RowKey lt @rto")
        params["rto"] = row_to
    if extra_filter:
        clauses.append(f"( {extra_filter} )")  # spaces: the SDK finds @names between blanks
    for entity in table.query_entities(" and ".join(clauses), parameters=params, select=select):
        yield dict(entity)


class TextTooLargeError(ValueError):
    """A text too large for one table entity (see :func:`pack_text`)."""


def pack_text(prefix: str, text: str | None) -> dict[str, Any]:
    """Properties that hold `text`: `{prefix}` alone, or `{prefix}`, `{prefix}_1`, ... when long.

    Raises TextTooLargeError when the text is too large for one entity.
    """
    if text is None:
        return {}
    if len(text) > MAX_PACKED_CHARS:
        raise TextTooLargeError(f"{prefix} has {len(text)} characters; at most {MAX_PACKED_CHARS} fit in one entity")
    parts = [text[i:i + TEXT_CHUNK] for i in range(0, len(text), TEXT_CHUNK)] or [""]
    out: dict[str, Any] = {prefix: parts[0]}
    for index, part in enumerate(parts[1:], start=1):
        out[f"{prefix}_{index}"] = part
    if len(parts) > 1:
        out[f"{prefix}_parts"] = len(parts)
    return out


def unpack_text(entity: Mapping[str, Any], prefix: str) -> str | None:
    first = entity.get(prefix)
    if first is None:
        return None
    count = int(entity.get(f"{prefix}_parts", 1))
    return str(first) + "".join(str(entity.get(f"{prefix}_{i}", "")) for i in range(1, count))
