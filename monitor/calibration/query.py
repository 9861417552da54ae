"""The read and write services of calibration for the HTTP API and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from monitor.calibration.golden import load_golden, put_golden
from monitor.calibration.runs import run_history
from monitor.results import check_range, load_config
from monitor.settings import get_settings
from monitor.storage.tables import Tables, get_entity


def upload_golden(name: str, data: bytes) -> dict[str, Any]:
    """Validate and store a golden set for monitor `name` (404 unknown, 422 invalid)."""
    config = load_config(name)
    return put_golden(Tables.default(), config, data).summary()


def golden_summary(name: str) -> dict[str, Any] | None:
    load_config(name)
    golden = load_golden(Tables.default(), name)
    return golden.summary() if golden else None


def calibration_report(name: str, *, start: datetime | None = None, end: datetime | None = None,
                       at: datetime | None = None) -> dict[str, Any]:
    """`{"monitor", "golden", "settings", "latest", "runs", "spend"}`: runs oldest first."""
    config = load_config(name)
    check_range(start, end)
    tables = Tables.default()
    golden = load_golden(tables, name)
    runs = run_history(tables, name, start, end)
    all_runs = runs if start is None and end is None else run_history(tables, name)
    return {
        "monitor": name,
        "golden": golden.summary() if golden else None,
        "settings": {**config.calibration.model_dump(), "period_hours": get_settings().CALIBRATION_PERIOD_HOURS},
        "latest": all_runs[-1] if all_runs else None,
        "runs": runs,
        "spend": spend_today(tables, name, all_runs, at or datetime.now(UTC)),
    }


def spend_today(tables: Tables, name: str, runs: list[dict[str, Any]], at: datetime) -> dict[str, Any]:
    """Tokens spent today (UTC) by calibration runs, apart from the monitor's whole judge spend
    (the daily budget's counter, kept when `judge.daily_token_budget` is set)."""
    day = at.astimezone(UTC).strftime("%Y-%m-%d")
    calibration = sum(int(r.get("tokens", 0)) for r in runs if str(r.get("at", "")).startswith(day))
    usage = get_entity(tables["usage"], name, day.replace("-", ""))
    total = int(getattr(usage.get("tokens", 0), "value", usage.get("tokens", 0)) or 0) if usage else None
    return {"day": day, "calibration_tokens": calibration, "judge_tokens_total": total,
            "scoring_tokens": max(0, total - calibration) if total is not None else None}
