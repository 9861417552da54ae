"""Hostile request bodies and keys: bounded reads, deep nesting, oversize configs, exactly one key.

Through the ASGI app (test client), through the function object the Functions host invokes, and
through a real server process measured with psutil while a 200 MB body streams in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from monitor.azurite import Azurite, free_port
from monitor.config import MAX_METRICS, MAX_PREFIX_CHARS
from monitor.settings import reset_settings
from tests.integration.test_api_function import Context, Host

pytestmark = pytest.mark.azurite
KEY = "k3y-Right_0"


def nested(depth: int, leaf: str = "1") -> str:
    return "[" * depth + leaf + "]" * depth


def config(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "source": {"prefix": f"p/{name}/"}, **extra}


# --- deep nesting -----------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [65, 1_000, 50_000, 100_000])
def test_deeply_nested_bodies_are_4xx(api: TestClient, depth: int) -> None:
    for body in (nested(depth), '{"name": "x", "source": ' + nested(depth, "{}") + "}",
                 '{"a":' * depth + "1" + "}" * depth):
        started = time.perf_counter()
        response = api.put("/api/monitors/deep-one", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "bad_request" and "nested deeper" in response.text
        assert time.perf_counter() - started < 2


def test_nesting_inside_strings_is_just_text(api: TestClient, monitor_name: str) -> None:
    body = config(monitor_name, source={"prefix": "p/" + "[{" * 500})
    response = api.put(f"/api/monitors/{monitor_name}", json=body)
    assert response.status_code == 201, response.text


def test_nesting_below_the_limit_is_a_validation_error(api: TestClient) -> None:
    body = '{"source": ' + nested(60, "{}") + "}"
    response = api.put("/api/monitors/deep-one", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == "source"


# --- configs too large for one table entity ---------------------------------------------------------
def custom_metrics(count: int) -> dict[str, Any]:
    return {f"m{i:05d}": {"prompt": "examples/politeness", "required": ["completion"]} for i in range(count)}


@pytest.mark.parametrize(("change", "field"), [
    ({"source": {"prefix": "p/" + "x" * 100_000}}, "source.prefix"),
    ({"source": {"prefix": "p/" + "x" * MAX_PREFIX_CHARS}}, "source.prefix"),
    ({"metrics": custom_metrics(3_000)}, "metrics"),
    ({"metrics": custom_metrics(MAX_METRICS + 1)}, "metrics"),
    ({"columns": {"prompt": "q" * 10_000}}, "columns.prompt"),
    ({"judge": {"provider": "openai", "model": "m" * 5_000}}, "judge.model"),
    ({"judge": {"provider": "openai", "model": "m", "base_url": "https://x.example.com/" + "a" * 5_000}},
     "judge.base_url"),
    ({"alerts": {"emails": [f"ops{i}@contoso.com" for i in range(500)]}}, "alerts.emails"),
    ({"alerts": {"webhook_url": "https://hooks.example.com/" + "h" * 20_000}}, "alerts.webhook_url"),
    ({"metrics": {"tone": {"prompt": "t" * 1_000, "required": ["completion"]}}}, "metrics.tone.prompt"),
])
def test_oversize_configs_are_refused_up_front_naming_the_field(api: TestClient, monitor_name: str,
                                                                change: dict[str, Any], field: str) -> None:
    body = {**config(monitor_name), **change}
    response = api.put(f"/api/monitors/{monitor_name}", json=body)
    assert response.status_code in (413, 422), response.text
    assert response.json()["error"]["code"] != "storage_unavailable"
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert api.get(f"/api/monitors/{monitor_name}").status_code == 404


def test_the_largest_valid_config_is_stored(api: TestClient, monitor_name: str) -> None:
    body = {**config(monitor_name), "metrics": custom_metrics(MAX_METRICS),
            "source": {"prefix": "p/" + "x" * (MAX_PREFIX_CHARS - 2)}}
    response = api.put(f"/api/monitors/{monitor_name}", json=body)
    assert response.status_code == 201, response.text
    assert len(api.get(f"/api/monitors/{monitor_name}").json()["metrics"]) == MAX_METRICS


def test_a_custom_prompt_path_is_refused_naming_the_metric(api: TestClient, monitor_name: str) -> None:
    for reference in ("/dev/zero", "/etc/shadow", "../../etc/passwd", "no_such_prompt"):
        body = config(monitor_name, metrics={"tone": {"prompt": reference, "required": ["completion"]}})
        response = api.put(f"/api/monitors/{monitor_name}", json=body)
        assert response.status_code == 422, response.text
        [detail] = response.json()["error"]["details"]
        assert detail["field"] == "metrics.tone.prompt"
        assert "/prompts" not in response.text and str(os.getcwd()) not in response.text


# --- bodies -----------------------------------------------------------------------------------------
def test_a_declared_oversize_body_is_refused_unread(api: TestClient) -> None:
    response = api.put("/api/monitors/big-one", content=b"{" + b" " * 1_000_001 + b"}",
                       headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_a_chunked_oversize_body_is_refused(api: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65_536

    response = api.put("/api/monitors/big-one", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


# --- keys -------------------------------------------------------------------------------------------
@pytest.fixture
def keyed(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("MONITOR_API_KEY", KEY)
    reset_settings()
    return api


@pytest.mark.parametrize(("headers", "query"), [
    ([("x-functions-key", KEY), ("x-functions-key", "wrong")], ""),
    ([("x-functions-key", "wrong"), ("x-functions-key", KEY)], ""),
    ([("x-functions-key", KEY), ("x-functions-key", KEY)], ""),
    ([("x-functions-key", f" {KEY}")], ""),
    ([("x-functions-key", f"{KEY} ")], ""),
    ([("x-functions-key", f"{KEY}\t")], ""),
    ([("x-functions-key", "")], ""),
    ([("x-functions-key", KEY)], f"code={KEY}"),
    ([], f"code={KEY}&code=wrong"),
    ([], f"code={KEY}&code={KEY}"),
    ([], f"code=+{KEY}"),
    ([], f"code={KEY}%20"),
    ([], "code="),
    ([], ""),
])
def test_exactly_one_well_formed_key_is_accepted(keyed: TestClient, headers: list[tuple[str, str]],
                                                 query: str) -> None:
    response = keyed.get(f"/api/monitors?{query}", headers=httpx.Headers(headers))
    assert response.status_code == 401, response.text
    assert "exactly one key" in response.json()["error"]["message"]


def test_one_key_in_either_place_works(keyed: TestClient) -> None:
    assert keyed.get("/api/monitors", headers={"x-functions-key": KEY}).status_code == 200
    assert keyed.get(f"/api/monitors?code={KEY}").status_code == 200
    assert keyed.get("/api/health", headers=httpx.Headers([("x-functions-key", "a"), ("x-functions-key", "b")])
                     ).status_code == 200


# --- the Functions host path ------------------------------------------------------------------------
def test_through_the_function_object(storage: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONITOR_API_KEY", raising=False)
    reset_settings()
    host = Host()
    try:
        function = host.functions["http_app_func"].get_user_function()

        def put(body: bytes) -> func.HttpResponse:
            request = func.HttpRequest(method="PUT", url="https://monitor.azurewebsites.net/api/monitors/via-host",
                                       headers={"content-type": "application/json"},
                                       route_params={"route": "monitors/via-host"}, body=body)
            response: func.HttpResponse = host.loop.run_until_complete(function(request, Context()))
            return response

        assert put(b" " * 2_000_000).status_code == 413
        deep = put(nested(100_000).encode())
        assert deep.status_code == 400 and json.loads(deep.get_body())["error"]["code"] == "bad_request"
        assert put(json.dumps({"source": {"prefix": "p/" + "x" * 5000}}).encode()).status_code == 422
    finally:
        host.close()


# --- a real server process, a 200 MB body ----------------------------------------------------------
@pytest.mark.slow
def test_a_200_mb_put_leaves_the_server_flat(storage: Azurite, tmp_path: Any) -> None:
    """The body streams in 64 KiB chunks without a content-length (and, second, with one declared):
    the server answers 413 and its RSS grows by a few MB at most (sampled every 10 ms)."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MONITOR_API_KEY", None)
    server = subprocess.Popen([sys.executable, "-m", "monitor", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url)
        process = psutil.Process(server.pid)
        httpx.get(f"{url}/api/monitors/none-such", timeout=10)  # warm the routes up
        baseline = process.memory_info().rss
        for declared in (False, True):
            peak, stop = [baseline], threading.Event()
            sampler = threading.Thread(target=_sample, args=(process, peak, stop), daemon=True)
            sampler.start()
            headers = {"content-type": "application/json"}
            if declared:
                headers["content-length"] = str(200 * 1024 * 1024)
            try:
                response = httpx.put(f"{url}/api/monitors/huge-one", content=_body(200 * 1024 * 1024),
                                     headers=headers, timeout=120)
                status: int | None = response.status_code
            except httpx.TransportError:  # the server may close while the client still sends
                status = None
            stop.set()
            sampler.join()
            growth = (max(peak) - baseline) / 2**20
            assert growth < 8, f"server RSS grew by {growth:.1f} MiB"
            assert status == 413 or (declared and status is None)
    finally:
        server.terminate()
        server.wait(10)


def _body(total: int) -> Iterator[bytes]:
    chunk = b"[" + b" " * 65_534 + b"]"
    for _ in range(total // len(chunk)):
        yield chunk


def _sample(process: psutil.Process, peak: list[int], stop: threading.Event) -> None:
    while not stop.is_set():
        peak.append(process.memory_info().rss)
        time.sleep(0.01)


def _wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


def test_a_stored_config_over_a_new_limit_stops_only_itself(api: TestClient, monitor_name: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """A config stored before a limit existed: listed monitors and blob routing skip it (logged, with
    what to fix), reading it answers 422 naming the field, and a corrected PUT replaces it."""
    from monitor.monitors import MonitorStore
    from monitor.storage.tables import Tables

    good, old = f"{monitor_name[:55]}-ok", f"{monitor_name[:55]}-old"
    assert api.put(f"/api/monitors/{good}", json=config(good)).status_code == 201
    stale = {**config(old), "source": {"format": "mdc", "container": "azureml", "prefix": "p/" + "x" * 2_000}}
    Tables.default()["monitors"].upsert_entity({"PartitionKey": "monitor", "RowKey": old,
                                                "config": json.dumps(stale)})
    names = [c.name for c in MonitorStore().list()]
    assert good in names and old not in names
    assert any(old in r.getMessage() and "source.prefix" in r.getMessage() for r in caplog.records)
    response = api.get(f"/api/monitors/{old}")
    assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == "source.prefix"
    assert api.put(f"/api/monitors/{old}", json=config(old)).status_code == 200
