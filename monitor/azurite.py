"""Start and stop the Azurite storage emulator (tests and `demo`), on free loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from monitor.errors import ServiceError
from monitor.settings import azurite_connection_string

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def azurite_binary() -> str:
    local = ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise ServiceError("Azurite is not installed: run `npm ci` in the project folder (make does it for you)")


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    blob_port: int
    queue_port: int
    table_port: int

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(blob=self.blob_port, queue=self.queue_port, table=self.table_port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_azurite(location: Path | None = None, timeout: float = 30.0, extra_args: Sequence[str] = ()) -> Azurite:
    """Start Azurite in memory (or persisting under `location`) and wait until all ports answer.
    `extra_args` go to Azurite as they are (e.g. `--oauth basic --cert C --key K` for Entra ID)."""
    ports = [free_port() for _ in range(3)]
    args = [
        azurite_binary(),
        "--blobHost", "127.0.0.1", "--blobPort", str(ports[0]),
        "--queueHost", "127.0.0.1", "--queuePort", str(ports[1]),
        "--tableHost", "127.0.0.1", "--tablePort", str(ports[2]),
        "--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose",
    ]
    args += list(extra_args)
    if location is None:
        args.append("--inMemoryPersistence")
    else:
        location.mkdir(parents=True, exist_ok=True)
        args += ["--location", str(location)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ}, start_new_session=True)
    azurite = Azurite(process, *ports)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise ServiceError(f"Azurite exited at start (code {process.returncode}): {err.strip()[:500]}")
        if all(_listening(p) for p in ports):
            return azurite
        time.sleep(0.1)
    azurite.stop()
    raise ServiceError(f"Azurite did not listen on ports {ports} within {timeout:.0f} s")
