"""The reference MDC hour through the blob trigger, invoked as the host would, on Azurite."""

from __future__ import annotations

import pytest
from azure.storage.blob import ContainerClient

from monitor.monitors import MonitorStore
from monitor.services import get_services
from monitor.status import monitor_status
from monitor.storage.tables import Tables, query_partition
from tests.support.host import bindings, fire_blob
from tests.support.mdc import INPUTS, OUTPUTS, monitor_config, upload_reference

pytestmark = pytest.mark.azurite
EXPECTED_KEYS = {"7415b7a9-0001", "7415b7a9-0002_0", "7415b7a9-0002_1", "7415b7a9-0003"}


def _setup(container: ContainerClient, name: str) -> None:
    upload_reference(container)
    MonitorStore().put(monitor_config(name, container.container_name))


def _record_keys(name: str) -> set[str]:
    return {e["key"] for e in query_partition(Tables.default()["records"], f"{name}|2026112014")}


def _assert_reference_result(name: str) -> None:
    status = monitor_status(name)
    assert _record_keys(name) == EXPECTED_KEYS
    assert status["records"] == 4
    assert status["unmatched"] == 1
    assert status["unmatched_detail"]["inputs"] == 1
    assert status["blobs_processed"] == 2
    assert status["quarantined"] == 0
    # 4 records x 5 metrics: coherence, fluency, groundedness, relevance scored; similarity has no
    # ground truth in this hour, so it is not applicable (never a failure).
    assert status["scores"] == {"ok": 16, "error": 0, "not_applicable": 4, "skipped": 0}
    assert status["records_counted"] == 4


@pytest.mark.parametrize("order", [(INPUTS, OUTPUTS), (OUTPUTS, INPUTS)], ids=["inputs-first", "outputs-first"])
def test_reference_hour_joins_four_records(mdc_container: ContainerClient, monitor_name: str,
                                           order: tuple[str, str]) -> None:
    _setup(mdc_container, monitor_name)
    for name in order:
        fire_blob(mdc_container.container_name, name)
    _assert_reference_result(monitor_name)


def test_redelivered_blobs_change_nothing(mdc_container: ContainerClient, monitor_name: str) -> None:
    _setup(mdc_container, monitor_name)
    for name in (INPUTS, OUTPUTS, OUTPUTS, INPUTS, OUTPUTS):
        fire_blob(mdc_container.container_name, name)
    _assert_reference_result(monitor_name)


def test_forced_reprocessing_counts_each_record_once(mdc_container: ContainerClient, monitor_name: str) -> None:
    """A crash-style re-run (ledger ignored) adopts the records it had claimed; nothing doubles."""
    _setup(mdc_container, monitor_name)
    for name in (INPUTS, OUTPUTS):
        fire_blob(mdc_container.container_name, name)
    services = get_services()
    for name in (OUTPUTS, INPUTS):
        client = services.mdc_blobs.get_blob_client(mdc_container.container_name, name)
        services.ingest_client(client, force=True)
    _assert_reference_result(monitor_name)


def test_joined_record_holds_mapped_columns(mdc_container: ContainerClient, monitor_name: str) -> None:
    _setup(mdc_container, monitor_name)
    for name in (OUTPUTS, INPUTS):
        fire_blob(mdc_container.container_name, name)
    records = {e["key"]: e for e in query_partition(Tables.default()["records"], f"{monitor_name}|2026112014")}
    dataref = records["7415b7a9-0003"]
    assert dataref["prompt"] == "What sizes does the TrailWalker come in?"
    assert dataref["completion"] == "The TrailWalker comes in sizes 6 to 13."
    assert "Sizes 6-13" in dataref["context"]
    batched = records["7415b7a9-0002_1"]
    assert batched["prompt"] == "Is the TrailWalker waterproof?"
    assert batched["completion"] == "Yes, it has a waterproof leather upper."
    assert batched["deployment"] == "blue" and batched["endpoint"] == "contoso-chat"
    assert batched["model_version"] == "default" and batched["request_id"] == "7415b7a9-0002"
    assert batched["time"] == "2026-11-20T14:05:40Z"  # the request time, from the input envelope


def test_blob_no_monitor_owns_is_ignored(mdc_container: ContainerClient, monitor_name: str) -> None:
    upload_reference(mdc_container)
    MonitorStore().put(monitor_config(monitor_name, mdc_container.container_name,
                                      prefix="modelDataCollector/other-endpoint/"))
    fire_blob(mdc_container.container_name, INPUTS)
    assert monitor_status(monitor_name)["blobs_processed"] == 0


def test_blob_trigger_binding() -> None:
    (trigger,) = [b for b in bindings("ingest_blob") if b["direction"] == "IN"]
    assert trigger["type"] == "blobTrigger"
    assert trigger["path"] == "%MDC_CONTAINER%/{name}.jsonl"
    assert trigger["connection"] == "MDC_STORAGE"
    assert trigger["source"] == "EventGrid"


def test_queue_trigger_binding() -> None:
    (trigger,) = bindings("evaluate_batch")
    assert trigger["type"] == "queueTrigger"
    assert trigger["queueName"] == "%EVALUATION_QUEUE%"
    assert trigger["connection"] == "MONITOR_STORAGE"
