"""API behaviour that needs no storage: error shape, auth, parameters, tokens, SVG and HTML rendering."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor import results
from monitor.api import create_app
from monitor.api.middleware import key_matches
from monitor.config import parse_config
from monitor.dashboard.data import DashboardData, FailingView, metric_view, segments_of
from monitor.dashboard.page import render_dashboard, render_index
from monitor.dashboard.svg import Point, histogram_chart, pass_rate_chart
from monitor.monitors import MonitorStore
from monitor.settings import reset_settings

KEY = "s3cret-key"


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return dict(body["error"])


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.delenv("MONITOR_API_KEY", raising=False)
    reset_settings()
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client
    reset_settings()


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("MONITOR_API_KEY", KEY)
    reset_settings()
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client
    reset_settings()


def test_create_app_reads_no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> None:
        raise AssertionError("settings read while building the app")

    monkeypatch.setattr("monitor.api.middleware.get_settings", boom)
    create_app()


def test_health(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    error = assert_error(client.get("/api/no/such/route"), 404, "not_found")
    assert "/api/no/such/route" in error["message"]


def test_wrong_method_is_a_json_405_with_allow(client: TestClient) -> None:
    response = client.post("/api/health")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"
    assert_error(client.patch("/api/monitors/abc"), 405, "method_not_allowed")


def test_bad_path_name_names_the_parameter(client: TestClient) -> None:
    error = assert_error(client.get("/api/monitors/NOT_valid"), 422, "invalid_parameter")
    assert error["details"][0]["field"] == "name"
    assert error["details"][0]["location"] == "path"


def test_unexpected_exception_is_a_generic_500(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(self: MonitorStore) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(MonitorStore, "list", explode)
    response = client.get("/api/monitors")
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert error["details"] is None


def test_storage_failure_is_a_503(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.core.exceptions import ServiceRequestError

    def unreachable(self: MonitorStore) -> None:
        raise ServiceRequestError("connection refused to 10.0.0.1")

    monkeypatch.setattr(MonitorStore, "list", unreachable)
    response = client.get("/api/monitors")
    assert_error(response, 503, "storage_unavailable")
    assert "10.0.0.1" not in response.text


def test_invalid_json_body_is_a_400(client: TestClient) -> None:
    response = client.put("/api/monitors/abc", content=b"{not json", headers={"content-type": "application/json"})
    error = assert_error(response, 400, "bad_request")
    assert error["details"][0]["field"] == "(body)"


@pytest.mark.parametrize("path", ["/api/monitors", "/api/monitors/abc", "/api/openapi.json", "/api/dashboard",
                                  "/api/monitors/abc/metrics", "/api/no/such/route", "/"])
def test_key_required_when_set(keyed: TestClient, path: str) -> None:
    response = keyed.get(path)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("ApiKey")
    assert_error(keyed.get(path, headers={"x-functions-key": "wrong"}), 401, "unauthorized")
    assert_error(keyed.get(path, params={"code": KEY[:-1]}), 401, "unauthorized")


def test_health_stays_open_with_a_key(keyed: TestClient) -> None:
    assert keyed.get("/api/health").status_code == 200


def test_key_by_header_or_code(keyed: TestClient) -> None:
    assert keyed.get("/api/openapi.json", headers={"x-functions-key": KEY}).status_code == 200
    assert keyed.get("/api/openapi.json", params={"code": KEY}).status_code == 200


def test_no_key_needed_when_unset(client: TestClient) -> None:
    assert client.get("/api/openapi.json").status_code == 200


def test_key_compare() -> None:
    assert key_matches("abc", "abc")
    assert not key_matches(None, "abc")
    assert not key_matches("abd", "abc")
    assert not key_matches("ab", "abc")
    assert key_matches("ключ", "ключ")


def test_root_redirects_to_the_index_keeping_the_code(keyed: TestClient) -> None:
    response = keyed.get("/", params={"code": KEY}, follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == f"/api/dashboard?code={KEY}"


def test_openapi_document(client: TestClient) -> None:
    document = client.get("/api/openapi.json").json()
    paths = document["paths"]
    for path in ("/api/health", "/api/monitors", "/api/monitors/{name}", "/api/monitors/{name}/metrics",
                 "/api/monitors/{name}/alerts", "/api/monitors/{name}/records", "/api/monitors/{name}/status",
                 "/api/monitors/{name}/dashboard", "/api/dashboard"):
        assert path in paths, path
    assert set(paths["/api/monitors/{name}"]) == {"get", "put", "delete"}
    body = paths["/api/monitors/{name}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"] == "#/components/schemas/MonitorConfig"
    assert "MonitorConfig" in document["components"]["schemas"]
    error = paths["/api/monitors/{name}/metrics"]["get"]["responses"]["422"]["content"]["application/json"]
    assert error["schema"]["$ref"] == "#/components/schemas/ErrorBody"
    assert client.get("/api/docs").status_code == 200


# --------------------------------------------------------------------------------------------
# parameters and continuation tokens


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", "12:00", "2026-01-01T25:00",
                                   "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_bad_time_names_the_parameter(value: str) -> None:
    with pytest.raises(results.ParameterError) as caught:
        results.parse_time_parameter("start", value)
    assert caught.value.status == 422
    assert caught.value.details[0]["field"] == "start"


def test_times_are_utc() -> None:
    assert results.parse_time_parameter("end", "2026-01-01T10:00:00+02:00") == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert results.parse_time_parameter("end", "2026-01-01T10:00") == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert results.parse_time_parameter("end", "") is None


def test_range_and_segment_checks() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(results.ParameterError, match="end"):
        results.check_range(start, start)
    results.check_segment("deployment=blue")
    results.check_segment("model_version=3")
    with pytest.raises(results.ParameterError, match="segment"):
        results.check_segment("region=eu")


def test_continuation_round_trip_and_rejection() -> None:
    # Sort keys are (lowest score, minus the record's epoch seconds: newest first among ties, key).
    token = results.encode_continuation((2.5, -1767225600.0, "k|1"), "abc")
    assert results.decode_continuation(token, "abc") == (2.5, -1767225600.0, "k|1")
    inf_token = results.encode_continuation((math.inf, math.inf, "k"), "abc")
    assert results.decode_continuation(inf_token, "abc") == (math.inf, math.inf, "k")
    for bad in ("garbage!", "e30", token + "x"):
        with pytest.raises(results.ParameterError, match="continuation"):
            results.decode_continuation(bad, "abc")
    with pytest.raises(results.ParameterError, match="other filters"):
        results.decode_continuation(token, "other")


def test_fingerprint_depends_on_filters() -> None:
    base = results.RecordQuery(metric="coherence")
    assert base.fingerprint("m") == results.RecordQuery(metric="coherence", limit=5).fingerprint("m")
    assert base.fingerprint("m") != results.RecordQuery(metric="fluency").fingerprint("m")
    assert base.fingerprint("m") != base.fingerprint("n")


def test_histogram_normalization() -> None:
    assert results.normalize_histogram('{"1": 2, "5": 1}') == {"1": 2, "2": 0, "3": 0, "4": 0, "5": 1}
    assert results.normalize_histogram([1, 2, 3, 4, 5]) == {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
    assert results.normalize_histogram(None) == {str(b): 0 for b in range(1, 6)}


# --------------------------------------------------------------------------------------------
# SVG and HTML


def _points() -> list[Point]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [Point(start + timedelta(hours=i), rate, rate is not None and rate < 0.7, f"w{i}")
            for i, rate in enumerate([0.9, 0.5, None, 0.8])]


def test_pass_rate_chart() -> None:
    svg = pass_rate_chart("groundedness", _points(), 0.7)
    assert 'data-testid="passrate-chart-groundedness"' in svg
    assert 'data-testid="threshold-line-groundedness"' in svg and 'stroke-dasharray' in svg
    assert svg.count('data-testid="breach-marker"') == 1
    assert ">breach</text>" in svg
    assert svg.count('data-testid="no-score-marker"') == 1
    assert 'role="img"' in svg and "<title id=" in svg and "<desc id=" in svg


def test_pass_rate_chart_without_windows() -> None:
    svg = pass_rate_chart("fluency", [], 0.7)
    assert "no windows in this range" in svg


def test_histogram_chart_escapes_and_counts() -> None:
    svg = histogram_chart("x<y", [1, 2, 3, 4, 5], 3)
    assert 'data-testid="histogram-x&lt;y"' in svg
    assert svg.count('data-testid="histogram-bar"') == 5
    assert "1*" in svg and "3*" not in svg


def _data(approximate: bool) -> DashboardData:
    config = parse_config({"name": "demo-mon", "source": {"prefix": "p/"}})
    window = {"window_start": "2026-01-01T00:00:00Z", "metric": "coherence", "segment": "all", "scored": 10,
              "passed": 5, "pass_rate": 0.5, "average_score": 2.5, "histogram": {"1": 5, "4": 5},
              "threshold": 0.7, "breached": True, "row_count": 12, "errors": 1, "not_applicable": 1}
    failing = [{"key": "k<1>", "time": "2026-01-01T00:01:00Z", "prompt": "p" * 500, "completion": "c",
                "deployment": "blue", "lowest_score": 1.0,
                "scores": {"coherence": {"score": 1.0, "status": "ok", "passed": False, "reason": "<b>bad</b>"}}}]
    return DashboardData(
        name="demo-mon", config=config, segment="all", segments=segments_of([window]), start=None, end=None,
        metrics=[metric_view(m, s, [window] if m == "coherence" else []) for m, s in config.enabled_metrics().items()],
        alerts=[{"kind": "pass_rate", "metric": "coherence", "segment": "all", "window_start": "2026-01-01T00:00:00Z",
                 "value": 0.5, "threshold": 0.7, "message": "below"}],
        failing=FailingView(window_start="2026-01-01T00:00:00Z", window_end="2026-01-01T01:00:00Z", segment="all",
                            metric="coherence", why="breached", total=5, per_metric={"coherence": 5},
                            records=failing, next="tok"),
        judge="heuristic" if approximate else "azure_openai:gpt-4o", approximate=approximate,
    )


def test_dashboard_page_structure() -> None:
    html = render_dashboard(_data(True), link_params={"code": "k"})
    assert html.startswith("<!DOCTYPE html>") and "<title>demo-mon: generative-AI quality</title>" in html
    for testid in ("passrate-chart-coherence", "threshold-line-coherence", "breach-marker", "histogram-coherence",
                   "failing-examples", "alert-history", "judge-badge", "segment-selector"):
        assert f'data-testid="{testid}"' in html, testid
    assert "approximate: heuristic judge" in html
    assert "&lt;b&gt;bad&lt;/b&gt;" in html and "<b>bad</b>" not in html
    assert "k&lt;1&gt;" in html
    assert "<details><summary>" in html
    assert 'name="code" value="k"' in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in html
    assert '<th scope="col">' in html


def test_dashboard_page_for_an_llm_judge() -> None:
    html = render_dashboard(_data(False))
    assert "approximate: heuristic judge" not in html
    assert "judge: azure_openai:gpt-4o" in html


def test_static_page_has_no_navigation_links() -> None:
    html = render_dashboard(_data(True), static=True)
    assert 'data-testid="segment-link"' not in html and "python -m monitor serve" in html
    assert 'data-testid="failing-next"' not in html and 'data-testid="alert-window-link"' not in html


def test_index_page() -> None:
    config = parse_config({"name": "demo-mon", "source": {"prefix": "p/"}})
    html = render_index([config], link_params={"code": "k"})
    assert 'href="/api/monitors/demo-mon/dashboard?code=k"' in html
    assert "No monitors yet" in render_index([])
