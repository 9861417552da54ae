"""One record's problem stays that record's: an odd or very long join key, or a score the table
refuses, never keeps the other records of its evaluation batch from being scored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient

from monitor.ingest.claims import BatchRef
from monitor.monitors import MonitorStore
from monitor.scores import Score
from monitor.services import get_services
from monitor.status import monitor_status
from monitor.storage.tables import Tables, query_partition
from tests.support.host import fire_blob
from tests.support.mdc import envelope, hour_path, jsonl, monitor_config

pytestmark = pytest.mark.azurite
T0 = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
LONG_ID = "L" * 500
IDS = ["good-1", "good-2", "good-3", LONG_ID, "odd/id#1?"]


def _ingest(container: ContainerClient, name: str) -> None:
    for collection in ("model_inputs", "model_outputs"):
        rows = ((lambda i: [{"question": f"What is item {i}?"}]) if collection == "model_inputs"
                else (lambda i: [{"answer": f"Item {i} is a tent.", "context": f"Item {i} is a tent."}]))
        container.upload_blob(hour_path(collection, T0), jsonl(envelope(collection, cid, T0, rows(n))
                                                              for n, cid in enumerate(IDS)))
    MonitorStore().put(monitor_config(name, container.container_name, prefix="modelDataCollector/"))
    for collection in ("model_inputs", "model_outputs"):
        fire_blob(container.container_name, hour_path(collection, T0))


def _scores(name: str) -> dict[tuple[str, str], dict[str, Any]]:
    partition = f"{name}|{T0:%Y%m%d%H}"
    return {(e["record_key"], e["metric"]): e for e in query_partition(Tables.default()["scores"], partition)}


def test_a_500_character_id_is_scored_with_the_rest_of_its_batch(mdc_container: ContainerClient,
                                                                 monitor_name: str) -> None:
    _ingest(mdc_container, monitor_name)
    status = monitor_status(monitor_name)
    assert status["records"] == len(IDS) and status["quarantined"] == 0
    assert status["poison_batches"] == 0
    scores = _scores(monitor_name)
    assert {key for key, _ in scores} == set(IDS)
    assert status["records_counted"] == len(IDS)


class _RefusingTable:
    """The scores table, refusing any entity of one record (as the service answers 400 for it)."""

    def __init__(self, table: Any, refused_key: str) -> None:
        self._table = table
        self._refused = refused_key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def submit_transaction(self, operations: list[Any]) -> Any:
        if any(op[1].get("record_key") == self._refused for op in operations):
            from azure.data.tables import TableTransactionError

            raise TableTransactionError(message="0:One of the request inputs is not valid.")
        return self._table.submit_transaction(operations)

    def upsert_entity(self, entity: dict[str, Any], **kwargs: Any) -> Any:
        if entity.get("record_key") == self._refused and entity.get("detail") != "store_failed":
            error = HttpResponseError(message="One of the request inputs is not valid.")
            error.status_code = 400
            raise error
        return self._table.upsert_entity(entity, **kwargs)


def test_a_score_the_table_refuses_becomes_that_records_error(mdc_container: ContainerClient,
                                                               monitor_name: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _ingest(mdc_container, monitor_name)
    services = get_services()
    tables = services.tables
    refusing = _RefusingTable(tables["scores"], "good-2")
    original = Tables.__getitem__
    monkeypatch.setattr(Tables, "__getitem__",
                        lambda self, logical: refusing if logical == "scores" else original(self, logical))
    config = services.monitors.get(monitor_name)
    records = list(query_partition(original(tables, "records"), f"{monitor_name}|{T0:%Y%m%d%H}"))
    assert len({r["batch_id"] for r in records}) == 1  # one batch holds every record
    ref = BatchRef(monitor=monitor_name, partition=f"{monitor_name}|{T0:%Y%m%d%H}", batch_id=records[0]["batch_id"])
    for score_entity in query_partition(original(tables, "scores"), ref.partition):  # judge again from scratch
        original(tables, "scores").delete_entity(score_entity["PartitionKey"], score_entity["RowKey"])
    original(tables, "partials").delete_entity(ref.partition, ref.batch_id)

    outcome = services.evaluator.evaluate(config, ref)

    monkeypatch.undo()
    scores = _scores(monitor_name)
    assert {key for key, _ in scores} == set(IDS)
    refused = [Score.from_entity(e) for (key, _), e in scores.items() if key == "good-2"]
    assert refused and all(s.status == "error" and s.detail == "store_failed" for s in refused)
    others = [Score.from_entity(e) for (key, _), e in scores.items() if key != "good-2"]
    assert others and all(s.status != "error" for s in others)
    assert outcome.statuses.get("error") == len(refused)


def test_an_unreadable_stored_record_does_not_stop_its_batch(mdc_container: ContainerClient,
                                                            monitor_name: str) -> None:
    """A record an older version stored with a time it wrote badly (year 999 as `999-...`)."""
    _ingest(mdc_container, monitor_name)
    services = get_services()
    partition = f"{monitor_name}|{T0:%Y%m%d%H}"
    records = Tables.default()["records"]
    batch_id = next(iter(query_partition(records, partition)))["batch_id"]
    records.upsert_entity({"PartitionKey": partition, "RowKey": "old-bad", "key": "old-bad",
                           "time": "999-06-01T00:00:00Z", "batch_id": batch_id, "prompt": "p", "completion": "c"})
    for entity in query_partition(Tables.default()["scores"], partition):
        Tables.default()["scores"].delete_entity(entity["PartitionKey"], entity["RowKey"])
    Tables.default()["partials"].delete_entity(partition, batch_id)
    ref = BatchRef(monitor=monitor_name, partition=partition, batch_id=batch_id)  # members found by id
    outcome = services.evaluator.evaluate(services.monitors.get(monitor_name), ref)
    assert outcome.records == len(IDS)
    assert {key for key, _ in _scores(monitor_name)} == set(IDS)
