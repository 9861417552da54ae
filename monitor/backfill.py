"""Backfill: run the blobs of a monitor's prefix in a time range through the blob-trigger path.

MDC layout: `{prefix}.../{collection}/{yyyy}/{MM}/{dd}/{HH}/{file}.jsonl`; the hour folders in
range are listed directly, never the whole container. Custom JSONL sources have no hour folders:
their blobs are selected by last-modified time. Idempotent: done blobs are skipped (their ledger
entries match), unless `reevaluate` asks to run them again to re-judge skipped and failed scores.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from azure.storage.blob import BlobPrefix, ContainerClient

from monitor.config import MonitorConfig
from monitor.errors import UserError
from monitor.evaluate.queue import DrainReport
from monitor.ingest.pipeline import BlobReport
from monitor.services import Services, blob_input

_YEAR = re.compile(r"^\d{4}$")
MAX_DEPTH = 6


@dataclass
class BackfillReport:
    blobs: int = 0
    processed: int = 0
    skipped: int = 0
    records: int = 0
    quarantined: int = 0
    drained: DrainReport = field(default_factory=DrainReport)


def list_blobs(container: ContainerClient, config: MonitorConfig, since: datetime, until: datetime) -> list[str]:
    """The monitor's `.jsonl` blobs whose hour (MDC) or last change (custom JSONL) is in [since, until)."""
    if since >= until:
        raise UserError(f"--since ({since.isoformat()}) must be before --until ({until.isoformat()})")
    prefix = config.source.prefix
    if config.source.format == "jsonl":
        return sorted(b.name for b in container.list_blobs(name_starts_with=prefix)
                      if b.name.endswith(".jsonl") and b.last_modified and since <= b.last_modified < until)
    names: list[str] = []
    for collection in _collection_prefixes(container, prefix, 0):
        for hour in _hours(since, until):
            names += [b.name for b in container.list_blobs(name_starts_with=collection + hour.strftime("%Y/%m/%d/%H/"))
                      if b.name.endswith(".jsonl")]
    # Inputs before outputs: most records then join on the second half in one pass.
    return sorted(names, key=lambda n: ("model_outputs" in n, n))


def _collection_prefixes(container: ContainerClient, prefix: str, depth: int) -> Iterator[str]:
    """Folders under `prefix` whose children are year folders (the MDC collection level)."""
    children = [item.name for item in container.walk_blobs(name_starts_with=prefix, delimiter="/")
                if isinstance(item, BlobPrefix)]
    if any(_YEAR.match(child[len(prefix):].rstrip("/")) for child in children):
        yield prefix
        return
    if depth < MAX_DEPTH:
        for child in children:
            yield from _collection_prefixes(container, child, depth + 1)


def _hours(since: datetime, until: datetime) -> Iterator[datetime]:
    moment = since.replace(minute=0, second=0, microsecond=0)
    while moment < until:
        yield moment
        moment += timedelta(hours=1)


def backfill(services: Services, name: str, since: datetime, until: datetime, *, reevaluate: bool = False,
             drain: bool = True, progress: Callable[[int, int, BlobReport], None] | None = None) -> BackfillReport:
    config = services.monitors.get(name)
    container = services.mdc_blobs.get_container_client(config.source.container)
    names = list_blobs(container, config, since, until)
    report = BackfillReport(blobs=len(names))
    for index, blob_name in enumerate(names, start=1):
        blob = blob_input(container.get_blob_client(blob_name))
        result = services.ingestor.process(config, blob, force=reevaluate)
        report.skipped += int(result.skipped)
        report.processed += int(not result.skipped and result.ignored is None)
        report.records += result.counts.records
        report.quarantined += result.counts.quarantined
        if progress:
            progress(index, len(names), result)
    if drain:
        report.drained = services.drain_queue()
    return report
