"""The blob-trigger path: one blob in, joined, sampled, claimed records out, judged or queued.

The blob is streamed in chunks and handled in groups of rows, so memory stays bounded whatever
its size. For every monitor that owns the blob:

1. the ledger skips a re-delivered blob that is already done;
2. each line is parsed (bad lines are quarantined with their reason, the rest go on);
3. MDC halves are joined through the join table; custom JSONL lines are records already;
4. records are sampled on their join key and claimed into batches (exactly-once);
5. batches are judged inline for a small blob, or sent to the evaluation queue for a large one;
6. the ledger records the blob as done, with its counts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from monitor.config import MonitorConfig
from monitor.ingest.claims import BatchRef, Claimer, ClaimResult, check_size, sampled
from monitor.ingest.datarefs import DatarefStore, parse_mdc_lines
from monitor.ingest.envelopes import Flat, Half, map_columns, parse_jsonl_line
from monitor.ingest.joiner import AlreadyJoined, Completed, Joiner, Pending
from monitor.ingest.ledger import BlobCounts, Ledger, blob_hash
from monitor.ingest.lines import Line, iter_lines
from monitor.ingest.paths import MdcPath, parse_mdc_path
from monitor.ingest.quarantine import Rejection, quarantine_entities
from monitor.records import Record
from monitor.settings import Settings
from monitor.storage.tables import Tables, TextTooLargeError, write_entities

log = logging.getLogger(__name__)
# Lines are handled in groups: at most this many lines or bytes are held at once.
GROUP_ROWS = 500
GROUP_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class BlobInput:
    """A blob to ingest: where it is, its version, and a way to stream its bytes."""

    container: str
    name: str
    etag: str | None
    last_modified: datetime | None
    open_chunks: Callable[[], Iterator[bytes]]


@dataclass
class BlobReport:
    monitor: str
    blob: str
    skipped: bool = False
    ignored: str | None = None
    counts: BlobCounts = field(default_factory=BlobCounts)


class BatchSink:
    """Where claimed batches go: judged inline while a blob is small, else sent to the queue."""

    def __init__(self, judge_inline: Callable[[MonitorConfig, BatchRef], object],
                 enqueue: Callable[[BatchRef], None], inline_limit: int, batch_size: int) -> None:
        self.judge_inline = judge_inline
        self.enqueue = enqueue
        self.inline_limit = inline_limit
        self.batch_size = batch_size

    def open(self, config: MonitorConfig, counts: BlobCounts) -> BlobBatches:
        return BlobBatches(self, config, counts)


class BlobBatches:
    """The batches of one blob. Held back while the blob stays under the inline limit; once it
    goes over, everything held and everything after goes to the queue."""

    def __init__(self, sink: BatchSink, config: MonitorConfig, counts: BlobCounts) -> None:
        self._sink = sink
        self._config = config
        self._counts = counts
        self._held: list[BatchRef] = []
        self._records = 0
        self._queue_mode = False

    def push(self, refs: Iterable[BatchRef]) -> None:
        for ref in refs:
            self._counts.batches += 1
            self._records += ref.size or self._sink.batch_size
            if self._queue_mode:
                self._queue(ref)
                continue
            self._held.append(ref)
            if self._records > self._sink.inline_limit:
                self._queue_mode = True
                for held in self._held:
                    self._queue(held)
                self._held.clear()

    def finish(self) -> None:
        """Judge what is held, inline; a batch that fails inline goes to the queue (retried there)."""
        for ref in self._held:
            try:
                self._sink.judge_inline(self._config, ref)
                self._counts.judged_inline += 1
            except Exception:
                log.exception("inline judging of batch %s failed; sending it to the queue", ref.batch_id)
                self._queue(ref)
        self._held.clear()

    def _queue(self, ref: BatchRef) -> None:
        self._sink.enqueue(ref)
        self._counts.queued += 1


class Ingestor:
    def __init__(self, settings: Settings, tables: Tables, datarefs: DatarefStore, sink: BatchSink,
                 pool: ThreadPoolExecutor) -> None:
        self._settings = settings
        self._tables = tables
        self._datarefs = datarefs
        self._sink = sink
        self._pool = pool

    def process(self, config: MonitorConfig, blob: BlobInput, *, force: bool = False) -> BlobReport:
        report = BlobReport(monitor=config.name, blob=f"{blob.container}/{blob.name}")
        ledger = Ledger(self._tables["ledger"], config.name)
        if not force and ledger.is_done(blob.container, blob.name, blob.etag):
            report.skipped = True
            return report
        path = parse_mdc_path(blob.name) if config.source.format == "mdc" else None
        if path is not None and path.side is None:
            report.ignored = f"collection {path.collection!r} holds neither model inputs nor outputs"
            return report
        ledger.start(blob.container, blob.name, blob.etag)
        self._ingest(config, blob, path, report.counts)
        ledger.finish(blob.container, blob.name, blob.etag, report.counts)
        return report

    def _ingest(self, config: MonitorConfig, blob: BlobInput, path: MdcPath | None, counts: BlobCounts) -> None:
        origin = f"{blob.container}/{blob.name}"
        claimer = Claimer(self._tables["records"], origin, self._settings.BATCH_SIZE, self._pool)
        batches = self._sink.open(config, counts)
        handler = _GroupHandler(config, origin, self._tables, claimer, self._pool, counts)
        lines = iter_lines(blob.open_chunks(), self._settings.MAX_LINE_BYTES)
        group: list[Line] = []
        held = 0
        for line in lines:
            counts.lines = line.number
            group.append(line)
            held += len(line.data)
            if len(group) >= GROUP_ROWS or held >= GROUP_BYTES:
                for parsed in self._parse(config, blob, path, group):
                    batches.push(handler.handle(parsed))
                    del parsed  # release this part's rows before the next part loads its datarefs
                group, held = [], 0
        if group:
            for parsed in self._parse(config, blob, path, group):
                batches.push(handler.handle(parsed))
                del parsed
        if counts.lines == 0 and counts.rows == 0:
            handler.quarantine([Rejection(0, "empty_file", "the blob holds no lines")])
        batches.finish()

    def _parse(self, config: MonitorConfig, blob: BlobInput, path: MdcPath | None,
               lines: list[Line]) -> Iterator[tuple[list[Half | Flat], list[Rejection]]]:
        """The parsed group, in parts: an MDC group is cut where its datarefs fill the memory budget."""
        items: list[Half | Flat] = []
        rejections: list[Rejection] = []
        source = config.source
        if source.format == "mdc":
            session = self._datarefs.session(blob.container)
            for halves, bad in parse_mdc_lines(lines, path, source.join_column, session):
                yield list(halves), bad
            return
        fallback_time = blob.last_modified or datetime.now(UTC)
        prefix = blob_hash(blob.container, blob.name)[:12]
        for line in lines:
            flat, rejected = parse_jsonl_line(line, source.join_column, f"{prefix}:{line.number}", fallback_time)
            if flat is not None:
                items.append(flat)
            if rejected is not None:
                rejections.append(rejected)
        yield items, rejections


class _GroupHandler:
    """Turns one group of parsed rows into claimed batches, counting everything on the way."""

    def __init__(self, config: MonitorConfig, origin: str, tables: Tables, claimer: Claimer,
                 pool: ThreadPoolExecutor, counts: BlobCounts) -> None:
        self._config = config
        self._origin = origin
        self._tables = tables
        self._claimer = claimer
        self._pool = pool
        self._counts = counts
        self._joiner = Joiner(tables["joins"], config.name, origin)
        self._hash = blob_hash(*origin.split("/", 1))

    def handle(self, parsed: tuple[list[Half | Flat], list[Rejection]]) -> list[BatchRef]:
        items, rejections = parsed
        self._counts.rows += len(items)
        halves = [i for i in items if isinstance(i, Half)]
        flats = [i for i in items if isinstance(i, Flat)]
        result = ClaimResult()
        if flats:
            result.add(self._claim([(self._record(f.key, f.row, f.time, f), f.line) for f in flats], rejections))
        if halves:
            result.add(self._join(halves, rejections))
        self.quarantine(rejections)
        self._counts.records += result.claimed
        self._counts.foreign += result.foreign
        return result.batches

    def quarantine(self, rejections: list[Rejection]) -> None:
        for rejection in rejections:
            self._counts.reject(rejection.reason)
            log.warning("quarantined %s line %d: %s (%s)", self._origin, rejection.line, rejection.reason,
                        rejection.detail)
        write_entities(self._tables["quarantine"],
                       quarantine_entities(rejections, self._config.name, self._origin, self._hash))

    def _join(self, halves: list[Half], rejections: list[Rejection]) -> ClaimResult:
        outcomes = list(self._pool.map(self._offer, halves))
        completed: list[Completed] = []
        existing: list[tuple[str, str]] = []
        for half, outcome in zip(halves, outcomes, strict=True):
            if isinstance(outcome, Rejection):
                rejections.append(outcome)
            elif isinstance(outcome, Pending):
                self._counts.pending += 1
            elif isinstance(outcome, AlreadyJoined):
                existing.append((outcome.record_partition, half.key))
            else:
                completed.append(outcome)
        records = [self._record_of(done) for done in completed]
        result = self._claim([(r, d.output.line) for r, d in zip(records, completed, strict=True)], rejections)
        marks = zip(completed, records, strict=True)
        list(self._pool.map(lambda pair: self._joiner.mark_joined(pair[0], pair[1].partition), marks))
        result.add(self._claimer.adopt_existing(existing))
        return result

    def _offer(self, half: Half) -> Pending | Completed | AlreadyJoined | Rejection:
        try:
            return self._joiner.offer(half)
        except TextTooLargeError as exc:
            return Rejection(half.line, "record_too_large", f"join key {half.key[:200]}: {exc}")

    def _claim(self, pairs: list[tuple[Record, int]], rejections: list[Rejection]) -> ClaimResult:
        records = []
        for record, line in pairs:
            problem = check_size(record)
            if problem:
                rejections.append(Rejection(line, "record_too_large", f"join key {record.key}: {problem}"))
            else:
                records.append(record)
        return self._claimer.claim(records)

    def _record_of(self, done: Completed) -> Record:
        row = {**done.input.row, **done.output.row}
        return self._record(done.input.key, row, done.input.time, done.input, done.output)

    def _record(self, key: str, row: dict[str, object], time: datetime, first: Half | Flat,
                second: Half | None = None) -> Record:
        columns = map_columns(row, self._config.columns)
        return Record(
            monitor=self._config.name, key=key, time=time,
            prompt=columns["prompt"], completion=columns["completion"], context=columns["context"],
            ground_truth=columns["ground_truth"], chat_history=columns["chat_history"],
            endpoint=first.endpoint or (second.endpoint if second else None),
            deployment=first.deployment or (second.deployment if second else None),
            model_version=first.model_version or (second.model_version if second else None),
            request_id=first.request_id or (second.request_id if second else None),
            sampled=sampled(key, self._config.sampling_rate),
        )
