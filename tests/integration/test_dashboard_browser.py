"""The dashboard in a real headless Chromium (Debian's package) against the served app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.api.serve import BackgroundServer, start_background_server
from monitor.azurite import Azurite
from monitor.settings import reset_settings
from tests.support.browser import chromium, chromium_missing, screenshot
from tests.support.seed import BREACHED_METRIC, FAILING_REASON, Seeded, seed_monitor

pytestmark = [
    pytest.mark.azurite, pytest.mark.browser, pytest.mark.slow,
    pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or ""),
]


@pytest.fixture
def served(storage: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[BackgroundServer]:
    monkeypatch.delenv("MONITOR_API_KEY", raising=False)
    reset_settings()
    server = start_background_server()
    yield server
    server.stop()


@pytest.fixture
def seeded(storage: Azurite, monitor_name: str) -> Seeded:
    return seed_monitor(monitor_name)


def by_testid(driver: Any, testid: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'))


def test_dashboard_in_chromium(served: BackgroundServer, seeded: Seeded, tmp_path: Path) -> None:
    url = f"{served.url}/api/monitors/{seeded.name}/dashboard"
    with chromium(1366, 900) as driver:
        driver.get(url)
        assert seeded.name in driver.title
        metrics = list(seeded.config.enabled_metrics())
        for metric in metrics:
            chart = by_testid(driver, f"passrate-chart-{metric}")
            assert len(chart) == 1 and chart[0].is_displayed()
            assert chart[0].size["width"] > 300  # readable on a laptop screen
            assert len(by_testid(driver, f"threshold-line-{metric}")) == 1
            assert len(by_testid(driver, f"histogram-{metric}")) == 1
        assert len(by_testid(driver, "window-point")) + len(by_testid(driver, "breach-marker")) \
            == seeded.hours * len(metrics)
        breach = by_testid(driver, "breach-marker")
        assert len(breach) == 1 and "breach" in breach[0].text
        assert len(by_testid(driver, "histogram-bar")) == 5 * len(metrics)
        failing = by_testid(driver, "failing-examples")[0]
        assert failing.tag_name == "table" and len(by_testid(driver, "failing-row")) > 0
        reasons = [r.text for r in by_testid(driver, "failing-reason")]
        assert FAILING_REASON in reasons
        assert by_testid(driver, "alert-history")[0].tag_name == "table"
        assert "approximate: heuristic judge" in by_testid(driver, "judge-badge")[0].text
        no_overflow = driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        assert no_overflow, "the page scrolls sideways at 1366 px"
        driver.save_screenshot(str(tmp_path / "dashboard.png"))
        by_testid(driver, "segment-link")[0].click()
        assert "segment=deployment%3Dblue" in driver.current_url
        assert by_testid(driver, f"passrate-chart-{BREACHED_METRIC}")
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


def test_index_links_to_the_dashboard(served: BackgroundServer, seeded: Seeded, tmp_path: Path) -> None:
    with chromium() as driver:
        driver.get(f"{served.url}/")
        assert driver.current_url.endswith("/api/dashboard")
        links = [a for a in by_testid(driver, "monitor-link") if a.text == seeded.name]
        assert links
        links[0].click()
        assert by_testid(driver, f"passrate-chart-{BREACHED_METRIC}")
    path = screenshot(f"{served.url}/api/dashboard", tmp_path / "index.png", width=1366, height=600)
    assert path.stat().st_size > 1_000
