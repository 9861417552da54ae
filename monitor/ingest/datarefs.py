"""Load `dataref` payloads: row arrays of large MDC requests, stored in a blob of their own."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlparse

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from monitor.ingest.envelopes import DatarefError, DatarefLoader


class DatarefStore:
    def __init__(self, service: BlobServiceClient, max_bytes: int) -> None:
        self._service = service
        self._max_bytes = max_bytes

    def loader(self, container: str) -> DatarefLoader:
        """A loader resolving relative paths against `container` (where MDC writes them)."""
        return lambda ref: self.load(ref, container)

    def load(self, ref: str, container: str) -> Any:
        target_container, path = self._locate(ref, container)
        blob = self._service.get_blob_client(target_container, path)
        try:
            size = blob.get_blob_properties().size
            if size > self._max_bytes:
                raise DatarefError("dataref_invalid", f"dataref {ref} has {size} bytes, over MAX_DATAREF_BYTES")
            data = blob.download_blob().readall()
        except ResourceNotFoundError:
            raise DatarefError("dataref_not_found", f"dataref {ref}: no blob {target_container}/{path}") from None
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatarefError("dataref_invalid", f"dataref {ref} is not a JSON array: {exc}") from None

    @staticmethod
    def _locate(ref: str, container: str) -> tuple[str, str]:
        """`https://account.blob.../container/path` or a path inside the watched container."""
        parsed = urlparse(ref)
        if parsed.scheme in ("http", "https"):
            parts = unquote(parsed.path).lstrip("/").split("/", 1)
            # Azurite puts the account name first in the path.
            if parsed.hostname in ("127.0.0.1", "localhost") and len(parts) == 2:
                parts = parts[1].split("/", 1)
            if len(parts) != 2 or not parts[1]:
                raise DatarefError("dataref_invalid", f"dataref {ref} does not name a container and a blob")
            return parts[0], parts[1]
        if parsed.scheme:
            raise DatarefError("dataref_invalid", f"dataref {ref}: unsupported scheme {parsed.scheme!r}")
        return container, ref.lstrip("/")
