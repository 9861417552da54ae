"""Ingestion: tail passes over growing blobs, each byte read once, each record counted once.

A *pass* (the blob trigger for one blob, the tail timer for every open blob of a monitor, backfill
for a period's blobs) works on blob views (name, size, ETag) of one monitor (docs/ingestion.md):

1. plan: per blob, from its ledger entry, new bytes to read, a due close, a replacement, or nothing;
2. lease every blob with work (conditional update of its ledger entry: one pass per blob at a time);
3. read only the new bytes (ranged), blobs interleaved group by group, lines numbered on from the
   last committed line; an unfinished last line is held (`carry`) until its newline or the close;
4. parse; sample on the join key *before* storing anything: unsampled requests are only counted;
5. join sampled halves in memory; claim completed records into batches (exactly-once creates);
   halves still alone at the end of the pass are persisted in batches (the join table);
6. quarantine bad lines and duplicate keys; publish the blob's unsampled counts; judge or queue
   the batches;
7. commit offset, carry, state and counts, releasing the lease, in one conditional update.
A crash before step 7 leaves the old offset: the bytes are read again and every write above is
idempotent (creates that adopt, upserts of the same values).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

from monitor.config import MonitorConfig
from monitor.ingest.claims import BatchRef, Claimer, ClaimResult, check_size, record_ref, sampled
from monitor.ingest.datarefs import DatarefStore, parse_mdc_lines
from monitor.ingest.envelopes import Flat, Half, map_columns, parse_jsonl_line
from monitor.ingest.joiner import AlreadyJoined, Completed, Duplicate, Joiner, Offer, Pending
from monitor.ingest.ledger import CHECK_BYTES, MAX_CARRY, BlobCounts, Ledger, TailState, blob_hash
from monitor.ingest.lines import Line, iter_lines
from monitor.ingest.paths import MdcPath, Period, parse_mdc_path, period_of_folders
from monitor.ingest.quarantine import Rejection, quarantine_entities
from monitor.keys import hour_key, iso
from monitor.partials import Counter, partial_entity
from monitor.records import Record
from monitor.settings import Settings
from monitor.storage.tables import Tables, TextTooLargeError, write_entities

log = logging.getLogger(__name__)
# Lines are handled in groups: at most this many lines or bytes are held at once per blob.
GROUP_ROWS = 500
GROUP_BYTES = 8 * 1024 * 1024
# Sampled halves waiting in memory for their partner: beyond this many bytes (estimated from their
# lines), the oldest are persisted to the join table, so memory stays bounded whatever the pass.
WAITING_BYTES = 16 * 1024 * 1024
CLAIM_THREADS = 4  # claim transactions in flight at once
KEYS_REMEMBERED = 100_000  # join keys a pass remembers to tell duplicates (bounded memory)
K = TypeVar("K")
V = TypeVar("V")
Action = Literal["read", "close", "replaced", "deleted"]


@dataclass(frozen=True)
class BlobView:
    """What a listing or a properties call says about a blob now."""

    container: str
    name: str
    size: int
    etag: str
    last_modified: datetime | None = None
    deleted: bool = False


BlobReader = Callable[[str, str, int, int], Iterator[bytes]]  # container, name, start, end


@dataclass
class BlobReport:
    monitor: str
    blob: str
    skipped: bool = False  # nothing new (or done, or replaced earlier)
    busy: bool = False  # another pass holds the blob's lease
    ignored: str | None = None
    state: str = ""
    closed: bool = False  # this pass closed the blob
    opened: bool = False  # this pass saw the blob for the first time
    counts: BlobCounts = field(default_factory=BlobCounts)  # what this pass added


class BatchSink:
    """Where claimed batches go: judged inline while a pass is small, else sent to the queue."""

    def __init__(self, judge_inline: Callable[[MonitorConfig, BatchRef], object],
                 enqueue: Callable[[BatchRef], None], inline_limit: int, batch_size: int) -> None:
        self.judge_inline = judge_inline
        self.enqueue = enqueue
        self.inline_limit = inline_limit
        self.batch_size = batch_size

    def open(self, config: MonitorConfig, counts: BlobCounts) -> BlobBatches:
        return BlobBatches(self, config, counts)


class BlobBatches:
    """The batches of one pass. Held back while the pass stays under the inline limit; once it
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


@dataclass(eq=False)
class _Job:
    """One blob in one pass: its state (leased), its view, what to do, what this pass added."""

    state: TailState
    view: BlobView
    action: Action
    path: MdcPath | None
    report: BlobReport
    closing: bool = False
    delta: BlobCounts = field(default_factory=BlobCounts)
    unsampled: dict[str, dict[str, int]] = field(default_factory=dict)
    replaced: str = ""  # why the blob turned out replaced while reading

    @property
    def origin(self) -> str:
        return self.state.blob


class Ingestor:
    def __init__(self, settings: Settings, tables: Tables, datarefs: DatarefStore, sink: BatchSink,
                 pool: ThreadPoolExecutor, reader: BlobReader) -> None:
        self._settings = settings
        self._tables = tables
        self._datarefs = datarefs
        self._sink = sink
        self._pool = pool
        self._reader = reader

    # --- planning -------------------------------------------------------------------------------
    def tail(self, config: MonitorConfig, views: list[BlobView], *, now: datetime | None = None,
             force: bool = False, known: dict[str, tuple[TailState | None, bool]] | None = None) -> list[BlobReport]:
        """One pass over `views` (blobs of this monitor). `known` holds ledger states already read
        (None: no entry yet); others are read one by one. `force` reads every
        blob again from its first byte as if nothing had been committed (what a re-run after a crash
        does), recomputing its counts: records are adopted, nothing is counted twice."""
        now = now or datetime.now(UTC)
        ledger = Ledger(self._tables["ledger"], config.name)
        jobs: list[_Job] = []
        reports: list[BlobReport] = []
        for view in views:
            report = BlobReport(monitor=config.name, blob=f"{view.container}/{view.name}")
            reports.append(report)
            job = self._plan(config, ledger, view, report, now, force, known)
            if job is not None:
                jobs.append(job)
        leased = list(self._pool.map(lambda j: ledger.acquire(j.state, self._settings.TAIL_LEASE_SECONDS), jobs))
        active = []
        for job, ok in zip(jobs, leased, strict=True):
            if ok:
                active.append(job)
            else:
                job.report.busy = job.report.skipped = True
        if active:
            try:
                self._run(config, ledger, active, now)
            except BaseException:
                for job in active:
                    if job.state.lease:
                        ledger.release(job.state)
                raise
        return reports

    def process(self, config: MonitorConfig, view: BlobView, *, force: bool = False,
                now: datetime | None = None) -> BlobReport:
        """The blob-trigger path for one blob: open it and ingest what is there."""
        return self.tail(config, [view], now=now, force=force)[0]

    def _plan(self, config: MonitorConfig, ledger: Ledger, view: BlobView, report: BlobReport, now: datetime,
              force: bool, known: dict[str, tuple[TailState | None, bool]] | None) -> _Job | None:
        path = parse_mdc_path(view.name) if config.source.format == "mdc" else None
        if path is not None and path.is_copy:
            report.ignored = f"{path.collection!r} holds Azure ML monitoring's copies of the append blobs"
            return None
        key = blob_hash(view.container, view.name)
        state, free = known[key] if known is not None and key in known else ledger.get(view.container, view.name)
        if path is not None and path.side is None:
            report.ignored = f"collection {path.collection!r} holds neither model inputs nor outputs"
            if state is None:  # counted once, as a skipped blob
                ledger.commit(TailState(config.name, view.container, view.name, state="skipped",
                                        size=view.size, detail=report.ignored))
            return None
        if state is None and view.deleted:
            report.ignored = "the blob no longer exists (deleted before it was ever read)"
            return None
        if state is None:
            state = TailState(config.name, view.container, view.name, period_end=_period_end(config, view, path))
            report.opened = True
        report.state = state.state
        if not free:
            report.busy = report.skipped = True
            return None
        if state.state in ("replaced", "deleted", "skipped"):
            report.skipped = True
            return None
        action = self._action(state, view, now, force)
        if action is None:
            report.skipped = True
            return None
        if force:
            state = replace(state, offset=0, carry=b"", check=b"", counts=BlobCounts(), unsampled_hours={},
                            state="open")
        job = _Job(state, view, action, path, report)
        # Closes when due and unchanged since the last look (a late append to a closed blob is read
        # and the blob stays closed: its last line needs no newline).
        unchanged = view.size == state.size or state.state == "closed"
        job.closing = action == "close" or (action == "read" and state.etag is not None and unchanged
                                            and self._due(state, view, now))
        return job

    def _action(self, state: TailState, view: BlobView, now: datetime, force: bool) -> Action | None:
        if view.deleted:
            return "deleted"
        if force or state.etag is None:
            return "read"  # a new blob is opened (registered) even while it is still empty
        if view.size < state.offset:
            return "replaced"
        if view.size > state.offset:
            return "read"
        if state.etag is not None and not _same_etag(view.etag, state.blob_etag) and state.check:
            return "read"  # same size, new ETag: the read checks the bytes before the offset
        if state.state == "open" and self._due(state, view, now) and view.size == state.size:
            return "close"
        return None

    def _due(self, state: TailState, view: BlobView, now: datetime) -> bool:
        """Whether the blob's period (plus the grace delay) is over; without a period, whether the
        blob has been quiet for the grace delay."""
        grace = timedelta(minutes=self._settings.TAIL_GRACE_MINUTES)
        if state.period_end is not None:
            return now >= state.period_end + grace
        changed = state.changed_at or view.last_modified
        return changed is not None and now >= changed + grace

    # --- the pass ---------------------------------------------------------------------------
    def _run(self, config: MonitorConfig, ledger: Ledger, jobs: list[_Job], now: datetime) -> None:
        work = _Pass(config, self._settings, self._tables, self._pool, self._datarefs, self._sink, now)
        streams = []
        for job in jobs:
            if job.action in ("replaced", "deleted"):
                job.replaced = ("the blob was deleted" if job.action == "deleted" else
                                f"the blob shrank from {job.state.offset} to {job.view.size} bytes")
            else:
                streams.append(self._groups(config, job, work))
        while streams:  # blobs interleaved group by group, so partners meet in memory
            for stream in list(streams):
                if not next(stream, False):
                    streams.remove(stream)
        for job in jobs:
            if job.replaced:  # reported once, in the quarantine, with what was found
                work.reject(job, Rejection(0, "blob_replaced", f"{job.replaced}; it is not read again"))
        work.finish(jobs)
        work.judge(jobs)
        for job in jobs:
            self._settle(job, now)
        list(self._pool.map(work.publish_unsampled, jobs))
        committed = list(self._pool.map(ledger.commit, [j.state for j in jobs]))
        for job, ok in zip(jobs, committed, strict=True):
            job.report.state = job.state.state
            if ok:
                job.report.counts = job.delta
                job.report.closed = job.closing and job.state.state == "closed"
                # closing a blob read to its end reads nothing: nothing new for the caller
                job.report.skipped = job.action == "close" and job.delta.rows == 0 and not job.delta.quarantined
            else:
                log.warning("%s: the lease was lost before the commit; another pass reads these bytes",
                            job.origin)
                job.report.busy = True

    def _groups(self, config: MonitorConfig, job: _Job, work: _Pass) -> Iterator[bool]:
        """Read the blob's new bytes and hand its lines to the pass, one group per step."""
        state = job.state
        start = max(0, state.offset - len(state.check))
        stream = _Tracked(state.carry, self._reader(job.view.container, job.view.name, start, job.view.size),
                          len(state.check))
        group: list[Line] = []
        held = 0
        base = state.counts.lines
        for line in iter_lines(stream, self._settings.MAX_LINE_BYTES):
            if stream.checked is not None and stream.checked != state.check:
                job.replaced = "the bytes before the read offset changed: the blob was overwritten"
                return
            if line.number > stream.newlines and not job.closing:
                break  # an unfinished last line: held back until its newline (or the close)
            group.append(replace(line, number=base + line.number))
            held += len(line.data)
            if len(group) >= GROUP_ROWS or held >= GROUP_BYTES:
                work.handle(job, group)
                group, held = [], 0
                yield True
        if stream.checked is not None and stream.checked != state.check:
            job.replaced = "the bytes before the read offset changed: the blob was overwritten"
            return
        if group:
            work.handle(job, group)
        job.delta.bytes_read = stream.fresh
        job.state.counts.lines = base + stream.newlines + (1 if job.closing and stream.tail_size else 0)
        self._advance(job, stream)

    def _advance(self, job: _Job, stream: _Tracked) -> None:
        """Move the offset past what was read; keep an unfinished line as carry when it fits."""
        state = job.state
        end = job.view.size
        if job.closing or stream.tail_size == 0:
            state.offset, state.carry = end, b""
        elif stream.tail_size <= MAX_CARRY:
            state.offset, state.carry = end, bytes(stream.tail)
        else:  # too long to keep: read it again from its first byte next time
            state.offset, state.carry = end - stream.tail_size, b""
        state.carry_start = state.offset - len(state.carry)
        state.check = bytes(stream.last)[-CHECK_BYTES:] if state.offset == end else b""

    def _settle(self, job: _Job, now: datetime) -> None:
        """The job's new state: counts added, size seen, closed when due, replaced when found so."""
        state, view = job.state, job.view
        counts = state.counts
        for name in ("rows", "records", "pending", "joined_in_memory", "unsampled", "foreign", "quarantined",
                     "batches", "queued", "judged_inline", "bytes_read"):
            setattr(counts, name, getattr(counts, name) + getattr(job.delta, name))
        counts.reasons.update(job.delta.reasons)
        if job.replaced:
            state.state = "deleted" if job.action == "deleted" else "replaced"
            state.detail = job.replaced
            return
        for partition, segments in job.unsampled.items():
            into = state.unsampled_hours.setdefault(partition, {})
            for segment, n in segments.items():
                into[segment] = into.get(segment, 0) + n
        if view.size != state.size:
            state.changed_at = now
        state.size, state.blob_etag = view.size, view.etag
        state.unread_since = None if state.offset >= view.size else (state.unread_since or now)
        if job.closing:
            state.state = "closed"


class _Tracked:
    """The byte stream of one read: the carried bytes first, then the blob's range (whose first
    `check` bytes are compared with the remembered ones, not parsed). Counts newlines and keeps the
    bytes after the last one."""

    def __init__(self, carry: bytes, chunks: Iterator[bytes], check: int) -> None:
        self._carry = carry
        self._chunks = chunks
        self._check = check
        self.checked: bytes | None = None if check else b""
        self.newlines = 0
        self.fresh = 0  # blob bytes read for the first time
        self.tail = bytearray()
        self.tail_size = 0
        self.last = bytearray()

    def __iter__(self) -> Iterator[bytes]:
        if self._carry:
            yield self._see(self._carry)
        pending = b""
        for chunk in self._chunks:
            if self.checked is None:
                pending += chunk
                if len(pending) < self._check:
                    continue
                self.checked, chunk = pending[:self._check], pending[self._check:]
                pending = b""
            self.fresh += len(chunk)
            self.last = (self.last + chunk)[-CHECK_BYTES:]
            if chunk:
                yield self._see(chunk)
        if self.checked is None:
            self.checked = pending

    def _see(self, chunk: bytes) -> bytes:
        count = chunk.count(b"\n")
        if count:
            self.newlines += count
            after = chunk[chunk.rfind(b"\n") + 1:]
            self.tail = bytearray(after[:MAX_CARRY + 1])
            self.tail_size = len(after)
        else:
            if len(self.tail) <= MAX_CARRY:
                self.tail += chunk[:MAX_CARRY + 1 - len(self.tail)]
            self.tail_size += len(chunk)
        return chunk


def _remember(seen: OrderedDict[K, V], key: K, value: V) -> None:
    seen[key] = value
    if len(seen) > KEYS_REMEMBERED:
        seen.popitem(last=False)


def _same_etag(a: str, b: str) -> bool:
    """ETags compared without their quotes (listings and properties calls differ in quoting)."""
    return a.strip('"') == b.strip('"')


def _period_end(config: MonitorConfig, view: BlobView, path: MdcPath | None) -> datetime | None:
    if path is not None:
        return path.period.end
    period = _jsonl_period(config.source.prefix, view.name)
    return period.end if period else None


def _jsonl_period(prefix: str, name: str) -> Period | None:
    """Custom JSONL: the period of `yyyy/MM/dd/HH`-style folders under the prefix, when present."""
    relative = name[len(prefix):] if name.startswith(prefix) else name
    parts = relative.split("/")
    for index in range(len(parts) - 1):
        period = period_of_folders("/".join(parts[index:-1]) + "/")
        if period is not None and "/".join(parts[index:-1]) + "/" == period.folder():
            return period
    return None


class _Pass:
    """The in-memory side of one pass: parse, sample, join, claim, quarantine; counts per blob."""

    def __init__(self, config: MonitorConfig, settings: Settings, tables: Tables, pool: ThreadPoolExecutor,
                 datarefs: DatarefStore, sink: BatchSink, now: datetime) -> None:
        self._config = config
        self._settings = settings
        self._tables = tables
        self._pool = pool
        self._datarefs = datarefs
        self._now = now
        self._joiner = Joiner(tables["joins"], config.name)
        self._claimers: dict[str, Claimer] = {}
        self._waiting: OrderedDict[tuple[str, str], tuple[Half, _Job, int]] = OrderedDict()  # (key, side)
        self._waiting_bytes = 0
        # Sampled (key, side) of this pass, the most recent KEYS_REMEMBERED: a duplicate beyond them
        # is still found by its claim (a record from another line), as across passes.
        self._taken: OrderedDict[tuple[str, str], tuple[_Job, int]] = OrderedDict()
        self._claiming: ThreadPoolExecutor | None = None
        self._inflight: list[tuple[Future[ClaimResult], dict[str, tuple[_Job, int]]]] = []
        self._seen: OrderedDict[str, tuple[_Job, int]] = OrderedDict()  # custom JSONL keys, likewise
        self._ready: dict[tuple[str, str], list[tuple[Record, _Job]]] = defaultdict(list)
        self._batch_counts = BlobCounts()
        self._batches = sink.open(config, self._batch_counts)
        self._rejections: list[tuple[_Job, Rejection]] = []
        self._metrics = list(config.enabled_metrics())

    # --- per group ------------------------------------------------------------------------------
    def handle(self, job: _Job, lines: list[Line]) -> None:
        sizes = {line.number: len(line.data) for line in lines}
        for items, rejections in self._parse(job, lines):
            self._handle_part(job, items, rejections, sizes)
            del items  # release this part's rows before the next part loads its datarefs
        limit = self._settings.TAIL_JOIN_BUFFER
        if len(self._waiting) > limit or self._waiting_bytes > WAITING_BYTES:
            self._persist_lonely(max(len(self._waiting) - limit // 2, len(self._waiting) // 2))
        if len(self._rejections) >= GROUP_ROWS:
            self._quarantine()

    def _handle_part(self, job: _Job, items: list[Half | Flat], rejections: list[Rejection],
                     sizes: dict[int, int]) -> None:
        job.delta.rows += len(items)
        self._rejections += [(job, r) for r in rejections]
        rows_of_line: dict[int, int] = defaultdict(int)
        for item in items:
            rows_of_line[item.line] += 1
        for item in items:
            if isinstance(item, Flat):
                self._flat(job, item)
            else:
                self._half(job, item, sizes.get(item.line, 0) // rows_of_line[item.line])

    def _parse(self, job: _Job, lines: list[Line]) -> Iterator[tuple[list[Half | Flat], list[Rejection]]]:
        """The parsed group, in parts: an MDC group is cut where its datarefs fill the memory budget."""
        items: list[Half | Flat] = []
        rejections: list[Rejection] = []
        source = self._config.source
        if source.format == "mdc":
            session = self._datarefs.session(job.view.container)
            for halves, bad in parse_mdc_lines(lines, job.path, source.join_column, session):
                yield list(halves), bad
            return
        fallback_time = job.view.last_modified or self._now
        prefix = job.state.row_key[:12]
        for line in lines:
            flat, rejected = parse_jsonl_line(line, source.join_column, f"{prefix}:{line.number}", fallback_time)
            if flat is not None:
                items.append(flat)
            if rejected is not None:
                rejections.append(rejected)
        yield items, rejections

    def _flat(self, job: _Job, flat: Flat) -> None:
        if not sampled(flat.key, self._config.sampling_rate):
            self._count_unsampled(job, flat.time, flat.deployment, flat.model_version)
            return
        first = self._seen.get(flat.key)
        if first is not None:
            self._duplicate(job, flat.line, flat.key, f"{first[0].origin} line {first[1]}")
            return
        _remember(self._seen, flat.key, (job, flat.line))
        self._add(self._record(flat.key, flat.row, flat.time, flat), job, flat.line)

    def _half(self, job: _Job, half: Half, size: int) -> None:
        if not sampled(half.key, self._config.sampling_rate):
            if half.side == "input":
                self._count_unsampled(job, half.time, half.deployment, half.model_version)
            return
        first = self._taken.get((half.key, half.side))
        if first is not None:
            self._duplicate(job, half.line, half.key, f"{first[0].origin} line {first[1]}")
            return
        _remember(self._taken, (half.key, half.side), (job, half.line))
        other = "output" if half.side == "input" else "input"
        waiting = self._waiting.pop((half.key, other), None)
        if waiting is None:
            self._waiting[(half.key, half.side)] = (half, job, size)
            self._waiting_bytes += size
            return
        self._waiting_bytes -= waiting[2]
        partner = waiting[0], waiting[1]
        (inp, inp_job), (out, out_job) = ((half, job), partner) if half.side == "input" else (partner, (half, job))
        out_job.delta.joined_in_memory += 1
        self._add(self._joined(inp, out), inp_job, inp.line)

    def _count_unsampled(self, job: _Job, time: datetime, deployment: str | None, model: str | None) -> None:
        job.delta.unsampled += 1
        segments = job.unsampled.setdefault(f"{self._config.name}|{hour_key(time)}", {})
        for segment in ["all"] + ([f"deployment={deployment}"] if deployment else []) + (
                [f"model_version={model}"] if model else []):
            segments[segment] = segments.get(segment, 0) + 1

    def reject(self, job: _Job, rejection: Rejection) -> None:
        self._rejections.append((job, rejection))

    def _duplicate(self, job: _Job, line: int, key: str, first: str) -> None:
        detail = f"join key {key!r} was already taken by {first}; the first one is kept (docs/ingestion.md)"
        self._rejections.append((job, Rejection(line, "duplicate_key", detail)))

    # --- records and claims ---------------------------------------------------------------------
    def _add(self, record: Record, job: _Job, line: int) -> None:
        problem = check_size(record)
        if problem:
            self._rejections.append((job, Rejection(line, "record_too_large", f"join key {record.key}: {problem}")))
            return
        record = replace(record, extra={"line": line, "ref": record_ref(job.origin, line)})
        group = self._ready[(job.origin, record.partition)]
        group.append((record, job))
        if len(group) >= self._settings.BATCH_SIZE:
            self._claim(job.origin, list(group))
            group.clear()

    def _claim(self, origin: str, pairs: list[tuple[Record, _Job]]) -> None:
        """Claim a full batch in the background (transactions overlap the parsing and each other);
        the results are counted here, in the pass's thread, as they come back."""
        if self._claiming is None:
            self._claiming = ThreadPoolExecutor(max_workers=CLAIM_THREADS, thread_name_prefix="claim")
        records = [r for r, _ in pairs]
        where = {r.key: (j, int(r.extra.get("line", 0))) for r, j in pairs}
        self._inflight.append((self._claiming.submit(self._claimer(origin).claim, records), where))
        while len(self._inflight) > 2 * CLAIM_THREADS:
            self._collect_one()

    def _collect_one(self) -> None:
        future, where = self._inflight.pop(0)
        self._account(future.result(), where)

    def _collect(self) -> None:
        try:
            while self._inflight:
                self._collect_one()
        finally:
            if self._claiming is not None:
                self._claiming.shutdown(wait=True, cancel_futures=True)
                self._claiming = None

    def _account(self, result: ClaimResult, where: dict[str, tuple[_Job, int]]) -> None:
        jobs = list(dict.fromkeys(j for j, _ in where.values()))
        owner = jobs[0] if jobs else None
        if owner is not None:
            owner.delta.records += result.claimed
            owner.delta.batches += len(result.batches)
        self._batches.push(result.batches)
        for key, blob in result.foreign_keys:
            job, line = where[key]
            job.delta.foreign += 1
            self._duplicate(job, line, key, f"the record already stored from {blob or 'another blob'}")

    def _persist_lonely(self, count: int) -> None:
        """Offer the oldest `count` waiting halves to the join table, in batches."""
        popped = [self._waiting.popitem(last=False)[1] for _ in range(min(count, len(self._waiting)))]
        if not popped:
            return
        self._waiting_bytes -= sum(size for _, _, size in popped)
        taken = [(half, job) for half, job, _ in popped]
        offers: list[Offer] = [(half, job.origin) for half, job in taken]
        outcomes = self._joiner.offer_many(offers, self._pool)
        completed: list[tuple[Completed, _Job, int]] = []
        existing: dict[str, list[tuple[str, str, _Job, int]]] = defaultdict(list)
        for (half, job), outcome in zip(taken, outcomes, strict=True):
            if isinstance(outcome, TextTooLargeError):
                detail = f"join key {half.key[:200]}: {outcome}"
                self._rejections.append((job, Rejection(half.line, "record_too_large", detail)))
            elif isinstance(outcome, Pending):
                job.delta.pending += 1
            elif isinstance(outcome, Duplicate):
                self._duplicate(job, half.line, half.key, outcome.first)
            elif isinstance(outcome, AlreadyJoined):
                existing[job.origin].append((outcome.record_partition, half.key, job, half.line))
            else:
                completed.append((outcome, job, half.line))
        self._complete(completed)
        for origin, refs in existing.items():
            claimer = self._claimer(origin)
            result = claimer.adopt_existing((p, k) for p, k, _, _ in refs)
            self._account(result, {k: (j, line) for _, k, j, line in refs})

    def _claimer(self, origin: str) -> Claimer:
        claimer = self._claimers.get(origin)
        if claimer is None:
            claimer = self._claimers[origin] = Claimer(self._tables["records"], origin, self._settings.BATCH_SIZE,
                                                       self._pool)
        return claimer

    def _complete(self, completed: list[tuple[Completed, _Job, int]]) -> None:
        """Records whose second half met a persisted first half: claimed by the blob (and line) of
        the half that completed them, then the join is marked."""
        by_origin: dict[str, list[tuple[Record, _Job, Completed]]] = defaultdict(list)
        for done, job, line in completed:
            record = self._joined(done.input, done.output)
            problem = check_size(record)
            if problem:
                self._rejections.append((job, Rejection(line, "record_too_large", problem)))
                continue
            ref = record_ref(done.input_blob or job.origin, done.input.line)
            by_origin[job.origin].append((replace(record, extra={"line": line, "ref": ref}), job, done))
        for origin, items in by_origin.items():
            result = self._claimer(origin).claim([r for r, _, _ in items])
            self._account(result, {r.key: (j, int(r.extra["line"])) for r, j, _ in items})
            list(self._pool.map(lambda item: self._joiner.mark_joined(item[2], item[0].partition), items))

    # --- end of pass --------------------------------------------------------------------------
    def finish(self, jobs: list[_Job]) -> None:
        for (origin, _), group in list(self._ready.items()):
            if group:
                self._claim(origin, list(group))
        self._ready.clear()
        self._collect()
        self._persist_lonely(len(self._waiting))
        self._quarantine()
        if not jobs:
            return
        for job in jobs:
            never_read = job.state.counts.rows == 0 and job.delta.rows == 0 and job.state.counts.quarantined == 0
            if job.closing and never_read and job.delta.quarantined == 0 and job.state.counts.lines == 0:
                self._rejections.append((job, Rejection(0, "empty_file", "the blob holds no lines")))
        self._quarantine()

    def _quarantine(self) -> None:
        by_job: dict[int, tuple[_Job, list[Rejection]]] = {}
        for job, rejection in self._rejections:
            job.delta.reject(rejection.reason)
            log.warning("quarantined %s line %d: %s (%s)", job.origin, rejection.line, rejection.reason,
                        rejection.detail)
            by_job.setdefault(id(job), (job, []))[1].append(rejection)
        self._rejections.clear()
        entities = [entity for job, rejections in by_job.values()
                    for entity in quarantine_entities(rejections, self._config.name, job.origin, job.state.row_key)]
        write_entities(self._tables["quarantine"], entities)

    def publish_unsampled(self, job: _Job) -> None:
        """Row counts of the blob's unsampled requests, per hour: the blob's running totals (the
        committed ones plus this pass's), so a pass run again writes the same numbers."""
        if job.replaced:
            return
        totals = job.state.unsampled_hours  # already settled: committed + this pass
        touched = set(job.unsampled)
        now = iso(datetime.now(UTC))
        for partition in touched:
            segments = totals.get(partition, {})
            counts = {segment: {m: Counter(row_count=n) for m in self._metrics} for segment, n in segments.items()}
            entity = partial_entity(partition, f"unsampled-{job.state.row_key[:20]}", counts,
                                    segments.get("all", 0), now)
            self._tables["partials"].upsert_entity(entity)
            monitor, hour = partition.rsplit("|", 1)
            self._tables["dirty"].upsert_entity({"PartitionKey": monitor, "RowKey": hour, "updated_at": now})

    def judge(self, jobs: list[_Job]) -> None:
        """Judge the pass's batches inline (small pass) or leave them queued; before the commit, so
        a crash here leaves the bytes to be read again and the batches adopted and judged then."""
        self._batches.finish()
        if jobs:
            jobs[0].delta.queued += self._batch_counts.queued
            jobs[0].delta.judged_inline += self._batch_counts.judged_inline

    # --- record building -------------------------------------------------------------------------
    def _joined(self, inp: Half, out: Half) -> Record:
        return self._record(inp.key, {**inp.row, **out.row}, inp.time, inp, out)

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
            sampled=True,
        )

