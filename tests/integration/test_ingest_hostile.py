"""Hostile lines never stop a file: every kind, between good lines, in both collections.

Each kind of hostile line (see docs/ingest.md, "Quarantine reasons") is written into the
model_inputs and the model_outputs blob of one hour, between good lines, and both blobs go through
the blob trigger as the Functions host would invoke it. For every kind: all good records are stored,
the hostile line is quarantined with its specific reason (or, for legitimate odd ids, stored and
joined), both blobs end done, and a re-delivery - skipped or forced - changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.storage.blob import ContainerClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.ingest.quarantine import quarantine_entries
from monitor.monitors import MonitorStore
from monitor.services import get_services
from monitor.settings import get_settings
from monitor.status import monitor_status
from monitor.storage.clients import blob_service
from monitor.storage.tables import Tables, query_partition
from tests.support.host import blob_trigger_client, fire_blob
from tests.support.mdc import envelope, hour_path, monitor_config
from tests.support.storage import reset_caches

pytestmark = pytest.mark.azurite
T0 = datetime(2026, 11, 21, 9, 5, tzinfo=UTC)
MAX_LINE = 1024 * 1024
DEEP = 100_000
COLLECTIONS = ("model_inputs", "model_outputs")


def _rows(collection: str, text: str) -> list[dict[str, Any]]:
    if collection == "model_inputs":
        return [{"question": f"Question about {text}?"}]
    return [{"answer": f"The answer about {text}.", "context": f"Context about {text}."}]


def _env(collection: str, correlation: str, rows: Any = None, **extra: Any) -> dict[str, Any]:
    return envelope(collection, correlation, T0, _rows(collection, correlation) if rows is None else rows, **extra)


def _bytes(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _with_time(collection: str, time: str) -> bytes:
    env = _env(collection, f"time-{time}")
    env["time"] = time
    return _bytes(env)


def _replace_data(collection: str, correlation: str, data_json: str) -> bytes:
    """An envelope whose `data` is raw JSON text (for shapes json.dumps cannot write)."""
    env = _env(collection, correlation, rows=[])
    text = json.dumps(env)
    return text.replace('"data": []', f'"data": {data_json}').encode()


@dataclass(frozen=True)
class Kind:
    """A hostile line for one collection, and what must happen to it."""

    make: Callable[[str, str], bytes]  # (collection, container) -> the line, without its newline
    reason: str | None  # the quarantine reason; None: the line is legitimate and must be stored
    per_blob: int = 1  # quarantine entries per blob
    joined_key: str | None = None  # for stored kinds: the join key that must be stored


def _odd_id(correlation: str) -> Kind:
    return Kind(lambda c, _: _bytes(_env(c, correlation)), None, 0, correlation)


def _without_data(collection: str) -> bytes:
    env = _env(collection, "no-data")
    del env["data"]
    return _bytes(env)


def _dataref(collection: str, ref: str) -> bytes:
    env = _env(collection, f"ref-{abs(hash(ref)) % 10**8}")
    del env["data"]
    env["dataref"] = ref
    return _bytes(env)


def _other_account_ref(collection: str, container: str) -> bytes:
    service = blob_service(get_settings().mdc_storage())
    url = service.get_blob_client(container, "modelDataCollector/rows.json").url
    return _dataref(collection, url.replace("devstoreaccount1", "otheraccount"))


HOSTILE: dict[str, Kind] = {
    # Kinds the suite had before (test_ingest_bad_input.py).
    "invalid_json": Kind(lambda c, _: b'{"specversion": "1.0", "time": ', "invalid_json"),
    "not_an_envelope": Kind(lambda c, _: _bytes(["a", "list"]), "not_an_envelope"),
    "missing_data": Kind(lambda c, _: _without_data(c), "missing_data"),
    "dataref_not_found": Kind(lambda c, _: _dataref(c, "modelDataCollector/nope.json"), "dataref_not_found"),
    "data_not_array": Kind(lambda c, _: _bytes(_env(c, "bad-type", rows={"answer": "x"})), "wrong_type"),
    "invalid_utf8": Kind(lambda c, _: b'{"specversion": "1.0", "text": "\xff\xfe broken"}', "invalid_utf8"),
    "line_too_long": Kind(lambda c, _: _bytes(_env(c, "long", rows=[{"answer": "x" * (MAX_LINE + 10)}])),
                          "line_too_long"),
    "missing_join_key": Kind(lambda c, _: _bytes(_env(c, "  ")), "missing_join_key"),
    "row_not_object": Kind(lambda c, _: _bytes(_env(c, "row-kind", rows=["not a row"])), "wrong_type"),
    # Lines that stopped a whole file.
    "deep_arrays": Kind(lambda c, _: _replace_data(c, "deep", "[" * DEEP + "]" * DEEP), "json_too_deep"),
    "deep_objects": Kind(lambda c, _: _replace_data(c, "deep-obj", '{"a":' * DEEP + "1" + "}" * DEEP),
                         "json_too_deep"),
    "deep_bare": Kind(lambda c, _: b"[" * DEEP, "json_too_deep"),
    "huge_integer": Kind(lambda c, _: _replace_data(c, "bigint", '[{"n": ' + "7" * 5000 + "}]"),
                         "number_too_long"),
    "time_past_9999": Kind(lambda c, _: _with_time(c, "9999-12-31T23:59:59-05:00"), "time_out_of_range"),
    "time_before_year_1": Kind(lambda c, _: _with_time(c, "0001-01-01T00:00:00+05:00"), "time_out_of_range"),
    "time_year_1": Kind(lambda c, _: _with_time(c, "0001-06-01T00:00:00Z"), "time_out_of_range"),
    "time_year_999": Kind(lambda c, _: _with_time(c, "0999-06-01T00:00:00Z"), "time_out_of_range"),
    "time_not_iso": Kind(lambda c, _: _with_time(c, "yesterday at noon"), "invalid_time"),
    "lone_surrogate": Kind(lambda c, _: _replace_data(c, "surrogate", '[{"answer": "half \\ud800 a pair"}]'),
                           "invalid_unicode"),
    "record_too_large": Kind(lambda c, _: _bytes(_env(c, "big", rows=[{"answer": "y" * 500_000}])),
                             "record_too_large"),
    "two_rows_too_large": Kind(lambda c, _: _bytes(_env(c, "bigs", rows=[{"answer": "y" * 500_000}] * 2)),
                               "record_too_large", per_blob=2),
    "dataref_dot_dot": Kind(lambda c, _: _dataref(c, "modelDataCollector/../../other/rows.json"),
                            "dataref_outside_container"),
    "dataref_encoded_dot_dot": Kind(lambda c, _: _dataref(c, "modelDataCollector/%2e%2e/rows.json"),
                                    "dataref_outside_container"),
    "dataref_other_host": Kind(lambda c, _: _dataref(c, "https://attacker.invalid/c/rows.json"),
                               "dataref_outside_container"),
    "dataref_other_container": Kind(lambda c, container: _dataref(
        c, blob_service(get_settings().mdc_storage()).get_blob_client(f"{container}-other", "rows.json").url),
        "dataref_outside_container"),
    "dataref_other_account": Kind(_other_account_ref, "dataref_outside_container"),
    "dataref_name_refused": Kind(lambda c, _: _dataref(c, "modelDataCollector/" + "n" * 1100), "dataref_invalid"),
    "dataref_not_json": Kind(lambda c, _: _dataref(c, "modelDataCollector/contoso-chat/not-json.json"),
                             "dataref_invalid"),
    "dataref_deep_json": Kind(lambda c, _: _dataref(c, "modelDataCollector/contoso-chat/deep.json"),
                              "dataref_invalid"),
    # Legitimate odd ids: MDC copies the caller's x-request-id; they are stored and joined.
    "id_slash": _odd_id("tenant/a/b"),
    "id_backslash": _odd_id("tenant\\a"),
    "id_hash_question": _odd_id("a#b?c=d&e"),
    "id_control": _odd_id("ctl\x01\x1f\x7f\x9f"),
    "id_percent_tilde_quote": _odd_id("50%~off 'now'|x"),
    "id_unicode": _odd_id("идентификатор-🙂"),
    "id_500_chars": _odd_id("r" * 500),
    "id_5000_chars": _odd_id("/" * 2500 + "q" * 2500),
    "controls_in_text": Kind(lambda c, _: _bytes(_env(c, "ctl-text", rows=[
        {"question": "nul \x00 bell \x07 del \x7f ls \u2028 bom \ufeff?", "answer": "ok \x00",
         "context": "\x1b[31m"}])), None, 0, "ctl-text"),
    "bom_mid_file": Kind(lambda c, _: b"\xef\xbb\xbf" + _bytes(_env(c, "bom-line")), None, 0, "bom-line"),
}


@pytest.fixture
def big_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_LINE_BYTES", str(MAX_LINE))
    reset_caches()


def _blob(collection: str, middle: bytes) -> bytes:
    good = [_bytes(_env(collection, f"good-{i}")) for i in range(2)]
    return good[0] + b"\n" + middle + b"\n" + good[1] + b"\n"


def _quarantine(name: str) -> list[dict[str, Any]]:
    return sorted(quarantine_entries(Tables.default()["quarantine"], name), key=lambda e: str(e["RowKey"]))


def _records(name: str) -> dict[str, dict[str, Any]]:
    partition = f"{name}|{T0:%Y%m%d%H}"
    return {str(e["key"]): e for e in query_partition(Tables.default()["records"], partition)}


def _snapshot(name: str) -> tuple[Any, ...]:
    status = monitor_status(name)
    counts = {k: status[k] for k in ("records", "quarantined", "quarantine_reasons", "unmatched",
                                     "blobs_processed", "blobs_in_progress")}
    quarantine = [(e["RowKey"], e["reason"], e["line"]) for e in _quarantine(name)]
    return counts, quarantine, sorted(_records(name))


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_line_between_good_lines(kind: str, big_lines: None, mdc_container: ContainerClient,
                                         monitor_name: str) -> None:
    spec = HOSTILE[kind]
    container = mdc_container.container_name
    service = blob_service(get_settings().mdc_storage())
    secret = service.get_container_client(f"{container}-other")
    secret.create_container()
    secret.upload_blob("rows.json", b'[{"answer": "a secret from another container"}]')
    mdc_container.upload_blob("modelDataCollector/contoso-chat/not-json.json", b"[{oops")
    mdc_container.upload_blob("modelDataCollector/contoso-chat/deep.json", b"[" * DEEP + b"]" * DEEP)
    names = {c: hour_path(c, T0) for c in COLLECTIONS}
    for collection in COLLECTIONS:
        mdc_container.upload_blob(names[collection], _blob(collection, spec.make(collection, container)))
    MonitorStore().put(monitor_config(monitor_name, container, prefix="modelDataCollector/contoso-chat/"))
    for collection in COLLECTIONS:
        fire_blob(container, names[collection])

    status = monitor_status(monitor_name)
    assert status["blobs_processed"] == 2 and status["blobs_in_progress"] == 0, status
    records = _records(monitor_name)
    assert {"good-0", "good-1"} <= set(records), sorted(records)
    if spec.reason is None:
        assert spec.joined_key in records, sorted(records)
        record = records[str(spec.joined_key)]
        assert record["prompt"] and record["completion"], record  # both halves joined
        assert status["quarantined"] == 0, status["quarantine_reasons"]
        assert status["records"] == 3 and status["unmatched"] == 0
        assert status["records_counted"] == 3  # judged and counted, odd key and all
    else:
        expected = 2 * spec.per_blob
        assert status["quarantine_reasons"] == {spec.reason: expected}, status["quarantine_reasons"]
        assert status["records"] == 2 and status["unmatched"] == 0, status
        assert status["records_counted"] == 2
        entries = _quarantine(monitor_name)
        assert len(entries) == expected
        assert {e["line"] for e in entries} == {2}
        assert {e["blob"] for e in entries} == {f"{container}/{n}" for n in names.values()}
        assert all(e["detail"] for e in entries)
        assert all("secret from another container" not in str(e) for e in entries)

    before = _snapshot(monitor_name)
    for collection in COLLECTIONS:
        fire_blob(container, names[collection])  # a re-delivery: skipped
    assert _snapshot(monitor_name) == before
    services = get_services()
    for collection in COLLECTIONS:  # a forced re-run (backfill --reevaluate): the same numbers
        services.ingest_client(blob_trigger_client(container, names[collection]), force=True)
    assert _snapshot(monitor_name) == before


def test_bom_at_the_start_of_a_file_costs_nothing(mdc_container: ContainerClient, monitor_name: str) -> None:
    container = mdc_container.container_name
    for collection in COLLECTIONS:
        data = b"\xef\xbb\xbf" + b"".join(_bytes(_env(collection, f"bom-{i}")) + b"\n" for i in range(3))
        mdc_container.upload_blob(hour_path(collection, T0), data)
    MonitorStore().put(monitor_config(monitor_name, container, prefix="modelDataCollector/contoso-chat/"))
    for collection in COLLECTIONS:
        fire_blob(container, hour_path(collection, T0))
    status = monitor_status(monitor_name)
    assert status["quarantined"] == 0, status["quarantine_reasons"]
    assert sorted(_records(monitor_name)) == ["bom-0", "bom-1", "bom-2"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.text(st.characters(codec="utf-8"), min_size=1, max_size=400))
@example(key="tenant/a\\b#c?d%e'f~g|h\x00")
def test_any_join_key_is_stored_and_found_again(key: str, storage: Any, monitor_name: str) -> None:
    """Property: the key of any record, whatever its characters and length, is accepted by the table
    service and finds the record again (point read by the encoded key; the original in `key`)."""
    from monitor.records import Record
    from monitor.storage.tables import get_entity

    table = Tables.default()["records"]
    record = Record(monitor=monitor_name, key=key, time=T0, prompt="p", completion="c")
    table.upsert_entity(record.to_entity())
    entity = get_entity(table, record.partition, record.row_key)
    assert entity is not None and entity["key"] == key


def test_custom_jsonl_file_survives_hostile_lines(mdc_container: ContainerClient, monitor_name: str) -> None:
    """A custom data asset (one record per line) with hostile lines between good ones."""
    container = mdc_container.container_name
    good = [_bytes({"correlationid": f"ok-{i}", "question": "Q?", "answer": "A.", "time": "2026-11-21T09:05:00Z"})
            for i in range(3)]
    hostile = {
        "json_too_deep": b"[" * DEEP + b"]" * DEEP,
        "number_too_long": b'{"correlationid": "n", "answer": ' + b"1" * 5000 + b"}",
        "time_out_of_range": _bytes({"correlationid": "t", "answer": "A.", "time": "0999-06-01T00:00:00Z"}),
        "invalid_unicode": b'{"correlationid": "u", "answer": "\\udc00"}',
        "missing_join_key": _bytes({"correlationid": "   ", "answer": "A."}),
    }
    data = good[0] + b"\n" + b"\n".join(hostile.values()) + b"\n" + b"\n".join(good[1:]) + b"\n"
    data += _bytes({"correlationid": "odd/\\#?" + "k" * 600, "question": "Q?", "answer": "A.",
                    "time": "2026-11-21T09:05:00Z"}) + b"\n"
    name = "custom/eval/2026-11-21.jsonl"
    mdc_container.upload_blob(name, b"\xef\xbb\xbf" + data)
    MonitorStore().put({"name": monitor_name, "judge": {"provider": "heuristic"},
                        "source": {"format": "jsonl", "container": container, "prefix": "custom/"}})
    fire_blob(container, name)
    status = monitor_status(monitor_name)
    assert status["quarantine_reasons"] == {reason: 1 for reason in hostile}
    assert sorted(_records(monitor_name)) == sorted(["ok-0", "ok-1", "ok-2", "odd/\\#?" + "k" * 600])
    assert status["blobs_processed"] == 1 and status["records_counted"] == 4
