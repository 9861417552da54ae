"""Commands of drift and judge calibration (docs/drift.md, docs/calibration.md), added to
`python -m monitor` by monitor/cli.py: `golden put|get`, `calibrate`, `calibration`, `drift`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.errors import UserError


def add_parsers(sub: Any, _time: Callable[[str], datetime]) -> None:
    """The subcommands, in the style of monitor/cli.py (help with formats, an example each);
    `_time` parses ISO 8601 arguments."""
    from monitor import cli

    golden = cli._command(sub, "golden", "the golden set of human scores that calibrates the judge",
                          "python -m monitor golden put --monitor contoso-support samples/golden.jsonl")
    gsub = golden.add_subparsers(dest="action", required=True, metavar="ACTION")
    put = cli._command(gsub, "put", "validate and store a JSONL golden set (replaces the previous one)",
                       "python -m monitor golden put --monitor contoso-support samples/golden.jsonl")
    put.add_argument("--monitor", required=True, metavar="NAME", help=cli.MONITOR_HELP)
    put.add_argument("file", type=Path, metavar="FILE",
                     help="JSONL: the monitor's columns plus human: {metric: score 1-5} per line, e.g. "
                          "samples/golden.jsonl")
    get = cli._command(gsub, "get", "summary of the stored golden set (GET /api/monitors/NAME/golden)",
                       "python -m monitor golden get --monitor contoso-support")
    get.add_argument("--monitor", required=True, metavar="NAME", help=cli.MONITOR_HELP)

    calibrate = cli._command(sub, "calibrate", "re-judge the golden set when due (or --force) and record the "
                             "judge's agreement", "python -m monitor calibrate --monitor contoso-support --force")
    calibrate.add_argument("--monitor", required=True, metavar="NAME", help=cli.MONITOR_HELP)
    calibrate.add_argument("--force", action="store_true", help="re-judge even when this period already has a run")
    calibrate.add_argument("--at", type=_time, default=None, metavar="ISO",
                           help=f"as if run at this time (default now); {cli.TIME_FORMAT}")

    calibration = cli._command(sub, "calibration", "the judge's agreement history with the golden set "
                               "(GET /api/monitors/NAME/calibration)",
                               "python -m monitor calibration --monitor contoso-support")
    cli._add_range(calibration, metric=False, segment=False)

    drift = cli._command(sub, "drift", "score and traffic drift per window against the baseline "
                         "(GET /api/monitors/NAME/drift); --metric also takes traffic.prompt_tokens, "
                         "traffic.completion_tokens, traffic.answers",
                         "python -m monitor drift --monitor contoso-support --metric coherence --segment all")
    cli._add_range(drift)


def _print_json(data: Any) -> None:
    from monitor.cli import _print_json as print_json

    print_json(data)


def cmd_golden(args: argparse.Namespace) -> int:
    from monitor.calibration.query import golden_summary, upload_golden

    if args.action == "get":
        _print_json(golden_summary(args.monitor))
        return 0
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {args.file}: {exc.strerror}") from None
    try:
        summary = upload_golden(args.monitor, data)
    except UserError as exc:
        exc.message = f"{args.file}: {exc.message}"
        raise
    print(f"stored golden set of {summary['records']} records for monitor {args.monitor}", file=sys.stderr)
    _print_json(summary)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from monitor.calibration.runs import calibrate

    result = calibrate(args.monitor, force=args.force, at=args.at)
    if not result.ran:
        print(f"not due: the latest run ({(result.run or {}).get('run_id')}) used the same judge and golden set "
              "in this period; --force re-judges", file=sys.stderr)
    _print_json(result.to_dict())
    return 0


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def cmd_calibration(args: argparse.Namespace) -> int:
    from monitor.calibration.query import calibration_report

    report = calibration_report(args.monitor, start=args.start, end=args.end)
    if args.json:
        _print_json(report)
        return 0
    golden = report["golden"]
    print(f"monitor {args.monitor}  golden set: " + (f"{golden['records']} records" if golden else "none"))
    spend = report["spend"]
    print(f"  calibration tokens today {spend['calibration_tokens']}; all judge tokens today "
          f"{_fmt(spend['judge_tokens_total'])}")
    print(f"  {'run':<22} {'judge':<28} {'metric':<14} {'n':>4} {'spearman':>9} {'kendall':>8} {'exact':>6} "
          f"{'within1':>8} {'bias':>7} {'tokens':>7}")
    for run in report["runs"]:
        for metric, a in run["metrics"].items():
            print(f"  {run['run_id']:<22} {run['judge']:<28} {metric:<14} {a['n']:>4} {_fmt(a['spearman']):>9} "
                  f"{_fmt(a['kendall_tau_b']):>8} {_fmt(a['exact_accuracy'], 2):>6} "
                  f"{_fmt(a['within_one_accuracy'], 2):>8} {_fmt(a['mean_bias'], 2):>7} {run['tokens']:>7}")
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from monitor.drift.query import drift_report

    report = drift_report(args.monitor, series=args.metric, segment=args.segment, start=args.start, end=args.end)
    if args.json:
        _print_json(report)
        return 0
    print(f"monitor {args.monitor}  baseline {report['baseline']}  threshold JS >= {report['threshold']} "
          f"with {report['min_samples']} records on both sides")
    print(f"  {'window':<22} {'series':<26} {'segment':<22} {'n':>5} {'base n':>7} {'JS':>6} {'PSI':>7} "
          f"{'shift':>7} {'+/-':>6} drifted")
    for p in report["points"]:
        print(f"  {p['window_start']:<22} {p['series']:<26} {p['segment']:<22} {p['n']:>5} {p['baseline_n']:>7} "
              f"{_fmt(p['js_distance']):>6} {_fmt(p['psi']):>7} {_fmt(p['mean_shift']):>7} "
              f"{_fmt(p['mean_shift_stderr']):>6} {'yes' if p['drifted'] else ('-' if not p['evaluated'] else 'no')}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "golden": cmd_golden, "calibrate": cmd_calibrate, "calibration": cmd_calibration, "drift": cmd_drift,
}
