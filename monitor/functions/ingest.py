"""Blob trigger: Model Data Collector writes a file -> ingest it (Event Grid sourced, Flex-ready)."""

from __future__ import annotations

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

bp = func.Blueprint()  # type: ignore[no-untyped-call]


# `client` is an SDK-type binding: the host passes a reference, not the content, and the blob is
# streamed in chunks by the Azure Storage SDK, so a file of any size takes bounded memory.
@bp.blob_trigger(arg_name="client", path="%MDC_CONTAINER%/{name}.jsonl", connection="MDC_STORAGE",
                 source=func.BlobSource.EVENT_GRID)
def ingest_blob(client: blob.BlobClient) -> None:
    from monitor.services import get_services

    get_services().ingest_client(client)
