"""`python -m monitor demo`: the whole monitor on the shipped sample data, locally, in one command.

1. Storage: MONITOR_STORAGE / MDC_STORAGE when set; otherwise an Azurite of our own on free loopback
   ports, persisting under `.demo/azurite/<judge>/` (MONITOR_DEMO_DIR moves `.demo`). Persisting makes a
   re-run cheap and shows the exactly-once accounting at work: the ledger skips every blob it has
   done, and the numbers and alerts stay the same.
2. The monitor `contoso-support` from samples/monitor.json, watching the container MDC_CONTAINER;
   its judge comes from the environment (Azure OpenAI, an OpenAI-compatible server) or is the
   built-in heuristic judge.
3. The sample blobs (samples/mdc/) are uploaded (only those missing or changed), every `.jsonl` blob
   goes through the blob-trigger path in the order MDC writes them, then the queued batches through
   the queue-trigger path, then the timer path runs as if it fired after the last sample day.
4. A summary table per day and deployment with what it means (monitor/demo_summary.py), the
   regression it found, the dashboard written to `.demo/dashboard.html`, and (unless --no-serve) the
   API and dashboard served until Ctrl-C, with the `export` lines that point other commands at the
   demo's Azurite. The dashboard's port is checked before any processing.

Every process the demo starts (Azurite, the API server thread) is stopped on the way out, Ctrl-C
included.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shlex
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from monitor.demo_summary import DEMO_NAME, Totals, judge_name, summary_lines
from monitor.errors import NotFoundError, ServiceError, UserError

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SAMPLE_CONFIG = SAMPLES / "monitor.json"
SAMPLE_BLOBS = SAMPLES / "mdc"
SAMPLE_GOLDEN = SAMPLES / "golden.jsonl"
# The sample blobs hold 1-16 records each: with this limit the busy evening hours fan out through the
# evaluation queue (queue-trigger path) while the quiet hours are judged inside the blob trigger.
DEMO_INLINE_BATCH_LIMIT = "10"
STORAGE_SETTINGS = ("MONITOR_STORAGE", "MDC_STORAGE")
# Per-line and per-alert warnings the summary reports as counts: shown only with `-v`.
QUIET_LOGGERS = ("monitor.ingest.pipeline", "monitor.events")


def demo_dir() -> Path:
    """Where the demo keeps its files: `.demo/` in the project, or MONITOR_DEMO_DIR."""
    return Path(os.environ.get("MONITOR_DEMO_DIR") or ROOT / ".demo")


def _say(text: str = "") -> None:
    print(text, flush=True)


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def storage_configured() -> bool:
    """Whether the environment names the storage (a connection string or an identity-based group);
    empty values count as unset."""
    return any(value for key, value in os.environ.items()
               for setting in STORAGE_SETTINGS if key == setting or key.startswith(f"{setting}__"))


def judge_from_environment() -> dict[str, Any]:
    """The judge the environment asks for: Azure OpenAI, then OpenAI(-compatible), else heuristic."""
    from monitor.settings import get_settings

    s = get_settings()
    if s.AZURE_OPENAI_ENDPOINT and s.AZURE_OPENAI_DEPLOYMENT:
        judge: dict[str, Any] = {"provider": "azure_openai", "endpoint": s.AZURE_OPENAI_ENDPOINT,
                                 "deployment": s.AZURE_OPENAI_DEPLOYMENT,
                                 "api_version": s.AZURE_OPENAI_API_VERSION or "2024-10-21"}
        if os.environ.get("AZURE_OPENAI_API_KEY"):
            judge["api_key_setting"] = "AZURE_OPENAI_API_KEY"   # else Entra ID (az login / managed identity)
        return judge
    if s.OPENAI_MODEL and (s.OPENAI_BASE_URL or os.environ.get("OPENAI_API_KEY")):
        judge = {"provider": "openai", "model": s.OPENAI_MODEL}
        if s.OPENAI_BASE_URL:
            judge["base_url"] = s.OPENAI_BASE_URL
        return judge
    return {"provider": "heuristic"}


def demo_config() -> dict[str, Any]:
    """samples/monitor.json, watching MDC_CONTAINER, with the judge of the environment."""
    from monitor.settings import get_settings

    data: dict[str, Any] = json.loads(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["source"] = {**data["source"], "container": get_settings().MDC_CONTAINER}
    judge = judge_from_environment()
    data["judge"] = judge if judge["provider"] != data.get("judge", {}).get("provider") else {
        **data.get("judge", {}), **judge}
    return data


def sample_files() -> list[tuple[str, Path]]:
    """(blob name, local file) of every sample blob, `.jsonl` and `dataref` payloads."""
    if not SAMPLE_BLOBS.is_dir():
        raise UserError(f"no sample data under {SAMPLE_BLOBS}: run `python samples/generate.py`")
    return sorted((p.relative_to(SAMPLE_BLOBS).as_posix(), p) for p in SAMPLE_BLOBS.rglob("*") if p.is_file())


def arrival_order(name: str) -> tuple[str, int, str]:
    """The order MDC writes blobs in: by hour folder, each hour's inputs before its outputs."""
    parts = name.split("/")
    hour = "/".join(parts[-5:-1])            # yyyy/MM/dd/HH
    return hour, 0 if "/model_inputs/" in name else 1, name


@dataclass
class Timings:
    phases: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.phases[name] = time.monotonic() - start

    def processing(self) -> float:
        return sum(v for k, v in self.phases.items() if k != "storage")


@dataclass
class IngestTotals:
    blobs: int = 0
    processed: int = 0
    skipped: int = 0
    records: int = 0
    quarantined: int = 0
    judged_inline: int = 0
    queued: int = 0
    drained: int = 0
    poisoned: int = 0


# --- the steps ------------------------------------------------------------------------------------

def _reset_caches() -> None:
    from monitor.services import reset_services
    from monitor.settings import reset_settings
    from monitor.storage.clients import reset_clients
    from monitor.storage.tables import reset_tables

    reset_services()
    reset_settings()
    reset_clients()
    reset_tables()


def judge_slug(config: Any) -> str:
    """A directory name per judge: `heuristic`, or provider, model and a hash of the judge settings."""
    judge = config.judge
    if judge.provider == "heuristic":
        return "heuristic"
    digest = hashlib.sha1(judge.model_dump_json().encode()).hexdigest()[:8]
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in f"{judge.provider}-{judge.model_name}")
    return f"{name[:60]}-{digest}"


def put_monitor(wanted: Any) -> None:
    """Create or replace the demo monitor. A monitor judged by another judge is refused: a batch
    evaluated again keeps its ok scores, so the windows would mix two judges under one label."""
    from monitor.services import get_services

    store = get_services().monitors
    try:
        before = store.get(DEMO_NAME)
    except NotFoundError:
        before = None
    if before is not None and (before.judge, before.columns, before.metrics, before.sampling_rate) != (
            wanted.judge, wanted.columns, wanted.metrics, wanted.sampling_rate):
        raise UserError(
            f"the storage already holds monitor {DEMO_NAME} judged by {judge_name(before)} (or with other "
            f"metrics than {judge_name(wanted)} now); its scores would be kept and mixed with the new ones. "
            f"Run the demo on its own "
            f"Azurite (unset MONITOR_STORAGE and MDC_STORAGE: each judge gets its own data under "
            f".demo/azurite/) or on storage without this monitor")
    if before != wanted:
        store.put(wanted.model_dump(mode="json"))


def upload_samples(container_name: str) -> tuple[list[str], int]:
    """Upload the sample blobs that are missing or differ (by MD5); returns the `.jsonl` names and
    how many blobs were written. Unchanged blobs keep their ETag, so the ledger skips them."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import ContentSettings

    from monitor.progress import Progress
    from monitor.services import get_services

    container = get_services().mdc_blobs.get_container_client(container_name)
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    files = sample_files()
    stored = {b.name: bytes(b.content_settings.content_md5 or b"")
              for b in container.list_blobs(name_starts_with="modelDataCollector/")}
    written = 0
    with Progress("upload samples", total=len(files)) as bar:
        for name, path in files:
            data = path.read_bytes()
            digest = hashlib.md5(data).digest()   # the checksum the blob service keeps (Content-MD5)
            if stored.get(name) != digest:
                kind = "application/x-ndjson" if name.endswith(".jsonl") else "application/json"
                settings = ContentSettings(content_type=kind, content_md5=bytearray(digest))
                container.upload_blob(name, data, overwrite=True, content_settings=settings)
                written += 1
            bar.advance(1)
    return sorted((n for n, _ in files if n.endswith(".jsonl")), key=arrival_order), written


def ingest(container_name: str, names: list[str], totals: IngestTotals) -> None:
    """Every blob through the blob-trigger path (`Services.ingest`), as Event Grid would deliver them."""
    from monitor.progress import Progress
    from monitor.services import blob_input, get_services

    services = get_services()
    container = services.mdc_blobs.get_container_client(container_name)
    totals.blobs = len(names)
    with Progress("blob trigger", total=len(names)) as bar:
        for name in names:
            for report in services.ingest(blob_input(container.get_blob_client(name))):
                if report.monitor != DEMO_NAME:
                    continue
                totals.skipped += int(report.skipped)
                totals.processed += int(not report.skipped and report.ignored is None)
                totals.records += report.counts.records
                totals.quarantined += report.counts.quarantined
                totals.judged_inline += report.counts.judged_inline
                totals.queued += report.counts.queued
            bar.advance(1, note=f"{totals.records} records, {totals.queued} batches queued")
    # The tail timer's next firing: the sample hours are over, so it closes every blob it saw.
    services.tail(monitor=DEMO_NAME)


def drain(totals: IngestTotals) -> None:
    """The queued batches through the queue-trigger path."""
    from monitor.progress import Progress
    from monitor.services import get_services

    with Progress("queue trigger", total=totals.queued or None) as bar:
        report = get_services().drain_queue(on_progress=bar.advance)
    totals.drained, totals.poisoned = report.processed, report.poisoned


def sample_days() -> list[datetime]:
    """The UTC days of the sample requests (the hour folders of the model inputs)."""
    days = set()
    for name, _ in sample_files():
        if "/model_inputs/" in name:
            y, m, d = name.split("/")[-5:-2]
            days.add(datetime(int(y), int(m), int(d), tzinfo=UTC))
    if not days:
        raise UserError(f"no model_inputs blobs under {SAMPLE_BLOBS}")
    return sorted(days)


def aggregation_time(days: list[datetime]) -> datetime:
    """The timer fires after the last sample day plus the lookback, so every sample window is
    computed (their hours are dirty) and final (`window_end + lookback <= at`)."""
    from monitor.settings import get_settings

    return days[-1] + timedelta(days=1, hours=get_settings().AGGREGATION_LOOKBACK_HOURS)


def aggregate(at: datetime) -> list[str]:
    from monitor.aggregate import run_aggregation

    reports = run_aggregation(at=at, monitor=DEMO_NAME)
    return [alert for report in reports for alert in report.alerts]


def calibrate_judge(at: datetime) -> list[str]:
    """Store samples/golden.jsonl (when changed) and calibrate the judge as the timer would at `at`
    (a re-run finds the run of that period and judges nothing); the summary lines."""
    from monitor.calibration.golden import current_digest, digest_of, parse_golden, put_golden
    from monitor.calibration.runs import calibrate_config
    from monitor.monitors import MonitorStore
    from monitor.storage.tables import Tables

    if not SAMPLE_GOLDEN.exists():
        return []
    tables = Tables.default()
    config = MonitorStore(tables).get(DEMO_NAME)
    data = SAMPLE_GOLDEN.read_bytes()
    if current_digest(tables, DEMO_NAME) != digest_of(parse_golden(data, config)):
        put_golden(tables, config, data)
    result = calibrate_config(tables, config, at=at)
    run = result.run or {}
    agreement = ", ".join(f"{m} {a['spearman']:.3f}" if a.get("spearman") is not None else f"{m} -"
                          for m, a in run.get("metrics", {}).items())
    state = "judged now" if result.ran else "already judged in this period"
    lines = [f"Judge calibration ({state}): {run.get('judge')} vs {run.get('golden_records')} hand-labelled golden "
             f"records (samples/golden.jsonl), Spearman per metric: {agreement}"]
    if result.alerts:
        lines.append(f"  judge_drift alerts: {', '.join(result.alerts)}")
    return lines


def export_dashboards(directory: Path, segments: list[str]) -> list[Path]:
    """`dashboard.html` (all traffic) and one page per segment with a regression."""
    from monitor.dashboard import export_dashboard

    pages = [export_dashboard(DEMO_NAME, directory / "dashboard.html")]
    for segment in segments:
        name = "dashboard-" + segment.replace("=", "-").replace("/", "-") + ".html"
        pages.append(export_dashboard(DEMO_NAME, directory / name, segment=segment))
    return pages


# --- storage and clean-up -------------------------------------------------------------------------

@contextlib.contextmanager
def demo_lock(directory: Path) -> Iterator[None]:
    """One demo at a time per `.demo/`: two Azurite processes on one location would corrupt it."""
    directory.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(directory / "demo.lock", "w")  # noqa: SIM115 - held for the whole run
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UserError(f"another demo is running on {directory} (its lock is held)") from None
        yield
    finally:
        handle.close()


@contextlib.contextmanager
def demo_environment(directory: Path, slug: str) -> Iterator[str]:
    """Storage for the demo (set, or an Azurite of our own: one data directory per judge) and the
    demo's settings; restores the environment and stops Azurite on the way out. Yields a
    description of the storage."""
    from monitor.azurite import start_azurite

    saved = {k: os.environ.get(k) for k in (*STORAGE_SETTINGS, "INLINE_BATCH_LIMIT")}
    azurite = None
    try:
        if storage_configured():
            where = "the storage named by MONITOR_STORAGE / MDC_STORAGE"
        else:
            location = directory / "azurite" / slug
            azurite = start_azurite(location)
            _note(f"started Azurite (pid {azurite.process.pid}) with its data under {location}")
            for key in STORAGE_SETTINGS:
                os.environ[key] = azurite.connection_string
            where = f"Azurite (data under {location})"
        if not os.environ.get("INLINE_BATCH_LIMIT"):
            os.environ["INLINE_BATCH_LIMIT"] = DEMO_INLINE_BATCH_LIMIT
        _reset_caches()
        yield where
    finally:
        _reset_caches()
        if azurite is not None:
            azurite.stop()
            _note(f"stopped Azurite (pid {azurite.process.pid})")
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def interrupt_on_termination() -> Iterator[None]:
    """SIGTERM and SIGHUP end the demo like Ctrl-C does, so its clean-up runs: Azurite runs in a
    session of its own and would otherwise outlive a demo killed by `kill` or a closed terminal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    saved = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Without `-v`, leave per-line quarantine and per-alert warnings to the summary's counts."""
    if logging.getLogger().isEnabledFor(logging.INFO):
        yield
        return
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """Fail before any processing when the dashboard's port is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            other = port + 1 if port < 65535 else 7072
            raise UserError(f"port {port} on {host} is in use ({exc.strerror}): stop what listens there, or pick "
                            f"another port with --port, e.g. `make demo ARGS='--port {other}'` or "
                            f"`python -m monitor demo --port {other}`") from None


def export_lines(serving: bool) -> list[str]:
    """How to point other commands at the demo's own Azurite (it runs while the demo serves)."""
    values = {key: os.environ.get(key, "") for key in (*STORAGE_SETTINGS, "MDC_CONTAINER")}
    if not serving:
        return ["The demo's Azurite stopped with it: run `make demo` (it serves until Ctrl-C) to keep it up and "
                "use the other commands against it."]
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in values.items() if v)
    return ["Other commands against the demo's storage, in another terminal while the demo serves:",
            f"  export {exports}",
            f"  python -m monitor status --monitor {DEMO_NAME}"]


def serve_until_interrupted(port: int, segments: list[str], own_storage: bool) -> None:
    from urllib.parse import quote

    from monitor.api.serve import start_background_server

    server = start_background_server("127.0.0.1", port)
    try:
        page = f"{server.url}/api/monitors/{DEMO_NAME}/dashboard"
        _say(f"Dashboard: {page}")
        for segment in segments:
            _say(f"           {page}?segment={quote(segment)}  (the regression)")
        _say(f"API:       {server.url}/api/monitors/{DEMO_NAME}/metrics, reference {server.url}/api/docs")
        for line in export_lines(True) if own_storage else []:
            _say(line)
        _say("Ctrl-C stops the demo.")
        while server.thread.is_alive():
            time.sleep(0.5)
        raise ServiceError("the API server stopped unexpectedly")
    except KeyboardInterrupt:
        _note("stopping")
    finally:
        server.stop()


def print_summary(config: Any, days: list[datetime], totals: IngestTotals, new_alerts: list[str],
                  timings: Timings, port: int | None) -> list[str]:
    """Print the summary; returns the segments (`deployment=NAME`) with breached windows."""
    lines, segments = summary_lines(config, days, Totals(
        blobs=totals.blobs, processed=totals.processed, skipped=totals.skipped,
        judged_inline=totals.judged_inline, drained=totals.drained, poisoned=totals.poisoned),
        len(new_alerts), port)
    for line in lines:
        _say(line)
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in timings.phases.items())
    _say(f"Processing took {timings.processing():.1f} s ({phases})")
    return segments


# --- the command ----------------------------------------------------------------------------------

def run_demo(serve: bool = True, port: int = 7071) -> int:
    """Run the demo; serve the dashboard until Ctrl-C when `serve`. Returns the exit code."""
    from monitor.config import parse_config
    from monitor.settings import get_settings
    from monitor.storage.reach import check_reachable

    if serve:
        check_port(port)
    directory = demo_dir()
    timings = Timings()
    totals = IngestTotals()
    config = parse_config(demo_config())
    with (interrupt_on_termination(), demo_lock(directory), quiet_logs(),
          demo_environment(directory, judge_slug(config)) as where):
        settings = get_settings()
        if not where.startswith("Azurite"):
            check_reachable(("table", "queue", "blob"))
        put_monitor(config)
        _note(f"storage: {where}; watched container {settings.MDC_CONTAINER!r}; "
              f"inline batch limit {settings.INLINE_BATCH_LIMIT}")
        days = sample_days()
        with timings.phase("upload"):
            names, written = upload_samples(config.source.container)
        unchanged = len(sample_files()) - written
        _note(f"uploaded {written} sample blobs" + (f"; {unchanged} were there unchanged" if unchanged else ""))
        with timings.phase("blob trigger"):
            ingest(config.source.container, names, totals)
        with timings.phase("queue trigger"):
            drain(totals)
        at = aggregation_time(days)
        _note(f"timer: aggregating as of {at.isoformat()} (last sample day + {settings.AGGREGATION_LOOKBACK_HOURS} h "
              "lookback: every sample window is final)")
        with timings.phase("timer"):
            new_alerts = aggregate(at)
        with timings.phase("calibration"):
            calibration = calibrate_judge(at)
        segments = print_summary(config, days, totals, new_alerts, timings, port if serve else None)
        for line in calibration:
            _say(line)
        with timings.phase("dashboard"):
            pages = export_dashboards(directory, segments)
        _say(f"Dashboard written to {', '.join(str(p) for p in pages)} ({timings.phases['dashboard']:.1f} s)")
        own_storage = where.startswith("Azurite")
        if serve:
            serve_until_interrupted(port, segments, own_storage)
        elif own_storage:
            _say(export_lines(False)[0])
    return 0
