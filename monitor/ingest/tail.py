"""Find the blobs of a monitor by prefix listings: the tail timer's sweep and backfill's range walk.

Never the whole container: the monitor's prefix is walked down to its collection folders (MDC) or
its date folders (custom JSONL), and only the date folders that matter are listed, with a `/`
delimiter, for every rolling rate at once (docs/ingestion.md):

* the sweep lists the current and the previous period of every rate (Year .. Minute) as of a time,
  descending only into folders a listing showed to exist;
* the range walk (backfill) descends into every date folder whose period meets [since, until).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from azure.storage.blob import BlobPrefix, BlobProperties, ContainerClient

from monitor.config import MonitorConfig
from monitor.ingest.ledger import Ledger, TailState, blob_hash
from monitor.ingest.paths import (
    RATES,
    Period,
    is_copy_collection,
    parse_mdc_path,
    period_at,
    period_of_folders,
    side_of_collection,
)
from monitor.ingest.pipeline import BlobReport, BlobView, Ingestor
from monitor.keys import iso

_YEAR = re.compile(r"^\d{4}$")
SWEEP_THREADS = 4
MAX_DEPTH = 6


@dataclass
class Found:
    """Blobs found under a monitor's prefix, and the collections passed over."""

    blobs: list[BlobProperties] = field(default_factory=list)
    skipped_collections: set[str] = field(default_factory=set)
    listings: int = 0
    roots: int = 0  # date-folder roots found under the prefix


class Lister:
    """Delimited listings of one container, each folder listed at most once."""

    def __init__(self, container: ContainerClient) -> None:
        self._container = container
        self._cache: dict[str, tuple[set[str], list[BlobProperties]]] = {}

    @property
    def listings(self) -> int:
        return len(self._cache)

    def children(self, folder: str) -> tuple[set[str], list[BlobProperties]]:
        """Sub-folders and blobs directly in `folder`."""
        cached = self._cache.get(folder)  # threads sweep different folders: one writer per key
        if cached is None:
            folders: set[str] = set()
            blobs: list[BlobProperties] = []
            for item in self._container.walk_blobs(name_starts_with=folder, delimiter="/"):
                if isinstance(item, BlobPrefix):
                    folders.add(item.name)
                else:
                    blobs.append(item)
            cached = self._cache[folder] = (folders, blobs)
        return cached

    def exists(self, folder: str, root: str) -> bool:
        """Whether `folder` (under `root`) exists, checked through its parents' listings."""
        parts = folder[len(root):].strip("/").split("/")
        current = root
        for part in parts:
            if current + part + "/" not in self.children(current)[0]:
                return False
            current += part + "/"
        return True


def date_roots(lister: Lister, prefix: str, found: Found, *, mdc: bool, depth: int = 0) -> Iterator[str]:
    """Folders under `prefix` whose children are year folders: MDC collection folders (copies and
    collections that are neither inputs nor outputs are passed over and noted), or a custom JSONL
    prefix laid out in date folders."""
    folders, _ = lister.children(prefix)
    if any(_YEAR.match(f[len(prefix):].rstrip("/")) for f in folders):
        collection = prefix.rstrip("/").rsplit("/", 1)[-1]
        if mdc and (is_copy_collection(collection) or side_of_collection(collection) is None):
            found.skipped_collections.add(collection)
            return
        yield prefix
        return
    if depth < MAX_DEPTH:
        for child in sorted(folders):
            yield from date_roots(lister, child, found, mdc=mdc, depth=depth + 1)


def sweep(container: ContainerClient, config: MonitorConfig, at: datetime) -> Found:
    """Blobs of the current and the previous rolling period of every rate, as of `at`."""
    lister = Lister(container)
    found = Found()
    mdc = config.source.format == "mdc"
    roots = list(date_roots(lister, config.source.prefix, found, mdc=mdc))
    if not roots and not mdc:  # custom JSONL without date folders: a listing of the whole prefix
        found.blobs += [b for b in container.list_blobs(name_starts_with=config.source.prefix)
                        if b.name.endswith(".jsonl")]
    periods = sorted({p for rate in RATES for p in (period_at(rate, at), period_at(rate, at).previous())},
                     key=lambda p: (RATES.index(p.rate), p.start))

    def blobs_of(root: str) -> list[BlobProperties]:
        out = []
        for period in periods:
            folder = root + period.folder()
            if lister.exists(folder, root):
                out += [b for b in lister.children(folder)[1] if b.name.endswith(".jsonl")]
        return out

    with ThreadPoolExecutor(max_workers=SWEEP_THREADS, thread_name_prefix="sweep") as pool:
        for blobs in pool.map(blobs_of, roots):  # collection folders listed side by side
            found.blobs += blobs
    found.listings = lister.listings
    return found


def walk_range(container: ContainerClient, config: MonitorConfig, since: datetime, until: datetime) -> Found:
    """Blobs in date folders whose period meets [since, until), under the monitor's prefix."""
    lister = Lister(container)
    found = Found()
    for root in date_roots(lister, config.source.prefix, found, mdc=config.source.format == "mdc"):
        found.roots += 1
        found.blobs += _walk(lister, root, root, since, until)
    found.listings = lister.listings
    return found


def _walk(lister: Lister, root: str, folder: str, since: datetime, until: datetime) -> list[BlobProperties]:
    folders, blobs = lister.children(folder)
    out: list[BlobProperties] = []
    if folder != root:
        out += [b for b in blobs if b.name.endswith(".jsonl")]
    for child in sorted(folders):
        period = _folder_period(root, child)
        if period is not None and period.start < until and period.end > since:
            out += _walk(lister, root, child, since, until)
    return out


def _folder_period(root: str, folder: str) -> Period | None:
    relative = folder[len(root):]
    period = period_of_folders(relative)
    return period if period is not None and period.folder() == relative else None


# --- the tail timer's pass ----------------------------------------------------------------------
PASS_BLOBS = 32  # blobs read together in one pass (their streams are open at once)


@dataclass
class TailReport:
    """What one tail pass did for one monitor (the `tail` command prints these)."""

    monitor: str
    at: str
    listings: int = 0
    blobs_seen: int = 0
    opened: int = 0
    advanced: int = 0
    closed: int = 0
    replaced: int = 0
    busy: int = 0
    bytes_read: int = 0
    records: int = 0
    unsampled: int = 0
    pending: int = 0
    quarantined: int = 0
    skipped_collections: list[str] = field(default_factory=list)


def tail_monitor(ingestor: Ingestor, ledger: Ledger, container: ContainerClient,
                 view_of: Callable[[str], BlobView], config: MonitorConfig, at: datetime) -> TailReport:
    """Advance every open blob of the monitor, open the blobs the sweep finds, close what is due."""
    report = TailReport(monitor=config.name, at=iso(at))
    known: dict[str, tuple[TailState | None, bool]] = {
        state.row_key: (state, free) for state, free in ledger.open_states()}
    found = sweep(container, config, at)
    report.listings = found.listings
    report.skipped_collections = sorted(found.skipped_collections)
    views: dict[str, BlobView] = {}
    for blob in found.blobs:
        views[blob_hash(container.container_name, blob.name)] = BlobView(
            container.container_name, blob.name, int(blob.size), str(blob.etag), blob.last_modified)
    missing = [(key, state.name) for key, (state, _) in known.items()
               if state is not None and key not in views and state.container == container.container_name]
    unknown = [key for key in views if key not in known]  # new, or closed: their entries one by one
    with ThreadPoolExecutor(max_workers=SWEEP_THREADS, thread_name_prefix="tail") as pool:
        for (key, _), view in zip(missing, pool.map(lambda item: view_of(item[1]), missing), strict=True):
            views[key] = view
        for key, entry in zip(unknown, pool.map(lambda k: ledger.get(views[k].container, views[k].name), unknown),
                              strict=True):
            known[key] = entry
    ordered = sorted(views.values(), key=lambda v: (period_key(v.name), v.name))
    report.blobs_seen = len(ordered)
    for start in range(0, len(ordered), PASS_BLOBS):
        unit = ordered[start:start + PASS_BLOBS]
        for blob_report in ingestor.tail(config, unit, now=at, known=known):
            _count(report, blob_report)
    return report


def period_key(name: str) -> str:
    """Blobs of the same period sort together, whatever their collection (partners meet in memory)."""
    path = parse_mdc_path(name)
    return path.period.folder() if path else ""


def _count(report: TailReport, blob: BlobReport) -> None:
    if blob.ignored:
        return
    if blob.busy:
        report.busy += 1
        return
    counts = blob.counts
    report.opened += int(blob.opened)
    report.advanced += int(counts.bytes_read > 0)
    report.closed += int(blob.closed)
    report.replaced += int(blob.state in ("replaced", "deleted") and not blob.skipped)
    report.bytes_read += counts.bytes_read
    report.records += counts.records
    report.unsampled += counts.unsampled
    report.pending += counts.pending
    report.quarantined += counts.quarantined
