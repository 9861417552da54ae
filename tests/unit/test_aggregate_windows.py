"""Window arithmetic and window numbers: pure functions, no storage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from monitor.aggregate.rollup import RowContext, Unmatched, WindowInput, judge_label, same_numbers, window_rows
from monitor.aggregate.windows import Window, history_spans, plan_windows, window_of, window_of_hour
from monitor.config import AlertsConfig, JudgeConfig, MetricConfig
from monitor.partials import Counter

AT = datetime(2026, 11, 20, 16, 5, tzinfo=UTC)
SIX = timedelta(hours=6)


def hours(*values: int) -> list[datetime]:
    return [datetime(2026, 11, 20, h, tzinfo=UTC) for h in values]


def test_windows_are_utc_aligned() -> None:
    local = datetime(2026, 11, 20, 17, 30, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert window_of(local, "hour").start == datetime(2026, 11, 20, 17, tzinfo=UTC)
    assert window_of(local, "day").start == datetime(2026, 11, 20, tzinfo=UTC)
    day = window_of_hour("2026112023", "day")
    assert (day.start_iso, day.end_iso, day.first_hour, day.end_hour) == (
        "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z", "2026112000", "2026112100")


def test_plan_first_run_covers_the_lookback() -> None:
    planned = plan_windows(kind="hour", at=AT, lookback=SIX, dirty_hours=[], previous_at=None)
    assert [w.start for w in planned] == hours(10, 11, 12, 13, 14, 15, 16)


def test_plan_adds_dirty_hours_and_never_future_windows() -> None:
    planned = plan_windows(kind="hour", at=AT, lookback=SIX,
                           dirty_hours=["2026111903", "2026112017", "2026112014"], previous_at=None)
    starts = [w.start for w in planned]
    assert starts[0] == datetime(2026, 11, 19, 3, tzinfo=UTC)
    assert datetime(2026, 11, 20, 17, tzinfo=UTC) not in starts
    assert starts[1:] == hours(10, 11, 12, 13, 14, 15, 16)


def test_plan_after_a_pause_revisits_windows_that_became_final() -> None:
    # The previous run was at 12:05; windows final since then (ending after 06:05) are revisited.
    planned = plan_windows(kind="hour", at=AT, lookback=SIX, dirty_hours=[],
                           previous_at=datetime(2026, 11, 20, 12, 5, tzinfo=UTC))
    assert planned[0].start == datetime(2026, 11, 20, 6, tzinfo=UTC)
    assert planned[-1].start == datetime(2026, 11, 20, 16, tzinfo=UTC)


def test_plan_day_windows() -> None:
    planned = plan_windows(kind="day", at=datetime(2026, 11, 21, 3, tzinfo=UTC), lookback=SIX,
                           dirty_hours=["2026111812"], previous_at=None)
    assert [w.start_iso for w in planned] == ["2026-11-18T00:00:00Z", "2026-11-20T00:00:00Z",
                                              "2026-11-21T00:00:00Z"]


def test_final_only_after_the_lookback() -> None:
    window = Window(datetime(2026, 11, 20, 14, tzinfo=UTC), "hour")
    assert not window.final(datetime(2026, 11, 20, 20, 59, tzinfo=UTC), SIX)
    assert window.final(datetime(2026, 11, 20, 21, 0, tzinfo=UTC), SIX)
    assert window.closed(datetime(2026, 11, 20, 15, tzinfo=UTC))
    assert not window.closed(datetime(2026, 11, 20, 14, 59, tzinfo=UTC))


def test_history_spans_merge() -> None:
    windows = [Window(h, "hour") for h in hours(10, 11, 12)] + [Window(datetime(2026, 10, 1, tzinfo=UTC), "hour")]
    spans = history_spans(windows, 2)
    assert spans == [(datetime(2026, 9, 30, 22, tzinfo=UTC), datetime(2026, 10, 1, 1, tzinfo=UTC)),
                     (datetime(2026, 11, 20, 8, tzinfo=UTC), datetime(2026, 11, 20, 13, tzinfo=UTC))]


def ctx(min_samples: int = 5) -> RowContext:
    return RowContext("m-one", "heuristic", True, AlertsConfig(min_samples=min_samples), "2026-11-20T16:05:00Z")


def test_rows_omit_rates_without_scores_and_count_unmatched() -> None:
    window = Window(datetime(2026, 11, 20, 14, tzinfo=UTC), "hour")
    data = WindowInput(window, counts={"all": {"coherence": Counter(row_count=3, errors=3)}},
                       batches=1, unmatched={"all": Unmatched(pending=1, expired=2),
                                             "deployment=blue": Unmatched(expired=1)})
    rows = window_rows(ctx(), data, {"coherence": MetricConfig()}, final=False)
    assert [r["segment"] for r in rows] == ["all", "deployment=blue"]
    first = rows[0]
    assert "pass_rate" not in first and "average_score" not in first
    assert first["error_rate"] == 1.0 and first["breached"] is False
    assert (first["unmatched"], first["unmatched_pending"], first["unmatched_expired"]) == (3, 1, 2)
    assert json.loads(first["histogram"]) == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}
    assert rows[1]["row_count"] == 0 and rows[1]["unmatched"] == 1
    assert first["PartitionKey"] == "m-one|coherence" and first["RowKey"] == "2026-11-20T14:00:00Z|all"


@pytest.mark.parametrize(("scored", "passed", "breached"), [(5, 3, True), (4, 0, False), (10, 7, False)])
def test_breached_needs_min_samples(scored: int, passed: int, breached: bool) -> None:
    window = Window(datetime(2026, 11, 20, 14, tzinfo=UTC), "hour")
    counter = Counter(row_count=scored, scored=scored, passed=passed, score_sum=3.0 * scored)
    rows = window_rows(ctx(), WindowInput(window, {"all": {"coherence": counter}}), {"coherence": MetricConfig()},
                       final=True)
    assert rows[0]["breached"] is breached


def test_judge_label_and_change_detection() -> None:
    assert judge_label(JudgeConfig()) == ("heuristic", True)
    aoai = JudgeConfig(provider="azure_openai", endpoint="https://x.openai.azure.com", deployment="gpt-4o")
    assert judge_label(aoai) == ("azure_openai:gpt-4o", False)
    row = {"PartitionKey": "p", "RowKey": "r", "scored": 1, "computed_at": "a"}
    assert same_numbers(row, {**row, "computed_at": "b"})
    assert not same_numbers(row, {**row, "scored": 2})
    assert not same_numbers({**row, "pass_rate": 1.0}, row)
    assert not same_numbers(row, None)
