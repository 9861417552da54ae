"""Ingestion on the real MDC write pattern: growing append blobs in Azurite, tailed exactly once.

The blob trigger (`event`) opens a blob; the tail timer (`tail`) reads the new bytes of open blobs,
sweeps the current and previous rolling periods for blobs no event announced, and closes what is
due. Both are run here through the command line and the function objects, as the host would.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from monitor.aggregate import aggregate_command, query_windows
from monitor.cli import main
from monitor.dashboard import dashboard_html
from monitor.ingest.claims import sampled
from monitor.ingest.ledger import Ledger
from monitor.judge.runtime import reset_runtime
from monitor.monitors import MonitorStore
from monitor.services import get_services
from monitor.status import monitor_status
from monitor.storage.tables import Tables, query_partition
from tests.support.fake_openai import FakeOpenAI
from tests.support.host import bindings, user_function
from tests.support.mdc import envelope, jsonl, monitor_config

pytestmark = pytest.mark.azurite
T = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
PREFIX = "modelDataCollector/contoso-chat/blue/"
FILE = "4fda2efaa7364394a89c37989af9db93000000.jsonl"


def path(collection: str, folder: str = "2026/11/25/10/", file: str = FILE) -> str:
    return f"{PREFIX}{collection}/{folder}{file}"


def request(i: int, moment: datetime = T) -> dict[str, Any]:
    return envelope("model_inputs", f"req-{i:05d}", moment + timedelta(seconds=i % 3000),
                    [{"question": f"What is item {i}?", "context": f"Item {i} is a red shoe."}])


def response(i: int, moment: datetime = T) -> dict[str, Any]:
    return envelope("model_outputs", f"req-{i:05d}", moment + timedelta(seconds=i % 3000 + 1),
                    [{"answer": f"Item {i} is a red shoe."}])


def append_blob(container: ContainerClient, name: str) -> Any:
    client = container.get_blob_client(name)
    client.create_append_blob()
    return client


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def event(capsys: pytest.CaptureFixture[str], container: ContainerClient, name: str) -> dict[str, Any]:
    return cli(capsys, "event", "--container", container.container_name, "--blob", name)


def tail(capsys: pytest.CaptureFixture[str], at: datetime, monitor: str) -> dict[str, Any]:
    """`tail --at` for one monitor (the session's Azurite holds other tests' monitors too)."""
    out = cli(capsys, "tail", "--at", at.strftime("%Y-%m-%dT%H:%M:%SZ"), "--monitor", monitor)
    (report,) = out["monitors"]
    return dict(report)


def setup_monitor(container: ContainerClient, name: str, **overrides: Any) -> None:
    MonitorStore().put(monitor_config(name, container.container_name, prefix=PREFIX, **overrides))


def join_entities(name: str) -> list[dict[str, Any]]:
    table = Tables.default()["joins"]
    return [e for shard in range(16) for e in query_partition(table, f"{name}|{shard:02d}")]


def record_keys(name: str, hour: str = "2026112510") -> set[str]:
    return {str(e["key"]) for e in query_partition(Tables.default()["records"], f"{name}|{hour}")}


# --- growing blobs, read once ------------------------------------------------------------------------
def test_appends_with_a_split_line_are_read_once(mdc_container: ContainerClient, monitor_name: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """An empty append blob, its event, then three appends (one line split across two of them),
    a tail after each: exact counts, and every byte read once."""
    setup_monitor(mdc_container, monitor_name)
    outputs = jsonl([response(1), response(2)])  # req 3 never gets an answer
    mdc_container.upload_blob(path("model_outputs"), outputs)
    inputs = append_blob(mdc_container, path("model_inputs"))
    event(capsys, mdc_container, path("model_inputs"))
    event(capsys, mdc_container, path("model_outputs"))
    assert monitor_status(monitor_name)["open_blobs"] == 2

    second = json.dumps(request(2)).encode() + b"\n"
    last = json.dumps(request(3)).encode()  # no newline: the blob's final line
    appends = [json.dumps(request(1)).encode() + b"\n" + second[:40],
               second[40:] + b"{not json\n",
               last]
    for index, block in enumerate(appends):
        inputs.append_block(block)
        tail(capsys, T + timedelta(minutes=20 + index), monitor_name)
    status = monitor_status(monitor_name)
    assert record_keys(monitor_name) == {"req-00001", "req-00002"}
    assert status["records"] == 2 and status["unmatched"] == 0  # the last line waits for the close
    assert status["quarantine_reasons"] == {"invalid_json": 1}
    size = len(outputs) + sum(len(b) for b in appends)
    assert status["bytes_read"] == size  # every byte read once, the split line included
    assert status["open_blobs"] == 2
    page = dashboard_html(monitor_name)  # the status panel: open blobs and ingestion lag
    assert 'data-testid="panel-open-blobs">2<' in page and 'data-testid="panel-ingestion-lag">0 s<' in page

    closed = tail(capsys, T + timedelta(hours=1, minutes=15), monitor_name)  # period over + grace, size unchanged
    assert closed["closed"] == 2
    status = monitor_status(monitor_name)
    assert status["open_blobs"] == 0 and status["closed_blobs"] == 2
    assert status["records"] == 2 and status["unmatched"] == 1 and status["unmatched_detail"]["inputs"] == 1
    assert status["bytes_read"] == size and status["quarantined"] == 1
    again = tail(capsys, T + timedelta(hours=1, minutes=16), monitor_name)
    assert again["bytes_read"] == 0 and monitor_status(monitor_name)["records"] == 2

    inputs.append_block(b"\n" + json.dumps(request(4)).encode() + b"\n")  # a late append to a closed blob
    tail(capsys, T + timedelta(hours=1, minutes=20), monitor_name)
    status = monitor_status(monitor_name)
    assert status["unmatched_detail"]["inputs"] == 2 and status["bytes_read"] == size + len(json.dumps(request(4))) + 2


def test_block_blob_committed_again_with_more_data_is_read_from_its_offset(
        mdc_container: ContainerClient, monitor_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    setup_monitor(mdc_container, monitor_name)
    first = jsonl(request(i) for i in range(3))
    mdc_container.upload_blob(path("model_inputs"), first)
    mdc_container.upload_blob(path("model_outputs"), jsonl(response(i) for i in range(6)))
    event(capsys, mdc_container, path("model_inputs"))
    tail(capsys, T + timedelta(minutes=20), monitor_name)
    assert monitor_status(monitor_name)["records"] == 3
    more = first + jsonl(request(i) for i in range(3, 6))  # PutBlockList again: same start, more lines
    mdc_container.upload_blob(path("model_inputs"), more, overwrite=True)
    report = tail(capsys, T + timedelta(minutes=21), monitor_name)
    assert report["bytes_read"] == len(more) - len(first) and report["replaced"] == 0
    status = monitor_status(monitor_name)
    assert status["records"] == 6 and status["unmatched"] == 0 and status["duplicate_keys"] == 0


@pytest.mark.parametrize("outputs_first", [False, True], ids=["inputs-first", "outputs-first"])
def test_two_growing_blobs_join_in_memory(mdc_container: ContainerClient, monitor_name: str,
                                          capsys: pytest.CaptureFixture[str], outputs_first: bool) -> None:
    """Inputs and outputs as two growing append blobs in one period: each pair joined once, in either
    order; pairs completed in one pass persist nothing; a pair split across passes waits once."""
    setup_monitor(mdc_container, monitor_name)
    inputs = append_blob(mdc_container, path("model_inputs"))
    outputs = append_blob(mdc_container, path("model_outputs"))
    order = [(outputs, response), (inputs, request)] if outputs_first else [(inputs, request), (outputs, response)]
    for step in range(3):
        for blob, make in order:
            blob.append_block(jsonl(make(step * 10 + i) for i in range(10)))
        tail(capsys, T + timedelta(minutes=10 + step), monitor_name)
    status = monitor_status(monitor_name)
    assert status["records"] == 30 and status["joined_in_memory"] == 30 and status["unmatched"] == 0
    assert join_entities(monitor_name) == []  # nothing persisted for pairs completed in one pass
    # A pair whose halves land in different passes: the first waits in the join table, once.
    order[0][0].append_block(jsonl([order[0][1](99)]))
    tail(capsys, T + timedelta(minutes=20), monitor_name)
    assert monitor_status(monitor_name)["unmatched"] == 1
    order[1][0].append_block(jsonl([order[1][1](99)]))
    tail(capsys, T + timedelta(minutes=21), monitor_name)
    status = monitor_status(monitor_name)
    assert status["records"] == 31 and status["unmatched"] == 0 and len(record_keys(monitor_name)) == 31


# --- the sweep, every rolling rate ----------------------------------------------------------------------
def test_sweep_finds_day_and_minute_layouts_and_ignores_block_blob_copies(
        mdc_container: ContainerClient, monitor_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    setup_monitor(mdc_container, monitor_name, source={
        "format": "mdc", "container": mdc_container.container_name, "prefix": "modelDataCollector/contoso-chat/"})
    day = "modelDataCollector/contoso-chat/blue/{c}/2026/11/25/" + FILE
    minute = "modelDataCollector/contoso-chat/green/{c}/2026/11/25/10/07/" + FILE
    copy = "modelDataCollector/contoso-chat/blue/{c}_block_blob/2026/11/25/" + FILE
    traces = "modelDataCollector/contoso-chat/blue/app_traces/2026/11/25/" + FILE
    for template, ids in ((day, range(0, 5)), (minute, range(100, 103)), (copy, range(0, 5))):
        mdc_container.upload_blob(template.format(c="model_inputs"), jsonl(request(i) for i in ids))
        mdc_container.upload_blob(template.format(c="model_outputs"), jsonl(response(i) for i in ids))
    mdc_container.upload_blob(traces, b'{"trace": 1}\n')
    report = tail(capsys, T + timedelta(minutes=8), monitor_name)  # no event at all
    assert report["opened"] == 4 and report["records"] == 8
    assert report["skipped_collections"] == ["app_traces", "model_inputs_block_blob", "model_outputs_block_blob"]
    status = monitor_status(monitor_name)
    assert status["records"] == 8 and status["quarantined"] == 0
    # The Minute period closes at 10:08 + grace, the Day period at midnight + grace.
    tail(capsys, T + timedelta(minutes=30), monitor_name)
    assert monitor_status(monitor_name)["open_blobs"] == 2
    tail(capsys, T + timedelta(days=1, minutes=30), monitor_name)
    assert monitor_status(monitor_name)["open_blobs"] == 0
    # An event for a copy or a trace blob is ignored too (counted, never quarantined).
    event(capsys, mdc_container, copy.format(c="model_inputs"))
    event(capsys, mdc_container, traces)
    status = monitor_status(monitor_name)
    assert status["records"] == 8 and status["blobs_skipped"] == 1 and status["quarantined"] == 0


def test_backfill_walks_every_rolling_rate(mdc_container: ContainerClient, monitor_name: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    layouts = {"year": "2026/", "month": "2026/11/", "day": "2026/11/25/", "hour": "2026/11/25/10/",
               "minute": "2026/11/25/10/07/"}
    setup_monitor(mdc_container, monitor_name, source={
        "format": "mdc", "container": mdc_container.container_name, "prefix": "modelDataCollector/contoso-chat/"})
    for n, (deployment, folder) in enumerate(layouts.items()):
        base = f"modelDataCollector/contoso-chat/{deployment}/"
        mdc_container.upload_blob(f"{base}model_inputs/{folder}{FILE}", jsonl([request(n)]))
        mdc_container.upload_blob(f"{base}model_outputs/{folder}{FILE}", jsonl([response(n)]))
    mdc_container.upload_blob(f"modelDataCollector/contoso-chat/hour/model_inputs/2026/11/24/10/{FILE}",
                              jsonl([request(50)]))  # out of range
    out = cli(capsys, "backfill", "--monitor", monitor_name, "--since", "2026-11-25T10:00:00Z",
              "--until", "2026-11-25T11:00:00Z")
    assert out["blobs"] == 10 and out["records"] == 5
    again = cli(capsys, "backfill", "--monitor", monitor_name, "--since", "2026-11-25T10:00:00Z",
                "--until", "2026-11-25T11:00:00Z")
    assert again["skipped"] == 10 and again["records"] == 0


# --- exactly once -----------------------------------------------------------------------------------
def _hour(container: ContainerClient, count: int) -> None:
    container.upload_blob(path("model_inputs"), jsonl(request(i) for i in range(count)))
    container.upload_blob(path("model_outputs"), jsonl(response(i) for i in range(count)))


def test_crash_before_the_offset_commit_changes_no_number(mdc_container: ContainerClient, monitor_name: str,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The process dies after writing records and before committing offsets (its lease is not given
    back): once the lease expires, the next pass reads the same bytes and no number changes."""
    setup_monitor(mdc_container, monitor_name)
    _hour(mdc_container, 120)
    monkeypatch.setenv("TAIL_LEASE_SECONDS", "4")
    from monitor.services import reset_services
    from monitor.settings import reset_settings
    reset_settings()
    reset_services()

    def die(self: Ledger, state: Any) -> bool:
        raise SystemExit("the instance died")

    with monkeypatch.context() as patch:
        patch.setattr(Ledger, "commit", die)
        patch.setattr(Ledger, "release", lambda self, state: None)  # a dead process gives nothing back
        with pytest.raises(SystemExit):
            get_services().tail(at=T + timedelta(minutes=30), monitor=monitor_name)
    assert len(record_keys(monitor_name)) == 120  # records were written
    assert monitor_status(monitor_name)["records"] == 0  # but nothing committed
    busy = tail(capsys, T + timedelta(minutes=31), monitor_name)
    assert busy["busy"] == 2 and busy["records"] == 0  # the dead pass still holds the leases
    time.sleep(4.2)
    tail(capsys, T + timedelta(minutes=32), monitor_name)
    tail(capsys, T + timedelta(minutes=33), monitor_name)
    status = monitor_status(monitor_name)
    assert status["records"] == 120 and status["records_counted"] == 120 and status["unmatched"] == 0
    assert status["scores"]["ok"] + status["scores"]["not_applicable"] == 120 * 5


@pytest.fixture
def judge() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake
    reset_runtime()


def test_two_concurrent_passes_judge_each_prompt_once(mdc_container: ContainerClient, monitor_name: str,
                                                      judge: FakeOpenAI) -> None:
    """Two instances run the tail (and one the trigger) on the same blobs at the same moment: one
    lease wins per blob, so no prompt is judged twice and the counts are exact."""
    setup_monitor(mdc_container, monitor_name, metrics={m: {"enabled": False} for m in
                                                        ("fluency", "groundedness", "relevance", "similarity")},
                  judge={"provider": "openai", "model": "judge-model", "base_url": judge.openai_base_url,
                         "explain": "off"})
    _hour(mdc_container, 150)
    services = get_services()
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def run(action: Any) -> None:
        try:
            start.wait()
            action()
        except BaseException as exc:  # reported below
            errors.append(exc)

    actions = [lambda: services.tail(at=T + timedelta(minutes=30), monitor=monitor_name),
               lambda: services.tail(at=T + timedelta(minutes=30), monitor=monitor_name),
               lambda: services.ingest_client(services.mdc_blobs.get_blob_client(
                   mdc_container.container_name, path("model_inputs")))]
    threads = [threading.Thread(target=run, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    services.tail(at=T + timedelta(minutes=31), monitor=monitor_name)  # whatever a busy pass left is read now
    services.drain_queue()
    status = monitor_status(monitor_name)
    assert status["records"] == 150 and status["unmatched"] == 0 and status["duplicate_keys"] == 0
    assert judge.stats.requests == 150  # one coherence call per prompt, never two
    assert status["scores"]["ok"] == 150


# --- cost follows the sample ------------------------------------------------------------------------
def test_sampling_stores_nothing_for_unsampled_requests(mdc_container: ContainerClient, monitor_name: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from bench.storage_ops import counting

    setup_monitor(mdc_container, monitor_name, sampling_rate=0.1)
    inputs = append_blob(mdc_container, path("model_inputs"))
    outputs = append_blob(mdc_container, path("model_outputs"))
    for chunk in range(4):
        ids = range(chunk * 500, chunk * 500 + 500)
        inputs.append_block(jsonl(request(i) for i in ids))
        outputs.append_block(jsonl(response(i) for i in ids))
    keys = [f"req-{i:05d}" for i in range(2000)]
    chosen = sum(1 for k in keys if sampled(k, 0.1))
    get_services()
    with counting() as ops:
        report = get_services().tail(at=T + timedelta(minutes=55), monitor=monitor_name)[0]
    assert report.records == chosen and report.unsampled == 2000 - chosen
    get_services().drain_queue()  # the queue trigger judges what went over the inline limit
    writes = ops.by_kind["table_transaction"] + ops.by_kind["POST"] + ops.by_kind["PUT"] + ops.by_kind["PATCH"]
    # Writes follow the sampled records (batches of 50, scores, partials), never the 1,800 others.
    assert writes <= chosen / 5 + 20, dict(ops.by_kind)
    assert len(record_keys(monitor_name)) == chosen and join_entities(monitor_name) == []
    aggregate_command(monitor_name, T + timedelta(hours=2))
    rows = sum(w["row_count"] for w in query_windows(monitor_name)
               if w["metric"] == "coherence" and w["segment"] == "all")
    assert rows == 2000  # row_count stays exact for all traffic
    status = monitor_status(monitor_name)
    assert status["unsampled"] == 2000 - chosen and status["records"] == chosen


# --- duplicates, collisions and replaced blobs --------------------------------------------------------
def test_colliding_keys_in_one_file_never_fail_it(mdc_container: ContainerClient, monitor_name: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`k` batched with two rows makes `k_0` and `k_1`; another line says `k_0`: the first keeps the
    key, the later one is quarantined as duplicate_key; the rest of the file is stored."""
    setup_monitor(mdc_container, monitor_name)
    batched_in = envelope("model_inputs", "k", T, [{"question": "a?"}, {"question": "b?"}])
    batched_out = envelope("model_outputs", "k", T, [{"answer": "a."}, {"answer": "b."}])
    mdc_container.upload_blob(path("model_inputs"), jsonl([batched_in, envelope("model_inputs", "k_0", T,
                                                                               [{"question": "c?"}]), request(1)]))
    mdc_container.upload_blob(path("model_outputs"), jsonl([batched_out, envelope("model_outputs", "k_0", T,
                                                                                 [{"answer": "c."}]), response(1)]))
    tail(capsys, T + timedelta(minutes=30), monitor_name)
    status = monitor_status(monitor_name)
    assert record_keys(monitor_name) == {"k_0", "k_1", "req-00001"}
    assert status["records"] == 3 and status["duplicate_keys"] == 2
    assert status["quarantine_reasons"] == {"duplicate_key": 2}
    entries = cli(capsys, "quarantine", "--monitor", monitor_name)
    assert {e["line"] for e in entries} == {2}


def test_same_id_in_a_second_blob_is_quarantined_not_dropped(mdc_container: ContainerClient, monitor_name: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    setup_monitor(mdc_container, monitor_name)
    _hour(mdc_container, 3)
    tail(capsys, T + timedelta(minutes=30), monitor_name)
    other = "ffffffffffffffffffffffffffffffff000000.jsonl"
    changed = request(1)
    changed["data"] = [{"question": "A different question with the same id"}]
    mdc_container.upload_blob(path("model_inputs", file=other), jsonl([changed]))
    mdc_container.upload_blob(path("model_outputs", file=other), jsonl([response(1)]))
    tail(capsys, T + timedelta(minutes=31), monitor_name)
    status = monitor_status(monitor_name)
    assert status["records"] == 3 and status["duplicate_keys"] == 1  # one record, kept once
    (entry,) = cli(capsys, "quarantine", "--monitor", monitor_name, "--reason", "duplicate_key")
    assert other in str(entry["blob"]) and "req-00001" in str(entry["detail"])


def test_blob_replaced_by_a_shorter_one_is_reported(mdc_container: ContainerClient, monitor_name: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    setup_monitor(mdc_container, monitor_name)
    _hour(mdc_container, 10)
    tail(capsys, T + timedelta(minutes=30), monitor_name)
    mdc_container.upload_blob(path("model_outputs"), jsonl(response(i) for i in range(4)), overwrite=True)
    report = tail(capsys, T + timedelta(minutes=31), monitor_name)
    assert report["replaced"] == 1
    status = monitor_status(monitor_name)
    assert status["blobs_replaced"] == 1 and status["quarantine_reasons"] == {"blob_replaced": 1}
    assert path("model_outputs") in status["replaced_blobs"][0]["blob"]
    (entry,) = cli(capsys, "quarantine", "--monitor", monitor_name, "--reason", "blob_replaced")
    assert entry["line"] == 0 and "shrank from" in str(entry["detail"])
    # Nothing is re-counted: status and the windows agree on the 10 records read before.
    aggregate_command(monitor_name, T + timedelta(hours=2))
    rows = sum(w["row_count"] for w in query_windows(monitor_name)
               if w["metric"] == "coherence" and w["segment"] == "all")
    assert status["records"] == rows == status["records_counted"] == 10
    # Overwritten with other content of the same size or longer: found by the bytes before the offset.
    mdc_container.upload_blob(path("model_inputs"), jsonl(request(i + 1) for i in range(12)), overwrite=True)
    tail(capsys, T + timedelta(minutes=32), monitor_name)
    assert monitor_status(monitor_name)["blobs_replaced"] == 2
    assert monitor_status(monitor_name)["records"] == 10
    # Deleted while open: reported the same way.
    other = path("model_inputs", file="e" * 32 + "000000.jsonl")
    mdc_container.upload_blob(other, jsonl([request(50)]))
    tail(capsys, T + timedelta(minutes=33), monitor_name)
    mdc_container.delete_blob(other)
    tail(capsys, T + timedelta(minutes=34), monitor_name)
    status = monitor_status(monitor_name)
    assert status["blobs_replaced"] == 3 and {b["state"] for b in status["replaced_blobs"]} == {"replaced", "deleted"}
    assert status["quarantine_reasons"] == {"blob_replaced": 3} and status["records"] == 10


# --- custom JSONL --------------------------------------------------------------------------------
def test_custom_jsonl_is_tailed_and_backfilled_by_date_folders(mdc_container: ContainerClient, monitor_name: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    MonitorStore().put(monitor_config(monitor_name, mdc_container.container_name, prefix="custom/",
                                      source={"format": "jsonl", "container": mdc_container.container_name,
                                              "prefix": "custom/"}))

    def rows(ids: range, hour: int) -> bytes:
        return jsonl({"correlationid": f"c{i}", "question": f"q{i}?", "answer": f"a{i}.",
                      "time": f"2026-11-25T{hour:02d}:10:00Z"} for i in ids)

    blob = append_blob(mdc_container, "custom/2026/11/25/10/part-0.jsonl")
    blob.append_block(rows(range(3), 10))
    tail(capsys, T + timedelta(minutes=20), monitor_name)
    blob.append_block(rows(range(3, 5), 10)[:-1])  # the last line's newline has not arrived
    tail(capsys, T + timedelta(minutes=21), monitor_name)
    assert monitor_status(monitor_name)["records"] == 4
    blob.append_block(b"\n")
    tail(capsys, T + timedelta(minutes=22), monitor_name)
    assert monitor_status(monitor_name)["records"] == 5
    mdc_container.upload_blob("custom/2026/11/24/09/old.jsonl", rows(range(10, 12), 9))
    out = cli(capsys, "backfill", "--monitor", monitor_name, "--since", "2026-11-24T00:00:00Z",
              "--until", "2026-11-24T23:00:00Z")
    assert out["blobs"] == 1 and out["records"] == 2


def test_tail_timer_binding_and_run(mdc_container: ContainerClient, monitor_name: str) -> None:
    from azure.functions.timer import TimerRequest

    (timer,) = bindings("tail_blobs")
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%TAIL_SCHEDULE%"
    now = datetime.now(UTC)
    folder = now.strftime("%Y/%m/%d/%H/")
    setup_monitor(mdc_container, monitor_name)
    mdc_container.upload_blob(path("model_inputs", folder), jsonl([request(1, now)]))
    mdc_container.upload_blob(path("model_outputs", folder), jsonl([response(1, now)]))
    user_function("tail_blobs")(TimerRequest(past_due=False))  # what the host runs every minute
    assert monitor_status(monitor_name)["records"] == 1
