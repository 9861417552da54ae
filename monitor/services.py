"""The composition root: builds the ingest, evaluation and queue services from the settings.

Built lazily, once per process (:func:`get_services`), and reused by every invocation: storage
clients, the thread pool for storage I/O and the judge engines are all shared.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from azure.core import MatchConditions
from azure.storage.blob import BlobClient

from monitor.config import MonitorConfig
from monitor.evaluate.queue import BatchQueue, DrainReport, max_dequeue_count
from monitor.evaluate.runner import BatchEvaluator, BatchOutcome
from monitor.ingest.claims import BatchRef
from monitor.ingest.datarefs import DatarefStore
from monitor.ingest.pipeline import BatchSink, BlobInput, BlobReport, Ingestor
from monitor.judge import JudgeEngine, default_budget
from monitor.keys import iso
from monitor.monitors import MonitorStore
from monitor.settings import Settings, get_settings
from monitor.storage.clients import blob_service, queue_client
from monitor.storage.tables import Tables

log = logging.getLogger(__name__)
STORAGE_THREADS = 16


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tables = Tables.default()
        self.monitors = MonitorStore(self.tables)
        self.pool = ThreadPoolExecutor(max_workers=STORAGE_THREADS, thread_name_prefix="storage")
        mdc = settings.mdc_storage()
        self.mdc_blobs = blob_service(mdc)
        own = settings.monitor_storage()
        self.queue = BatchQueue(queue_client(own, settings.EVALUATION_QUEUE),
                                queue_client(own, f"{settings.EVALUATION_QUEUE}-poison"))
        self.evaluator = BatchEvaluator(self.tables, self.engine_for, self.pool)
        sink = BatchSink(self.evaluate, self.queue.send, settings.INLINE_BATCH_LIMIT, settings.BATCH_SIZE)
        self.ingestor = Ingestor(settings, self.tables, DatarefStore(self.mdc_blobs, settings.MAX_DATAREF_BYTES),
                                 sink, self.pool)
        self._engines: dict[str, JudgeEngine] = {}
        self._engines_lock = threading.Lock()

    # --- judging -------------------------------------------------------------------------------
    def engine_for(self, config: MonitorConfig) -> JudgeEngine:
        """One engine per distinct configuration, reused across invocations (it owns the client)."""
        key = config.model_dump_json()
        with self._engines_lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = JudgeEngine(config, budget=default_budget(config))
                self._engines[key] = engine
        return engine

    def evaluate(self, config: MonitorConfig, ref: BatchRef) -> BatchOutcome:
        return self.evaluator.evaluate(config, ref)

    def handle_batch_message(self, body: bytes, dequeue_count: int) -> BatchOutcome:
        """What the queue trigger runs for one message; records poison on the last attempt."""
        ref = BatchRef.from_message(body)
        try:
            return self.evaluate(self.monitors.get(ref.monitor), ref)
        except Exception as exc:
            if dequeue_count >= max_dequeue_count():
                self._record_poison(ref, exc, dequeue_count)
            raise

    def _record_poison(self, ref: BatchRef, exc: Exception, attempts: int) -> None:
        self.tables["poison"].upsert_entity({
            "PartitionKey": ref.monitor, "RowKey": ref.batch_id, "partition": ref.partition,
            "message": ref.to_message(), "reason": f"{type(exc).__name__}: {exc}"[:2000],
            "attempts": attempts, "at": iso(datetime.now(UTC)),
        })

    def drain_queue(self, on_progress: Callable[[int], None] | None = None) -> DrainReport:
        """Run every queued batch through the queue-trigger path (local runs: CLI, demo, tests)."""
        return self.queue.drain(self.handle_batch_message, on_progress=on_progress)

    # --- ingestion -----------------------------------------------------------------------------
    def ingest(self, blob: BlobInput, *, force: bool = False) -> list[BlobReport]:
        """The blob-trigger path: every monitor that owns the blob processes it."""
        owners = self.monitors.owners(blob.container, blob.name)
        if not owners:
            log.info("no monitor owns %s/%s; ignored", blob.container, blob.name)
        reports = [self.ingestor.process(config, blob, force=force) for config in owners]
        for report in reports:
            log.info("ingested %s for %s: %s", report.blob, report.monitor, _summary(report))
        return reports

    def ingest_client(self, client: BlobClient, *, force: bool = False) -> list[BlobReport]:
        return self.ingest(blob_input(client), force=force)


def blob_input(client: BlobClient) -> BlobInput:
    """Stream a blob through a client: its ETag pins the version read."""
    properties = client.get_blob_properties()
    etag = properties.etag

    def chunks() -> Iterator[bytes]:
        downloader = client.download_blob(etag=etag, match_condition=_if_match(), max_concurrency=1)
        yield from downloader.chunks()

    return BlobInput(container=client.container_name, name=client.blob_name, etag=etag,
                     last_modified=properties.last_modified, open_chunks=chunks)


def _if_match() -> MatchConditions:
    return MatchConditions.IfNotModified


def _summary(report: BlobReport) -> str:
    if report.skipped:
        return "already done (re-delivery skipped)"
    if report.ignored:
        return report.ignored
    c = report.counts
    return json.dumps({"lines": c.lines, "rows": c.rows, "records": c.records, "pending": c.pending,
                       "quarantined": c.quarantined, "batches": c.batches, "queued": c.queued})


@functools.lru_cache(maxsize=1)
def get_services() -> Services:
    return Services(get_settings())


def reset_services() -> None:
    get_services.cache_clear()
