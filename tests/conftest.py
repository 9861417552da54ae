"""Session fixtures: one Azurite for the whole run, settings pointed at it, clean state per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from azure.storage.blob import ContainerClient

from monitor.azurite import Azurite, start_azurite
from monitor.settings import reset_settings
from monitor.storage.clients import reset_clients
from monitor.storage.tables import reset_tables

_counter = itertools.count()


def reset_caches() -> None:
    from monitor.services import reset_services

    reset_services()
    reset_settings()
    reset_clients()
    reset_tables()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """Azurite on free ports for the session; MONITOR_STORAGE and MDC_STORAGE point at it."""
    emulator = start_azurite()
    saved = {k: os.environ.get(k) for k in ("MONITOR_STORAGE", "MDC_STORAGE")}
    os.environ["MONITOR_STORAGE"] = emulator.connection_string
    os.environ["MDC_STORAGE"] = emulator.connection_string
    reset_caches()
    try:
        yield emulator
    finally:
        emulator.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_caches()


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
