"""Point the app at an Azurite instance for a block of code, and forget cached clients around it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitor.azurite import Azurite, start_azurite

STORAGE_SETTINGS = ("MONITOR_STORAGE", "MDC_STORAGE")


def reset_caches() -> None:
    """Forget settings, clients, tables and services built from an earlier environment."""
    from monitor.services import reset_services
    from monitor.settings import reset_settings
    from monitor.storage.clients import reset_clients
    from monitor.storage.tables import reset_tables

    reset_services()
    reset_settings()
    reset_clients()
    reset_tables()


@contextmanager
def storage_env(connection_string: str) -> Iterator[None]:
    """MONITOR_STORAGE and MDC_STORAGE name `connection_string` inside the block, as before after it."""
    saved = {key: os.environ.get(key) for key in STORAGE_SETTINGS}
    for key in STORAGE_SETTINGS:
        os.environ[key] = connection_string
    reset_caches()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_caches()


@contextmanager
def private_azurite(location: Path | None = None) -> Iterator[Azurite]:
    """An Azurite of the block's own (in memory, or persisting under `location`), the app pointed at it."""
    emulator = start_azurite(location)
    try:
        with storage_env(emulator.connection_string):
            yield emulator
    finally:
        emulator.stop()
