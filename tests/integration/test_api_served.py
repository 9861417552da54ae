"""The API served by uvicorn on a loopback port (what `python -m monitor serve` runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from monitor.api.serve import BackgroundServer, start_background_server
from monitor.azurite import Azurite
from monitor.settings import reset_settings
from tests.support.seed import BREACHED_METRIC, Seeded, seed_config, seed_monitor

pytestmark = pytest.mark.azurite
KEY = "served-key"


@pytest.fixture
def seeded(storage: Azurite, monitor_name: str) -> Seeded:
    return seed_monitor(monitor_name)


def test_served_routes(served: BackgroundServer, seeded: Seeded, monitor_name: str) -> None:
    with httpx.Client(base_url=served.url, timeout=30) as http:
        assert http.get("/api/health").json() == {"status": "ok"}
        assert http.get("/api/openapi.json").json()["info"]["title"]
        windows = http.get(f"/api/monitors/{seeded.name}/metrics", params={"metric": BREACHED_METRIC}).json()
        assert any(w["breached"] for w in windows["windows"])
        assert http.get(f"/api/monitors/{seeded.name}/alerts").json()["alerts"]
        records = http.get(f"/api/monitors/{seeded.name}/records", params={"limit": 2}).json()
        assert len(records["records"]) == 2 and records["next"]
        assert "<svg" in http.get(f"/api/monitors/{seeded.name}/dashboard").text
        other = f"{monitor_name[:50]}-x"
        assert http.put(f"/api/monitors/{other}", json=seed_config(other)).status_code == 201
        assert http.delete(f"/api/monitors/{other}").status_code == 204
        error = http.get("/api/monitors/zzz-none").json()
        assert error["error"]["code"] == "not_found"


def test_served_with_a_key(served: BackgroundServer, seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_API_KEY", KEY)
    reset_settings()
    with httpx.Client(base_url=served.url, timeout=30) as http:
        assert http.get("/api/health").status_code == 200
        denied = http.get("/api/monitors")
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthorized"
        assert http.get("/api/monitors", headers={"x-functions-key": KEY}).status_code == 200
        page = http.get(f"/api/monitors/{seeded.name}/dashboard", params={"code": KEY})
        assert page.status_code == 200
        assert f"code={KEY}" in page.text  # links keep the key so a browser can navigate


def test_background_server_stops(storage: Azurite) -> None:
    server = start_background_server()
    url = server.url
    assert httpx.get(f"{url}/api/health").status_code == 200
    server.stop()
    assert not server.thread.is_alive()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/api/health", timeout=2)


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(served: BackgroundServer, seeded: Seeded, tmp_path: Path) -> None:
    """Property-based requests from the OpenAPI document: no 5xx anywhere (bounded to ~60 s)."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{served.url}/api/openapi.json",
        "--checks", "not_a_server_error", "--max-examples", "30", "--workers", "1",
        "--phases", "examples,coverage,fuzzing", "--max-time", "45", "--seed", "20261128",
        "--report", "junit", "--report-dir", str(tmp_path), "--no-color",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Fuzzing" in output and "Server error" not in output
