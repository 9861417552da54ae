"""Scenario: ingestion. (a) parse only: iter_lines + parse_mdc_line over a generated ~1 GB MDC hour
(model_inputs + model_outputs), read in 4 MiB chunks as the blob download delivers them, no
storage; (b) the full path against Azurite on a smaller generated hour, judging left out (batches
go to a no-op queue), side by side in one run:

* "today": the baseline commit's own blob path (each blob read whole at its event, every half
  through the join table), run from a `git archive` of that commit with its own bench child;
* "tail": the MDC write pattern, two append blobs growing in 12 appends (cut at arbitrary bytes,
  lines split across appends), one tail pass after each (ranged reads of the new bytes, in-memory
  join, batched claims), at sampling 1.0 and 0.1 and at a rate that samples nothing.
Each run is a fresh process (peak RSS is its own).

    .venv-bench/bin/python -m bench.ingest_bench            # orchestrates everything
    .venv-bench/bin/python -m bench.ingest_bench parse IN OUT
    .venv-bench/bin/python -m bench.ingest_bench azurite --requests N        # today's path
    .venv-bench/bin/python -m bench.ingest_bench tail --requests N --sampling R
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import OUT, QUICK, ROOT, cpu_seconds, log, medians, peak_rss_mib, run_child, write_result
from bench.mdcgen import blob_name, generate

CHUNK = 4 * 1024 * 1024
MIB = 1024 * 1024
# "Today's path": the last commit before ingestion became tail passes (its Ingestor and its bench).
BASELINE = "8ea9c7c"
APPENDS = 12


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


def child_tail(requests: int, sampling: float, appends: int = APPENDS) -> dict[str, Any]:
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
        return _tail(inputs, outputs, sampling, appends, psutil.Process(azurite.process.pid))
    finally:
        azurite.stop()


def _tail(inputs: Path, outputs: Path, sampling: float, appends: int, emulator: Any) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor
    from datetime import timedelta

    from bench.mdcgen import T0
    from bench.storage_ops import counting
    from monitor.ingest.datarefs import DatarefStore
    from monitor.ingest.ledger import Ledger
    from monitor.ingest.pipeline import BatchSink, Ingestor
    from monitor.ingest.tail import tail_monitor
    from monitor.monitors import MonitorStore
    from monitor.services import STORAGE_THREADS, blob_input
    from monitor.settings import get_settings
    from monitor.storage.clients import blob_service
    from monitor.storage.tables import Tables

    settings = get_settings()
    service = blob_service(settings.mdc_storage())
    container = service.get_container_client("azureml")
    container.create_container()
    store = MonitorStore()
    store.put({"name": "bench-ingest", "source": {"format": "mdc", "container": "azureml",
                                                    "prefix": "modelDataCollector/"},
               "columns": {"prompt": "question", "completion": "answer", "context": "context"},
               "sampling_rate": sampling, "judge": {"provider": "heuristic"}})
    config = store.get("bench-ingest")
    tables = Tables.default()
    for name in ("ledger", "records", "joins", "quarantine", "partials", "dirty"):
        _ = tables[name]  # create the tables before timing
    queued: list[object] = []
    sink = BatchSink(lambda c, ref: None, queued.append, inline_limit=0, batch_size=settings.BATCH_SIZE)
    pool = ThreadPoolExecutor(max_workers=STORAGE_THREADS, thread_name_prefix="storage")

    def read(container_name: str, name: str, start: int, end: int) -> Any:
        client = service.get_blob_client(container_name, name)
        return client.download_blob(offset=start, length=end - start, max_concurrency=1).chunks()

    ingestor = Ingestor(settings, tables, DatarefStore(service, settings.MAX_DATAREF_BYTES), sink, pool, read)
    ledger = Ledger(tables["ledger"], config.name)
    blobs = {}
    contents = {}
    for file, collection in ((inputs, "model_inputs"), (outputs, "model_outputs")):
        blobs[collection] = container.get_blob_client(blob_name(collection))
        blobs[collection].create_append_blob()
        contents[collection] = file.read_bytes()
    size = sum(len(c) for c in contents.values())
    wall = cpu = 0.0
    emulator_cpu = 0.0
    totals = {"records": 0, "unsampled": 0, "pending": 0, "quarantined": 0, "bytes_read": 0}
    with counting() as ops:
        for step in range(appends):
            with _NotCounted(ops):
                for collection, content in contents.items():
                    cut = [len(content) * k // appends for k in (step, step + 1)]
                    blobs[collection].append_block(content[cut[0]:cut[1]])
            at = T0 + timedelta(minutes=60 * (step + 1) // appends - 1)
            emulator_cpu0 = sum(emulator.cpu_times()[:2])
            cpu0, t0 = cpu_seconds(), time.perf_counter()
            report = tail_monitor(ingestor, ledger, container, lambda n: blob_input(container.get_blob_client(n)),
                                  config, at)
            wall += time.perf_counter() - t0
            cpu += cpu_seconds() - cpu0
            emulator_cpu += sum(emulator.cpu_times()[:2]) - emulator_cpu0
            for key in totals:
                totals[key] += getattr(report, key)
        close = tail_monitor(ingestor, ledger, container, lambda n: blob_input(container.get_blob_client(n)),
                             config, T0 + timedelta(hours=1, minutes=30))
        for key in totals:
            totals[key] += getattr(close, key)
    pool.shutdown()
    from monitor.status import monitor_status

    unmatched = monitor_status(config.name, tables)["unmatched"]
    records, requests = totals["records"], totals["records"] + totals["unsampled"]
    return {"bytes": size, "requests": requests, "sampling": sampling, "records": records,
            "unsampled": totals["unsampled"], "halves_waited": totals["pending"], "unmatched_after": unmatched,
            "quarantined": totals["quarantined"], "bytes_read": totals["bytes_read"],
            "passes": appends + 1, "appends": appends,
            "batches": len(queued), "wall_s": wall, "cpu_s": cpu, "azurite_cpu_s": emulator_cpu,
            "records_per_s": requests / wall, "sampled_records_per_s": records / wall,
            "storage_ops": ops.total, "storage_ops_by_kind": dict(ops.by_kind),
            "storage_ops_per_sampled_record": ops.total / records if records else 0.0,
            "storage_ops_per_request": ops.total / max(1, requests), "peak_rss_mib": peak_rss_mib(),
            "azurite_peak_rss_mib": round(emulator.memory_info().rss / MIB, 1)}


class _NotCounted:
    """Appends are the producer's requests, not the monitor's: keep them out of the count."""

    def __init__(self, ops: Any) -> None:
        self._ops = ops

    def __enter__(self) -> None:
        self._before = dict(self._ops.by_kind)

    def __exit__(self, *exc: object) -> None:
        with self._ops.lock:
            self._ops.by_kind.clear()
            self._ops.by_kind.update(self._before)


def baseline_child(requests: int) -> dict[str, Any] | None:
    """Today's path: the baseline commit's own `bench.ingest_bench azurite` in a checkout of it."""
    with tempfile.TemporaryDirectory(prefix="ingest-baseline-") as tmp:
        archive = Path(tmp) / "baseline.tar"
        try:
            subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), BASELINE, "monitor", "bench"],
                           cwd=ROOT, check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            log(f"ingest: baseline {BASELINE} not available ({exc}); today's path not measured")
            return None
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        (Path(tmp) / "node_modules").symlink_to(ROOT / "node_modules")
        env = {**os.environ, "PYTHONPATH": tmp, "BENCH_OUT": str(OUT)}
        proc = subprocess.run([sys.executable, "-m", "bench.ingest_bench", "azurite", "--requests", str(requests)],
                              cwd=tmp, env=env, capture_output=True, text=True, timeout=1800, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"baseline ingest failed:\n{proc.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="child")
    parse = sub.add_parser("parse")
    parse.add_argument("inputs")
    parse.add_argument("outputs")
    tail = sub.add_parser("tail")
    tail.add_argument("--requests", type=int, required=True)
    tail.add_argument("--sampling", type=float, default=1.0)
    tail.add_argument("--appends", type=int, default=APPENDS)
    args = parser.parse_args()
    if args.child == "parse":
        print(json.dumps(child_parse(Path(args.inputs), Path(args.outputs))))
        return
    if args.child == "tail":
        print(json.dumps(child_tail(args.requests, args.sampling, args.appends)))
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
    today_runs: list[dict[str, Any]] = []
    # (appends, sampling): one pass over a complete hour (catch-up, like today's path reading whole
    # blobs), then the hour growing in 12 appends at sampling 1.0, 0.1 and a rate that samples nothing.
    cases = [(1, "1.0"), (APPENDS, "1.0"), (APPENDS, "0.1"), (APPENDS, "0.000001")]
    tail_runs: dict[str, list[dict[str, Any]]] = {f"{a}x{r}": [] for a, r in cases}
    for i in range(runs):  # interleaved: both paths see the same machine load
        log(f"ingest: today's path ({BASELINE}) against Azurite, {requests} requests, run {i + 1}/{runs}")
        today = baseline_child(requests)
        if today is not None:
            today_runs.append(today)
            log(f"  {today['records_per_s']:.0f} records/s, {today['storage_ops_per_record']:.2f} requests/record")
        for appends, rate in cases:
            log(f"ingest: tail, {requests} requests in {appends} append(s), sampling {rate}, run {i + 1}/{runs}")
            r = run_child("bench.ingest_bench", ["tail", "--requests", str(requests), "--sampling", rate,
                                                 "--appends", str(appends)], timeout=1800)
            tail_runs[f"{appends}x{rate}"].append(r)
            log(f"  {r['records_per_s']:.0f} requests/s, {r['storage_ops']} storage requests "
                f"({r['storage_ops_per_request']:.3f} per request), {r['records']} sampled records")
    write_result("ingest", {
        "description": "MDC ingestion: parse only on a generated ~1 GB hour; today's blob path and tail passes "
                       "against Azurite, side by side",
        "generated": info, "parse": {"runs": parse_runs, "median": medians(parse_runs)},
        "today": {"requests": requests, "baseline": BASELINE, "runs": today_runs,
                  "median": medians(today_runs) if today_runs else None},
        "tail": {"requests": requests, "cases": [{"appends": a, "sampling": float(r),
                                                   "runs": tail_runs[f"{a}x{r}"],
                                                   "median": medians(tail_runs[f"{a}x{r}"])} for a, r in cases]},
        "python": sys.version.split()[0], "root": str(ROOT),
    })


if __name__ == "__main__":
    main()
