"""Serve the API and dashboard locally with uvicorn: the same ASGI app the Functions host runs.

:func:`serve` blocks (``python -m monitor serve``); :func:`start_background_server` runs the server
in a thread for tests and the demo and returns a handle with ``.url`` and ``.stop()``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn

from monitor.api.app import create_app
from monitor.errors import ServiceError


def _config(host: str, port: int, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(create_app(), host=host, port=port, log_level=log_level, access_log=False,
                          lifespan="off")


def serve(host: str = "127.0.0.1", port: int = 7071) -> None:
    """Serve until interrupted (Ctrl-C)."""
    print(f"serving the monitor API on http://{host}:{port}/api (dashboard: http://{host}:{port}/api/dashboard)")
    uvicorn.Server(_config(host, port)).run()


@dataclass
class BackgroundServer:
    """A uvicorn server running in a daemon thread."""

    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_background_server(host: str = "127.0.0.1", port: int = 0, *, timeout: float = 15.0) -> BackgroundServer:
    """Start serving in a thread; port 0 picks a free port. Returns once the server accepts requests."""
    server = uvicorn.Server(_config(host, port, log_level="warning"))
    thread = threading.Thread(target=server.run, name=f"monitor-api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise ServiceError(f"the API server did not start on {host}:{port}")
        time.sleep(0.02)
    return BackgroundServer(server, thread, host, _bound_port(server, port))


def _bound_port(server: uvicorn.Server, requested: int) -> int:
    """The port actually bound (differs from the requested one when that was 0)."""
    for listener in server.servers:
        for sock in listener.sockets:
            return int(sock.getsockname()[1])
    return requested
