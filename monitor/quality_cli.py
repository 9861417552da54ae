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
    """The subcommands; `_time` parses ISO 8601 arguments (monitor/cli.py's parser type)."""
    golden = sub.add_parser("golden", help="the golden set of human scores that calibrates the judge")
    gsub = golden.add_subparsers(dest="action", required=True)
    put = gsub.add_parser("put", help="validate and store a JSONL golden set (replaces the previous one)")
    put.add_argument("--monitor", required=True)
    put.add_argument("file", type=Path)
    gsub.add_parser("get", help="summary of the stored golden set").add_argument("--monitor", required=True)

    calibrate = sub.add_parser("calibrate", help="re-judge the golden set when due and record the agreement")
    calibrate.add_argument("--monitor", required=True)
    calibrate.add_argument("--force", action="store_true", help="re-judge even when a run of this period exists")
    calibrate.add_argument("--at", type=_time, default=None, help="as if run at this time (default: now)")

    calibration = sub.add_parser("calibration", help="the judge's agreement history (GET .../calibration)")
    calibration.add_argument("--monitor", required=True)
    calibration.add_argument("--start", type=_time, default=None)
    calibration.add_argument("--end", type=_time, default=None)
    calibration.add_argument("--json", action="store_true")

    drift = sub.add_parser("drift", help="score and traffic drift per window (GET .../drift)")
    drift.add_argument("--monitor", required=True)
    drift.add_argument("--start", type=_time, default=None)
    drift.add_argument("--end", type=_time, default=None)
    drift.add_argument("--metric", default=None, help="a metric or traffic.prompt_tokens / "
                                                      "traffic.completion_tokens / traffic.answers")
    drift.add_argument("--segment", default=None)
    drift.add_argument("--json", action="store_true")


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
