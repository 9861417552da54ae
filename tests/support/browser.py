"""Headless Chromium (Debian's package) through selenium, and a reusable screenshot helper.

Tools that download their own browser fail on this machine; this uses `/usr/bin/chromium` and
`/usr/bin/chromedriver` (`apt-get install chromium chromium-driver`; `make browser` does it).

    from tests.support.browser import screenshot
    screenshot("http://127.0.0.1:7071/api/monitors/contoso-chat/dashboard", "docs/dashboard.png")
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def chromium_missing() -> str | None:
    """Why the browser cannot run here (None when it can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            return f"{path} is not installed: `apt-get install chromium chromium-driver` (or `make browser`)"
    return None


@contextlib.contextmanager
def chromium(width: int = 1366, height: int = 900) -> Iterator[Any]:
    """A headless Chromium WebDriver (viewport width x height) with a fresh profile, closed (and its
    profile removed) on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(30)
        # --window-size includes the browser's frame; pin the viewport itself to width x height.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(url: str, path: str | Path, width: int = 1366, height: int = 900) -> Path:
    """Load `url` in headless Chromium at width x height and save a PNG of the viewport to `path`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with chromium(width, height) as driver:
        driver.get(url)
        driver.save_screenshot(str(target))
    return target
