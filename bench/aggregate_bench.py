"""Scenario: aggregation. Roll up one hour window holding 1,000,000 scores through the partial
aggregates (the layout the judge path writes: one partial per batch of BATCH_SIZE=50 records x 5
metrics, built with count_batch/partial_entity), timing `run_aggregation` for that window against
Azurite and counting its storage requests; compared with a naive scan of score entities (as
BatchEvaluator stores them), measured on a smaller count and extrapolated, clearly labelled.

The partials' contents cycle through 100 distinct real batches (count_batch over generated records
and scores), so the 1,000,000 scores need no 1,000,000 Score objects; the naive scan's score
entities come from the same batches, and its counters are checked against the merged partials.

    .venv-bench/bin/python -m bench.aggregate_bench               # orchestrates (fresh process per layout)
    .venv-bench/bin/python -m bench.aggregate_bench run --scores 1000000 --naive 100000 --repeat 3
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

MONITOR = "bench-aggregate"
HOUR = datetime(2026, 11, 28, 10, tzinfo=UTC)
PARTITION = f"{MONITOR}|{HOUR:%Y%m%d%H}"
METRICS = ("coherence", "fluency", "groundedness", "relevance", "similarity")
TEMPLATES = 100


def template_batches(batch_size: int) -> list[tuple[list[Any], list[Any]]]:
    """100 real batches: generated records and their 5 scores each (mostly ok, some errors)."""
    from monitor.records import Record
    from monitor.scores import Score

    rng = random.Random(5)
    batches = []
    for b in range(TEMPLATES):
        records, scores = [], []
        for i in range(batch_size):
            record = Record(monitor=MONITOR, key=f"t{b:03d}-{i:03d}", time=HOUR + timedelta(seconds=b * 30 + i),
                            deployment="blue", model_version="default", batch_id=f"b{b}")
            records.append(record)
            for metric in METRICS:
                if rng.random() < 0.01:
                    scores.append(Score(record.key, metric, "error", detail="http_500"))
                else:
                    value = round(min(5.0, max(1.0, rng.gauss(3.8, 0.9))), 4)
                    scores.append(Score(record.key, metric, "ok", score=value, passed=value >= 3, provider="openai",
                                        model="judge-model", prompt_version="1.0.0", prompt_tokens=600,
                                        completion_tokens=1, latency_ms=310.0, logprobs=True))
        batches.append((records, scores))
    return batches


def load(scores_total: int, naive: int, batch_size: int) -> dict[str, Any]:
    from monitor.keys import iso
    from monitor.monitors import MonitorStore
    from monitor.partials import count_batch, partial_entity
    from monitor.storage.tables import Tables

    tables = Tables.default()
    MonitorStore().put({"name": MONITOR, "source": {"prefix": "modelDataCollector/"}, "window": "hour",
                        "judge": {"provider": "heuristic"}})
    templates = template_batches(batch_size)
    counts = [count_batch(records, scores, METRICS) for records, scores in templates]
    per_batch = batch_size * len(METRICS)
    batches = scores_total // per_batch
    now = iso(datetime.now(UTC))
    t0 = time.perf_counter()
    parallel_write(tables["partials"], [partial_entity(PARTITION, f"batch-{i:07d}", counts[i % TEMPLATES],
                                                       batch_size, now) for i in range(batches)])
    tables["dirty"].upsert_entity({"PartitionKey": MONITOR, "RowKey": f"{HOUR:%Y%m%d%H}", "updated_at": now})
    partial_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    naive_batches = naive // per_batch

    def score_entities() -> Any:
        for i in range(naive_batches):
            records, scores = templates[i % TEMPLATES]
            by_key = {r.key: r for r in records}
            for score in scores:
                record = by_key[score.record_key]
                entity = score.to_entity(PARTITION, {"time": iso(record.time), "deployment": record.deployment,
                                                     "model_version": record.model_version,
                                                     "batch_id": f"batch-{i:07d}"})
                entity["RowKey"] = f"{i:07d}-{entity['RowKey']}"
                entity["record_key"] = f"{i:07d}-{score.record_key}"
                yield entity

    written = parallel_write(tables["scores"], list(score_entities()))
    return {"batches": batches, "partials": batches, "scores_in_partials": batches * per_batch,
            "records_in_partials": batches * batch_size, "naive_scores_loaded": written,
            "naive_batches": naive_batches, "load_partials_s": round(partial_load, 2),
            "load_scores_s": round(time.perf_counter() - t0, 2), "_counts": counts}


def parallel_write(table: Any, entities: list[dict[str, Any]], threads: int = 4) -> int:
    """Load faster than one transaction at a time (Azurite parses a 100-entity transaction slowly)."""
    from concurrent.futures import ThreadPoolExecutor

    from azure.core.exceptions import ServiceResponseError

    from monitor.storage.tables import TRANSACTION_LIMIT, write_entities

    def write(chunk: list[dict[str, Any]]) -> int:
        for attempt in range(5):  # upserts: idempotent, safe to send again after a reset connection
            try:
                return write_entities(table, chunk)
            except ServiceResponseError:
                if attempt == 4:
                    raise
                time.sleep(0.5 * (attempt + 1))
        return 0

    chunks = [entities[i:i + TRANSACTION_LIMIT] for i in range(0, len(entities), TRANSACTION_LIMIT)]
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(write, chunks))


def reset_run_state() -> None:
    from monitor.aggregate.store import partition_range
    from monitor.storage.tables import Tables

    tables = Tables.default()
    tables["runs"].delete_entity(MONITOR, "last")
    lo, hi = partition_range(MONITOR)
    for entity in list(tables["windows"].query_entities("PartitionKey ge @lo and PartitionKey lt @hi",
                                                        parameters={"lo": lo, "hi": hi})):
        tables["windows"].delete_entity(entity["PartitionKey"], entity["RowKey"])


def timed_rollup() -> dict[str, Any]:
    from bench.storage_ops import counting
    from monitor.aggregate.runner import run_aggregation
    from monitor.aggregate.store import windows_between

    reset_run_state()
    t0 = time.perf_counter()
    with counting() as ops:
        [report] = run_aggregation(at=HOUR + timedelta(hours=1, minutes=5), monitor=MONITOR)
    wall = time.perf_counter() - t0
    from monitor.storage.tables import Tables

    rows = [r for r in windows_between(Tables.default(), MONITOR, None, HOUR, HOUR + timedelta(hours=1))
            if r["segment"] == "all"]
    scored = sum(int(r.get("scored", 0)) + int(r.get("errors", 0)) for r in rows)
    return {"wall_s": wall, "storage_ops": ops.total, "storage_ops_by_kind": dict(ops.by_kind),
            "rows_written": report.rows_written, "windows_planned": len(report.windows),
            "scores_in_window_rows": scored, "error": report.error}


def naive_scan() -> tuple[dict[str, Any], Any]:
    """Read every score entity of the hour and build the same counters (segments x metrics)."""
    from bench.storage_ops import counting
    from monitor.partials import Counter
    from monitor.scores import Score
    from monitor.storage.tables import Tables, query_partition

    counts: dict[str, dict[str, Counter]] = {}
    t0 = time.perf_counter()
    seen = 0
    with counting() as ops:
        for entity in query_partition(Tables.default()["scores"], PARTITION):
            score = Score.from_entity(entity)
            seen += 1
            segments = ["all", f"deployment={entity['deployment']}", f"model_version={entity['model_version']}"]
            for segment in segments:
                counts.setdefault(segment, {}).setdefault(score.metric, Counter()).add_score(score)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "scores": seen, "storage_ops": ops.total, "storage_ops_by_kind": dict(ops.by_kind),
            "us_per_score": wall / max(1, seen) * 1e6, "ops_per_score": ops.total / max(1, seen)}, counts


def check_naive(counts: Any, loaded: dict[str, Any]) -> bool:
    """The naive counters equal the merged partials of the same batches (scored, passed, errors, histogram)."""
    from monitor.partials import Counter, merge_counts

    expected: dict[str, dict[str, Counter]] = {}
    for i in range(loaded["naive_batches"]):
        merge_counts(expected, {s: {m: Counter.from_json(c.to_json()) for m, c in pm.items()}
                                for s, pm in loaded["_counts"][i % TEMPLATES].items()})
    for segment, per_metric in expected.items():
        for metric, want in per_metric.items():
            got = counts.get(segment, {}).get(metric, Counter())
            if (got.scored, got.passed, got.errors, got.histogram) != (want.scored, want.passed, want.errors,
                                                                       want.histogram):
                return False
            if abs(got.score_sum - want.score_sum) > 1e-6 * max(1.0, want.score_sum):
                return False
    return True


def child_run(scores: int, naive: int, repeat: int, batch_size: int) -> dict[str, Any]:
    import psutil

    from monitor.azurite import start_azurite

    azurite = start_azurite()
    try:
        os.environ["MONITOR_STORAGE"] = os.environ["MDC_STORAGE"] = azurite.connection_string
        loaded = load(scores, naive, batch_size)
        rollups = [timed_rollup() for _ in range(repeat)]
        scans = []
        valid = True
        for _ in range(repeat if naive else 0):
            result, counts = naive_scan()
            valid = valid and check_naive(counts, loaded)
            scans.append(result)
        loaded.pop("_counts")
        emulator = psutil.Process(azurite.process.pid)
        return {**loaded, "batch_size": batch_size, "rollup_runs": rollups, "rollup": medians(rollups),
                "naive_runs": scans, "naive": medians(scans), "naive_matches_partials": valid,
                "client_peak_rss_mib": peak_rss_mib(),
                "azurite_rss_mib": round(emulator.memory_info().rss / 2**20, 1)}
    finally:
        azurite.stop()


def orchestrate() -> None:
    repeat = 1 if QUICK else 3
    layouts = ([("1M scores: 4,000 partials of 50 records x 5 metrics", 1_000_000, 50, 10_000),
                ("5M scores: 20,000 partials of 50 records x 5 metrics", 5_000_000, 50, 0)] if not QUICK else
               [("10,000 scores: 40 partials of 50 records x 5 metrics", 10_000, 50, 5_000)])
    results = []
    for label, scores, batch, naive in layouts:
        naive = int(os.environ.get("BENCH_NAIVE_SCORES", str(naive))) if naive else 0
        log(f"aggregate: {label}; naive scan of {naive} scores; {repeat} runs")
        out = run_child("bench.aggregate_bench", ["run", "--scores", str(scores), "--naive", str(naive),
                                                  "--repeat", str(repeat), "--batch-size", str(batch)], timeout=3600)
        log(f"  rollup {out['rollup']['wall_s']:.2f} s, {out['rollup']['storage_ops']} ops; "
            f"naive {out['naive'].get('wall_s')} s for {out['naive'].get('scores')} scores")
        results.append({"label": label, **out})
    write_result("aggregate", {
        "description": "Window roll-up through partial aggregates vs a naive scan of score entities, on Azurite",
        "layouts": results,
    })


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="child")
    run = sub.add_parser("run")
    run.add_argument("--scores", type=int, required=True)
    run.add_argument("--naive", type=int, default=0)
    run.add_argument("--repeat", type=int, default=3)
    run.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    if args.child == "run":
        print(json.dumps(child_run(args.scores, args.naive, args.repeat, args.batch_size)))
    else:
        orchestrate()


if __name__ == "__main__":
    main()
