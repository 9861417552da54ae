"""`python -m monitor ...`: the command line (CONTRACTS.md section 4).

Storage comes from the same settings the function app reads (MONITOR_STORAGE, MDC_STORAGE); when
neither is set, the local Azurite development account. Exit codes: 0 ok, 2 the caller's mistake,
1 a system failure.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.errors import MonitorError, UserError
from monitor.keys import parse_time


def _time(value: str) -> datetime:
    try:
        return parse_time(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m monitor", description="Generative-AI quality monitor")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the whole monitor on the shipped sample data, locally")
    demo.add_argument("--no-serve", action="store_true", help="exit after processing instead of serving")
    demo.add_argument("--port", type=int, default=7071)

    monitors = sub.add_parser("monitors", help="create, read, update and delete monitor configurations")
    msub = monitors.add_subparsers(dest="action", required=True)
    msub.add_parser("put", help="create or replace from a JSON file").add_argument("file", type=Path)
    msub.add_parser("list", help="list every monitor")
    msub.add_parser("get", help="show one monitor").add_argument("name")
    msub.add_parser("delete", help="delete one monitor").add_argument("name")

    backfill = sub.add_parser("backfill", help="run a time range of blobs through the blob-trigger path")
    backfill.add_argument("--monitor", required=True)
    backfill.add_argument("--since", required=True, type=_time)
    backfill.add_argument("--until", required=True, type=_time)
    backfill.add_argument("--reevaluate", action="store_true",
                          help="run done blobs again to re-judge scores skipped (budget) or failed")
    backfill.add_argument("--no-drain", action="store_true",
                          help="leave queued batches to the deployed queue trigger instead of judging them here")

    aggregate = sub.add_parser("aggregate", help="run the timer path as if it fired at --at")
    aggregate.add_argument("--monitor", required=True)
    aggregate.add_argument("--at", type=_time, default=None)

    serve = sub.add_parser("serve", help="serve the HTTP API and dashboard locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7071)

    quarantine = sub.add_parser("quarantine", help="the bad input lines of a monitor, with their reasons")
    quarantine.add_argument("--monitor", required=True)
    quarantine.add_argument("--reason", default=None, help="only this reason, e.g. invalid_json")
    quarantine.add_argument("--limit", type=int, default=100)

    status = sub.add_parser("status", help="what a monitor has seen so far")
    status.add_argument("--monitor", required=True)
    status.add_argument("--json", action="store_true")
    return parser


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def cmd_monitors(args: argparse.Namespace) -> int:
    from monitor.monitors import MonitorStore

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
                 "batches_judged_from_queue": result.drained.processed, "poisoned": result.drained.poisoned})
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    from dataclasses import asdict, is_dataclass

    from monitor.aggregate import aggregate_command

    report = aggregate_command(args.monitor, args.at)
    _print_json(asdict(report) if is_dataclass(report) and not isinstance(report, type) else report)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from monitor.api.serve import serve

    serve(args.host, args.port)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from monitor.status import monitor_status

    status = monitor_status(args.monitor)
    if args.json:
        _print_json(status)
        return 0
    print(f"monitor {status['monitor']}  judge {status['judge']['provider']}:{status['judge']['model']}"
          + ("  (approximate)" if status["judge"]["approximate"] else ""))
    for key in ("blobs_processed", "blobs_in_progress", "records", "unmatched", "quarantined", "poison_batches",
                "last_aggregation"):
        print(f"  {key:<18} {status[key]}")
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


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo

    return run_demo(serve=not args.no_serve, port=args.port)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "monitors": cmd_monitors, "backfill": cmd_backfill, "aggregate": cmd_aggregate, "serve": cmd_serve,
    "status": cmd_status, "demo": cmd_demo, "quarantine": cmd_quarantine,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not args.verbose:
        logging.getLogger("azure").setLevel(logging.ERROR)
    try:
        return COMMANDS[args.command](args)
    except UserError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for item in exc.details or []:
            if isinstance(item, dict) and "field" in item:
                print(f"  {item['field']}: {item['message']}", file=sys.stderr)
        return 2
    except MonitorError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
