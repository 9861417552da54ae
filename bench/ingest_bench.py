"""Scenario: ingestion. (a) parse only: iter_lines + parse_mdc_line over a generated ~1 GB MDC hour
(model_inputs + model_outputs), read in 4 MiB chunks as the blob download delivers them, no
storage; (b) the full blob path through `Ingestor` (ledger, parse, join through the `joinhalves`
table, sampling, exactly-once claims into batches) against Azurite on a smaller generated hour,
judging left out (batches go to a no-op queue). Each run is a fresh process (peak RSS is its own).

    .venv-bench/bin/python -m bench.ingest_bench            # orchestrates both
    .venv-bench/bin/python -m bench.ingest_bench parse IN OUT
    .venv-bench/bin/python -m bench.ingest_bench azurite --requests N
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import OUT, QUICK, ROOT, cpu_seconds, log, medians, peak_rss_mib, run_child, write_result
from bench.mdcgen import blob_name, generate

CHUNK = 4 * 1024 * 1024
MIB = 1024 * 1024


def chunks(path: Path) -> Any:
    with path.open("rb") as source:
        while block := source.read(CHUNK):
            yield block


def child_parse(inputs: Path, outputs: Path) -> dict[str, Any]:
    from monitor.ingest.envelopes import parse_mdc_line
    from monitor.ingest.lines import iter_lines
    from monitor.ingest.paths import parse_mdc_path
    from monitor.settings import get_settings

    max_bytes = get_settings().MAX_LINE_BYTES

    def no_dataref(ref: str) -> Any:
        raise AssertionError("the generated files inline every payload")

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    lines = halves = rejected = size = 0
    for file, name in ((inputs, blob_name("model_inputs")), (outputs, blob_name("model_outputs"))):
        path = parse_mdc_path(name)
        size += file.stat().st_size
        for line in iter_lines(chunks(file), max_bytes):
            lines += 1
            got, bad = parse_mdc_line(line, path, "correlationid", no_dataref)
            halves += len(got)
            rejected += len(bad)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    return {"bytes": size, "lines": lines, "halves": halves, "rejected": rejected, "wall_s": wall, "cpu_s": cpu,
            "mb_per_s": size / MIB / wall, "lines_per_s": lines / wall, "peak_rss_mib": peak_rss_mib()}


def child_azurite(requests: int) -> dict[str, Any]:
    import psutil

    from monitor.azurite import start_azurite

    data = OUT / "data" / f"mdc-{requests}"
    inputs, outputs = data / "inputs.jsonl", data / "outputs.jsonl"
    if not outputs.exists():
        generate(inputs, outputs, requests=requests)
    azurite = start_azurite()
    try:
        os.environ["MONITOR_STORAGE"] = os.environ["MDC_STORAGE"] = azurite.connection_string
        os.environ["MDC_CONTAINER"] = "azureml"
        return _ingest(azurite, inputs, outputs, psutil.Process(azurite.process.pid))
    finally:
        azurite.stop()


def _ingest(azurite: Any, inputs: Path, outputs: Path, emulator: Any) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from bench.storage_ops import counting
    from monitor.ingest.datarefs import DatarefStore
    from monitor.ingest.pipeline import BatchSink, Ingestor
    from monitor.monitors import MonitorStore
    from monitor.services import STORAGE_THREADS, blob_input
    from monitor.settings import get_settings
    from monitor.storage.clients import blob_service
    from monitor.storage.tables import Tables

    settings = get_settings()
    container = blob_service(settings.mdc_storage()).get_container_client("azureml")
    container.create_container()
    for file, collection in ((inputs, "model_inputs"), (outputs, "model_outputs")):
        with file.open("rb") as source:
            container.upload_blob(blob_name(collection), source, overwrite=True, max_concurrency=4)
    store = MonitorStore()
    store.put({"name": "bench-ingest", "source": {"format": "mdc", "container": "azureml",
                                                    "prefix": "modelDataCollector/"},
               "columns": {"prompt": "question", "completion": "answer", "context": "context"},
               "judge": {"provider": "heuristic"}})
    config = store.get("bench-ingest")
    tables = Tables.default()
    for name in ("ledger", "records", "joins", "quarantine"):
        _ = tables[name]  # create the tables before timing
    queued: list[object] = []
    sink = BatchSink(lambda c, ref: None, queued.append, inline_limit=0, batch_size=settings.BATCH_SIZE)
    pool = ThreadPoolExecutor(max_workers=STORAGE_THREADS, thread_name_prefix="storage")
    ingestor = Ingestor(settings, tables, DatarefStore(blob_service(settings.mdc_storage()),
                                                       settings.MAX_DATAREF_BYTES), sink, pool)
    size = inputs.stat().st_size + outputs.stat().st_size
    emulator_cpu0 = sum(emulator.cpu_times()[:2])
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    reports = []
    with counting() as ops:
        for collection in ("model_inputs", "model_outputs"):
            reports.append(ingestor.process(config, blob_input(container.get_blob_client(blob_name(collection)))))
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    emulator_cpu = sum(emulator.cpu_times()[:2]) - emulator_cpu0
    pool.shutdown()
    lines = sum(r.counts.lines for r in reports)
    records = sum(r.counts.records for r in reports)
    return {"bytes": size, "lines": lines, "records": records, "batches": len(queued),
            "pending_after": sum(r.counts.pending for r in reports) - records,
            "quarantined": sum(r.counts.quarantined for r in reports),
            "wall_s": wall, "cpu_s": cpu, "azurite_cpu_s": emulator_cpu,
            "mb_per_s": size / MIB / wall, "lines_per_s": lines / wall, "records_per_s": records / wall,
            "storage_ops": ops.total, "storage_ops_by_kind": dict(ops.by_kind),
            "storage_ops_per_record": ops.total / max(1, records), "peak_rss_mib": peak_rss_mib(),
            "azurite_peak_rss_mib": round(emulator.memory_info().rss / MIB, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="child")
    parse = sub.add_parser("parse")
    parse.add_argument("inputs")
    parse.add_argument("outputs")
    az = sub.add_parser("azurite")
    az.add_argument("--requests", type=int, required=True)
    args = parser.parse_args()
    if args.child == "parse":
        print(json.dumps(child_parse(Path(args.inputs), Path(args.outputs))))
        return
    if args.child == "azurite":
        print(json.dumps(child_azurite(args.requests)))
        return
    orchestrate()


def orchestrate() -> None:
    total = int(os.environ.get("BENCH_INGEST_BYTES", str(8 * MIB if QUICK else 1024 * MIB)))
    runs = 1 if QUICK else 3
    data = OUT / "data" / f"mdc-{total // MIB}MiB"
    inputs, outputs = data / "inputs.jsonl", data / "outputs.jsonl"
    meta = data / "meta.json"
    if not meta.exists():
        log(f"ingest: generating {total // MIB} MiB of MDC envelopes")
        t0 = time.perf_counter()
        info = generate(inputs, outputs, total_bytes=total)
        info["generate_s"] = round(time.perf_counter() - t0, 1)
        meta.write_text(json.dumps(info))
    info = json.loads(meta.read_text())
    parse_runs = []
    for i in range(runs):
        log(f"ingest: parse only, {info['bytes'] / MIB:.0f} MiB, run {i + 1}/{runs}")
        parse_runs.append(run_child("bench.ingest_bench", ["parse", str(inputs), str(outputs)], timeout=1800))
        log(f"  {parse_runs[-1]['mb_per_s']:.1f} MiB/s, {parse_runs[-1]['lines_per_s']:.0f} lines/s, "
            f"peak RSS {parse_runs[-1]['peak_rss_mib']} MiB")
    requests = int(os.environ.get("BENCH_INGEST_REQUESTS", "300" if QUICK else "2000"))
    azurite_runs = []
    for i in range(runs):
        log(f"ingest: Ingestor against Azurite, {requests} requests, run {i + 1}/{runs}")
        azurite_runs.append(run_child("bench.ingest_bench", ["azurite", "--requests", str(requests)], timeout=1800))
        r = azurite_runs[-1]
        log(f"  {r['mb_per_s']:.2f} MiB/s, {r['lines_per_s']:.0f} lines/s, {r['storage_ops']} storage ops, "
            f"client cpu {r['cpu_s']:.1f} s, azurite cpu {r['azurite_cpu_s']:.1f} s")
    write_result("ingest", {
        "description": "MDC ingestion: parse only on a generated ~1 GB hour; full Ingestor path against Azurite",
        "generated": info, "parse": {"runs": parse_runs, "median": medians(parse_runs)},
        "azurite": {"requests": requests, "runs": azurite_runs, "median": medians(azurite_runs)},
        "python": sys.version.split()[0], "root": str(ROOT),
    })


if __name__ == "__main__":
    main()
