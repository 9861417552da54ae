"""Session fixtures: one Azurite for the whole run, settings pointed at it, clean state per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from monitor.azurite import Azurite
from tests.support.storage import private_azurite, reset_caches

_counter = itertools.count()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """Azurite on free ports for the session; MONITOR_STORAGE and MDC_STORAGE point at it."""
    with private_azurite() as emulator:
        yield emulator


@pytest.fixture
def storage(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[Azurite]:
    """Azurite with a fresh watched container for this test (`MDC_CONTAINER` set to it)."""
    container = f"mdc{os.getpid()}x{next(_counter)}"
    monkeypatch.setenv("MDC_CONTAINER", container)
    reset_caches()
    yield azurite
    reset_caches()


@pytest.fixture
def mdc_container(storage: Azurite) -> ContainerClient:
    """The watched container of this test, created in Azurite."""
    from monitor.settings import get_settings
    from monitor.storage.clients import blob_service

    settings = get_settings()
    client = blob_service(settings.mdc_storage()).get_container_client(settings.MDC_CONTAINER)
    client.create_container()
    return client


@pytest.fixture
def monitor_name(request: pytest.FixtureRequest) -> str:
    """A monitor name unique to this test, so tests never see each other's state."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    return f"t{next(_counter)}-{base}"[:63].rstrip("-")


@pytest.fixture
def prompt_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder set as CUSTOM_PROMPTS_DIR: custom prompts written there are named without a path."""
    from monitor.judge.prompts import clear_prompt_cache
    from monitor.settings import reset_settings

    folder = tmp_path_factory.mktemp("prompts")
    monkeypatch.setenv("CUSTOM_PROMPTS_DIR", str(folder))
    reset_settings()
    clear_prompt_cache()
    yield folder
    monkeypatch.delenv("CUSTOM_PROMPTS_DIR")
    reset_settings()
    clear_prompt_cache()


@pytest.fixture
def served(storage: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The API served by uvicorn on a free loopback port (what `python -m monitor serve` runs), no key."""
    from monitor.api.serve import start_background_server
    from monitor.settings import reset_settings

    monkeypatch.delenv("MONITOR_API_KEY", raising=False)
    reset_settings()
    server = start_background_server("127.0.0.1", 0)
    yield server
    server.stop()


@pytest.fixture
def api(storage: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The ASGI app under the test client (server errors answered, not raised), no key."""
    from fastapi.testclient import TestClient

    from monitor.api import create_app
    from monitor.settings import reset_settings

    monkeypatch.delenv("MONITOR_API_KEY", raising=False)
    reset_settings()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client
    reset_settings()
