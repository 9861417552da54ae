"""Scenario: one quota, a fleet of instances. The server admits N requests per minute (enforced
over a sliding window of 10 s, as Azure OpenAI enforces RPM over short intervals: N/6 per 10 s) and
answers the excess with 429 + retry-after-ms / Retry-After. 1, 2, 4 and 8 client processes (each a
fresh process: one Functions instance) judge the same records split between them, all with
`judge.requests_per_minute = N`, side by side in one run:

* per-instance limiter (before fleet budgets): every process paces itself at N (each its own pool),
  so n processes offer n x N;
* shared budget: every process leases its slice of N from one pool in Table Storage (Azurite).

Achieved fraction = successful replies / time from the first request to the last successful reply /
(N / 60). 429 share = 429 replies / all requests. Lease cost = storage requests spent on leases
(acquire, renewals, hand-back, conflicts) per judge call, counted by the clients.

    .venv-bench/bin/python -m bench.quota_bench
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from bench.common import OUT, QUICK, ROOT, log, medians, rel, write_result
from bench.data import write_records
from bench.server import ServerProcess

WINDOW = 10.0
LATENCY = 0.3
METRICS = 5
MODES = (("per-instance limiter (before)", "instance"), ("shared budget (leases)", "shared"))


def analyse(stats: dict[str, Any], rpm: float) -> dict[str, Any]:
    ok = sorted(stats["ok_times"])
    start = stats["first_arrival"]
    span = ok[-1] - start if ok else 0.0
    per_second = rpm / 60
    return {
        "requests": stats["requests"], "ok": len(ok), "http_429": stats["throttled"],
        "share_429": round(stats["throttled"] / max(1, stats["requests"]), 4),
        "span_s": round(span, 2),
        "achieved_rpm": round(len(ok) / span * 60, 1) if span > 0 else None,
        "fraction_of_quota": round(len(ok) / span / per_second, 3) if span > 0 else None,
    }


def run_clients(argvs: list[list[str]], timeout: float) -> list[dict[str, Any]]:
    """Start every client at once (each a fresh process) and collect their JSON results."""
    procs = [subprocess.Popen([sys.executable, "-m", "bench.judge_client", *argv], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for argv in argvs]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"judge client failed ({proc.returncode}):\n{err[-4000:]}")
        results.append(json.loads([line for line in out.splitlines() if line.startswith("{")][-1]))
    return results


def one_run(server: ServerProcess, *, mode: str, clients: int, records: int, rpm: int, data: str,
            tag: str) -> dict[str, Any]:
    server.reset()
    start_at = time.time() + 3.0 + clients * 0.75  # every client imported and built before the start
    per_client = records // clients
    argvs = []
    for i in range(clients):
        pool = f"bench-{tag}-{i}" if mode == "instance" else f"bench-{tag}"
        argvs.append(["--side", "ours", "--data", data, "--skip", str(i * per_client), "--records", str(per_client),
                      "--base-url", server.base_url, "--explain", "off", "--rpm", str(rpm),
                      "--quota-pool", pool, "--start-at", f"{start_at:.3f}"])
    results = run_clients(argvs, timeout=1200)
    calls = sum(r["calls"] for r in results)
    lease_requests = sum(r["lease_storage_requests"] for r in results)
    return {**analyse(server.stats(), rpm), "clients": clients, "calls": calls,
            "wall_s": round(max(r["wall_s"] for r in results), 2),
            "errors": sum(r["outcomes"].get("error", 0) for r in results),
            "lease_storage_requests": lease_requests,
            "lease_requests_per_call": round(lease_requests / max(1, calls), 4),
            "lease_failures": sum(r["lease_failures"] for r in results),
            "peak_concurrency": max(r["peak_concurrency"] for r in results)}


def main() -> None:
    from monitor.azurite import start_azurite

    rpm = int(os.environ.get("BENCH_QUOTA_RPM", "600" if QUICK else "1200"))
    # About 30 s of quota per run: enough for several lease periods, short enough for `make bench`.
    records = int(os.environ.get("BENCH_QUOTA_RECORDS", "48" if QUICK else "112"))
    runs = 1 if QUICK else int(os.environ.get("BENCH_QUOTA_RUNS", "1"))
    fleet = [1, 2] if QUICK else [1, 2, 4, 8]
    data = OUT / "data" / f"records-{records}-quota.jsonl"
    write_records(data, records)
    cells = []
    azurite = start_azurite()
    os.environ["MONITOR_STORAGE"] = os.environ["MDC_STORAGE"] = azurite.connection_string
    try:
        with ServerProcess(latency=LATENCY, rpm=rpm, quota_window=WINDOW) as server:
            for clients in fleet:
                for label, mode in MODES:
                    results = []
                    for i in range(runs):
                        log(f"quota: {clients} client(s), {label}, {records} records x {METRICS} metrics, "
                            f"run {i + 1}/{runs}")
                        result = one_run(server, mode=mode, clients=clients, records=records, rpm=rpm,
                                         data=rel(data), tag=f"{mode}-{clients}-{i}-{time.time_ns()}")
                        log(f"  {result['fraction_of_quota']} of quota, {result['http_429']} x 429 "
                            f"({result['share_429']:.1%}), {result['lease_requests_per_call']} lease requests "
                            f"per call, {result['errors']} errors, wall {result['wall_s']} s")
                        results.append(result)
                    cells.append({"label": label, "mode": mode, "clients": clients, "runs": results,
                                  "median": medians(results)})
    finally:
        azurite.stop()
    write_result("quota", {
        "description": "One RPM quota, 1-8 client processes: per-instance limiter vs the shared budget",
        "quota_rpm": rpm, "quota_window_s": WINDOW, "latency_ms": LATENCY * 1000, "records": records,
        "metrics": METRICS, "explain": "off", "concurrency": "default (adaptive)", "cells": cells,
    })


if __name__ == "__main__":
    main()
