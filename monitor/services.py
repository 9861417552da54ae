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

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobClient, ContainerClient

from monitor.config import MonitorConfig
from monitor.evaluate.queue import BatchQueue, DrainReport, max_dequeue_count
from monitor.evaluate.runner import BatchEvaluator, BatchOutcome
from monitor.ingest.claims import BatchRef
from monitor.ingest.datarefs import DatarefStore
from monitor.ingest.pipeline import BatchSink, BlobReport, BlobView, Ingestor
from monitor.ingest.tail import TailReport
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
                                 sink, self.pool, self.read_range)
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
    def ingest(self, blob: BlobView, *, force: bool = False, now: datetime | None = None) -> list[BlobReport]:
        """The blob-trigger path: every monitor that owns the blob opens it and reads what is there."""
        owners = self.monitors.owners(blob.container, blob.name)
        if not owners:
            log.info("no monitor owns %s/%s; ignored", blob.container, blob.name)
        reports = [self.ingestor.process(config, blob, force=force, now=now) for config in owners]
        for report in reports:
            log.info("ingested %s for %s: %s", report.blob, report.monitor, _summary(report))
        return reports

    def ingest_client(self, client: BlobClient, *, force: bool = False) -> list[BlobReport]:
        return self.ingest(blob_input(client), force=force)

    def tail(self, at: datetime | None = None, monitor: str | None = None) -> list[TailReport]:
        """The tail timer's path: one pass per monitor (advance open blobs, sweep, close)."""
        from monitor.ingest.ledger import Ledger
        from monitor.ingest.tail import tail_monitor

        at = at or datetime.now(UTC)
        configs = [self.monitors.get(monitor)] if monitor else self.monitors.list()
        reports = []
        for config in configs:
            container = self.mdc_blobs.get_container_client(config.source.container)
            ledger = Ledger(self.tables["ledger"], config.name)
            def view_of(name: str, container: ContainerClient = container) -> BlobView:
                return blob_input(container.get_blob_client(name))

            try:
                reports.append(tail_monitor(self.ingestor, ledger, container, view_of, config, at))
            except ResourceNotFoundError:
                log.warning("monitor %s: container %s does not exist (yet)", config.name, config.source.container)
        return reports

    def read_range(self, container: str, name: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) of a blob, streamed in chunks (one ranged read per 4 MiB)."""
        if end <= start:
            return iter(())
        client = self.mdc_blobs.get_blob_client(container, name)
        return client.download_blob(offset=start, length=end - start, max_concurrency=1).chunks()


def blob_input(client: BlobClient) -> BlobView:
    """What the blob is now (size, ETag), from one properties call; a deleted blob says so."""
    try:
        properties = client.get_blob_properties()
    except ResourceNotFoundError:
        return BlobView(container=client.container_name, name=client.blob_name, size=0, etag="", deleted=True)
    return BlobView(container=client.container_name, name=client.blob_name, size=int(properties.size),
                    etag=str(properties.etag), last_modified=properties.last_modified)


def _summary(report: BlobReport) -> str:
    if report.busy:
        return "another pass is reading this blob now (it reads these bytes)"
    if report.skipped:
        return "nothing new since the last read"
    if report.ignored:
        return report.ignored
    c = report.counts
    return json.dumps({"bytes_read": c.bytes_read, "rows": c.rows, "records": c.records, "pending": c.pending,
                       "unsampled": c.unsampled, "quarantined": c.quarantined, "batches": c.batches,
                       "queued": c.queued, "state": report.state})


@functools.lru_cache(maxsize=1)
def get_services() -> Services:
    return Services(get_settings())


def reset_services() -> None:
    get_services.cache_clear()
