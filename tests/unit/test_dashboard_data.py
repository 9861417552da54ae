"""What the dashboard picks to show: the card figures and the failing examples' window."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.config import parse_config
from monitor.dashboard.data import DashboardQuery, _scope, metric_view, parse_query

CONFIG = parse_config({"name": "demo-mon", "source": {"prefix": "p/"}, "window": "day"})


def window(day: int, metric: str, segment: str = "all", *, scored: int = 20, passed: int = 18,
           final: bool = True, threshold: float = 0.7) -> dict[str, Any]:
    rate = passed / scored if scored else None
    return {"window_start": f"2026-11-{day:02d}T00:00:00Z", "window_end": f"2026-11-{day + 1:02d}T00:00:00Z",
            "metric": metric, "segment": segment, "scored": scored, "passed": passed, "pass_rate": rate,
            "average_score": 4.0, "histogram": {"1": scored - passed, "4": passed}, "threshold": threshold,
            "breached": rate is not None and scored >= 10 and rate < threshold, "final": final, "row_count": scored}


def test_card_shows_the_latest_complete_window_and_the_breach_besides_the_range() -> None:
    windows = [window(18, "groundedness"), window(19, "groundedness", passed=6), window(20, "groundedness"),
               window(21, "groundedness", passed=17, final=False)]
    view = metric_view("groundedness", CONFIG.metric_settings()["groundedness"], windows)
    assert view.latest is not None and view.latest["window_start"].startswith("2026-11-20")  # not the open one
    assert view.breached is not None and view.breached["window_start"].startswith("2026-11-19")
    assert not view.latest_breached and view.breaches == 1
    assert view.pass_rate == (18 + 6 + 18 + 17) / 80     # the range figure: summed windows


def test_failing_examples_start_at_the_breached_window() -> None:
    windows = [window(19, "groundedness", passed=5), window(20, "fluency", passed=19),
               window(20, "groundedness", "deployment=green", passed=4),
               window(20, "relevance", "deployment=green", passed=8)]
    # The page's own segment first.
    assert _scope(CONFIG, DashboardQuery(), windows) == ("2026-11-19T00:00:00Z", "all", "groundedness", "breached")
    # No breach in the page's segment: on all traffic, a deployment's breach leads (latest, most failing).
    later = [w for w in windows if not (w["segment"] == "all" and w["metric"] == "groundedness")]
    assert _scope(CONFIG, DashboardQuery(), later) == (
        "2026-11-20T00:00:00Z", "deployment=green", "groundedness", "breached")
    # A segment page never jumps to another segment; without a breach, the latest window with failures.
    assert _scope(CONFIG, DashboardQuery(segment="deployment=blue"), later) is None
    quiet = [window(18, "fluency", passed=19), window(19, "fluency", passed=20)]
    assert _scope(CONFIG, DashboardQuery(), quiet) == ("2026-11-18T00:00:00Z", "all", None, "latest")
    # A metric picked without a window: only that metric's breaches and failures count.
    assert _scope(CONFIG, DashboardQuery(metric="fluency"), windows) == ("2026-11-20T00:00:00Z", "all", "fluency",
                                                                         "latest")
    picked = DashboardQuery(segment="deployment=green", window=datetime(2026, 11, 18, tzinfo=UTC), metric="fluency")
    assert _scope(CONFIG, picked, windows) == ("2026-11-18T00:00:00Z", "deployment=green", "fluency", "selected")


def test_bad_parameters_become_notices() -> None:
    query, notices = parse_query({"start": "yesterday", "end": "2026-11-20", "segment": "region=eu",
                                  "first": "x", "window": "2026-11-19T00:00:00Z"})
    assert query.start is None and query.typed_start == "yesterday"
    assert query.end == datetime(2026, 11, 20, tzinfo=UTC)
    assert query.segment == "all" and query.first == 1
    assert query.window == datetime(2026, 11, 19, tzinfo=UTC)
    assert notices[0].startswith("From: 'yesterday' is not an ISO 8601 time")
    assert any(n.startswith("Segment 'region=eu'") for n in notices)
    query, notices = parse_query({"start": "2026-11-20", "end": "2026-11-19"})
    assert (query.start, query.end) == (None, None) and notices == [
        "To must be later than From; showing the default range instead"]
