"""Claim transactions written without the SDK's multipart machinery (monitor/ingest/wire.py):
what they store reads back exactly as the SDK would have stored it, all or nothing."""

from __future__ import annotations

import pytest

from monitor.azurite import Azurite
from monitor.ingest.wire import TransactionError, check_answer, create_all
from monitor.storage.tables import Tables, query_partition

pytestmark = pytest.mark.azurite


def test_created_entities_read_back_exactly(storage: Azurite, monitor_name: str) -> None:
    table = Tables.default()["records"]
    partition = f"{monitor_name}|2026-11-25T10"
    entities = [{"PartitionKey": partition, "RowKey": f"k{i:03d}", "prompt": f"Ça coûte {i} € — «ok»\n\"quoted\"",
                 "sampled": i % 2 == 0, "line": i, "empty": ""} for i in range(60)]
    create_all(table, entities)
    stored = sorted(query_partition(table, partition), key=lambda e: str(e["RowKey"]))
    assert [{k: e[k] for k in ("PartitionKey", "RowKey", "prompt", "sampled", "line", "empty")} for e in stored] \
        == entities


def test_one_existing_entity_refuses_the_whole_transaction(storage: Azurite, monitor_name: str) -> None:
    table = Tables.default()["records"]
    partition = f"{monitor_name}|2026-11-25T11"
    create_all(table, [{"PartitionKey": partition, "RowKey": "b", "x": "first"}])
    with pytest.raises(TransactionError) as refused:
        create_all(table, [{"PartitionKey": partition, "RowKey": k, "x": "second"} for k in ("a", "b", "c")])
    assert refused.value.error_code == "EntityAlreadyExists"
    assert [(e["RowKey"], e["x"]) for e in query_partition(table, partition)] == [("b", "first")]


def test_other_property_types_go_through_the_sdk(storage: Azurite, monitor_name: str) -> None:
    table = Tables.default()["records"]
    partition = f"{monitor_name}|2026-11-25T12"
    create_all(table, [{"PartitionKey": partition, "RowKey": "other", "ratio": 0.5, "raw": b"\x00\x01"}])
    (stored,) = query_partition(table, partition)
    assert stored["ratio"] == 0.5 and bytes(stored["raw"]) == b"\x00\x01"


def test_answers_are_read_by_their_status_lines() -> None:
    ok = b"--r\r\nHTTP/1.1 204 No Content\r\n\r\n--r\r\nHTTP/1.1 204 No Content\r\n\r\n--r--"
    check_answer(ok, 2)
    with pytest.raises(TransactionError, match="no answer"):
        check_answer(ok, 3)
    refused = (b'--r\r\nHTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n\r\n'
               b'{"odata.error":{"code":"EntityAlreadyExists","message":{"value":"1:exists"}}}\r\n--r--')
    with pytest.raises(TransactionError) as error:
        check_answer(refused, 3)
    assert error.value.error_code == "EntityAlreadyExists"
