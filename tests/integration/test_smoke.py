"""`python -m monitor smoke` against a local stand-in of a deployed app, in every `make test`.

The stand-in is what Azure runs, minus Azure: Azurite for both accounts, `python -m monitor serve`
for the HTTP function (with a key, as the host requires one), and the local trigger runner for Event
Grid + the tail timer (tests/support/triggers.py: `event` for each new blob, `tail` every half
second). The smoke command runs as a user runs it, in its own process, and must pass; with a part of
the stand-in missing it must fail at the right stage and say where to look.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from azure.storage.blob import ContainerClient

from monitor.azurite import Azurite, free_port
from tests.support.triggers import trigger_runner

pytestmark = [pytest.mark.slow, pytest.mark.azurite]

REPO = Path(__file__).resolve().parents[2]
KEY = "smoke-test-key"


@pytest.fixture
def api(storage: Azurite, mdc_container: ContainerClient) -> Iterator[str]:
    """`python -m monitor serve` on a free port, key protected, on the test's Azurite."""
    port = free_port()
    env = {**os.environ, "MONITOR_API_KEY": KEY}
    server = subprocess.Popen([sys.executable, "-m", "monitor", "serve", "--port", str(port)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "serve exited"
            try:
                if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(15)


def smoke(api: str, *args: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MONITOR_API_KEY": key}
    return subprocess.run([sys.executable, "-m", "monitor", "smoke", "--api", api, "--poll", "0.5", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def assert_cleaned_up(api: str, container: ContainerClient) -> None:
    assert not list(container.list_blobs()), "the smoke blobs are deleted"
    monitors = httpx.get(f"{api}/api/monitors", headers={"x-functions-key": KEY}, timeout=30).json()
    assert not [m for m in monitors if m["name"].startswith("smoke-")], "the smoke monitor is deleted"


def test_smoke_passes_against_the_local_stand_in(api: str, mdc_container: ContainerClient) -> None:
    with trigger_runner(mdc_container.container_name) as runner:
        proc = smoke(api, "--append-interval", "2", "--timeout", "120")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for stage in ("api", "monitor", "write", "ingest", "aggregate", "metrics", "cleanup"):
        assert f"{stage:<9} ok: " in proc.stdout, stage
    assert "metrics   ok: window" in proc.stdout and "6 records each" in proc.stdout
    assert "smoke test passed" in proc.stdout
    assert not runner.errors, runner.errors
    assert len(runner.events) == 2 and runner.tails > 0
    assert_cleaned_up(api, mdc_container)


def test_without_tailing_it_names_the_appended_lines(api: str, mdc_container: ContainerClient) -> None:
    """Events only (no tail timer): the blobs are opened while (almost) empty, the lines appended
    later are never read. The failure says so and points at tail_blobs."""
    with trigger_runner(mdc_container.container_name, tail=False) as runner:
        proc = smoke(api, "--append-interval", "2", "--timeout", "8")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "smoke test failed at stage 'ingest': the blobs were opened but only 0 of 6 records" in proc.stderr
    assert "tail_blobs" in proc.stderr
    assert len(runner.events) == 2
    assert_cleaned_up(api, mdc_container)


def test_without_any_trigger_it_names_event_grid_and_the_sweep(api: str, mdc_container: ContainerClient) -> None:
    proc = smoke(api, "--append-interval", "0", "--timeout", "3")
    assert proc.returncode == 1
    assert "stage 'ingest': nothing under modelDataCollector/smoke-" in proc.stderr
    for hint in ("no Event Grid event was delivered", "ingest_blob", "evgs-ingest-mdc", "MDC_CONTAINER"):
        assert hint in proc.stderr, hint
    assert_cleaned_up(api, mdc_container)


def test_a_wrong_key_fails_at_the_api_stage(api: str, mdc_container: ContainerClient) -> None:
    proc = smoke(api, "--timeout", "3", key="wrong")
    assert proc.returncode == 1
    assert "stage 'api': the key was refused (401)" in proc.stderr
    assert "functionKeys.default" in proc.stderr
    assert not list(mdc_container.list_blobs())


def test_no_write_access_fails_at_the_write_stage(api: str, storage: Azurite) -> None:
    """The watched container does not exist here: the write stage names the account and the role."""
    env_container = "no-such-container"
    proc = smoke(api, "--container", env_container, "--append-interval", "0", "--timeout", "3")
    assert proc.returncode == 1
    assert "stage 'write': could not write append blobs to" in proc.stderr
    assert "Storage Blob Data Contributor" in proc.stderr
