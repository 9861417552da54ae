"""The API against Azurite through FastAPI's test client: config CRUD, results, records, dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from monitor.api import create_app
from monitor.azurite import Azurite
from monitor.dashboard import export_dashboard
from monitor.keys import iso
from tests.support.seed import BREACHED_METRIC, FAILING_REASON, Seeded, seed_config, seed_monitor

pytestmark = pytest.mark.azurite


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return dict(body["error"])


@pytest.fixture
def client(storage: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.delenv("MONITOR_API_KEY", raising=False)
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def seeded(storage: Azurite, monitor_name: str) -> Seeded:
    return seed_monitor(monitor_name)


# --------------------------------------------------------------------------------------------
# config CRUD


def test_put_get_list_delete(client: TestClient, monitor_name: str) -> None:
    body = seed_config(monitor_name)
    created = client.put(f"/api/monitors/{monitor_name}", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == monitor_name
    assert created.json()["judge"]["max_concurrency"] == 64
    replaced = client.put(f"/api/monitors/{monitor_name}", json={**body, "sampling_rate": 0.5})
    assert replaced.status_code == 200
    fetched = client.get(f"/api/monitors/{monitor_name}")
    assert fetched.status_code == 200 and fetched.json()["sampling_rate"] == 0.5
    assert monitor_name in [c["name"] for c in client.get("/api/monitors").json()]
    assert client.delete(f"/api/monitors/{monitor_name}").status_code == 204
    assert_error(client.get(f"/api/monitors/{monitor_name}"), 404, "not_found")
    assert_error(client.delete(f"/api/monitors/{monitor_name}"), 404, "not_found")


def test_put_without_name_in_body_uses_the_path(client: TestClient, monitor_name: str) -> None:
    body = {k: v for k, v in seed_config(monitor_name).items() if k != "name"}
    assert client.put(f"/api/monitors/{monitor_name}", json=body).status_code == 201


@pytest.mark.parametrize(("patch", "field"), [
    ({"judge": {"max_concurrency": 0}}, "judge.max_concurrency"),
    ({"sampling_rate": 1.5}, "sampling_rate"),
    ({"metrics": {"coherence": {"acceptable_score": 9}}}, "metrics.coherence.acceptable_score"),
    ({"name": "another-name"}, "name"),
    ({"source": None}, "source"),
])
def test_put_invalid_config_names_the_field(client: TestClient, monitor_name: str, patch: dict[str, Any],
                                            field: str) -> None:
    response = client.put(f"/api/monitors/{monitor_name}", json={**seed_config(monitor_name), **patch})
    error = assert_error(response, 422, "validation_error")
    assert field in [d["field"] for d in error["details"]]
    assert_error(client.get(f"/api/monitors/{monitor_name}"), 404, "not_found")


def test_put_not_an_object(client: TestClient, monitor_name: str) -> None:
    assert_error(client.put(f"/api/monitors/{monitor_name}", json=[1, 2]), 422, "validation_error")


@pytest.mark.parametrize("route", ["", "/metrics", "/alerts", "/records", "/status", "/dashboard"])
def test_unknown_monitor_is_404_everywhere(client: TestClient, route: str) -> None:
    assert_error(client.get(f"/api/monitors/no-such-monitor{route}"), 404, "not_found")


# --------------------------------------------------------------------------------------------
# results


def test_metrics_filters(client: TestClient, seeded: Seeded) -> None:
    url = f"/api/monitors/{seeded.name}/metrics"
    everything = client.get(url).json()
    assert everything["monitor"] == seeded.name
    assert len(everything["windows"]) == seeded.windows
    one = client.get(url, params={"metric": BREACHED_METRIC, "segment": "all"}).json()["windows"]
    assert len(one) == seeded.hours
    window = one[0]
    for key in ("window_start", "window_end", "metric", "segment", "row_count", "scored", "passed", "pass_rate",
                "average_score", "histogram", "errors", "not_applicable", "threshold", "breached"):
        assert key in window, key
    assert set(window["histogram"]) == {"1", "2", "3", "4", "5"}
    assert [w["breached"] for w in one].count(True) == 1
    start, end = "2026-11-20T10:00:00Z", "2026-11-20T12:00:00Z"
    ranged = client.get(url, params={"metric": BREACHED_METRIC, "segment": "all", "start": start, "end": end})
    assert [w["window_start"] for w in ranged.json()["windows"]] == ["2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z"]
    blue = client.get(url, params={"segment": "deployment=blue"}).json()["windows"]
    assert blue and {w["segment"] for w in blue} == {"deployment=blue"}


@pytest.mark.parametrize(("params", "field"), [
    ({"start": "not-a-time"}, "start"),
    ({"end": "2026-11-20T25:00:00Z"}, "end"),
    ({"metric": "bogus"}, "metric"),
    ({"segment": "region=eu"}, "segment"),
    ({"start": "2026-11-21T00:00:00Z", "end": "2026-11-20T00:00:00Z"}, "end"),
])
def test_metrics_bad_parameters(client: TestClient, seeded: Seeded, params: dict[str, str], field: str) -> None:
    error = assert_error(client.get(f"/api/monitors/{seeded.name}/metrics", params=params), 422, "invalid_parameter")
    assert error["details"][0]["field"] == field


def test_alerts(client: TestClient, seeded: Seeded) -> None:
    alerts = client.get(f"/api/monitors/{seeded.name}/alerts").json()["alerts"]
    assert len(alerts) == seeded.alerts
    kinds = {a["kind"] for a in alerts}
    assert kinds == {"pass_rate", "recovered"}
    for key in ("kind", "metric", "window_start", "value", "threshold", "created_at"):
        assert key in alerts[0]
    later = client.get(f"/api/monitors/{seeded.name}/alerts", params={"start": "2026-11-20T12:00:00Z"})
    assert {a["kind"] for a in later.json()["alerts"]} == {"recovered"}
    assert_error(client.get(f"/api/monitors/{seeded.name}/alerts", params={"end": "soon"}), 422, "invalid_parameter")


def test_records_lowest_first_with_reasons(client: TestClient, seeded: Seeded) -> None:
    page = client.get(f"/api/monitors/{seeded.name}/records", params={"metric": BREACHED_METRIC, "max_score": 2})
    body = page.json()
    assert page.status_code == 200 and body["next"] is None
    items = body["records"]
    assert len(items) == seeded.hours
    lows = [i["scores"][BREACHED_METRIC]["score"] for i in items]
    assert lows == sorted(lows) and lows[0] == 1.0
    first = items[0]
    for key in ("key", "time", "prompt", "completion", "context", "deployment", "model_version"):
        assert first[key], key
    assert first["scores"][BREACHED_METRIC] == {"score": 1.0, "status": "ok", "passed": False,
                                               "reason": FAILING_REASON, "approximate": True}
    assert set(first["scores"]) == set(seeded.config.enabled_metrics())


def test_records_filters(client: TestClient, seeded: Seeded) -> None:
    url = f"/api/monitors/{seeded.name}/records"
    everything = client.get(url, params={"limit": 200}).json()["records"]
    assert len(everything) == len(seeded.records)
    hour = client.get(url, params={"start": "2026-11-20T09:00:00Z", "end": "2026-11-20T10:00:00Z"}).json()
    assert {r["time"][:13] for r in hour["records"]} == {"2026-11-20T09"}
    green = client.get(url, params={"segment": "deployment=green"}).json()["records"]
    assert green and {r["deployment"] for r in green} == {"green"}
    failing = client.get(url, params={"failing": True}).json()["records"]
    assert failing and all(any(s["passed"] is False for s in r["scores"].values()) for r in failing)
    errors = client.get(url, params={"metric": "relevance", "limit": 200}).json()["records"]
    statuses = [r["scores"]["relevance"]["status"] for r in errors]
    assert "error" in statuses and statuses[-1] == "error"


def test_records_pagination(client: TestClient, seeded: Seeded) -> None:
    url = f"/api/monitors/{seeded.name}/records"
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 5}
    pages = 0
    while True:
        body = client.get(url, params=params).json()
        seen += [r["key"] for r in body["records"]]
        pages += 1
        if body["next"] is None:
            break
        params = {"limit": 5, "continuation": body["next"]}
    assert pages == -(-len(seeded.records) // 5)
    assert sorted(seen) == sorted(r.key for r in seeded.records)
    assert len(seen) == len(set(seen))
    token = client.get(url, params={"limit": 5}).json()["next"]
    error = assert_error(client.get(url, params={"limit": 5, "metric": "coherence", "continuation": token}),
                         422, "invalid_parameter")
    assert error["details"][0]["field"] == "continuation"
    assert_error(client.get(url, params={"continuation": "xyz"}), 422, "invalid_parameter")


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"limit": "many"}, "limit"),
    ({"max_score": "low"}, "max_score"), ({"max_score": "nan"}, "max_score"), ({"metric": "bogus"}, "metric"),
    ({"failing": "perhaps"}, "failing"),
])
def test_records_bad_parameters(client: TestClient, seeded: Seeded, params: dict[str, Any], field: str) -> None:
    error = assert_error(client.get(f"/api/monitors/{seeded.name}/records", params=params), 422, "invalid_parameter")
    assert field in [d["field"] for d in error["details"]]


def test_status(client: TestClient, seeded: Seeded) -> None:
    body = client.get(f"/api/monitors/{seeded.name}/status").json()
    for key in ("blobs_processed", "records", "unmatched", "quarantined", "quarantine_reasons", "scores",
                "last_aggregation"):
        assert key in body, key


# --------------------------------------------------------------------------------------------
# dashboard


def test_dashboard_html(client: TestClient, seeded: Seeded) -> None:
    response = client.get(f"/api/monitors/{seeded.name}/dashboard")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    for metric in seeded.config.enabled_metrics():
        assert f'data-testid="passrate-chart-{metric}"' in html
        assert f'data-testid="threshold-line-{metric}"' in html
        assert f'data-testid="histogram-{metric}"' in html
    assert html.count('data-testid="breach-marker"') == 1
    assert FAILING_REASON.replace("'", "&#x27;") in html
    assert "approximate: heuristic judge" in html
    assert "deployment=blue" in html and "deployment=green" in html


def test_dashboard_segment_and_range(client: TestClient, seeded: Seeded) -> None:
    url = f"/api/monitors/{seeded.name}/dashboard"
    green = client.get(url, params={"segment": "deployment=green"}).text
    assert '<span aria-current="page">deployment=green</span>' in green
    early = client.get(url, params={"start": "2026-11-20T08:00:00Z", "end": "2026-11-20T10:00:00Z"}).text
    assert 'data-testid="breach-marker"' not in early
    # Malformed filters are reported on the page (never raw JSON); an unknown segment says it has no data.
    bad = client.get(url, params={"segment": "nope"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("text/html")
    assert 'data-testid="notice"' in bad.text and "showing all traffic" in bad.text
    bad_date = client.get(url, params={"start": "yesterday"})
    assert bad_date.status_code == 422 and "From: &#x27;yesterday&#x27; is not an ISO 8601 time" in bad_date.text
    assert 'value="yesterday"' in bad_date.text and 'aria-invalid="true"' in bad_date.text
    unknown = client.get(url, params={"segment": "deployment=purple"})
    assert unknown.status_code == 200
    assert "The segment deployment=purple has no data in this range" in unknown.text


def test_dashboard_of_an_llm_judged_monitor(client: TestClient, storage: Azurite, monitor_name: str) -> None:
    seed_monitor(monitor_name, judge="azure_openai")
    html = client.get(f"/api/monitors/{monitor_name}/dashboard").text
    assert "approximate: heuristic judge" not in html and "azure_openai:gpt-4o" in html


def test_dashboard_index_and_root(client: TestClient, seeded: Seeded) -> None:
    index = client.get("/api/dashboard")
    assert index.status_code == 200 and f'href="/api/monitors/{seeded.name}/dashboard"' in index.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/api/dashboard"


def test_export_dashboard(seeded: Seeded, tmp_path: Any) -> None:
    path = export_dashboard(seeded.name, tmp_path / "out" / "dashboard.html")
    html = path.read_text(encoding="utf-8")
    assert 'data-testid="passrate-chart-groundedness"' in html and "python -m monitor serve" in html


def test_dashboard_reads_scores_of_one_window_only(client: TestClient, seeded: Seeded,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-lived monitor: the whole range holds more scores than a drill-down may scan, yet the page
    renders, its numbers from the windows and its examples from the breached window alone."""
    from monitor import results

    per_window = len(seeded.scores) // seeded.hours
    monkeypatch.setattr(results, "MAX_SCAN_SCORES", per_window + 1)
    refused = client.get(f"/api/monitors/{seeded.name}/records")
    assert_error(refused, 422, "invalid_parameter")
    html = client.get(f"/api/monitors/{seeded.name}/dashboard").text
    breached_start = iso(seeded.start + timedelta(hours=seeded.breached_hour))
    section = html[html.index('id="failing-h"'):]
    assert 'data-testid="failing-row"' in html and "latest breached window" in html, section[:1500]
    assert breached_start[:13].replace("T", " ") in html
    assert FAILING_REASON.replace("'", "&#x27;") in html
    assert 'data-testid="failing-error"' not in html


def test_dashboard_default_range_follows_the_data(client: TestClient, seeded: Seeded) -> None:
    from monitor.aggregate.store import write_run
    from monitor.storage.tables import Tables

    url = f"/api/monitors/{seeded.name}/dashboard"
    # Never aggregated (seeded windows only): the 7 days up to the end of the newest window.
    html = client.get(url).text
    assert f"{iso(seeded.end - timedelta(days=7))} to {iso(seeded.end)}" in html
    assert html.count('data-testid="breach-marker"') == 1
    # Aggregated as of 2 h after the data: the 7 days up to then; quick links relative to it.
    at = seeded.end + timedelta(hours=2, minutes=30)
    write_run(Tables.default(), seeded.name, {"at": iso(at)})
    html = client.get(url).text
    anchor = seeded.end + timedelta(hours=3)
    assert f"{iso(anchor - timedelta(days=7))} to {iso(anchor)}" in html
    assert f"start={iso(anchor - timedelta(hours=24)).replace(':', '%3A')}" in html
    # Aggregated 30 days after the data stopped: the recent week is empty, so the newest data is shown.
    write_run(Tables.default(), seeded.name, {"at": iso(seeded.end + timedelta(days=30))})
    html = client.get(url).text
    assert f"to {iso(seeded.end)}" in html and html.count('data-testid="breach-marker"') == 1


def test_alert_links_and_paging(client: TestClient, seeded: Seeded) -> None:
    url = f"/api/monitors/{seeded.name}/dashboard"
    html = client.get(url).text
    assert 'data-testid="alert-window-link"' in html and "#failing-h" in html
    breached_start = iso(seeded.start + timedelta(hours=seeded.breached_hour))
    page = client.get(url, params={"window": breached_start, "segment": "deployment=blue",
                                   "metric": BREACHED_METRIC}).text
    assert "the window you picked" in page and "deployment=blue" in page
    one = client.get(f"/api/monitors/{seeded.name}/alerts", params={"metric": BREACHED_METRIC, "segment": "all"})
    assert one.status_code == 200
    assert {(a["metric"], a["segment"]) for a in one.json()["alerts"]} == {(BREACHED_METRIC, "all")}
    assert_error(client.get(f"/api/monitors/{seeded.name}/alerts", params={"metric": "nope"}), 422,
                 "invalid_parameter")


def test_api_reference_is_served_without_a_network(client: TestClient, seeded: Seeded) -> None:
    response = client.get("/api/docs")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "<script" not in html and "cdn" not in html.lower()
    assert "http://" not in html and "https://" not in html
    assert html.count('data-testid="api-operation"') >= 10
    assert "GET /api/monitors/{name}/records" in html and "max_score" in html
