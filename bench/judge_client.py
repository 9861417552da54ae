"""One judge run in a fresh process: our JudgeEngine or azure-ai-evaluation's evaluate().

    python -m bench.judge_client --side ours|peer --data FILE --records N --base-url URL [...]

Prints one JSON line: wall time, client CPU (this process, all threads, plus any children it waited
for) of the judging call only (imports, data loading and evaluator construction excluded), judge
calls (records x 5 metrics), outcomes and peak RSS. The server's accounting is read by the parent.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import cpu_seconds, peak_rss_mib
from bench.data import read_records

METRICS = ("coherence", "fluency", "groundedness", "relevance", "similarity")


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    from monitor.config import MonitorConfig
    from monitor.judge import JudgeEngine, JudgeTask
    from monitor.records import Record

    judge: dict[str, Any] = {"provider": "openai", "model": "judge-model", "base_url": args.base_url,
                             "explain": args.explain}
    if args.max_concurrency:  # unset: the default (adaptive up to its ceiling)
        judge.update(max_concurrency=args.max_concurrency, adaptive_concurrency=False)
    if args.rpm:
        judge["requests_per_minute"] = args.rpm
    if args.quota_pool:
        judge["quota_pool"] = args.quota_pool
    config = MonitorConfig.model_validate({"name": "bench-judge", "source": {"prefix": "bench/"}, "judge": judge})
    when = datetime(2026, 11, 28, 10, tzinfo=UTC)
    records = [Record(monitor="bench-judge", key=r["id"], time=when, prompt=r["query"], completion=r["response"],
                      context=r["context"], ground_truth=r["ground_truth"])
               for r in read_records(Path(args.data), args.skip + args.records)[args.skip:]]
    tasks = [JudgeTask(record, metric) for record in records for metric in METRICS]
    engine = JudgeEngine(config)
    if args.start_at:  # several clients start judging together (quota scenario)
        time.sleep(max(0.0, args.start_at - time.time()))
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    scores = engine.judge(tasks)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    statuses: dict[str, int] = {}
    for score in scores:
        statuses[score.status] = statuses.get(score.status, 0) + 1
    return {"records": len(records), "calls": len(tasks), "wall_s": wall, "cpu_s": cpu, "outcomes": statuses,
            "explained": sum(1 for s in scores if s.reason), **_throttle_figures()}


def _throttle_figures() -> dict[str, Any]:
    """Concurrency reached and, with a fleet budget, the storage requests its lease cost (the lease
    is handed back first, so that release is counted too)."""
    from monitor.judge.limits import Throttle
    from monitor.judge.runtime import get_runtime

    runtime = get_runtime()
    throttles = [t for t in runtime.objects() if isinstance(t, Throttle)]
    runtime.reset()
    quotas = [t.quota for t in throttles if t.quota is not None]
    return {"peak_concurrency": max((t.peak_limit for t in throttles), default=0),
            "lease_storage_requests": sum(q.storage_requests for q in quotas),
            "lease_renewals": sum(q.renewals for q in quotas),
            "lease_failures": sum(q.failures for q in quotas)}


def run_peer(args: argparse.Namespace) -> dict[str, Any]:
    from azure.ai.evaluation import (
        CoherenceEvaluator,
        FluencyEvaluator,
        GroundednessEvaluator,
        OpenAIModelConfiguration,
        RelevanceEvaluator,
        SimilarityEvaluator,
        evaluate,
    )

    logging.disable(logging.WARNING)
    rows = read_records(Path(args.data), args.records)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        model = OpenAIModelConfiguration(type="openai", base_url=args.base_url, api_key="bench-key",
                                         model="judge-model")
        evaluators = {"coherence": CoherenceEvaluator(model), "fluency": FluencyEvaluator(model),
                      "groundedness": GroundednessEvaluator(model), "relevance": RelevanceEvaluator(model),
                      "similarity": SimilarityEvaluator(model)}
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        result = evaluate(data=str(data), evaluators=evaluators)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    statuses = {"ok": 0, "error": 0}
    for row in result["rows"]:
        for metric in METRICS:
            value = row.get(f"outputs.{metric}.{metric}")
            ok = isinstance(value, int | float) and not math.isnan(value)
            statuses["ok" if ok else "error"] += 1
    return {"records": len(rows), "calls": len(rows) * len(METRICS), "wall_s": wall, "cpu_s": cpu,
            "outcomes": statuses, "explained": statuses["ok"],
            "concurrency": os.environ.get("PF_WORKER_COUNT", "default (10 per evaluator)")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=("ours", "peer"), required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--records", type=int, required=True)
    parser.add_argument("--skip", type=int, default=0, help="start after this many records of the file")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--explain", default="off", choices=("off", "failing", "all"))
    parser.add_argument("--max-concurrency", type=int, default=None, help="fixed; unset: the default (adaptive)")
    parser.add_argument("--rpm", type=int, default=None)
    parser.add_argument("--quota-pool", default=None)
    parser.add_argument("--start-at", type=float, default=None, help="wall-clock time to start judging")
    args = parser.parse_args()
    result = run_ours(args) if args.side == "ours" else run_peer(args)
    result["peak_rss_mib"] = peak_rss_mib()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
