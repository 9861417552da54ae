"""Fan-out through the queue, crash recovery, poison batches, and bounded memory on a big file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from monitor.ingest.claims import Claimer
from monitor.monitors import MonitorStore
from monitor.services import get_services
from monitor.status import monitor_status
from monitor.storage.tables import Tables, query_partition
from tests.support.host import fire_blob, queue_message, user_function
from tests.support.mdc import envelope, hour_path, jsonl, monitor_config
from tests.support.storage import reset_caches

pytestmark = pytest.mark.azurite
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def _pair(count: int) -> tuple[bytes, bytes]:
    inputs, outputs = [], []
    for i in range(count):
        t = T0 + timedelta(seconds=i)
        inputs.append(envelope("model_inputs", f"req-{i:05d}", t, [{"question": f"What is item {i}?"}]))
        outputs.append(envelope("model_outputs", f"req-{i:05d}", t + timedelta(seconds=1),
                                [{"answer": f"Item {i} is a tent.", "context": f"Item {i} is a tent for two."}]))
    return jsonl(inputs), jsonl(outputs)


@pytest.fixture
def fan_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small blobs go through the queue too: at most 40 records are judged inline."""
    monkeypatch.setenv("INLINE_BATCH_LIMIT", "40")
    monkeypatch.setenv("BATCH_SIZE", "50")
    monkeypatch.setenv("EVALUATION_QUEUE", f"eval-{os.getpid()}-{id(monkeypatch) % 100000}")
    reset_caches()


def _drain_with_queue_trigger() -> int:
    function = user_function("evaluate_batch")
    report = get_services().queue.drain(lambda body, count: function(queue_message(body, count)))
    return report.processed


def _upload(container: ContainerClient, name: str, count: int) -> None:
    inputs, outputs = _pair(count)
    container.upload_blob(hour_path("model_inputs", T0), inputs)
    container.upload_blob(hour_path("model_outputs", T0), outputs)
    MonitorStore().put(monitor_config(name, container.container_name, prefix="modelDataCollector/"))


def _assert_exactly_once(name: str, count: int) -> None:
    status = monitor_status(name)
    assert status["records"] == count
    assert status["records_counted"] == count  # partial aggregates: each record in exactly one batch
    assert status["scores"] == {"ok": 4 * count, "error": 0, "not_applicable": count, "skipped": 0}
    assert status["unmatched"] == 0
    rows = list(query_partition(Tables.default()["records"], f"{name}|2026112210", select=["RowKey"]))
    assert len(rows) == count
    scores = list(query_partition(Tables.default()["scores"], f"{name}|2026112210", select=["RowKey"]))
    assert len(scores) == 5 * count


def test_large_blob_fans_out_through_the_queue(fan_out: None, mdc_container: ContainerClient,
                                               monitor_name: str) -> None:
    _upload(mdc_container, monitor_name, 130)
    fire_blob(mdc_container.container_name, hour_path("model_inputs", T0))
    fire_blob(mdc_container.container_name, hour_path("model_outputs", T0))
    assert monitor_status(monitor_name)["batches_queued"] == 3  # 50 + 50 + 30
    assert _drain_with_queue_trigger() == 3
    _assert_exactly_once(monitor_name, 130)
    # A re-delivered message (at-least-once queue) rewrites the same scores and partial.
    get_services().queue.send(next(iter(_batches(monitor_name))))
    assert _drain_with_queue_trigger() == 1
    _assert_exactly_once(monitor_name, 130)


def _batches(name: str) -> Iterator[object]:
    from monitor.ingest.claims import BatchRef

    for entity in query_partition(Tables.default()["partials"], f"{name}|2026112210"):
        yield BatchRef(monitor=name, partition=f"{name}|2026112210", batch_id=entity["RowKey"])


def test_crash_half_way_then_redelivery_counts_once(fan_out: None, mdc_container: ContainerClient,
                                                    monitor_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _upload(mdc_container, monitor_name, 130)
    container = mdc_container.container_name
    fire_blob(container, hour_path("model_inputs", T0))
    original = Claimer._claim_chunk
    calls = {"n": 0}

    def crash_on_second_chunk(self: Claimer, chunk: list[object]) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated crash of the instance")
        return original(self, chunk)  # type: ignore[arg-type]

    monkeypatch.setattr(Claimer, "_claim_chunk", crash_on_second_chunk)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fire_blob(container, hour_path("model_outputs", T0))
    crashed = monitor_status(monitor_name)
    # Nothing committed: the outputs' offset stays at 0 (its bytes are read again), the lease is back.
    assert crashed["records"] == 0 and crashed["blobs_in_progress"] == 0
    monkeypatch.setattr(Claimer, "_claim_chunk", original)
    fire_blob(container, hour_path("model_outputs", T0))  # the host retries the blob
    fire_blob(container, hour_path("model_outputs", T0))  # and Event Grid may deliver it once more
    _drain_with_queue_trigger()
    _assert_exactly_once(monitor_name, 130)
    assert monitor_status(monitor_name)["blobs_in_progress"] == 0


def test_failing_batch_becomes_poison_and_is_reported(fan_out: None, mdc_container: ContainerClient,
                                                      monitor_name: str) -> None:
    _upload(mdc_container, monitor_name, 60)
    container = mdc_container.container_name
    fire_blob(container, hour_path("model_inputs", T0))
    fire_blob(container, hour_path("model_outputs", T0))
    config = MonitorStore().get(monitor_name)
    MonitorStore().delete(monitor_name)  # every evaluation now fails: the monitor is gone
    report = get_services().queue.drain(lambda body, count: user_function("evaluate_batch")(queue_message(body, count)))
    assert report.poisoned == 2 and report.failures == 10  # 2 batches x maxDequeueCount 5
    MonitorStore().put(config.model_dump(mode="json"))
    status = monitor_status(monitor_name)
    assert status["poison_batches"] == 2
    (entity, _) = list(query_partition(Tables.default()["poison"], monitor_name))
    assert "NotFoundError" in entity["reason"] and entity["attempts"] == 5


BIG_FILE_SCRIPT = r"""
import json, resource, sys
from monitor.services import get_services
from tests.support.host import fire_blob
container, name = sys.argv[1], sys.argv[2]
get_services()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
fire_blob(container, name)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kib": before, "after_kib": after}))
"""


@pytest.mark.slow
def test_big_file_is_ingested_in_bounded_memory(mdc_container: ContainerClient, monitor_name: str,
                                                tmp_path: Path) -> None:
    """A 200+ MB model_inputs file (2,100 requests of ~100 KB) streams through in bounded memory."""
    path = tmp_path / "big.jsonl"
    lines = 2100
    filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 1800  # ~100 KB of context
    with path.open("wb") as out:
        for i in range(lines):
            row = {"question": f"Question {i}: {filler}"}
            out.write(json.dumps(envelope("model_inputs", f"big-{i:06d}", T0, [row])).encode() + b"\n")
    size = path.stat().st_size
    assert size >= 200 * 1024 * 1024
    name = hour_path("model_inputs", T0, file="b" * 32 + "000000.jsonl")
    with path.open("rb") as data:
        mdc_container.upload_blob(name, data, length=size, max_concurrency=2)
    MonitorStore().put(monitor_config(monitor_name, mdc_container.container_name, prefix="modelDataCollector/"))
    result = subprocess.run([sys.executable, "-c", BIG_FILE_SCRIPT, mdc_container.container_name, name],
                            cwd=ROOT, env={**os.environ}, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    growth_mib = (measured["after_kib"] - measured["before_kib"]) / 1024
    print(f"big file: {size / 2**20:.0f} MiB, {lines} lines, peak RSS growth {growth_mib:.0f} MiB")
    assert growth_mib < 120, f"peak RSS grew by {growth_mib:.0f} MiB for a {size / 2**20:.0f} MiB file"
    status = monitor_status(monitor_name)
    assert status["unmatched"] == lines and status["quarantined"] == 0 and status["blobs_processed"] == 1
