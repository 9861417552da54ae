"""The environment `make demo` builds serves: runtime pins + the local server, no test tools.

Every other test runs with the dev packages installed, which once hid that uvicorn was only a dev
dependency (`make demo` and `python -m monitor serve` crashed with ModuleNotFoundError). This test
builds a fresh virtual environment through the very make rule `make demo` depends on
(`$(VENV)/.runtime`, with VENV pointed at a temporary directory), checks that it holds exactly the
pinned sets (requirements.txt + requirements-local.txt) and nothing of requirements-dev.txt, then
serves the API from it against the test Azurite. pip's download cache keeps it at ~15-30 s.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from monitor.azurite import Azurite, free_port

pytestmark = [pytest.mark.slow, pytest.mark.azurite]

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(*files: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in files:
        for package, version in PIN.findall((REPO / name).read_text(encoding="utf-8")):
            found[normalise(package)] = version
    return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    return {normalise(n): v for n, v in PIN.findall(out)}


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("make-demo") / "venv"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "MAKEFLAGS", "MFLAGS")}
    env["PYTHON"] = sys.executable if Path(sys.executable).name.startswith("python3") else "python3"
    proc = subprocess.run(["make", "--no-print-directory", f"VENV={venv}", f"{venv}/.runtime"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"the make rule of `make demo` failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return venv


def test_demo_environment_is_exactly_the_runtime_and_local_pins(runtime_venv: Path) -> None:
    have = installed(runtime_venv / "bin" / "python")
    want = pins("requirements.txt", "requirements-local.txt")
    assert "uvicorn" in want and "uvicorn" not in pins("requirements.txt"), "uvicorn belongs to the local file"
    wrong = {name: (have.get(name), version) for name, version in want.items() if have.get(name) != version}
    assert not wrong, f"installed vs pinned: {wrong}"
    tools = set(pins("requirements-dev.txt")) - set(want)
    assert {"pytest", "mypy", "selenium"} <= tools
    leaked = sorted(tools & set(have))
    assert not leaked, f"dev-only packages in the demo environment: {leaked}"
    extra = sorted(set(have) - set(want) - {"pip", "setuptools", "wheel"})
    assert not extra, f"installed but pinned nowhere: {extra}"


def test_python_m_monitor_serve_works_from_the_demo_environment(runtime_venv: Path, storage: Azurite,
                                                                 monitor_name: str) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MONITOR_API_KEY")}
    server = subprocess.Popen([str(runtime_venv / "bin" / "python"), "-m", "monitor", "serve", "--port", str(port)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, f"serve exited with {server.returncode}:\n{server.communicate()[0][-3000:]}"
            try:
                if httpx.get(f"{base}/api/health", timeout=2).json() == {"status": "ok"}:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not answer /api/health within 60 s"
            time.sleep(0.2)
        config = {"source": {"format": "mdc", "container": "azureml", "prefix": f"modelDataCollector/{monitor_name}/"},
                  "judge": {"provider": "heuristic"}}
        created = httpx.put(f"{base}/api/monitors/{monitor_name}", json=config, timeout=30)
        assert created.status_code == 201, created.text
        assert monitor_name in {m["name"] for m in httpx.get(f"{base}/api/monitors", timeout=30).json()}
        aggregated = httpx.post(f"{base}/api/monitors/{monitor_name}/aggregate", timeout=60)
        assert aggregated.status_code == 200 and aggregated.json()["error"] is None, aggregated.text
        page = httpx.get(f"{base}/api/monitors/{monitor_name}/dashboard", timeout=60)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert monitor_name in page.text
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
