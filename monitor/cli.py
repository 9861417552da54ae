"""`python -m monitor ...`: the command line (CONTRACTS.md section 4).

Storage comes from the same settings the function app reads (MONITOR_STORAGE, MDC_STORAGE); when
neither is set, the local Azurite development account. Exit codes: 0 ok, 2 the caller's mistake,
1 a system failure (storage unreachable included), 130 interrupted.

Each subcommand is one `add_<name>` block in :func:`build_parser` and one `cmd_<name>` function
registered in :data:`COMMANDS`; every option's help says its format and gives an example.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor import quality_cli
from monitor.errors import MonitorError, UserError
from monitor.keys import parse_time

STORAGE_HELP = """\
storage (every command reads the same app settings as the function app):
  MONITOR_STORAGE   the monitor's own account (tables, queues): a connection string, or an
                    identity-based group MONITOR_STORAGE__tableServiceUri / __queueServiceUri /
                    __blobServiceUri / __credential / __clientId
  MDC_STORAGE       the watched account where Model Data Collector writes (same forms)
  When neither is set, the local Azurite development account (127.0.0.1:10000-10002).
  `make demo` prints the export lines for its own Azurite."""
TIME_FORMAT = "ISO 8601 UTC, e.g. 2026-11-20T00:00:00Z (a time without offset is UTC)"
MONITOR_HELP = "monitor name: 3-63 lowercase letters, digits and '-', e.g. contoso-support"
SEGMENT_HELP = "`all`, `deployment=NAME` or `model_version=VERSION`, e.g. deployment=green (default: every segment)"
METRIC_HELP = "one metric of the monitor, e.g. groundedness (default: every metric)"


def _time(value: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r} (e.g. 2026-11-20T00:00:00Z)") from None


def _command(sub: Any, name: str, summary: str, example: str) -> argparse.ArgumentParser:
    """A subcommand whose help ends with an example invocation."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=summary, epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser


def _add_range(parser: argparse.ArgumentParser, *, metric: bool = True, segment: bool = True) -> None:
    parser.add_argument("--monitor", required=True, metavar="NAME", help=MONITOR_HELP)
    parser.add_argument("--start", type=_time, metavar="ISO", help=f"from this time, inclusive; {TIME_FORMAT}")
    parser.add_argument("--end", type=_time, metavar="ISO", help=f"up to this time, exclusive; {TIME_FORMAT}")
    if metric:
        parser.add_argument("--metric", metavar="M", help=METRIC_HELP)
    if segment:
        parser.add_argument("--segment", metavar="S", help=SEGMENT_HELP)
    parser.add_argument("--json", action="store_true", help="print the HTTP route's JSON instead of a table")


def _add_result_commands(sub: Any) -> None:
    """`metrics`, `alerts`, `records`: what the matching HTTP routes return."""
    metrics = _command(sub, "metrics", "aggregated windows: pass rate, counts and breaches per metric and segment "
                       "(GET /api/monitors/NAME/metrics)",
                       "python -m monitor metrics --monitor contoso-support --metric groundedness "
                       "--segment deployment=green")
    _add_range(metrics)
    alerts = _command(sub, "alerts", "alerts raised for windows in a range (GET /api/monitors/NAME/alerts)",
                      "python -m monitor alerts --monitor contoso-support --start 2026-11-20T00:00:00Z")
    _add_range(alerts)
    records = _command(sub, "records", "scored records, lowest score first, newest first among ties "
                       "(GET /api/monitors/NAME/records)",
                       "python -m monitor records --monitor contoso-support --metric groundedness --failing")
    _add_range(records)
    records.add_argument("--max-score", type=float, metavar="X",
                         help="only records with a score at or below X (of --metric, or of any metric), e.g. 2.5")
    records.add_argument("--failing", action="store_true",
                         help="only records with a score below its metric's acceptable score")
    records.add_argument("--limit", type=int, default=20, metavar="N", help="records per page, 1-200 (default 20)")
    records.add_argument("--continuation", metavar="TOKEN",
                         help="the `next` token printed by the previous page, to read the next one")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m monitor", description="Generative-AI quality monitor: the function app's paths and "
        "its results from the shell.", epilog=STORAGE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = _command(sub, "demo", "the whole monitor on the shipped sample data, locally (Azurite of its own "
                    "unless MONITOR_STORAGE/MDC_STORAGE are set)", "python -m monitor demo --port 7072")
    demo.add_argument("--no-serve", action="store_true", help="exit after processing instead of serving")
    demo.add_argument("--port", type=int, default=7071, metavar="PORT",
                      help="port of the dashboard on 127.0.0.1, e.g. 7072 (default 7071); checked before processing")

    monitors = _command(sub, "monitors", "create, read, update and delete monitor configurations",
                        "python -m monitor monitors put samples/monitor.json")
    msub = monitors.add_subparsers(dest="action", required=True, metavar="ACTION")
    _command(msub, "put", "create or replace a monitor from a JSON file (fields: README, Configuration)",
             "python -m monitor monitors put samples/monitor.json").add_argument(
        "file", type=Path, metavar="FILE", help="a monitor configuration as JSON, e.g. samples/monitor.json")
    _command(msub, "list", "list every monitor (JSON)", "python -m monitor monitors list")
    _command(msub, "get", "show one monitor (JSON)", "python -m monitor monitors get contoso-support").add_argument(
        "name", metavar="NAME", help=MONITOR_HELP)
    _command(msub, "delete", "delete one monitor's configuration (its results stay)",
             "python -m monitor monitors delete contoso-support").add_argument(
        "name", metavar="NAME", help=MONITOR_HELP)

    backfill = _command(sub, "backfill", "run a time range of blobs through the blob-trigger path (idempotent)",
                        "python -m monitor backfill --monitor contoso-support --since 2026-11-18T00:00:00Z "
                        "--until 2026-11-21T00:00:00Z")
    backfill.add_argument("--monitor", required=True, metavar="NAME", help=MONITOR_HELP)
    backfill.add_argument("--since", required=True, type=_time, metavar="ISO",
                          help=f"first hour folder to scan, inclusive; {TIME_FORMAT}")
    backfill.add_argument("--until", required=True, type=_time, metavar="ISO",
                          help=f"end of the range, exclusive; {TIME_FORMAT}")
    backfill.add_argument("--reevaluate", action="store_true",
                          help="run done blobs again to re-judge scores skipped (budget) or failed")
    backfill.add_argument("--no-drain", action="store_true",
                          help="leave queued batches to the deployed queue trigger instead of judging them here")

    aggregate = _command(sub, "aggregate", "run the timer path (windows and alerts) as if it fired at --at",
                         "python -m monitor aggregate --monitor contoso-support --at 2026-11-21T06:00:00Z")
    aggregate.add_argument("--monitor", required=True, metavar="NAME", help=MONITOR_HELP)
    aggregate.add_argument("--at", type=_time, default=None, metavar="ISO",
                           help=f"the moment the timer fires (default now); {TIME_FORMAT}")

    serve = _command(sub, "serve", "serve the HTTP API and dashboard locally",
                     "python -m monitor serve --port 7072")
    serve.add_argument("--host", default="127.0.0.1", metavar="HOST",
                       help="address to listen on, e.g. 0.0.0.0 for every interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7071, metavar="PORT", help="port, e.g. 7072 (default 7071)")

    quarantine = _command(sub, "quarantine", "the bad input lines of a monitor, with their reasons (JSON)",
                          "python -m monitor quarantine --monitor contoso-support --reason invalid_json")
    quarantine.add_argument("--monitor", required=True, metavar="NAME", help=MONITOR_HELP)
    quarantine.add_argument("--reason", default=None, metavar="REASON",
                            help="only this reason, e.g. invalid_json (status lists the reasons seen)")
    quarantine.add_argument("--limit", type=int, default=100, metavar="N", help="lines to show (default 100)")

    _add_result_commands(sub)
    _add_ingest_commands(sub)

    status = _command(sub, "status", "what a monitor has seen so far: blobs, lines read, records, unmatched "
                      "halves, quarantine, scores", "python -m monitor status --monitor contoso-support --json")
    status.add_argument("--monitor", required=True, metavar="NAME", help=MONITOR_HELP)
    status.add_argument("--json", action="store_true", help="print one JSON object (the HTTP status route's)")
    _add_smoke_parser(sub)
    quality_cli.add_parsers(sub, _time)  # golden, calibrate, calibration, drift (monitor/quality_cli.py)
    return parser


def _add_ingest_commands(sub: Any) -> None:
    """`event` and `tail`: the two ingestion triggers, run once from the shell (docs/ingestion.md)."""
    event = _command(sub, "event", "run the blob-trigger path for one blob, as one Event Grid BlobCreated delivery",
                     "python -m monitor event --container azureml --blob "
                     "modelDataCollector/contoso-chat/blue/model_inputs/2026/11/20/14/0000.jsonl")
    event.add_argument("--container", required=True, metavar="C", help="the watched container, e.g. azureml")
    event.add_argument("--blob", required=True, metavar="NAME",
                       help="the blob's name inside the container, e.g. "
                            "modelDataCollector/contoso-chat/blue/model_inputs/2026/11/20/14/0000.jsonl")
    event.add_argument("--no-drain", action="store_true",
                       help="leave queued batches to the deployed queue trigger instead of judging them here")
    tail = _command(sub, "tail", "run the tail timer once: read the new bytes of open blobs, sweep the current "
                    "and previous rolling periods for new blobs, close what is due",
                    "python -m monitor tail --at 2026-11-20T15:05:00Z")
    tail.add_argument("--at", type=_time, default=None, metavar="ISO",
                      help=f"as if the timer fired at this time (default now); {TIME_FORMAT}")
    tail.add_argument("--monitor", default=None, metavar="NAME",
                      help="only this monitor, e.g. contoso-support (default: every monitor)")
    tail.add_argument("--no-drain", action="store_true",
                      help="leave queued batches to the deployed queue trigger instead of judging them here")


def _add_smoke_parser(sub: Any) -> None:
    smoke = _command(
        sub, "smoke", "prove a deployed app end to end: a throw-away monitor, a small MDC hour written as append "
        "blobs into the watched container (MDC_STORAGE, MDC_CONTAINER; your Entra identity for a service URI), "
        "ingestion, judging, aggregation, the windows; then it deletes what it created. A failure names the stage "
        "that did not happen and where to look (docs/deploy.md, 'Smoke test')",
        "python -m monitor smoke --api https://func-abc.azurewebsites.net --key $KEY")
    smoke.add_argument("--api", required=True, metavar="URL",
                       help="base URL of the app, e.g. https://func-abc.azurewebsites.net")
    smoke.add_argument("--key", default=None, metavar="KEY",
                       help="function key (default: the MONITOR_API_KEY environment variable)")
    smoke.add_argument("--container", default=None, metavar="NAME",
                       help="watched container, e.g. azureml-blobstore-0123 (default: the MDC_CONTAINER setting)")
    smoke.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                       help="how long to wait for ingestion and judging (default 600)")
    smoke.add_argument("--append-interval", type=float, default=20.0, metavar="SECONDS",
                       help="pause after creating the blobs and between the appends (default 20): the creation "
                            "event finds an almost empty file, so a pass proves that appended lines are read")
    smoke.add_argument("--poll", type=float, default=5.0, metavar="SECONDS",
                       help="seconds between status reads (default 5)")
    smoke.add_argument("--keep", action="store_true", help="keep the monitor and blobs (to investigate a failure)")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _warn(lines: Sequence[str]) -> None:
    for line in lines:
        print(f"warning: {line}", file=sys.stderr)


def cmd_monitors(args: argparse.Namespace) -> int:
    from monitor.monitors import MonitorStore, overlap_warnings

    store = MonitorStore()
    if args.action == "put":
        try:
            data = json.loads(args.file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"cannot read {args.file}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise UserError(f"{args.file}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
        config, created = store.put(data)
        print(f"{'created' if created else 'replaced'} monitor {config.name}", file=sys.stderr)
        _warn(overlap_warnings(config, store.list()))
        _print_json(config.model_dump(mode="json"))
    elif args.action == "list":
        _print_json([c.model_dump(mode="json") for c in store.list()])
    elif args.action == "get":
        _print_json(store.get(args.name).model_dump(mode="json"))
    else:
        store.delete(args.name)
        print(f"deleted monitor {args.name}", file=sys.stderr)
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from monitor.backfill import backfill
    from monitor.progress import Progress
    from monitor.services import get_services

    bar = Progress("backfill blobs")

    def progress(index: int, total: int, report: Any) -> None:
        bar.total = total
        bar.advance(1, note="skipped" if report.skipped else f"{report.counts.records} records")

    with bar:
        result = backfill(get_services(), args.monitor, args.since, args.until, reevaluate=args.reevaluate,
                          drain=not args.no_drain, progress=progress)
    _print_json({"blobs": result.blobs, "processed": result.processed, "skipped": result.skipped,
                 "records": result.records, "quarantined": result.quarantined,
                 "batches_rejudged": result.rejudged, "batches_judged_from_queue": result.drained.processed,
                 "poisoned": result.drained.poisoned})
    return 0


def cmd_event(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from monitor.services import get_services

    services = get_services()
    reports = services.ingest_client(services.mdc_blobs.get_blob_client(args.container, args.blob))
    drained = None if args.no_drain else services.drain_queue()
    _print_json({"blob": f"{args.container}/{args.blob}",
                 "monitors": [{**asdict(r), "counts": r.counts.as_properties()} for r in reports],
                 "batches_judged_from_queue": drained.processed if drained else 0})
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from monitor.services import get_services

    services = get_services()
    reports = services.tail(at=args.at, monitor=args.monitor)
    drained = None if args.no_drain else services.drain_queue()
    _print_json({"monitors": [asdict(r) for r in reports],
                 "batches_judged_from_queue": drained.processed if drained else 0})
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    from dataclasses import asdict, is_dataclass

    from monitor.aggregate import aggregate_command

    report = aggregate_command(args.monitor, args.at)
    _print_json(asdict(report) if is_dataclass(report) and not isinstance(report, type) else report)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from monitor.api.serve import serve
    from monitor.errors import StorageError
    from monitor.storage.reach import check_reachable

    try:
        check_reachable(("table",))
    except StorageError as exc:   # serve anyway: each request answers 503 until the storage is back
        _warn([exc.message])
    serve(args.host, args.port)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from monitor.results import status as monitor_status

    status = monitor_status(args.monitor)
    if args.json:
        _print_json(status)
        return 0
    judge = status["judge"]
    print(f"monitor {status['monitor']}  judge {judge['provider']}:{judge['model']}"
          + ("  (approximate)" if judge["approximate"] else ""))
    detail = status.get("unmatched_detail") or {}
    lines = [
        ("blobs processed", status["blobs_processed"]), ("blobs in progress", status["blobs_in_progress"]),
        ("lines read", status.get("lines", 0)), ("records", status["records"]),
        ("unmatched halves", f"{status['unmatched']} ({detail.get('expired', 0)} expired, "
                             f"{detail.get('waiting', 0)} waiting for their partner)"),
        ("quarantined lines", status["quarantined"]), ("poison batches", status["poison_batches"]),
        ("last aggregation", status["last_aggregation"] or "never"),
        ("open blobs", status.get("open_blobs", 0)), ("bytes read", status.get("bytes_read", 0)),
        ("ingestion lag", f"{status.get('ingestion_lag_seconds', 0)} s"),
        ("unsampled", status.get("unsampled", 0)), ("duplicate keys", status.get("duplicate_keys", 0)),
        ("blobs replaced", status.get("blobs_replaced", 0)),
    ]
    for label, value in lines:
        print(f"  {label:<18} {value}")
    for reason, count in status["quarantine_reasons"].items():
        print(f"    quarantined {reason:<20} {count}")
    print("  scores             " + ", ".join(f"{k} {v}" for k, v in status["scores"].items()))
    _print_quota(status.get("quota"))
    return 0


def _print_quota(quota: dict[str, Any] | None) -> None:
    """The judge's fleet budget: pool, limits, and one line per instance holding a lease."""
    if not quota:
        return
    limits = quota["limits_per_minute"]
    print(f"  quota pool         {quota['pool']}  ("
          + ", ".join(f"{v:,.0f} {d}/min" for d, v in limits.items()) + f"; slow-down x{quota['slowdown']})")
    print(f"  leases             {quota['instances']} instance(s); "
          + ", ".join(f"{d}: leased {quota['leased_per_minute'][d]:,.0f}, used {quota['used_per_minute'][d]:,.0f}/min"
                      for d in limits))
    for lease in quota["leases"]:
        print(f"    {lease['instance']:<36} " + ", ".join(
            f"{d}: share {lease['share_per_minute'][d]:,.0f}, used {lease['used_per_minute'][d]:,.0f}/min"
            for d in limits))


def cmd_quarantine(args: argparse.Namespace) -> int:
    from monitor.results import quarantine

    _print_json(quarantine(args.monitor, reason=args.reason, limit=args.limit)["entries"])
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    import os

    from monitor.smoke import SmokeOptions, run_smoke

    run_smoke(SmokeOptions(api=args.api, key=args.key or os.environ.get("MONITOR_API_KEY") or None,
                           container=args.container, timeout=args.timeout, poll=args.poll, keep=args.keep,
                           append_interval=args.append_interval))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo

    return run_demo(serve=not args.no_serve, port=args.port)


def cmd_results(args: argparse.Namespace) -> int:
    """`metrics`, `alerts`, `records`: the service function of the HTTP route, printed."""
    from monitor import results, textview

    if args.command == "metrics":
        answer = results.metrics(args.monitor, metric=args.metric, segment=args.segment, start=args.start,
                                 end=args.end)
        view = textview.windows_table
    elif args.command == "alerts":
        answer = results.alerts(args.monitor, start=args.start, end=args.end, metric=args.metric,
                                segment=args.segment)
        view = textview.alerts_table
    else:
        query = results.RecordQuery(metric=args.metric, max_score=args.max_score, start=args.start, end=args.end,
                                    segment=args.segment, failing=args.failing, limit=args.limit,
                                    continuation=args.continuation)
        answer = results.records(args.monitor, query)
        view = textview.records_table
    if args.json:
        _print_json(answer)
        return 0
    print(view(answer))
    if answer.get("next"):
        print(f"more: add --continuation {answer['next']}", file=sys.stderr)
    return 0


# The storage services each command reads before it starts (checked first: one line when unreachable).
NEEDS_STORAGE: dict[str, tuple[str, ...]] = {
    "monitors": ("table",), "status": ("table",), "quarantine": ("table",), "aggregate": ("table",),
    "metrics": ("table",), "alerts": ("table",), "records": ("table",), "backfill": ("table", "blob"),
    **{name: ("table",) for name in quality_cli.COMMANDS},
}

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "monitors": cmd_monitors, "backfill": cmd_backfill, "aggregate": cmd_aggregate, "serve": cmd_serve,
    "status": cmd_status, "demo": cmd_demo, "quarantine": cmd_quarantine, "smoke": cmd_smoke,
    "metrics": cmd_results, "alerts": cmd_results, "records": cmd_results,
    "event": cmd_event, "tail": cmd_tail, **quality_cli.COMMANDS,
}


def _print_error(exc: MonitorError) -> None:
    """The message once; field details only when the message does not already carry them."""
    print(f"error: {exc.message}", file=sys.stderr)
    for item in exc.details or []:
        if isinstance(item, dict) and "field" in item and str(item.get("message")) not in exc.message:
            line = f"line {item['line']}: " if item.get("line") else ""  # golden sets (docs/calibration.md)
            print(f"  {line}{item['field']}: {item['message']}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    from monitor.storage.reach import check_reachable, describe_storage_failure

    try:
        if args.command in NEEDS_STORAGE:
            check_reachable(NEEDS_STORAGE[args.command])
        return COMMANDS[args.command](args)
    except UserError as exc:
        _print_error(exc)
        return 2
    except MonitorError as exc:
        _print_error(exc)
        return 1
    except (ServiceRequestError, ClientAuthenticationError) as exc:
        print(f"error: {describe_storage_failure(exc)}", file=sys.stderr)
        return 1
    except HttpResponseError as exc:
        if exc.status_code in (401, 403):
            print(f"error: {describe_storage_failure(exc)}", file=sys.stderr)
            return 1
        raise


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        if not args.verbose:
            logging.getLogger("azure").setLevel(logging.ERROR)
        code = _run(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`| head`): that is not an error; say nothing.
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
