"""The drift lines, traffic-shape panel and judge panel of the dashboard in headless Chromium."""

from __future__ import annotations

import json
from typing import Any

import pytest

from monitor.aggregate import aggregate_command
from monitor.api.serve import BackgroundServer
from monitor.calibration.golden import put_golden
from monitor.calibration.runs import calibrate
from monitor.monitors import MonitorStore
from monitor.storage.tables import Tables
from tests.support.browser import chromium, chromium_missing
from tests.support.drift import AT, seed_regression

pytestmark = [
    pytest.mark.azurite, pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or ""),
]


def by_testid(driver: Any, testid: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'))


def test_drift_traffic_and_judge_panels(served: BackgroundServer, monitor_name: str) -> None:
    config, _ = MonitorStore().put({
        "name": monitor_name, "source": {"prefix": f"p/{monitor_name}/"}, "judge": {"provider": "heuristic"},
        "metrics": {m: {"enabled": m == "coherence"} for m in ("fluency", "groundedness", "relevance", "similarity")},
        "drift": {"trailing_windows": 3, "min_samples": 5}, "calibration": {"min_records": 2}})
    seed_regression(monitor_name)
    aggregate_command(monitor_name, AT)
    golden = "\n".join(json.dumps({"question": "How do I reset it?", "answer": a, "human": {"coherence": h}})
                       for a, h in (("Open Settings, then Security.", 5), ("no", 1), ("Settings.", 3)))
    put_golden(Tables.default(), config, golden.encode())
    calibrate(monitor_name)
    with chromium(1366, 900) as driver:
        driver.get(f"{served.url}/api/monitors/{monitor_name}/dashboard")
        chart = by_testid(driver, "drift-chart-coherence")
        assert len(chart) == 1 and chart[0].size["width"] > 300
        assert len(by_testid(driver, "drift-threshold-coherence")) == 1
        # hours 13 and 14 drift against the trailing 3 hours (14's baseline still holds 13)
        assert len(by_testid(driver, "drift-marker")) >= 2 * 2  # coherence + traffic.answers, at least
        panel = by_testid(driver, "traffic-panel")[0]
        assert "empty or refused answers" in panel.text
        assert len(by_testid(driver, "drift-chart-traffic.answers")) == 1
        judge = by_testid(driver, "judge-panel")[0]
        assert "The heuristic judge is approximate" in by_testid(driver, "judge-honesty")[0].text
        row = by_testid(driver, "agreement-coherence")[0].text
        assert row.startswith("coherence 3") and "heuristic" in judge.text
        # a traffic drift alert links to its window without a metric filter (a series is not a metric)
        kinds = {a.get_attribute("data-kind") for a in by_testid(driver, "alert-window-link")}
        assert "drift" in kinds
        assert not [a for a in by_testid(driver, "alert-window-link") if "metric=traffic" in a.get_attribute("href")]
        no_overflow = driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        assert no_overflow, "the page scrolls sideways at 1366 px"
