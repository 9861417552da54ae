"""Bad input never stops a file: each bad line is quarantined with its reason; the rest survive."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import ContainerClient

from monitor.ingest.quarantine import quarantine_entries
from monitor.monitors import MonitorStore
from monitor.services import get_services
from monitor.status import monitor_status
from monitor.storage.tables import Tables, query_partition
from tests.support.host import fire_blob
from tests.support.mdc import envelope, hour_path, jsonl, monitor_config

pytestmark = pytest.mark.azurite
T0 = datetime(2026, 11, 21, 9, 5, tzinfo=UTC)


def _good(index: int, collection: str) -> dict[str, object]:
    rows = ([{"question": f"Question {index}?"}] if collection == "model_inputs"
            else [{"answer": f"Answer number {index}.", "context": f"Context about answer number {index}."}])
    return envelope(collection, f"good-{index}", T0, rows)


def _line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


BAD_LINES: dict[str, bytes] = {
    "invalid_json": b'{"specversion": "1.0", "time": \n',
    "not_an_envelope": _line(["a", "list", "is", "not", "an", "envelope"]),
    "missing_data": _line({k: v for k, v in envelope("model_outputs", "bad-nodata", T0, None).items()}),
    "dataref_not_found": _line(envelope("model_outputs", "bad-ref", T0, None, dataref="modelDataCollector/nope.json")),
    "wrong_type": _line(envelope("model_outputs", "bad-type", T0, None, data={"answer": "not an array"})),
    "invalid_utf8": b'{"specversion": "1.0", "text": "\xff\xfe broken"}\n',
    "line_too_long": _line(envelope("model_outputs", "bad-long", T0, [{"answer": "x" * 5000}])),
}


@pytest.fixture
def small_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_LINE_BYTES", "4096")
    from tests.support.storage import reset_caches

    reset_caches()


def _quarantine(name: str) -> list[dict[str, object]]:
    return list(quarantine_entries(Tables.default()["quarantine"], name))


def test_every_bad_line_is_quarantined_and_the_rest_survive(
        small_lines: None, mdc_container: ContainerClient, monitor_name: str) -> None:
    inputs = jsonl(_good(i, "model_inputs") for i in range(len(BAD_LINES) + 1))
    outputs = bytearray(_line(_good(0, "model_outputs")))
    for index, bad in enumerate(BAD_LINES.values(), start=1):
        outputs += bad
        outputs += _line(_good(index, "model_outputs"))  # each bad line is followed by a good one
    outputs += b"\r\n\r\n"  # blank lines are not errors
    container = mdc_container.container_name
    mdc_container.upload_blob(hour_path("model_inputs", T0), inputs)
    mdc_container.upload_blob(hour_path("model_outputs", T0), bytes(outputs))
    MonitorStore().put(monitor_config(monitor_name, container, prefix="modelDataCollector/contoso-chat/"))
    fire_blob(container, hour_path("model_inputs", T0))
    fire_blob(container, hour_path("model_outputs", T0))

    status = monitor_status(monitor_name)
    assert status["quarantine_reasons"] == {reason: 1 for reason in BAD_LINES}
    assert status["quarantined"] == len(BAD_LINES)
    assert status["records"] == len(BAD_LINES) + 1  # good-0 .. good-7: every good line after a bad one survived
    assert status["unmatched"] == 0
    entries = {e["reason"]: e for e in _quarantine(monitor_name)}
    # Line numbers: good-0 is line 1, the first bad line is line 2, and so on (bad lines are even).
    for index, reason in enumerate(BAD_LINES, start=1):
        entry = entries[reason]
        assert entry["line"] == 2 * index, reason
        assert entry["blob"] == f"{container}/{hour_path('model_outputs', T0)}"
        assert entry["detail"]


def test_batched_line_with_one_bad_row_keeps_the_good_row(mdc_container: ContainerClient, monitor_name: str) -> None:
    container = mdc_container.container_name
    mdc_container.upload_blob(hour_path("model_inputs", T0), _line(
        envelope("model_inputs", "batch", T0, [{"question": "ok?"}, "not a row"])))
    MonitorStore().put(monitor_config(monitor_name, container, prefix="modelDataCollector/contoso-chat/"))
    fire_blob(container, hour_path("model_inputs", T0))
    status = monitor_status(monitor_name)
    assert status["quarantine_reasons"] == {"wrong_type": 1}
    assert status["unmatched"] == 1  # batch_0 waits for its output
    (entry,) = _quarantine(monitor_name)
    assert entry["line"] == 1 and "data[1]" in str(entry["detail"])


def test_empty_file_is_recorded(mdc_container: ContainerClient, monitor_name: str) -> None:
    container = mdc_container.container_name
    mdc_container.upload_blob(hour_path("model_outputs", T0), b"")
    MonitorStore().put(monitor_config(monitor_name, container, prefix="modelDataCollector/contoso-chat/"))
    fire_blob(container, hour_path("model_outputs", T0))
    # An append blob is created empty and grows: empty is a problem only once the blob closes.
    assert monitor_status(monitor_name)["quarantine_reasons"] == {}
    assert monitor_status(monitor_name)["open_blobs"] == 1
    get_services().tail(at=T0 + timedelta(days=1))
    status = monitor_status(monitor_name)
    assert status["quarantine_reasons"] == {"empty_file": 1}
    assert status["blobs_processed"] == 1 and status["open_blobs"] == 0


def test_custom_jsonl_records(mdc_container: ContainerClient, monitor_name: str) -> None:
    container = mdc_container.container_name
    lines = [
        {"correlationid": "c1", "question": "What is 2+2?", "answer": "2+2 is 4.", "context": "2+2 is 4.",
         "ground_truth": "4", "time": "2026-11-21T10:00:00Z", "deployment": "green"},
        {"question": "No id here", "answer": "Then the key comes from the blob and line."},
    ]
    data = jsonl(lines) + b"not json\n"
    mdc_container.upload_blob("custom/eval/2026-11-21.jsonl", data)
    MonitorStore().put({
        "name": monitor_name, "source": {"format": "jsonl", "container": container, "prefix": "custom/"},
        "judge": {"provider": "heuristic"},
    })
    fire_blob(container, "custom/eval/2026-11-21.jsonl")
    status = monitor_status(monitor_name)
    assert status["records"] == 2
    assert status["quarantine_reasons"] == {"invalid_json": 1}
    records = list(query_partition(Tables.default()["records"], f"{monitor_name}|2026112110"))
    assert [r["key"] for r in records] == ["c1"]
    assert records[0]["deployment"] == "green" and records[0]["ground_truth"] == "4"


def test_quarantine_is_readable_from_the_cli_and_the_api(mdc_container: ContainerClient, monitor_name: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from fastapi.testclient import TestClient

    from monitor.api.app import create_app
    from monitor.cli import main

    container = mdc_container.container_name
    data = _line(_good(1, "model_inputs")) + b"{oops\n" + _line(["x"]) + b"{again\n"
    mdc_container.upload_blob(hour_path("model_inputs", T0), data)
    MonitorStore().put(monitor_config(monitor_name, container, prefix="modelDataCollector/contoso-chat/"))
    fire_blob(container, hour_path("model_inputs", T0))

    assert main(["quarantine", "--monitor", monitor_name, "--reason", "invalid_json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [(e["line"], e["reason"]) for e in entries] == [(2, "invalid_json"), (4, "invalid_json")]
    assert entries[0]["excerpt"] == "{oops" and entries[0]["blob"].endswith(".jsonl")
    assert main(["quarantine", "--monitor", monitor_name, "--reason", "nonsense"]) == 2
    with TestClient(create_app()) as client:
        body = client.get(f"/api/monitors/{monitor_name}/quarantine").json()
        assert [(e["line"], e["reason"]) for e in body["entries"]] == [
            (2, "invalid_json"), (3, "not_an_envelope"), (4, "invalid_json")]
        assert client.get(f"/api/monitors/{monitor_name}/quarantine", params={"limit": 1}).json()["entries"][0][
            "line"] == 2
        assert client.get(f"/api/monitors/{monitor_name}/quarantine", params={"reason": "bad"}).status_code == 400
        assert client.get("/api/monitors/no-such-monitor/quarantine").status_code == 404
