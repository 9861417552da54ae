"""The timer path on Azurite: partials + dirty hours + join halves -> windows -> alerts -> webhook.

Partials are seeded exactly as the judge path writes them (Records and Scores -> count_batch ->
partial_entity -> write_entities) and the numbers are computed by hand.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest

from monitor.aggregate import aggregate_command, last_aggregation, query_alerts, query_windows, run_aggregation
from monitor.keys import hour_key, iso, join_shard
from monitor.monitors import MonitorStore
from monitor.partials import count_batch, partial_entity
from monitor.records import Record
from monitor.scores import Score, Status
from monitor.settings import reset_settings
from monitor.storage.tables import Tables, write_entities
from tests.support.storage import private_azurite
from tests.support.webhook import WebhookReceiver

pytestmark = pytest.mark.azurite

AT = datetime(2026, 11, 20, 16, 5, tzinfo=UTC)
H14 = datetime(2026, 11, 20, 14, tzinfo=UTC)
_keys = itertools.count()


# --- seeding ------------------------------------------------------------------------------------

@pytest.fixture
def env(storage: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AGGREGATION_LOOKBACK_HOURS", "6")
    monkeypatch.setenv("WEBHOOK_BACKOFF_SECONDS", "0")
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "5")
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)
    reset_settings()
    yield
    reset_settings()


def put_monitor(name: str, *, window: str = "hour", min_samples: int = 5, webhook: str | None = None,
                metrics: tuple[str, ...] = ("coherence",), error_rate_limit: float = 0.2,
                join_ttl_minutes: int = 60) -> None:
    config = {
        "name": name, "source": {"prefix": f"modelDataCollector/{name}/", "join_ttl_minutes": join_ttl_minutes},
        "window": window,
        "judge": {"provider": "heuristic"},
        "metrics": {m: {"enabled": m in metrics} for m in
                    ("coherence", "fluency", "groundedness", "relevance", "similarity")},
        "alerts": {"min_samples": min_samples, "webhook_url": webhook, "error_rate_limit": error_rate_limit},
    }
    MonitorStore().put(config)


def rec(monitor: str, hour: datetime, deployment: str = "blue", version: str = "1") -> Record:
    n = next(_keys)
    return Record(monitor=monitor, key=f"corr-{n}", time=hour + timedelta(minutes=n % 60),
                  deployment=deployment, model_version=version)


def ok(record: Record, value: float, metric: str = "coherence", acceptable: float = 3.0) -> Score:
    return Score(record.key, metric, "ok", score=value, passed=value >= acceptable)


def bad(record: Record, status: Status, metric: str = "coherence") -> Score:
    return Score(record.key, metric, status)


def seed(monitor: str, records: list[Record], scores: list[Score], *, batch: str | None = None,
         metrics: tuple[str, ...] = ("coherence",), dirty: bool = True) -> None:
    """Write one batch's partial (and its dirty hour) as the judge path does."""
    tables = Tables.default()
    now = iso(datetime.now(UTC))
    counts = count_batch(records, scores, metrics)
    entity = partial_entity(records[0].partition, batch or f"b{next(_keys)}", counts, len(records), now)
    write_entities(tables["partials"], [entity])
    if dirty:
        tables["dirty"].upsert_entity({"PartitionKey": monitor, "RowKey": records[0].hour, "updated_at": now})


def half(monitor: str, hour: datetime, *, state: str, first_seen: datetime, deployment: str = "blue",
         minute: int = 5) -> None:
    key = f"lonely-{next(_keys)}"
    Tables.default()["joins"].upsert_entity({
        "PartitionKey": f"{monitor}|{join_shard(key)}", "RowKey": key, "state": state,
        "time": iso(hour + timedelta(minutes=minute)), "hour": hour_key(hour), "first_seen": iso(first_seen),
        "deployment": deployment, "model_version": "1"})


def stored_windows(monitor: str) -> dict[str, dict[str, Any]]:
    """Every window entity of a monitor with its ETag, keyed by PartitionKey/RowKey."""
    table = Tables.default()["windows"]
    rows = table.query_entities("PartitionKey ge @lo and PartitionKey lt @hi",
                                parameters={"lo": f"{monitor}|", "hi": f"{monitor}}}"})
    return {f"{e['PartitionKey']}/{e['RowKey']}": {**e, "etag": e.metadata["etag"]} for e in rows}


def window(rows: list[dict[str, Any]], start: datetime, segment: str = "all",
           metric: str = "coherence") -> dict[str, Any]:
    (found,) = [r for r in rows if r["window_start"] == iso(start) and r["segment"] == segment
                and r["metric"] == metric]
    return found


def seed_hand_computed(monitor: str) -> None:
    """Hour 14: scores 2.5 (bucket 3, fails), 3.0 (passes), 2.99 (fails), 1.49 (bucket 1) on blue/v1;
    4.6 (bucket 5), an error and a not-applicable on green/v2. Two batches."""
    blue = [rec(monitor, H14) for _ in range(4)]
    green = [rec(monitor, H14, "green", "2") for _ in range(3)]
    seed(monitor, blue[:2], [ok(blue[0], 2.5), ok(blue[1], 3.0)])
    seed(monitor, [*blue[2:], *green], [ok(blue[2], 2.99), ok(blue[3], 1.49), ok(green[0], 4.6),
                                        bad(green[1], "error"), bad(green[2], "not_applicable")])


# --- windows ------------------------------------------------------------------------------------

def test_hand_computed_hour_window(env: None, monitor_name: str) -> None:
    put_monitor(monitor_name, min_samples=5, join_ttl_minutes=90)
    seed_hand_computed(monitor_name)
    # The time-to-live counts from the request time: 14:05 + 90 min <= 16:05, 14:50 + 90 min > 16:05.
    half(monitor_name, H14, state="pending", first_seen=H14 + timedelta(minutes=10))   # expired by 16:05
    half(monitor_name, H14, state="pending", first_seen=AT - timedelta(minutes=5), minute=50)   # still waiting
    # Ingested (first seen) long after the aggregation's time, as when old data is backfilled: expired.
    half(monitor_name, H14, state="pending", first_seen=AT + timedelta(days=10))
    half(monitor_name, H14, state="joined", first_seen=H14)                             # not unmatched
    half(monitor_name, H14 - timedelta(hours=1), state="pending", first_seen=H14)        # hour 13

    report = aggregate_command(monitor_name, AT)
    assert report.error is None and iso(H14) in report.windows
    rows = query_windows(monitor_name, metric="coherence", start=H14, end=H14 + timedelta(hours=1))

    overall = window(rows, H14)
    assert {k: overall[k] for k in ("row_count", "scored", "passed", "errors", "not_applicable", "skipped")} == {
        "row_count": 7, "scored": 5, "passed": 2, "errors": 1, "not_applicable": 1, "skipped": 0}
    assert overall["pass_rate"] == pytest.approx(0.4)
    assert overall["average_score"] == pytest.approx((2.5 + 3.0 + 2.99 + 1.49 + 4.6) / 5)
    assert overall["histogram"] == {"1": 1, "2": 0, "3": 3, "4": 0, "5": 1}
    assert overall["error_rate"] == pytest.approx(1 / 6, abs=1e-6)
    assert (overall["unmatched"], overall["unmatched_pending"], overall["unmatched_expired"]) == (3, 1, 2)
    assert overall["threshold"] == 0.7 and overall["acceptable_score"] == 3.0 and overall["min_samples"] == 5
    assert overall["breached"] is True and overall["final"] is False
    assert overall["judge"] == "heuristic" and overall["approximate"] is True
    assert (overall["window"], overall["window_end"]) == ("hour", "2026-11-20T15:00:00Z")

    blue = window(rows, H14, "deployment=blue")
    assert (blue["row_count"], blue["scored"], blue["passed"]) == (4, 4, 1)
    assert blue["pass_rate"] == 0.25 and blue["average_score"] == pytest.approx(2.495)
    assert blue["histogram"] == {"1": 1, "2": 0, "3": 3, "4": 0, "5": 0}
    assert blue["breached"] is False  # 0.25 < 0.7 but only 4 scored < min_samples 5
    green = window(rows, H14, "model_version=2")
    assert (green["row_count"], green["scored"], green["passed"], green["errors"]) == (3, 1, 1, 1)
    assert green["pass_rate"] == 1.0 and green["histogram"]["5"] == 1 and green["unmatched"] == 0
    assert window(rows, H14, "model_version=1")["scored"] == 4
    assert {r["segment"] for r in rows} == {"all", "deployment=blue", "deployment=green",
                                            "model_version=1", "model_version=2"}
    assert window(query_windows(monitor_name), H14 - timedelta(hours=1))["unmatched"] == 1


def test_window_entity_layout(env: None, monitor_name: str) -> None:
    put_monitor(monitor_name, metrics=("coherence", "relevance"))
    records = [rec(monitor_name, H14) for _ in range(2)]
    seed(monitor_name, records, [ok(records[0], 4.0), ok(records[1], 2.0)], metrics=("coherence", "relevance"))
    aggregate_command(monitor_name, AT)
    stored = stored_windows(monitor_name)
    entity = stored[f"{monitor_name}|coherence/2026-11-20T14:00:00Z|all"]
    assert entity["histogram"] == '{"1":0,"2":1,"3":0,"4":1,"5":0}'
    assert entity["window_start"] == "2026-11-20T14:00:00Z" and entity["metric"] == "coherence"
    relevance = stored[f"{monitor_name}|relevance/2026-11-20T14:00:00Z|all"]
    assert relevance["row_count"] == 2 and relevance["scored"] == 0
    assert "pass_rate" not in relevance and "average_score" not in relevance
    # No entity for windows without data.
    assert all("2026-11-20T14:00:00Z" in key for key in stored)
    # One partition range query answers "metric X between T1 and T2"; segment filter works too.
    rows = query_windows(monitor_name, metric="relevance", segment="deployment=blue",
                         start="2026-11-20T14:30:00Z", end="2026-11-20T15:00:00Z")
    assert [(r["metric"], r["segment"], r["pass_rate"]) for r in rows] == [("relevance", "deployment=blue", None)]
    assert query_windows(monitor_name, start="2026-11-20T15:00:00Z") == []


def test_day_window_merges_24_hours(env: None, monitor_name: str) -> None:
    put_monitor(monitor_name, window="day", min_samples=10)
    day = datetime(2026, 11, 20, tzinfo=UTC)
    for h in range(24):
        records = [rec(monitor_name, day + timedelta(hours=h)) for _ in range(2)]
        seed(monitor_name, records, [ok(records[0], 5.0), ok(records[1], 2.5 if h % 2 else 3.0)])
    nextday = [rec(monitor_name, day + timedelta(days=1))]
    seed(monitor_name, nextday, [ok(nextday[0], 1.0)])

    at = datetime(2026, 11, 21, 3, tzinfo=UTC)
    report = aggregate_command(monitor_name, at)
    assert report.windows == ["2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"]
    rows = query_windows(monitor_name, metric="coherence")
    first = window(rows, day)
    assert (first["window"], first["window_end"]) == ("day", "2026-11-21T00:00:00Z")
    assert (first["row_count"], first["scored"], first["passed"], first["batches"]) == (48, 48, 36, 24)
    assert first["pass_rate"] == 0.75 and first["histogram"] == {"1": 0, "2": 0, "3": 24, "4": 0, "5": 24}
    assert first["breached"] is False and first["final"] is False
    second = window(rows, day + timedelta(days=1))
    assert (second["row_count"], second["passed"], second["histogram"]["1"]) == (1, 0, 1)
    # Final once `at` passes window_end + lookback (the run after 06:00 on the 21st).
    aggregate_command(monitor_name, datetime(2026, 11, 21, 6, 15, tzinfo=UTC))
    assert window(query_windows(monitor_name, metric="coherence"), day)["final"] is True


def test_late_data_updates_the_right_window(env: None, monitor_name: str) -> None:
    put_monitor(monitor_name, min_samples=1)
    h8, h15 = H14 - timedelta(hours=6), H14 + timedelta(hours=1)
    for hour in (h8, H14, h15):
        records = [rec(monitor_name, hour)]
        seed(monitor_name, records, [ok(records[0], 4.0)])
    aggregate_command(monitor_name, AT)
    before = stored_windows(monitor_name)

    late = [rec(monitor_name, h8), rec(monitor_name, h8)]  # hour 08 is outside the lookback of 6 hours
    seed(monitor_name, late, [ok(late[0], 1.0), ok(late[1], 2.6)])
    report = aggregate_command(monitor_name, AT + timedelta(minutes=15))
    assert iso(h8) in report.windows
    after = stored_windows(monitor_name)
    changed = {k for k in after if after[k]["etag"] != before.get(k, {}).get("etag")}
    assert changed == {f"{monitor_name}|coherence/{iso(h8)}|{s}" for s in ("all", "deployment=blue", "model_version=1")}
    late_window = window(query_windows(monitor_name), h8)
    assert (late_window["row_count"], late_window["scored"], late_window["passed"]) == (3, 3, 1)
    assert late_window["histogram"] == {"1": 1, "2": 0, "3": 1, "4": 1, "5": 0}
    assert late_window["final"] is True


def test_doubled_and_past_due_runs_change_nothing(env: None, monitor_name: str) -> None:
    put_monitor(monitor_name, min_samples=2, webhook=None)
    seed_hand_computed(monitor_name)
    first = aggregate_command(monitor_name, AT)
    snapshot = stored_windows(monitor_name)
    alerts = query_alerts(monitor_name)
    again = aggregate_command(monitor_name, AT)
    late = run_aggregation(at=AT, monitor=monitor_name, past_due=True)[0]
    assert first.rows_written > 0 and again.rows_written == 0 and late.rows_written == 0
    assert again.alerts == [] and late.alerts == [] and late.past_due
    assert stored_windows(monitor_name) == snapshot   # same properties, same ETags: nothing rewritten
    assert query_alerts(monitor_name) == alerts


def test_windows_after_at_are_not_computed_until_their_time(env: None, monitor_name: str) -> None:
    put_monitor(monitor_name)
    future = [rec(monitor_name, AT + timedelta(hours=2))]
    seed(monitor_name, future, [ok(future[0], 4.0)])
    report = aggregate_command(monitor_name, AT)
    assert all(w <= iso(AT) for w in report.windows)
    assert query_windows(monitor_name) == []
    # The deferred dirty hour is still picked up by a later run (the cursor waits for it).
    later = aggregate_command(monitor_name, AT + timedelta(hours=12))
    assert iso(datetime(2026, 11, 20, 18, tzinfo=UTC)) in later.windows
    assert window(query_windows(monitor_name), datetime(2026, 11, 20, 18, tzinfo=UTC))["scored"] == 1


def test_last_aggregation(env: None, monitor_name: str) -> None:
    put_monitor(monitor_name)
    assert last_aggregation(monitor_name) is None
    aggregate_command(monitor_name, AT)
    stamp = last_aggregation(monitor_name)
    assert stamp is not None and abs(datetime.fromisoformat(stamp.replace("Z", "+00:00")) - datetime.now(UTC)) < \
        timedelta(minutes=5)


# --- alerts -------------------------------------------------------------------------------------

def alert_kinds(monitor: str) -> list[tuple[str, str, str, str]]:
    return sorted((a["kind"], a["metric"], a["segment"], a["window_start"]) for a in query_alerts(monitor))


def test_each_alert_kind_fires_once(env: None, monitor_name: str) -> None:
    put_monitor(monitor_name, min_samples=3, metrics=("coherence", "fluency", "relevance"))
    records = [rec(monitor_name, H14) for _ in range(4)]
    scores = [ok(r, 2.0) for r in records[:3]] + [ok(records[3], 4.0)]              # coherence 1/4: pass_rate
    scores += [bad(r, "error", "fluency") for r in records[:3]] + [ok(records[3], 4.0, "fluency")]  # 3/4 errors
    scores += [bad(r, "skipped", "relevance") for r in records]                      # nothing scored
    seed(monitor_name, records, scores, metrics=("coherence", "fluency", "relevance"))

    first = aggregate_command(monitor_name, AT)
    expected = sorted([(k, m, s, iso(H14)) for k, m in (("pass_rate", "coherence"), ("error_rate", "fluency"),
                                                         ("no_scores", "relevance"))
                       for s in ("all", "deployment=blue", "model_version=1")])
    assert alert_kinds(monitor_name) == expected
    assert len(first.alerts) == len(expected)
    for _ in range(2):
        assert aggregate_command(monitor_name, AT + timedelta(minutes=15)).alerts == []
    assert run_aggregation(at=AT, monitor=monitor_name, past_due=True)[0].alerts == []
    assert alert_kinds(monitor_name) == expected

    alert = next(a for a in query_alerts(monitor_name) if a["kind"] == "pass_rate" and a["segment"] == "all")
    assert alert["value"] == 0.25 and alert["threshold"] == 0.7 and alert["webhook_status"] == "none"
    for word in (monitor_name, "coherence", "segment all", "2026-11-20T14:00:00Z", "0.250", "0.700"):
        assert word in alert["message"]
    no_scores = next(a for a in query_alerts(monitor_name) if a["kind"] == "no_scores" and a["segment"] == "all")
    assert "4 skipped" in no_scores["message"]


def test_in_progress_window_does_not_raise_no_scores(env: None, monitor_name: str) -> None:
    put_monitor(monitor_name, min_samples=5, metrics=("coherence", "relevance"))
    now_hour = datetime(2026, 11, 20, 16, tzinfo=UTC)
    records = [rec(monitor_name, now_hour) for _ in range(2)]
    # Two rows, relevance errored on both; the hour is still running and has fewer than min_samples.
    seed(monitor_name, records, [ok(records[0], 4.0), ok(records[1], 4.0)] +
         [bad(r, "error", "relevance") for r in records], metrics=("coherence", "relevance"))
    aggregate_command(monitor_name, AT)
    assert alert_kinds(monitor_name) == []
    # Once the hour has ended, the same numbers raise it (exactly once).
    aggregate_command(monitor_name, AT + timedelta(hours=1))
    aggregate_command(monitor_name, AT + timedelta(hours=1, minutes=15))
    assert [k[:3] for k in alert_kinds(monitor_name)] == [
        ("no_scores", "relevance", "all"), ("no_scores", "relevance", "deployment=blue"),
        ("no_scores", "relevance", "model_version=1")]


def test_recovered_after_a_breach(env: None, monitor_name: str) -> None:
    put_monitor(monitor_name, min_samples=3)
    h12, h13 = H14 - timedelta(hours=2), H14 - timedelta(hours=1)
    bad_hour = [rec(monitor_name, h12) for _ in range(3)]
    seed(monitor_name, bad_hour, [ok(r, 1.5) for r in bad_hour])
    thin = [rec(monitor_name, h13)]                                 # too few samples to judge the hour
    seed(monitor_name, thin, [ok(thin[0], 5.0)])
    good = [rec(monitor_name, H14) for _ in range(3)]
    seed(monitor_name, good, [ok(r, 4.5) for r in good])
    aggregate_command(monitor_name, AT)
    aggregate_command(monitor_name, AT + timedelta(minutes=30))
    found = [k for k in alert_kinds(monitor_name) if k[2] == "all"]
    assert found == [("pass_rate", "coherence", "all", iso(h12)), ("recovered", "coherence", "all", iso(H14))]
    recovered = next(a for a in query_alerts(monitor_name, start=H14) if a["kind"] == "recovered")
    assert recovered["value"] == 1.0 and "Recovered" in recovered["message"]
    assert [a["window_start"] for a in query_alerts(monitor_name, start=h13, end=H14)] == []


# --- webhook ------------------------------------------------------------------------------------

def breach(monitor: str) -> None:
    records = [rec(monitor, H14) for _ in range(3)]
    seed(monitor, records, [ok(r, 1.0) for r in records])


def test_webhook_receives_each_new_alert_once(env: None, monitor_name: str) -> None:
    with WebhookReceiver() as hook:
        put_monitor(monitor_name, min_samples=3, webhook=hook.url)
        breach(monitor_name)
        report = aggregate_command(monitor_name, AT)
        aggregate_command(monitor_name, AT + timedelta(minutes=15))
    assert report.webhooks_sent == 3 and report.webhooks_failed == 0
    assert sorted(b["segment"] for b in hook.bodies) == ["all", "deployment=blue", "model_version=1"]
    body = next(b for b in hook.bodies if b["segment"] == "all")
    assert body["id"] == f"{monitor_name}|2026-11-20T14:00:00Z|coherence|all|pass_rate"
    assert {k: body[k] for k in ("monitor", "kind", "metric", "window_start", "window_end", "value", "threshold")} == {
        "monitor": monitor_name, "kind": "pass_rate", "metric": "coherence", "window_start": "2026-11-20T14:00:00Z",
        "window_end": "2026-11-20T15:00:00Z", "value": 0.0, "threshold": 0.7}
    assert "message" in body and body["approximate"] is True
    stored = [a for a in query_alerts(monitor_name)]
    assert {(a["webhook_status"], a["webhook_attempts"], a["webhook_error"]) for a in stored} == {("sent", 1, None)}


def test_failing_webhook_keeps_the_alert_and_a_later_run_delivers(env: None, monitor_name: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_ATTEMPTS", "2")
    reset_settings()
    with WebhookReceiver() as hook:
        put_monitor(monitor_name, min_samples=3, webhook=hook.url)
        breach(monitor_name)
        hook.fail_always(500)
        report = aggregate_command(monitor_name, AT)
        assert report.error is None and len(report.alerts) == 3 and hook.bodies == []
        # The first delivery spends its 2 attempts; the receiver is then left alone for this run.
        assert (report.webhooks_failed, len(hook.requests)) == (1, 2)
        stored = query_alerts(monitor_name)
        assert len(stored) == 3
        assert sorted((a["webhook_status"], a["webhook_attempts"]) for a in stored) == [
            ("failed", 2), ("pending", 0), ("pending", 0)]
        assert "500" in next(a["webhook_error"] for a in stored if a["webhook_status"] == "failed")

        hook.heal()
        later = aggregate_command(monitor_name, AT + timedelta(minutes=15))
        assert later.alerts == [] and later.webhooks_sent == 3 and len(hook.bodies) == 3
        assert sorted((a["webhook_status"], a["webhook_attempts"]) for a in query_alerts(monitor_name)) == [
            ("sent", 1), ("sent", 1), ("sent", 3)]
        assert aggregate_command(monitor_name, AT + timedelta(minutes=30)).webhooks_sent == 0
    assert len(hook.bodies) == 3
    assert len({b["id"] for b in hook.bodies}) == 3


def test_webhook_gives_up_after_max_attempts(env: None, monitor_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_ATTEMPTS", "2")
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "3")
    reset_settings()
    with WebhookReceiver() as hook:
        hook.fail_always(502)
        put_monitor(monitor_name, min_samples=3, webhook=hook.url)
        breach(monitor_name)
        for minutes in range(0, 150, 15):
            report = aggregate_command(monitor_name, AT + timedelta(minutes=minutes))
            assert report.error is None
        assert len(hook.requests) == 3 * 3  # 3 attempts for each of the 3 alerts, then no more
    assert {(a["webhook_status"], a["webhook_attempts"]) for a in query_alerts(monitor_name)} == {("failed", 3)}


# --- the timer trigger, as the host invokes it ----------------------------------------------------

@pytest.fixture
def own_storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private Azurite: the timer aggregates *every* monitor, so keep other tests' monitors out."""
    monkeypatch.setenv("WEBHOOK_BACKOFF_SECONDS", "0")
    with private_azurite():
        yield


def host_functions() -> dict[str, Any]:
    from monitor.functions.aggregate import bp

    app = func.FunctionApp()
    app.register_functions(bp)
    return {str(f.get_function_name()): f for f in app.get_functions()}


def test_timer_binding_declaration() -> None:
    function = host_functions()["aggregate_windows"]
    (binding,) = json.loads(function.get_function_json())["bindings"]
    assert binding["type"] == "timerTrigger" and binding["direction"] == "IN"
    assert binding["name"] == "timer" and binding["schedule"] == "%AGGREGATION_SCHEDULE%"
    assert binding["runOnStartup"] is False and binding["useMonitor"] is True


def test_timer_function_as_the_host_invokes_it(own_storage: None, caplog: pytest.LogCaptureFixture) -> None:
    functions = host_functions()
    names = ["t-timer-a", "t-timer-b"]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for name in names:
        put_monitor(name, min_samples=3)
        records = [rec(name, hour) for _ in range(3)]
        seed(name, records, [ok(r, 1.0) for r in records])
    user_function = functions["aggregate_windows"].get_user_function()
    with caplog.at_level("INFO", logger="monitor.functions.aggregate"):
        user_function(TimerRequest(past_due=False))
        user_function(TimerRequest(past_due=True))
    for name in names:
        assert window(query_windows(name), hour)["breached"] is True
        assert len(query_alerts(name)) == 3
        assert last_aggregation(name) is not None
    lines = [r.getMessage() for r in caplog.records if r.name == "monitor.functions.aggregate"]
    assert len(lines) == 4 and all(line.startswith("aggregate t-timer-") for line in lines)
    assert "(past due)" in lines[-1]


# --- POST /api/monitors/{name}/aggregate --------------------------------------------------------

def test_aggregate_route_runs_the_timer_path(env: None, monitor_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The route aggregates one monitor as the timer does (same windows, numbers, alerts), is
    idempotent, and is protected by the key like every route but health."""
    from fastapi.testclient import TestClient

    from monitor.api import create_app

    put_monitor(monitor_name, min_samples=5)
    seed_hand_computed(monitor_name)
    monkeypatch.setenv("MONITOR_API_KEY", "s3cret")
    reset_settings()
    url = f"/api/monitors/{monitor_name}/aggregate"
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        assert client.post(url, params={"at": iso(AT)}).status_code == 401
        assert not query_windows(monitor_name), "refused: nothing ran"
        first = client.post(url, params={"at": iso(AT)}, headers={"x-functions-key": "s3cret"})
        assert first.status_code == 200, first.text
        report = first.json()
        assert report["monitor"] == monitor_name and report["at"] == iso(AT) and report["error"] is None
        assert iso(H14) in report["windows"] and report["rows_written"] > 0
        assert f"pass_rate:coherence:all:{iso(H14)}" in report["alerts"]
        overall = window(query_windows(monitor_name, metric="coherence"), H14)
        assert (overall["scored"], overall["passed"], overall["breached"]) == (5, 2, True)
        assert last_aggregation(monitor_name) is not None

        again = client.post(url, params={"at": iso(AT), "code": "s3cret"}).json()
        assert again["rows_written"] == 0 and again["alerts"] == [], "re-running changes nothing"
        assert again["rows_unchanged"] == report["rows_written"] + report["rows_unchanged"]

        unknown = client.post("/api/monitors/no-such-monitor/aggregate", headers={"x-functions-key": "s3cret"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
        bad_at = client.post(url, params={"at": "yesterday"}, headers={"x-functions-key": "s3cret"})
        assert bad_at.status_code == 422 and bad_at.json()["error"]["details"][0]["field"] == "at"
        assert client.get(url, headers={"x-functions-key": "s3cret"}).status_code == 405
        spec = client.get("/api/openapi.json", headers={"x-functions-key": "s3cret"}).json()
        operation = spec["paths"]["/api/monitors/{name}/aggregate"]["post"]
        assert {p["name"] for p in operation["parameters"]} == {"name", "at"}
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/AggregationRun")
