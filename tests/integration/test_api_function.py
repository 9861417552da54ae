"""The API through the function objects, as the Functions host invokes them (PLATFORM.md).

The app is built exactly as function_app.py builds it: `AsgiFunctionApp(app=create_app(),
http_auth_level=FUNCTION)` plus the `monitor.functions.http` blueprint.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

from monitor.api import create_app
from monitor.azurite import Azurite
from monitor.functions.http import bp
from tests.support.seed import BREACHED_METRIC, seed_config, seed_monitor

pytestmark = pytest.mark.azurite


class Context:
    """What the host passes as `context` (the ASGI adapter reads these attributes)."""

    function_directory = "/home/site/wwwroot"
    function_name = "http_app_func"
    invocation_id = "00000000-0000-0000-0000-000000000001"
    thread_local_storage = None
    trace_context = None
    retry_context = None


class Host:
    """The app, its functions (mapped once: a second get_functions() raises) and an event loop."""

    def __init__(self) -> None:
        self.app = func.AsgiFunctionApp(app=create_app(), http_auth_level=func.AuthLevel.FUNCTION)
        self.app.register_functions(bp)
        self.functions = {f.get_function_name(): f for f in self.app.get_functions()}
        self.loop = asyncio.new_event_loop()

    def bindings(self, name: str) -> list[dict[str, Any]]:
        return list(json.loads(self.functions[name].get_function_json())["bindings"])

    def call(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None,
             headers: dict[str, str] | None = None) -> func.HttpResponse:
        query = "&".join(f"{k}={v}" for k, v in (params or {}).items())
        request = func.HttpRequest(
            method=method, url=f"https://monitor.azurewebsites.net{path}" + (f"?{query}" if query else ""),
            headers=headers or {}, params=params or {}, route_params={"route": path.removeprefix("/api/")},
            body=json.dumps(body).encode() if body is not None else b"",
        )
        user_function = self.functions["http_app_func"].get_user_function()
        response: func.HttpResponse = self.loop.run_until_complete(user_function(request, Context()))
        return response

    def close(self) -> None:
        if self.app.startup_task_done:
            self.loop.run_until_complete(self.app.middleware.notify_shutdown())
            self.app.startup_task_done = False
        self.loop.close()


@pytest.fixture
def host(storage: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    monkeypatch.delenv("MONITOR_API_KEY", raising=False)
    built = Host()
    yield built
    built.close()


def as_json(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


def test_bindings(host: Host) -> None:
    assert set(host.functions) == {"http_app_func", "health"}
    trigger, output = host.bindings("http_app_func")
    assert trigger["type"] == "httpTrigger" and trigger["authLevel"] == "FUNCTION"
    assert trigger["route"] == "/{*route}"
    assert {"GET", "PUT", "DELETE"} <= set(trigger["methods"])
    assert output == {"direction": "OUT", "type": "http", "name": "$return"}
    health_trigger, _ = host.bindings("health")
    assert health_trigger["type"] == "httpTrigger" and health_trigger["authLevel"] == "ANONYMOUS"
    assert health_trigger["route"] == "health" and health_trigger["methods"] == ["GET"]


def test_anonymous_health_function(host: Host) -> None:
    request = func.HttpRequest(method="GET", url="https://monitor.azurewebsites.net/api/health", body=b"")
    response = host.functions["health"].get_user_function()(request)
    assert response.status_code == 200 and as_json(response) == {"status": "ok"}
    assert response.mimetype == "application/json"


def test_health_through_the_asgi_function(host: Host) -> None:
    response = host.call("GET", "/api/health")
    assert response.status_code == 200 and as_json(response) == {"status": "ok"}


def test_config_crud(host: Host, monitor_name: str) -> None:
    path = f"/api/monitors/{monitor_name}"
    assert host.call("PUT", path, body=seed_config(monitor_name)).status_code == 201
    assert host.call("PUT", path, body=seed_config(monitor_name)).status_code == 200
    got = host.call("GET", path)
    assert got.status_code == 200 and as_json(got)["name"] == monitor_name
    assert got.mimetype == "application/json"
    bad = host.call("PUT", path, body={**seed_config(monitor_name), "judge": {"max_concurrency": 0}})
    assert bad.status_code == 422
    assert as_json(bad)["error"]["details"][0]["field"] == "judge.max_concurrency"
    assert host.call("DELETE", path).status_code == 204
    missing = host.call("GET", path)
    assert missing.status_code == 404 and as_json(missing)["error"]["code"] == "not_found"


def test_metrics_with_query_parameters(host: Host, monitor_name: str) -> None:
    seeded = seed_monitor(monitor_name)
    response = host.call("GET", f"/api/monitors/{monitor_name}/metrics",
                         params={"metric": BREACHED_METRIC, "segment": "all"})
    assert response.status_code == 200
    windows = as_json(response)["windows"]
    assert len(windows) == seeded.hours and {w["metric"] for w in windows} == {BREACHED_METRIC}
    bad = host.call("GET", f"/api/monitors/{monitor_name}/metrics", params={"start": "yesterday"})
    assert bad.status_code == 422 and as_json(bad)["error"]["details"][0]["field"] == "start"


def test_errors_and_local_key_through_the_function(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    assert host.call("POST", "/api/health").status_code == 405
    assert as_json(host.call("GET", "/api/nowhere"))["error"]["code"] == "not_found"
    from monitor.settings import reset_settings

    monkeypatch.setenv("MONITOR_API_KEY", "k1")
    reset_settings()
    assert host.call("GET", "/api/monitors").status_code == 401
    assert host.call("GET", "/api/monitors", headers={"x-functions-key": "k1"}).status_code == 200
    assert host.call("GET", "/api/health").status_code == 200
