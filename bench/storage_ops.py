"""Count the HTTP requests the storage SDKs send (every table/blob/queue operation, each page of a
query, each entity-group transaction as one), by wrapping azure-core's requests transport."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline.transport import RequestsTransport


class OpCounter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_kind: collections.Counter[str] = collections.Counter()

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def add(self, request: Any) -> None:
        path = urlsplit(request.url).path
        if "$batch" in path:
            kind = "table_transaction"
        elif request.method == "GET" and "(" not in path.rsplit("/", 1)[-1] and "/devstoreaccount1/" in path:
            kind = f"{request.method} list/query"
        else:
            kind = request.method
        with self.lock:
            self.by_kind[kind] += 1


_active: list[OpCounter] = []
_original = RequestsTransport.send


def _send(self: RequestsTransport, request: Any, **kwargs: Any) -> Any:
    for counter in _active:
        counter.add(request)
    return _original(self, request, **kwargs)


@contextmanager
def counting() -> Iterator[OpCounter]:
    counter = OpCounter()
    RequestsTransport.send = _send  # type: ignore[method-assign]
    _active.append(counter)
    try:
        yield counter
    finally:
        _active.remove(counter)
        if not _active:
            RequestsTransport.send = _original  # type: ignore[method-assign]
