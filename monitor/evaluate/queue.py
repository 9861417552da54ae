"""The evaluation queue: batches of large blobs, judged by the queue trigger on any instance.

In Azure the Functions host receives, retries and moves a message to `<queue>-poison` after
`maxDequeueCount` (host.json) failures. :func:`drain` does the same locally (CLI, demo, tests)
and hands each message to exactly the function the queue trigger runs.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from azure.storage.queue import QueueClient

from monitor.ingest.claims import BatchRef

log = logging.getLogger(__name__)
# The app's host.json (the root of the deployed package): the one place the attempt count is set.
HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"
# The Functions host's own default when host.json does not set maxDequeueCount.
HOST_DEFAULT_MAX_DEQUEUE = 5


@functools.cache
def max_dequeue_count(host_json: Path = HOST_JSON) -> int:
    """`extensions.queues.maxDequeueCount` of host.json: the attempts a message gets before it is
    poison, for the host in Azure and for :meth:`BatchQueue.drain` locally alike. Read at first use."""
    try:
        data = json.loads(host_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return HOST_DEFAULT_MAX_DEQUEUE
    value = data.get("extensions", {}).get("queues", {}).get("maxDequeueCount", HOST_DEFAULT_MAX_DEQUEUE)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{host_json}: extensions.queues.maxDequeueCount must be a positive integer, not {value!r}")
    return value


class BatchQueue:
    def __init__(self, client: QueueClient, poison: QueueClient) -> None:
        self._client = client
        self._poison = poison

    def send(self, ref: BatchRef) -> None:
        self._client.send_message(ref.to_message().encode("utf-8"))

    def drain(self, handle: Callable[[bytes, int], object], *, visibility_timeout: int = 120,
              on_progress: Callable[[int], None] | None = None) -> DrainReport:
        """Process messages until the queue is empty; a message failing maxDequeueCount times is poison."""
        report = DrainReport()
        attempts = max_dequeue_count()
        while True:
            messages = list(self._client.receive_messages(max_messages=32, visibility_timeout=visibility_timeout))
            if not messages:
                return report
            for message in messages:
                body = bytes(message.content)
                try:
                    handle(body, message.dequeue_count or 1)
                except Exception as exc:
                    report.failures += 1
                    if (message.dequeue_count or 1) >= attempts:
                        self._poison.send_message(body)
                        self._client.delete_message(message)
                        report.poisoned += 1
                    else:  # visible again at once: retried in this same drain
                        self._client.update_message(message, visibility_timeout=0)
                    log.warning("batch message failed (attempt %s): %s", message.dequeue_count, exc)
                    continue
                self._client.delete_message(message)
                report.processed += 1
                if on_progress:
                    on_progress(1)


@dataclass
class DrainReport:
    processed: int = 0
    failures: int = 0
    poisoned: int = 0
