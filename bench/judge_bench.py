"""Scenario: judge throughput and cost, our JudgeEngine versus azure-ai-evaluation, side by side.

Same generated records, same five metrics, same loopback server (its own process, restarted per
latency), one fresh client process per run. For every cell: wall time, client CPU per judge call,
requests / prompt tokens / completion tokens per record from the server's accounting, 429s.

    .venv-bench/bin/python -m bench.judge_bench            # BENCH_QUICK=1 for a small run
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from bench.common import OUT, QUICK, log, medians, rel, run_child, write_result
from bench.data import write_records
from bench.server import ServerProcess

METRICS = 5


@dataclass(frozen=True)
class Cell:
    label: str
    side: str  # ours | peer
    latency: float
    records: int
    runs: int
    explain: str = "off"
    concurrency: int | None = None  # None: the default configuration (adaptive concurrency)


def plan() -> list[Cell]:
    if QUICK:
        n = int(os.environ.get("BENCH_RECORDS", "40"))
        return [Cell("ours, explain off", "ours", 0.0, n, 1),
                Cell("ours, explain failing", "ours", 0.0, n, 1, "failing"),
                Cell("azure-ai-evaluation", "peer", 0.0, n, 1),
                Cell("ours, default configuration (explain failing, adaptive concurrency)", "ours", 0.3, n, 1,
                     "failing"),
                Cell("azure-ai-evaluation", "peer", 0.3, n, 1)]
    # 200 records (150 for the peer at 300 ms, where it is slowest) keep `make bench` within its time;
    # every figure is per record or per call, comparable across sizes.
    n = int(os.environ.get("BENCH_RECORDS", "200"))
    peer_n = int(os.environ.get("BENCH_PEER_RECORDS", str(n)))
    peer_slow_n = int(os.environ.get("BENCH_PEER_300MS_RECORDS", "150"))
    peer_runs = int(os.environ.get("BENCH_PEER_RUNS", "1"))
    fixed_n = int(os.environ.get("BENCH_FIXED16_300MS_RECORDS", "100"))
    return [
        Cell("ours, explain off", "ours", 0.0, n, 3),
        Cell("ours, explain failing (default)", "ours", 0.0, n, 3, "failing"),
        Cell("azure-ai-evaluation", "peer", 0.0, peer_n, peer_runs),
        Cell("ours, explain off, 50 in flight", "ours", 0.3, n, 2, "off", 50),
        Cell("ours, explain failing, 50 in flight", "ours", 0.3, n, 2, "failing", 50),
        Cell("ours, default configuration (explain failing, adaptive concurrency)", "ours", 0.3, n, 3, "failing"),
        Cell("ours, explain failing, fixed 16 in flight (the default before adaptive concurrency)", "ours", 0.3,
             fixed_n, 1, "failing", 16),
        Cell("azure-ai-evaluation", "peer", 0.3, peer_slow_n, peer_runs),
    ]


def one_run(server: ServerProcess, cell: Cell, data: str) -> dict[str, Any]:
    server.reset()
    args = ["--side", cell.side, "--data", data, "--records", str(cell.records), "--base-url", server.base_url,
            "--explain", cell.explain]
    if cell.concurrency is not None:
        args += ["--max-concurrency", str(cell.concurrency)]
    client = run_child("bench.judge_client", args, timeout=1800)
    stats = server.stats()
    records, calls = client["records"], client["calls"]
    return {
        "records": records, "calls": calls, "wall_s": round(client["wall_s"], 3),
        "records_per_s": round(records / client["wall_s"], 2),
        "calls_per_s": round(calls / client["wall_s"], 2),
        "cpu_s": round(client["cpu_s"], 3),
        "cpu_ms_per_call": round(client["cpu_s"] * 1000 / calls, 3),
        "cpu_ms_per_request": round(client["cpu_s"] * 1000 / max(1, stats["requests"]), 3),
        "requests": stats["requests"], "requests_per_record": round(stats["requests"] / records, 3),
        "prompt_tokens": stats["prompt_tokens"], "prompt_tokens_per_record": round(stats["prompt_tokens"] / records, 1),
        "completion_tokens": stats["completion_tokens"],
        "completion_tokens_per_record": round(stats["completion_tokens"] / records, 1),
        "http_429": stats["throttled"], "scored": client["outcomes"].get("ok", 0),
        "errors": client["outcomes"].get("error", 0), "explained": client.get("explained"),
        "client_peak_rss_mib": client["peak_rss_mib"], "peak_concurrency": client.get("peak_concurrency"),
    }


def main() -> None:
    cells = plan()
    largest = max(c.records for c in cells)
    data = OUT / "data" / f"records-{largest}.jsonl"
    if not data.exists():
        write_records(data, largest)
    data_arg = rel(data)
    results = []
    for latency in sorted({c.latency for c in cells}):
        with ServerProcess(latency=latency) as server:
            for cell in [c for c in cells if c.latency == latency]:
                runs = []
                for i in range(cell.runs):
                    log(f"judge: {cell.label} @ {latency * 1000:.0f} ms, {cell.records} records, "
                        f"run {i + 1}/{cell.runs}")
                    runs.append(one_run(server, cell, data_arg))
                    log(f"  wall {runs[-1]['wall_s']} s, cpu {runs[-1]['cpu_ms_per_call']} ms/call, "
                        f"{runs[-1]['requests']} requests, {runs[-1]['http_429']} x 429, {runs[-1]['errors']} errors")
                results.append({**asdict(cell), "latency_ms": round(latency * 1000), "runs": runs,
                                "median": medians(runs)})
    write_result("judge", {
        "description": "Judge throughput and cost: JudgeEngine vs azure-ai-evaluation evaluate(), 5 metrics",
        "metrics": ["coherence", "fluency", "groundedness", "relevance", "similarity"],
        "data": data_arg, "cells": results,
    })


if __name__ == "__main__":
    main()
