"""Load `dataref` payloads: row arrays of large MDC requests, stored in a blob of their own.

Two promises (docs/ingest.md, "Datarefs"):

* **Only the watched container.** A dataref is a path inside the container the monitor watches, or
  a URL of a blob in that same container of the same account. `..` segments, another host, another
  account or another container are refused (`dataref_outside_container`) before any request.
* **Bounded memory.** Lines are parsed in groups; a group is cut (:func:`parse_mdc_lines` yields)
  as soon as the datarefs it loaded reach GROUP_DATAREF_BYTES, so at most that much plus one
  payload (MAX_DATAREF_BYTES) is held, whatever the number of lines that reference datarefs. Lines
  referencing the dataref just loaded share one parsed copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote, urlparse

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from monitor.ingest.envelopes import DatarefError, Half, parse_mdc_line
from monitor.ingest.lines import Line
from monitor.ingest.paths import MdcPath
from monitor.ingest.quarantine import Rejection
from monitor.ingest.safejson import JsonRefusedError, loads

# A group of lines is handed on once the datarefs it loaded reach this many bytes.
GROUP_DATAREF_BYTES = 16 * 1024 * 1024
MAX_BLOB_NAME = 1024


class DatarefStore:
    def __init__(self, service: BlobServiceClient, max_bytes: int) -> None:
        self._service = service
        self._max_bytes = max_bytes

    def session(self, container: str, budget: int = GROUP_DATAREF_BYTES) -> DatarefSession:
        """A loader for one group of lines of a blob in `container`."""
        return DatarefSession(self, container, budget)

    def load(self, ref: str, container: str) -> tuple[Any, int]:
        """The parsed payload of `ref` and its size in bytes; DatarefError when refused."""
        name = self.locate(ref, container)
        blob = self._service.get_blob_client(container, name)
        try:
            size = blob.get_blob_properties().size
            if size > self._max_bytes:
                raise DatarefError("dataref_invalid", f"dataref {ref} has {size} bytes, over MAX_DATAREF_BYTES")
            data = blob.download_blob().readall()
        except ResourceNotFoundError:
            raise DatarefError("dataref_not_found", f"dataref {ref}: no blob {container}/{name}") from None
        except HttpResponseError as exc:
            if exc.status_code != 400:
                raise  # an outage or throttling: not the line's fault, the blob is retried
            raise DatarefError("dataref_invalid", f"dataref {ref[:200]}: the storage service refused the name "
                                                  f"({exc.reason})") from None
        try:
            text = data.decode("utf-8")
            del data  # hold the payload once as text, then once parsed, never three times
            return loads(text), size
        except UnicodeDecodeError as exc:
            raise DatarefError("dataref_invalid", f"dataref {ref} is not UTF-8: {exc}") from None
        except JsonRefusedError as exc:
            raise DatarefError("dataref_invalid", f"dataref {ref}: {exc.detail}") from None

    def locate(self, ref: str, container: str) -> str:
        """The blob name `ref` designates inside `container`; DatarefError when it points elsewhere."""
        try:
            parsed = urlparse(ref)
            port = parsed.port
        except ValueError as exc:
            raise DatarefError("dataref_invalid", f"dataref {ref[:200]} is not a URL or a path: {exc}") from None
        if parsed.scheme in ("http", "https"):
            name = self._inside_account(ref, unquote(parsed.path), parsed.hostname, port, container)
        elif parsed.scheme:
            raise DatarefError("dataref_invalid", f"dataref {ref[:200]}: unsupported scheme {parsed.scheme!r}")
        elif parsed.netloc:
            raise _outside(ref, f"names the host {parsed.netloc!r}")
        else:
            name = ref.lstrip("/")
        _check_segments(ref, name)
        if len(name) > MAX_BLOB_NAME:
            raise DatarefError("dataref_invalid", f"dataref {ref[:200]}...: a blob name has at most {MAX_BLOB_NAME} "
                                                  "characters")
        return name

    def _inside_account(self, ref: str, path: str, host: str | None, port: int | None, container: str) -> str:
        base = urlparse(self._service.url)
        if (host or "").lower() != (base.hostname or "").lower() or port != base.port:
            raise _outside(ref, f"names the host {host!r}; only the watched account's blob endpoint is read")
        account_path = base.path.rstrip("/") + "/"  # "/" in Azure; "/{account}/" for path-style endpoints
        if not path.startswith(account_path):
            raise _outside(ref, "names another storage account")
        target, _, name = path[len(account_path):].partition("/")
        if target != container:
            raise _outside(ref, f"names the container {target!r}; only the watched container {container!r} is read")
        if not name:
            raise DatarefError("dataref_invalid", f"dataref {ref[:200]} does not name a blob")
        return name


def _outside(ref: str, why: str) -> DatarefError:
    return DatarefError("dataref_outside_container", f"dataref {ref[:200]} {why}")


def _check_segments(ref: str, name: str) -> None:
    """No `.`/`..` segments (also percent-encoded), no backslashes, no empty segments, no controls."""
    for view in (name, unquote(name)):
        if "\\" in view or any(ord(c) < 0x20 or ord(c) == 0x7F for c in view):
            raise _outside(ref, "holds a backslash or a control character")
        segments = view.split("/")
        if any(s in (".", "..") for s in segments):
            raise _outside(ref, "climbs out of its folder (`..`)")
        if not view or any(not s for s in segments):
            raise DatarefError("dataref_invalid", f"dataref {ref[:200]} has an empty path segment")


class DatarefSession:
    """Loads the datarefs of one group of lines and counts the bytes it holds for the group.

    The payload loaded last is remembered, so lines that reference the same dataref share it."""

    def __init__(self, store: DatarefStore, container: str, budget: int) -> None:
        self._store = store
        self._container = container
        self._budget = budget
        self._last: tuple[str, Any, int] | None = None
        self._counted = False  # whether the last payload is counted in the current group
        self.held_bytes = 0

    def __call__(self, ref: str) -> Any:
        if self._last is None or self._last[0] != ref:
            self._last = None  # release the previous payload before loading the next
            payload, size = self._store.load(ref, self._container)
            self._last, self._counted = (ref, payload, size), False
        if not self._counted:
            self.held_bytes += self._last[2]
            self._counted = True
        return self._last[1]

    @property
    def full(self) -> bool:
        return self.held_bytes >= self._budget

    def next_group(self) -> None:
        self.held_bytes, self._counted = 0, False


def parse_mdc_lines(lines: Iterable[Line], path: MdcPath | None, join_column: str,
                    session: DatarefSession) -> Iterator[tuple[list[Half], list[Rejection]]]:
    """Parse a group of MDC lines, yielding (halves, rejections) whenever the datarefs loaded for
    the part parsed so far reach the session's budget, and once at the end."""
    halves: list[Half] = []
    rejections: list[Rejection] = []
    for line in lines:
        good, bad = parse_mdc_line(line, path, join_column, session)
        halves += good
        rejections += bad
        if session.full:
            yield halves, rejections
            halves, rejections = [], []
            session.next_group()
    if halves or rejections:
        yield halves, rejections
