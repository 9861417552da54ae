"""Ingestion triggers (docs/ingestion.md).

* `ingest_blob`: Model Data Collector created a blob (Event Grid `BlobCreated`, Flex-ready) ->
  open it and ingest what is there.
* `tail_blobs`: timer (`%TAIL_SCHEDULE%`, every minute by default) -> read the new bytes of every
  open blob, sweep the current and previous rolling periods for blobs no event announced, close
  what is due. With Event Grid off this timer alone ingests everything.
"""

from __future__ import annotations

import logging

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

logger = logging.getLogger(__name__)
bp = func.Blueprint()  # type: ignore[no-untyped-call]


# `client` is an SDK-type binding: the host passes a reference, not the content, and the blob is
# streamed in chunks by the Azure Storage SDK, so a file of any size takes bounded memory.
@bp.blob_trigger(arg_name="client", path="%MDC_CONTAINER%/{name}.jsonl", connection="MDC_STORAGE",
                 source=func.BlobSource.EVENT_GRID)
def ingest_blob(client: blob.BlobClient) -> None:
    from monitor.services import get_services

    get_services().ingest_client(client)


@bp.function_name("tail_blobs")
@bp.timer_trigger(arg_name="timer", schedule="%TAIL_SCHEDULE%", run_on_startup=False, use_monitor=True)
def tail_blobs(timer: func.TimerRequest) -> None:
    from dataclasses import asdict

    from monitor.services import get_services

    for report in get_services().tail():
        logger.info("tail %s: %s", report.monitor, asdict(report))
