"""Regenerate the dashboard screenshots in docs/ from the demo, served, in headless Chromium.

    .venv/bin/python scripts/screenshots.py [--port 7391]

Runs `python -m monitor demo` on a fresh demo directory (its own Azurite), waits for the dashboard
to be served, saves docs/dashboard.png (1400 px), docs/dashboard-failing.png (the failing examples
at 1400 px) and docs/dashboard-phone.png (390 px), then stops the demo (Ctrl-C: it stops Azurite).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.browser import chromium  # noqa: E402

SHOTS = (("dashboard.png", 1400, 1000, None), ("dashboard-failing.png", 1400, 1000, "failing-h"),
         ("dashboard-phone.png", 390, 844, None))
CLEARED = ("MONITOR_STORAGE", "MDC_STORAGE", "AZURE_OPENAI_ENDPOINT", "OPENAI_BASE_URL", "OPENAI_MODEL",
           "MONITOR_API_KEY")


def wait_for_dashboard(process: subprocess.Popen[str], timeout: float = 600) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        sys.stdout.write(line)
        if line.startswith("Dashboard: "):
            return line.split()[1]
        if time.monotonic() > deadline:
            break
    raise SystemExit(f"the demo did not serve (exit {process.poll()})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=7391)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    with tempfile.TemporaryDirectory(prefix="demo-shots-") as directory:
        env.update(MONITOR_DEMO_DIR=directory, PYTHONUNBUFFERED="1")
        process = subprocess.Popen([sys.executable, "-m", "monitor", "demo", "--port", str(args.port)], cwd=ROOT,
                                   env=env, stdout=subprocess.PIPE, text=True)
        try:
            url = wait_for_dashboard(process)
            for name, width, height, anchor in SHOTS:
                with chromium(width, height) as driver:
                    driver.get(url + (f"#{anchor}" if anchor else ""))
                    driver.save_screenshot(str(ROOT / "docs" / name))
                print(f"wrote docs/{name} ({width}x{height})")
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
