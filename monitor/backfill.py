"""Backfill: run the blobs of a monitor's prefix in a time range through the ingestion path.

MDC layout: `{prefix}.../{collection}/{yyyy}[/MM[/dd[/HH[/mm]]]]/{file}.jsonl`, any rolling rate; only
the date folders whose period meets the range are listed, never the whole container (see
monitor/ingest/tail.py). Custom JSONL sources honour `yyyy/MM/dd/HH`-style folders under the prefix
when they have them, else select blobs by last-modified time. The blobs of one period are read in one
pass, so inputs and outputs join in memory. Idempotent: a blob already read to its end is skipped
(nothing new past its offset). `reevaluate` then sends every batch of the records whose request
time is in the range to the judge path again: ok scores of the same judge are kept (no double
spend), skipped and failed ones are judged again, `passed` follows the current acceptable score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from azure.storage.blob import BlobProperties, ContainerClient

from monitor.config import MonitorConfig
from monitor.errors import UserError
from monitor.evaluate.queue import DrainReport
from monitor.ingest.claims import BatchRef
from monitor.ingest.pipeline import BlobReport, BlobView
from monitor.ingest.tail import PASS_BLOBS, period_key, walk_range
from monitor.keys import hour_key
from monitor.services import Services
from monitor.storage.tables import query_partition


@dataclass
class BackfillReport:
    blobs: int = 0
    processed: int = 0
    skipped: int = 0
    records: int = 0
    quarantined: int = 0
    rejudged: int = 0  # batches sent to the judge path again (--reevaluate)
    drained: DrainReport = field(default_factory=DrainReport)


def list_blobs(container: ContainerClient, config: MonitorConfig, since: datetime,
               until: datetime) -> list[BlobProperties]:
    """The monitor's `.jsonl` blobs whose period (date folders) or last change is in [since, until)."""
    if since >= until:
        raise UserError(f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
    found = walk_range(container, config, since, until)
    if config.source.format == "jsonl" and found.roots == 0:
        return sorted((b for b in container.list_blobs(name_starts_with=config.source.prefix)
                       if b.name.endswith(".jsonl") and b.last_modified and since <= b.last_modified < until),
                      key=lambda b: b.name)
    return sorted(found.blobs, key=lambda b: (period_key(b.name), b.name))


def backfill(services: Services, name: str, since: datetime, until: datetime, *, reevaluate: bool = False,
             drain: bool = True, progress: Callable[[int, int, BlobReport], None] | None = None) -> BackfillReport:
    config = services.monitors.get(name)
    container = services.mdc_blobs.get_container_client(config.source.container)
    blobs = list_blobs(container, config, since, until)
    report = BackfillReport(blobs=len(blobs))
    views = [BlobView(container.container_name, b.name, int(b.size), str(b.etag), b.last_modified) for b in blobs]
    index = 0
    for unit in _units(views):
        for result in services.ingestor.tail(config, unit):
            index += 1
            report.skipped += int(result.skipped)
            report.processed += int(not result.skipped and result.ignored is None)
            report.records += result.counts.records
            report.quarantined += result.counts.quarantined
            if progress:
                progress(index, len(views), result)
    if reevaluate:
        report.rejudged = _rejudge(services, name, since, until)
    if drain:
        report.drained = services.drain_queue()
    return report


def _rejudge(services: Services, name: str, since: datetime, until: datetime) -> int:
    """Queue every batch of the monitor's records in [since, until) for the judge path again."""
    table = services.tables["records"]
    hour = since.replace(minute=0, second=0, microsecond=0)
    sent = 0
    while hour < until:
        partition = f"{name}|{hour_key(hour)}"
        batches = {str(e.get("batch_id", "")) for e in query_partition(table, partition, select=["batch_id"])}
        for batch_id in sorted(b for b in batches if b):
            services.queue.send(BatchRef(monitor=name, partition=partition, batch_id=batch_id))
            sent += 1
        hour += timedelta(hours=1)
    return sent


def _units(views: list[BlobView]) -> list[list[BlobView]]:
    """Blobs of one period together (at most PASS_BLOBS per pass)."""
    units: list[list[BlobView]] = []
    current_key: str | None = None
    for view in views:
        key = period_key(view.name)
        if not units or key != current_key or len(units[-1]) >= PASS_BLOBS:
            units.append([])
            current_key = key
        units[-1].append(view)
    return units
