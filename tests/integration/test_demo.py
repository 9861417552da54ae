"""`python -m monitor demo --no-serve`, exactly as `make demo ARGS=--no-serve` runs it.

The demo starts its own Azurite (persisting in a temporary MONITOR_DEMO_DIR), so this exercises the
real set-up and clean-up path, isolated from the session emulator. It is run twice: the second run
must find every blob done and change nothing. The stored windows are then read back from the
persisted emulator data.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.storage import private_azurite

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "samples" / "manifest.json").read_text(encoding="utf-8"))
DAYS: list[str] = MANIFEST["days"]
REGRESSED = MANIFEST["regression"]
# The environment must not point the demo at other storage or at an LLM judge.
CLEARED = ("MONITOR_STORAGE", "MDC_STORAGE", "MDC_CONTAINER", "INLINE_BATCH_LIMIT", "AZURE_OPENAI_ENDPOINT",
           "AZURE_OPENAI_DEPLOYMENT", "OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_API_KEY", "MONITOR_API_KEY")
TABLE_ROW = re.compile(r"^(\d{4}-\d{2}-\d{2})\s+(\S+)\s+(\d+)\s+(.*?)\s+(\d+)$")


def _environment(demo_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in CLEARED and not k.startswith(("MONITOR_STORAGE__", "MDC_STORAGE__"))}
    env["MONITOR_DEMO_DIR"] = str(demo_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_demo(demo_dir: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "monitor", "demo", "--no-serve"], cwd=ROOT,
                            env=_environment(demo_dir), capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"demo failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-3000:]}"
    return result


def _table(stdout: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(day, deployment) -> rows, the pass-rate cells and the alert count of the summary table."""
    rows = {}
    for line in stdout.splitlines():
        match = TABLE_ROW.match(line.strip())
        if match:
            day, deployment, count, cells, alerts = match.groups()
            rows[(day, deployment)] = {"rows": int(count), "cells": cells.split(), "alerts": int(alerts)}
    return rows


def _line(stdout: str, prefix: str) -> str:
    found = [line for line in stdout.splitlines() if line.startswith(prefix)]
    assert len(found) == 1, f"expected one line starting {prefix!r} in:\n{stdout}"
    return found[0]


def _azurite_pid(stderr: str) -> int:
    match = re.search(r"started Azurite \(pid (\d+)\)", stderr)
    assert match, stderr
    return int(match.group(1))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.fixture
def demo_runs(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """Two demo runs on the same (persisted) demo directory."""
    return _run_demo(tmp_path), _run_demo(tmp_path)


@pytest.fixture
def persisted_storage(tmp_path: Path, demo_runs: Any) -> Iterator[None]:
    """After the runs: Azurite over the demo's persisted data, this process's settings pointed at it."""
    with private_azurite(tmp_path / "azurite" / "heuristic"):
        yield


@pytest.mark.slow
@pytest.mark.azurite
@pytest.mark.timeout(900)
def test_demo_catches_the_regression_and_reruns_idempotently(
        tmp_path: Path, demo_runs: tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]],
        persisted_storage: None) -> None:
    first, second = demo_runs
    out = first.stdout

    # Which judge ran, labelled approximate.
    judge = _line(out, "Judge:")
    assert "heuristic" in judge and "approximate" in judge

    # The regression line names the deployment, the last day and the breached metrics.
    regression = _line(out, "REGRESSION:")
    assert f"deployment {REGRESSED['deployment']}" in regression
    assert REGRESSED["day"] in regression
    assert "groundedness" in regression and "relevance" in regression
    assert "blue" not in regression

    # The table: every day x deployment with the records the samples hold, alerts only where breached.
    table = _table(out)
    for day in DAYS:
        for deployment, expected in MANIFEST["per_day"][day].items():
            row = table[(day, deployment)]
            assert row["rows"] == expected["records"], (day, deployment, row)
            regressed = (day, deployment) == (REGRESSED["day"], REGRESSED["deployment"])
            assert (row["alerts"] > 0) == regressed, (day, deployment, row)
            assert any(c.endswith("!") for c in row["cells"]) == regressed, (day, deployment, row)
        assert table[(day, "(all)")]["rows"] == sum(v["records"] for v in MANIFEST["per_day"][day].values())
    totals = MANIFEST["totals"]
    records = _line(out, "Records:")
    assert f"{totals['records']} joined" in records
    assert f"{totals['unmatched']} unmatched" in records
    assert f"{totals['quarantined']} quarantined" in records
    blobs = _line(out, "Blobs:")
    assert f"{totals['blobs']} processed" in blobs
    assert re.search(r"[1-9]\d* through the queue", blobs), "the queue-trigger path did not run"
    assert re.search(r"[1-9]\d* judged in the blob trigger", blobs)
    assert (tmp_path / "dashboard.html").read_text(encoding="utf-8").count("contoso-support") > 0

    # The demo stopped the Azurite it started, both times.
    for run in (first, second):
        assert "stopped Azurite" in run.stderr
        assert not _alive(_azurite_pid(run.stderr))

    # The second run: every blob already done, same numbers, no new alert.
    again = second.stdout
    assert _table(again) == table
    assert f"0 processed, {totals['blobs']} already done" in _line(again, "Blobs:")
    alerts_first, alerts_second = _line(out, "Alerts:"), _line(again, "Alerts:")
    stored = re.match(r"Alerts: (\d+) stored", alerts_first)
    assert stored and int(stored.group(1)) > 0
    assert alerts_second.startswith(f"Alerts: {stored.group(1)} stored, 0 new in this run")
    assert _line(again, "REGRESSION:") == regression

    # Drift and judge calibration: the regression day drifts; the golden set is judged once.
    assert "drift:deployment=green" in alerts_first and "drift:deployment=blue" not in alerts_first
    calibration = _line(out, "Judge calibration")
    assert "(judged now)" in calibration and "26 hand-labelled golden records" in calibration
    assert "groundedness 0.880" in calibration  # the heuristic judge is deterministic
    assert "(already judged in this period)" in _line(again, "Judge calibration")

    # The stored windows: the regression day x green breached for groundedness, the rest not.
    from monitor.aggregate import query_windows

    for deployment in ("blue", "green"):
        windows = {w["window_start"][:10]: w for w in query_windows(
            "contoso-support", metric="groundedness", segment=f"deployment={deployment}")}
        assert sorted(windows) == DAYS
        for day, window in windows.items():
            regressed = (day, deployment) == (REGRESSED["day"], REGRESSED["deployment"])
            assert window["breached"] is regressed, (day, deployment, window)
            assert window["final"] is True
            assert window["scored"] >= 10
            if regressed:
                assert window["pass_rate"] < 0.5
            else:
                assert window["pass_rate"] > 0.85
    relevance = query_windows("contoso-support", metric="relevance", segment=f"deployment={REGRESSED['deployment']}")
    assert [w["window_start"][:10] for w in relevance if w["breached"]] == [REGRESSED["day"]]


@pytest.mark.parametrize(("env", "expected"), [
    ({}, {"provider": "heuristic"}),
    ({"AZURE_OPENAI_ENDPOINT": "", "AZURE_OPENAI_DEPLOYMENT": "", "OPENAI_BASE_URL": "", "OPENAI_MODEL": ""},
     {"provider": "heuristic"}),
    ({"AZURE_OPENAI_ENDPOINT": "https://aoai.example.com", "AZURE_OPENAI_DEPLOYMENT": "gpt-4o"},
     {"provider": "azure_openai", "endpoint": "https://aoai.example.com", "deployment": "gpt-4o",
      "api_key_setting": None}),
    ({"AZURE_OPENAI_ENDPOINT": "https://aoai.example.com", "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
      "AZURE_OPENAI_API_KEY": "k"},
     {"provider": "azure_openai", "api_key_setting": "AZURE_OPENAI_API_KEY"}),
    ({"OPENAI_BASE_URL": "http://127.0.0.1:8000/v1", "OPENAI_MODEL": "llama3"},
     {"provider": "openai", "model": "llama3", "base_url": "http://127.0.0.1:8000/v1"}),
    ({"OPENAI_MODEL": "gpt-4o-mini", "OPENAI_API_KEY": "k"},
     {"provider": "openai", "model": "gpt-4o-mini", "base_url": None}),
    ({"OPENAI_MODEL": "gpt-4o-mini"}, {"provider": "heuristic"}),   # no server and no key: nothing to call
], ids=["none", "empty", "azure-entra", "azure-key", "compatible-server", "openai", "model-only"])
def test_demo_judge_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                               expected: dict[str, Any]) -> None:
    from monitor.config import parse_config
    from monitor.demo import DEMO_NAME, demo_config
    from monitor.settings import reset_settings

    for key in (*CLEARED, "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MDC_CONTAINER", "demo-watched")
    reset_settings()
    try:
        config = parse_config(demo_config())
    finally:
        monkeypatch.undo()
        reset_settings()
    assert config.name == DEMO_NAME and config.window == "day"
    assert config.source.container == "demo-watched"
    judge = config.judge.model_dump()
    assert {k: judge[k] for k in expected} == expected
