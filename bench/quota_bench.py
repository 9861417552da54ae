"""Scenario: quota saturation. The server admits N requests per minute (enforced over a sliding
window of 10 s, as Azure OpenAI enforces RPM over short intervals: N/6 per 10 s) and answers the
excess with 429 + retry-after-ms / Retry-After. Our engine judges enough records for a run of
about a minute, with its client-side limiter (`judge.requests_per_minute = N`) set and unset.

Achieved rate = successful replies / time from the first request to the last successful reply, as a
fraction of N. A fresh window admits a burst of N/6 at once, which lifts that figure for short runs;
the "sustained" fraction leaves that free first window out: (successes - N/6) / time, which an
ideal client approaches from below and cannot exceed. 429 share = 429 replies / all requests.

    .venv-bench/bin/python -m bench.quota_bench
"""

from __future__ import annotations

import os
from typing import Any

from bench.common import OUT, QUICK, log, medians, rel, run_child, write_result
from bench.data import write_records
from bench.server import ServerProcess

WINDOW = 10.0
LATENCY = 0.3


def analyse(stats: dict[str, Any], rpm: float) -> dict[str, Any]:
    ok = sorted(stats["ok_times"])
    start = stats["first_arrival"]
    span = ok[-1] - start if ok else 0.0
    per_second = rpm / 60
    burst = per_second * WINDOW
    return {
        "requests": stats["requests"], "ok": len(ok), "http_429": stats["throttled"],
        "share_429": round(stats["throttled"] / max(1, stats["requests"]), 4),
        "span_s": round(span, 2),
        "achieved_rpm": round(len(ok) / span * 60, 1) if span > 0 else None,
        "fraction_of_quota": round(len(ok) / span / per_second, 3) if span > 0 else None,
        "sustained_fraction_of_quota": round((len(ok) - burst) / span / per_second, 3) if span > 0 else None,
    }


def main() -> None:
    rpm = float(os.environ.get("BENCH_QUOTA_RPM", "600" if QUICK else "1200"))
    records = int(os.environ.get("BENCH_QUOTA_RECORDS", "40" if QUICK else "160"))
    runs = 1 if QUICK else int(os.environ.get("BENCH_QUOTA_RUNS", "3"))
    data = OUT / "data" / f"records-{records}-quota.jsonl"
    write_records(data, records)
    cells = []
    with ServerProcess(latency=LATENCY, rpm=rpm, quota_window=WINDOW) as server:
        for label, limiter in (("unset (AIMD + retry-after only)", None),
                               (f"judge.requests_per_minute = {rpm:.0f} (the quota)", int(rpm)),
                               (f"judge.requests_per_minute = {rpm * 0.95:.0f} (95% of the quota)", int(rpm * 0.95))):
            results = []
            for i in range(runs):
                log(f"quota: {label}, {records} records x 5 metrics, run {i + 1}/{runs}")
                server.reset()
                args = ["--side", "ours", "--data", rel(data), "--records", str(records),
                        "--base-url", server.base_url, "--explain", "off", "--max-concurrency", "16"]
                if limiter:
                    args += ["--rpm", str(limiter)]
                client = run_child("bench.judge_client", args, timeout=1200)
                result = {**analyse(server.stats(), rpm), "wall_s": round(client["wall_s"], 2),
                          "calls": client["calls"], "scored": client["outcomes"].get("ok", 0),
                          "errors": client["outcomes"].get("error", 0),
                          "cpu_ms_per_call": round(client["cpu_s"] * 1000 / client["calls"], 3)}
                log(f"  {result['fraction_of_quota']} of quota overall, {result['sustained_fraction_of_quota']} "
                    f"sustained, {result['http_429']} x 429 ({result['share_429']:.1%}), {result['errors']} errors")
                results.append(result)
            cells.append({"label": label, "limiter_rpm": limiter, "runs": results, "median": medians(results)})
    write_result("quota", {
        "description": "Quota saturation of the judge engine against an RPM quota enforced with 429",
        "quota_rpm": rpm, "quota_window_s": WINDOW, "latency_ms": LATENCY * 1000, "records": records,
        "metrics": 5, "max_concurrency": 16, "explain": "off", "cells": cells,
    })


if __name__ == "__main__":
    main()
