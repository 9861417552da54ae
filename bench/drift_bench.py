"""Scenario: drift. (1) Computing drift for one year of hour windows x 5 metrics x 3 segments
(131,400 window rows) in memory, the way monitor/drift/compute.py does it for a full recompute,
with the trailing-24 and a fixed baseline. (2) On Azurite with that year of window rows stored:
what one timer run's drift step costs (time and storage requests) at the end of the year, against
the same step with one week stored, to show it stays flat as history grows. (3) The sampling noise
of the Jensen-Shannon distance (same distribution on both sides) that docs/drift.md uses to justify
the default threshold.

    .venv-bench/bin/python -m bench.drift_bench              # orchestrates (fresh process per part)
    .venv-bench/bin/python -m bench.drift_bench compute --hours 8760 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import QUICK, log, medians, peak_rss_mib, run_child, write_result

MONITOR = "bench-drift"
START = datetime(2025, 1, 1, tzinfo=UTC)
METRICS = ("coherence", "fluency", "groundedness", "relevance", "similarity")
SEGMENTS = ("all", "deployment=blue", "model_version=3")
HOUR = timedelta(hours=1)
SHAPE = (0.04, 0.08, 0.18, 0.40, 0.30)


def histogram(rng: random.Random, n: int, shape: tuple[float, ...] = SHAPE) -> list[int]:
    counts = [0] * len(shape)
    for _ in range(n):
        r, acc = rng.random(), 0.0
        for i, p in enumerate(shape):
            acc += p
            if r < acc:
                counts[i] += 1
                break
        else:
            counts[-1] += 1
    return counts


def year_points(hours: int) -> dict[tuple[str, str], list[Any]]:
    """Window points of `hours` hour windows x metrics x segments (about 50 scores an hour)."""
    from monitor.drift.series import WindowPoint

    rng = random.Random(7)
    templates = [histogram(rng, 50) for _ in range(200)]
    out: dict[tuple[str, str], list[WindowPoint]] = {}
    for m, metric in enumerate(METRICS):
        for s, segment in enumerate(SEGMENTS):
            out[(metric, segment)] = [
                WindowPoint(metric, segment, START + h * HOUR, START + (h + 1) * HOUR,
                            tuple(templates[(h * 7 + m * 13 + s) % 200]))
                for h in range(hours)]
    return out


def child_compute(hours: int, repeat: int) -> dict[str, Any]:
    from monitor.drift.compute import Baseline, Rule, drift_points

    series = year_points(hours)
    targets = [START + h * HOUR for h in range(hours)]
    rule = Rule(0.2, 100)
    baselines = {"trailing 24 windows": Baseline(HOUR, windows=24),
                 "fixed baseline (first 30 days)": Baseline(HOUR, start=START, end=START + 30 * 24 * HOUR)}
    results = []
    for label, baseline in baselines.items():
        runs = []
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            computed = sum(len(drift_points(points, targets, baseline, rule)) for points in series.values())
            runs.append({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                         "points": computed})
        m = medians(runs)
        results.append({"baseline": label, "runs": runs, "median": m,
                        "us_per_point": m["wall_s"] / max(1, m["points"]) * 1e6})
    return {"hours": hours, "series": len(series), "window_rows": hours * len(series), "cells": results,
            "peak_rss_mib": peak_rss_mib()}


def window_row(metric: str, segment: str, start: datetime, counts: list[int]) -> dict[str, Any]:
    from monitor.aggregate.rollup import histogram_json, window_partition, window_row_key
    from monitor.keys import iso

    n = sum(counts)
    return {"PartitionKey": window_partition(MONITOR, metric), "RowKey": window_row_key(iso(start), segment),
            "monitor": MONITOR, "metric": metric, "segment": segment, "window": "hour",
            "window_start": iso(start), "window_end": iso(start + HOUR), "scored": n,
            "average_score": sum((i + 1) * c for i, c in enumerate(counts)) / n, "histogram": histogram_json(counts)}


def load_rows(hours: int) -> float:
    from bench.aggregate_bench import parallel_write
    from monitor.monitors import MonitorStore
    from monitor.storage.tables import Tables

    MonitorStore().put({"name": MONITOR, "source": {"prefix": "modelDataCollector/"}, "window": "hour",
                        "judge": {"provider": "heuristic"}})
    rows = [window_row(p.series, p.segment, p.start, list(p.counts))
            for points in year_points(hours).values() for p in points]
    t0 = time.perf_counter()
    parallel_write(Tables.default()["windows"], rows)
    return time.perf_counter() - t0


def timed_step(at: datetime) -> dict[str, Any]:
    """The drift step of one timer run at `at` (lookback 6 hours: 7 windows planned)."""
    from bench.storage_ops import counting
    from monitor.aggregate.windows import plan_windows
    from monitor.drift.service import compute_drift
    from monitor.monitors import MonitorStore
    from monitor.storage.tables import Tables

    config = MonitorStore().get(MONITOR)
    windows = plan_windows(kind="hour", at=at, lookback=timedelta(hours=6), dirty_hours=[], previous_at=at)
    t0 = time.perf_counter()
    with counting() as ops:
        current, _ = compute_drift(Tables.default(), config, windows, at)
    return {"wall_s": time.perf_counter() - t0, "storage_ops": ops.total, "points": len(current)}


def child_storage(hours: int, repeat: int) -> dict[str, Any]:
    from monitor.azurite import start_azurite

    azurite = start_azurite()
    try:
        os.environ["MONITOR_STORAGE"] = os.environ["MDC_STORAGE"] = azurite.connection_string
        load_s = load_rows(hours)
        cells = []
        for label, at in (("after one week stored", START + 7 * 24 * HOUR + timedelta(minutes=5)),
                          (f"after {hours // 24} days stored", START + hours * HOUR + timedelta(minutes=5))):
            runs = [timed_step(at) for _ in range(repeat)]
            cells.append({"label": label, "runs": runs, "median": medians(runs)})
        return {"hours": hours, "window_rows": hours * len(METRICS) * len(SEGMENTS), "load_s": round(load_s, 1),
                "cells": cells}
    finally:
        azurite.stop()


def child_noise(trials: int) -> dict[str, Any]:
    """Quantiles of the JS distance between a window of n and a baseline of 24 n drawn from the same
    score distribution (what the threshold must stay above to keep false alarms rare)."""
    from monitor.drift.stats import js_distance

    rng = random.Random(11)
    rows = []
    for n in (10, 30, 50, 100, 200, 500):
        values = sorted(js_distance(histogram(rng, n), histogram(rng, 24 * n)) for _ in range(trials))
        rows.append({"n": n, "baseline_n": 24 * n, "p50": values[trials // 2], "p95": values[int(trials * 0.95)],
                     "p99": values[int(trials * 0.99)]})
    big = 1_000_000
    examples = []
    for label, moved in (("a fifth of the scores down one bucket (4 and 5 to 3)", (0.04, 0.08, 0.38, 0.30, 0.20)),
                         ("a quarter of the scores down one bucket", (0.04, 0.08, 0.43, 0.275, 0.175)),
                         ("a tenth of the scores down one bucket", (0.04, 0.08, 0.28, 0.35, 0.25))):
        examples.append({"description": label, "to": moved,
                         "js_distance": js_distance([p * big for p in moved], [p * big for p in SHAPE])})
    return {"trials": trials, "distribution": SHAPE, "rows": rows, "examples": examples}


def orchestrate() -> None:
    hours = 24 * 30 if QUICK else 24 * 365
    repeat = 1 if QUICK else 3
    log(f"drift: compute {hours} hour windows x 15 series, {repeat} runs")
    compute = run_child("bench.drift_bench", ["compute", "--hours", str(hours), "--repeat", str(repeat)], timeout=3600)
    # Loading window rows into Azurite slows down as its tables grow (see bench/NOTES.md): the stored
    # history is a setting, a year by default.
    stored = int(os.environ.get("BENCH_DRIFT_STORED_DAYS", "30" if QUICK else "365")) * 24
    log(f"drift: storage with {stored} hours of window rows")
    storage = run_child("bench.drift_bench", ["storage", "--hours", str(stored), "--repeat", str(repeat)],
                        timeout=7200)
    noise = run_child("bench.drift_bench", ["noise", "--trials", str(400 if QUICK else 2000)], timeout=3600)
    write_result("drift", {"description": "Drift computation over a year of hour windows; the timer step on "
                                          "Azurite; JS sampling noise", "compute": compute, "storage": storage,
                           "noise": noise})


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="child")
    for name in ("compute", "storage"):
        child = sub.add_parser(name)
        child.add_argument("--hours", type=int, default=24 * 365)
        child.add_argument("--repeat", type=int, default=3)
    sub.add_parser("noise").add_argument("--trials", type=int, default=2000)
    args = parser.parse_args()
    if args.child == "compute":
        print(json.dumps(child_compute(args.hours, args.repeat)))
    elif args.child == "storage":
        print(json.dumps(child_storage(args.hours, args.repeat)))
    elif args.child == "noise":
        print(json.dumps(child_noise(args.trials)))
    else:
        orchestrate()


if __name__ == "__main__":
    main()
