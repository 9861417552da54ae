"""A local trigger runner: what Azure's Event Grid and timers do for the deployed app, done locally.

Azurite has no Event Grid, and no Functions host runs here. The runner plays both, through the
command line (exactly the trigger paths): every `interval` seconds it lists the watched container,
runs `python -m monitor event` for each blob it has not seen (one BlobCreated delivery, possibly of
a blob still empty, as in Azure), then `python -m monitor tail` (the tail timer: new bytes, sweep).
It runs in a thread of the calling process, with the settings of that process.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class TriggerRunner:
    container: str
    interval: float = 0.5
    tail: bool = True
    events: list[str] = field(default_factory=list)
    tails: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        from monitor.cli import main
        from monitor.settings import get_settings
        from monitor.storage.clients import blob_service

        blobs = blob_service(get_settings().mdc_storage()).get_container_client(self.container)
        while not self._stop.wait(self.interval):
            for blob in blobs.list_blobs():
                if blob.name not in self.events:
                    self.events.append(blob.name)
                    self._command(main, ["event", "--container", self.container, "--blob", blob.name])
            if self.tail:
                self._command(main, ["tail"])
                self.tails += 1

    def _command(self, main: object, argv: list[str]) -> None:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main(argv)  # type: ignore[operator]
        if code != 0:
            self.errors.append(f"{' '.join(argv)} exited {code}: {out.getvalue()[-2000:]}")

    def stop(self) -> None:
        self._stop.set()


@contextlib.contextmanager
def trigger_runner(container: str, interval: float = 0.5, *, tail: bool = True) -> Iterator[TriggerRunner]:
    runner = TriggerRunner(container, interval, tail)
    thread = threading.Thread(target=runner.run, name="local-triggers", daemon=True)
    thread.start()
    try:
        yield runner
    finally:
        runner.stop()
        thread.join(60)
