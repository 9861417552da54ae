"""Drift and calibration through the HTTP API (FastAPI test client) and `python -m monitor`, on Azurite,
with the heuristic judge (no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.aggregate import aggregate_command
from monitor.cli import main
from monitor.monitors import MonitorStore
from monitor.settings import reset_settings
from tests.support.drift import AT, seed_regression

pytestmark = pytest.mark.azurite
ROOT = Path(__file__).resolve().parents[2]


def put_monitor(name: str) -> None:
    MonitorStore().put({"name": name, "source": {"prefix": f"p/{name}/"}, "judge": {"provider": "heuristic"},
                        "metrics": {"similarity": {"enabled": False}},
                        "drift": {"trailing_windows": 3, "min_samples": 5}})


GOOD = "\n".join(json.dumps({"id": f"g{i}", "question": "How do I reset my password?",
                             "answer": "Open Settings, then Security, then choose Reset password." if i % 2
                             else "password", "human": {"coherence": 4 if i % 2 else 1, "fluency": 4 if i % 2 else 2}})
                 for i in range(12))


def test_golden_put_validation_and_calibration(api: TestClient, monitor_name: str) -> None:
    put_monitor(monitor_name)
    assert api.get(f"/api/monitors/{monitor_name}/golden").json() is None
    bad = api.put(f"/api/monitors/{monitor_name}/golden", content=b'{"question": "q"}\nnot json\n',
                     headers={"content-type": "application/x-ndjson"})
    assert bad.status_code == 422, bad.text
    error = bad.json()["error"]
    assert error["code"] == "invalid_golden_set"
    assert [(d["line"], d["field"]) for d in error["details"]] == [(1, "human"), (2, "(line)")]
    assert api.put("/api/monitors/no-such-monitor/golden", content=GOOD).status_code == 404
    stored = api.put(f"/api/monitors/{monitor_name}/golden", content=GOOD.encode())
    assert stored.status_code == 200, stored.text
    assert stored.json()["records"] == 12 and stored.json()["human_scores"] == {"coherence": 12, "fluency": 12}
    assert api.get(f"/api/monitors/{monitor_name}/golden").json()["records"] == 12
    empty = api.get(f"/api/monitors/{monitor_name}/calibration").json()
    assert empty["runs"] == [] and empty["latest"] is None and empty["golden"]["records"] == 12
    ran = api.post(f"/api/monitors/{monitor_name}/calibrate").json()
    assert ran["ran"] and ran["reason"] == "first" and ran["run"]["tokens"] == 0
    assert not api.post(f"/api/monitors/{monitor_name}/calibrate").json()["ran"]
    assert api.post(f"/api/monitors/{monitor_name}/calibrate", params={"force": "true"}).json()["ran"]
    report = api.get(f"/api/monitors/{monitor_name}/calibration").json()
    assert len(report["runs"]) == 2 and report["latest"]["judge"] == "heuristic" and report["latest"]["approximate"]
    coherence = report["latest"]["metrics"]["coherence"]
    assert coherence["n"] == 12 and set(coherence) == {"n", "spearman", "kendall_tau_b", "exact_accuracy",
                                                       "within_one_accuracy", "mean_bias"}
    assert report["settings"]["min_spearman"] == 0.5 and report["settings"]["period_hours"] == 24
    assert report["spend"]["calibration_tokens"] == 0
    assert api.get("/api/monitors/no-such-monitor/calibration").status_code == 404


def test_golden_too_large_is_413(api: TestClient, monitor_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    put_monitor(monitor_name)
    # a golden set may be larger than other bodies (MAX_REQUEST_BYTES), up to GOLDEN_MAX_BYTES
    monkeypatch.setenv("MAX_REQUEST_BYTES", "1000")
    reset_settings()
    assert api.put(f"/api/monitors/{monitor_name}/golden", content=GOOD.encode()).status_code == 200
    assert api.put(f"/api/monitors/{monitor_name}", content=b" " * 2000).status_code == 413
    monkeypatch.setenv("GOLDEN_MAX_BYTES", "100")
    reset_settings()
    response = api.put(f"/api/monitors/{monitor_name}/golden", content=GOOD.encode())
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_drift_route(api: TestClient, monitor_name: str) -> None:
    put_monitor(monitor_name)
    seed_regression(monitor_name)
    aggregate_command(monitor_name, AT)
    body = api.get(f"/api/monitors/{monitor_name}/drift", params={"metric": "coherence", "segment": "all"}).json()
    assert {p["series"] for p in body["points"]} == {"coherence"} and {p["segment"] for p in body["points"]} == {"all"}
    assert [p["drifted"] for p in body["points"]][:4] == [False, False, False, True]
    traffic = api.get(f"/api/monitors/{monitor_name}/drift", params={"metric": "traffic.answers"}).json()
    assert {p["series"] for p in traffic["points"]} == {"traffic.answers"}
    assert len(traffic["traffic"]) == 18  # 6 hours x 3 segments
    ranged = api.get(f"/api/monitors/{monitor_name}/drift",
                        params={"start": "2026-11-20T13:00:00Z", "end": "2026-11-20T14:00:00Z"}).json()
    assert {p["window_start"] for p in ranged["points"]} == {"2026-11-20T13:00:00Z"}
    unknown = api.get(f"/api/monitors/{monitor_name}/drift", params={"metric": "nope"})
    assert unknown.status_code == 422 and unknown.json()["error"]["details"][0]["field"] == "metric"
    assert api.get(f"/api/monitors/{monitor_name}/drift", params={"segment": "x"}).status_code == 422
    spec = api.get("/api/openapi.json").json()["paths"]
    routes = {"/api/monitors/{name}/drift", "/api/monitors/{name}/calibration", "/api/monitors/{name}/golden"}
    assert routes <= set(spec)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_commands(storage: Any, monitor_name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    put_monitor(monitor_name)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(GOOD.split("\n")[0] + '\n{"question": "q", "answer": "a", "human": {"coherence": 9}}\n')
    code, _, err = run(capsys, "golden", "put", "--monitor", monitor_name, str(bad))
    assert code == 2 and str(bad) in err and "line 2" in err and "human.coherence" in err
    good = tmp_path / "golden.jsonl"
    good.write_text(GOOD)
    code, out, _ = run(capsys, "golden", "put", "--monitor", monitor_name, str(good))
    assert code == 0 and json.loads(out)["records"] == 12
    code, out, _ = run(capsys, "calibrate", "--monitor", monitor_name)
    assert code == 0 and json.loads(out)["ran"]
    code, out, err = run(capsys, "calibrate", "--monitor", monitor_name)
    assert code == 0 and not json.loads(out)["ran"] and "--force" in err
    code, out, _ = run(capsys, "calibrate", "--monitor", monitor_name, "--force")
    assert json.loads(out)["reason"] == "forced"
    code, out, _ = run(capsys, "calibration", "--monitor", monitor_name)
    assert code == 0 and out.count("heuristic") == 2 * 2  # 2 runs x 2 human-scored metrics
    code, out, _ = run(capsys, "calibration", "--monitor", monitor_name, "--json")
    assert len(json.loads(out)["runs"]) == 2
    seed_regression(monitor_name)
    run(capsys, "aggregate", "--monitor", monitor_name, "--at", "2026-11-20T16:05:00Z")
    code, out, _ = run(capsys, "drift", "--monitor", monitor_name, "--metric", "coherence", "--segment", "all")
    assert code == 0 and "2026-11-20T13:00:00Z" in out and " yes" in out
    code, out, _ = run(capsys, "drift", "--monitor", monitor_name, "--json")
    assert json.loads(out)["baseline"] == {"kind": "trailing", "windows": 3}
