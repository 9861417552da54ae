"""Render docs/benchmarks.md from bench/out/*.json (the numbers of the last `make bench`).

    python -m bench.render            # stdlib only; any venv
"""

from __future__ import annotations

import json
from typing import Any

from bench.common import OUT, ROOT

DOC = ROOT / "docs" / "benchmarks.md"


def load(name: str) -> dict[str, Any] | None:
    path = OUT / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value.is_integer():
            return f"{int(value):,}"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:,.{digits}f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return "\n".join(lines)


def provenance(result: dict[str, Any]) -> str:
    m = result["machine"]
    quick = " **quick mode (BENCH_QUICK=1): small sizes, not representative**" if result.get("quick") else ""
    return (f"_Measured {result['finished_at']} on {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, "
            f"Python {m['python']}; 1-minute load average at the end {m.get('loadavg_1m_at_end', '-')}. "
            f"Command: `{result['command']}`._{quick}")


def judge_section(result: dict[str, Any]) -> list[str]:
    out = ["## Judge throughput and cost: JudgeEngine vs azure-ai-evaluation", "", provenance(result), ""]
    headers = ["latency", "client", "in flight", "records x runs", "wall s: median (runs)", "records/s",
               "client CPU ms / judge call",
               "requests / record", "prompt tokens / record", "completion tokens / record", "429s", "errors"]
    rows = []
    for cell in result["cells"]:
        m = cell["median"]
        walls = ", ".join(fmt(r["wall_s"]) for r in cell["runs"])
        wall = f"{fmt(m['wall_s'])} ({walls})" if len(cell["runs"]) > 1 else fmt(m["wall_s"])
        rows.append([f"{cell['latency_ms']} ms", cell["label"], _in_flight(cell),
                     f"{cell['records']} x {len(cell['runs'])}", wall,
                     m["records_per_s"], m["cpu_ms_per_call"], m["requests_per_record"],
                     m["prompt_tokens_per_record"], m["completion_tokens_per_record"], m["http_429"], m["errors"]])
    out += [table(headers, rows), ""]
    out += ["Ratios, azure-ai-evaluation / ours (per record or per call, same run of `make bench`; >1 means "
            "the peer spends more):", ""]
    ratio_rows = []
    for latency in sorted({c["latency_ms"] for c in result["cells"]}):
        peer = next((c for c in result["cells"] if c["latency_ms"] == latency and c["side"] == "peer"), None)
        if peer is None:
            continue
        for ours in [c for c in result["cells"] if c["latency_ms"] == latency and c["side"] == "ours"]:
            p, o = peer["median"], ours["median"]
            ratio_rows.append([f"{latency} ms", ours["label"],
                               _ratio(o["records_per_s"], p["records_per_s"]),
                               _ratio(p["cpu_ms_per_call"], o["cpu_ms_per_call"]),
                               _ratio(p["prompt_tokens_per_record"], o["prompt_tokens_per_record"]),
                               _ratio(p["completion_tokens_per_record"], o["completion_tokens_per_record"]),
                               _ratio(p["requests_per_record"], o["requests_per_record"])])
    out += [table(["latency", "ours", "throughput (ours / peer)", "client CPU per call", "prompt tokens",
                   "completion tokens", "requests"], ratio_rows), ""]
    return out


def _in_flight(cell: dict[str, Any]) -> str:
    if cell["side"] == "peer":
        return "10 per evaluator (up to 50)"
    if cell.get("concurrency") is None:
        peak = cell["median"].get("peak_concurrency")
        return f"adaptive (reached {fmt(peak)})" if peak else "adaptive"
    return f"{cell['concurrency']} (fixed)"


def _ratio(num: Any, den: Any) -> str:
    if not num or not den:
        return "-"
    return f"{num / den:.2f}x"


def quota_section(result: dict[str, Any]) -> list[str]:
    out = ["## One quota, a fleet of instances: per-instance limiter vs shared budget", "", provenance(result), "",
           f"Quota {fmt(result['quota_rpm'])} requests/minute, enforced over a sliding "
           f"{fmt(result['quota_window_s'])} s "
           f"window ({fmt(result['quota_rpm'] * result['quota_window_s'] / 60)} per window) with 429 + retry-after; "
           f"{fmt(result['latency_ms'])} ms server latency; {result['records']} records x {result['metrics']} "
           f"metrics split evenly between the client processes (each a fresh process, all starting together), "
           f"explain off, concurrency {result['concurrency']}. Every client sets `judge.requests_per_minute` = "
           f"{fmt(result['quota_rpm'])}: with the per-instance limiter each process paces itself at it (each its own "
           "pool, as before fleet budgets); with the shared budget they lease slices of it from one pool in "
           "Table Storage (Azurite). Targets for the shared budget: >= 0.90 of the quota, < 2% 429s. Lease storage "
           "requests: reads and conditional writes of the pool entity by all clients (acquire, renewals, "
           "conflicts, hand-back) per judge call, counted by the clients.", ""]
    rows = []
    for cell in result["cells"]:
        m = cell["median"]
        runs = cell["runs"]
        per_run = ", ".join(f"{r['fraction_of_quota']:.2f}" for r in runs)
        shares = ", ".join(f"{r['share_429'] * 100:.1f}%" for r in runs)
        fraction = f"**{m['fraction_of_quota']:.2f}**" + (f" ({per_run})" if len(runs) > 1 else "")
        share = f"**{m['share_429'] * 100:.1f}%**" + (f" ({shares})" if len(runs) > 1 else "")
        rows.append([cell["clients"], cell["label"], len(runs), m["wall_s"], m["span_s"], m["requests"],
                     m["achieved_rpm"], fraction, m["http_429"], share, m["errors"],
                     *_lease_cost(cell["mode"], m)])
    out += [table(["client processes", "limiter", "runs", "wall s", "span s", "requests",
                   "achieved successful rpm", "fraction of quota", "429s", "429 share of requests", "errors",
                   "lease storage requests", "lease storage requests / judge call"], rows), ""]
    return out


def _lease_cost(mode: str, m: dict[str, Any]) -> list[str]:
    if mode != "shared":  # emulated with one private pool per process: not a cost of the old limiter
        return ["-", "-"]
    return [fmt(m["lease_storage_requests"]), f"{m['lease_requests_per_call']:.3f}"]


def ingest_section(result: dict[str, Any]) -> list[str]:
    p = result["parse"]["median"]
    g = result["generated"]
    out = ["## Ingestion: MDC parse, today's blob path and tail passes", "", provenance(result), "",
           f"Generated hour for (a): {fmt(g['requests'])} requests, {fmt(g['bytes'] / 2**20)} MiB "
           f"(model_inputs {fmt(g['input_bytes'] / 2**20)} MiB + "
           f"model_outputs {fmt(g['output_bytes'] / 2**20)} MiB).", ""]
    rows = [["(a) parse only: iter_lines + parse_mdc_line, no storage", len(result["parse"]["runs"]),
             p["bytes"] / 2**20, p["lines"], p["wall_s"], p["mb_per_s"], p["lines_per_s"],
             p["bytes"] / 2**20 / p["cpu_s"] if p.get("cpu_s") else None, p["peak_rss_mib"]]]
    out += [table(["path", "runs", "MiB", "lines", "wall s", "MiB/s", "lines/s", "MiB per client CPU s",
                   "client peak RSS MiB"], rows), ""]
    out += _paths_table(result)
    return out


def _paths_table(result: dict[str, Any]) -> list[str]:
    """(b): today's path and the tail passes, measured side by side in the same run."""
    today = result.get("today") or {}
    t = today.get("median")
    tail = result.get("tail") or {}
    requests = tail.get("requests")
    out = [f"(b) The full path against Azurite on a generated hour of {fmt(requests)} requests (and a busier hour "
           "growing every minute), judging left out (batches go to a no-op queue); both paths in the same run, "
           "interleaved run by run; \"throughput vs today\" divides by today's rate on the smaller hour.", ""]
    rows = []
    if t:
        rows.append([f"today ({today['baseline']}): each blob read whole at its event, every half through the "
                     "join table", len(today["runs"]), "-", "-", "1.0", t["wall_s"], t["records_per_s"],
                     t["records"], t["storage_ops"], f"{t['storage_ops_per_record']:.3f}", "-", "-", "1.0x",
                     t["peak_rss_mib"]])
    def shape(case: dict[str, Any]) -> tuple[int, int]:
        return case.get("requests", requests), case["appends"]

    fixed = {shape(c): c["median"]["storage_ops"] for c in tail.get("cases", []) if not c["median"]["records"]}
    for case in tail.get("cases", []):
        m = case["median"]
        base = fixed.get(shape(case))
        marginal = f"{(m['storage_ops'] - base) / m['records']:.3f}" if base is not None and m["records"] else "-"
        n = shape(case)[0]
        label = ("tail: one pass over the complete hour (catch-up)" if case["appends"] == 1 else
                 f"tail: {fmt(n)} requests, the hour growing in {case['appends']} appends, a pass after each"
                 if case["appends"] != 60 else
                 f"tail: {fmt(n)} requests, the hour growing every minute, a pass each minute")
        ratio = f"**{m['records_per_s'] / t['records_per_s']:.1f}x**" if t else "-"
        per_sampled = f"**{m['storage_ops_per_sampled_record']:.3f}**" if m["records"] else "-"
        unsampled = f"{m['storage_ops'] / m['unsampled']:.3f}" if m["unsampled"] else "-"
        per_pass = f"{m['storage_ops'] / m['passes']:.1f}"
        sweeps = f"{m['full_sweeps']:g}" if "full_sweeps" in m else "-"
        rows.append([label, len(case["runs"]), m["passes"], sweeps, f"{case['sampling']:g}",
                     m["wall_s"], m["records_per_s"], m["records"], m["storage_ops"], per_pass, per_sampled, marginal,
                     unsampled, ratio, m["peak_rss_mib"]])
    out += [table(["path", "runs", "passes", "full sweeps", "sampling", "wall s", "requests ingested / s",
                   "sampled records stored", "storage requests", "per pass",
                   "storage requests / sampled record (all costs)",
                   "beyond the fixed pass costs (vs the same passes sampling nothing)",
                   "storage requests / unsampled request (all costs)", "throughput vs today",
                   "client peak RSS MiB"], rows), ""]
    return out


def aggregate_section(result: dict[str, Any]) -> list[str]:
    out = ["## Aggregation: one window through the partial aggregates vs a naive scan", "", provenance(result), ""]
    rows = []
    for layout in result["layouts"]:
        r = layout["rollup"]
        rows.append([layout["label"], len(layout["rollup_runs"]), layout["partials"], r["wall_s"], r["storage_ops"],
                     r["scores_in_window_rows"], layout["load_partials_s"]])
    out += [table(["window content", "runs", "partials", "run_aggregation wall s (median)",
                   "storage requests", "scores counted in the window rows", "load time s (setup)"], rows), ""]
    naive_rows = []
    for layout in result["layouts"]:
        n = layout.get("naive") or {}
        if not n:
            continue
        total = layout["scores_in_partials"]
        factor = total / n["scores"]
        naive_rows.append([layout["label"], len(layout["naive_runs"]), n["scores"], n["wall_s"], n["storage_ops"],
                           n["us_per_score"], f"{fmt(n['wall_s'] * factor)} (extrapolated x{factor:.0f})",
                           f"{fmt(n['storage_ops'] * factor)} (extrapolated)",
                           _ratio(n["wall_s"] * factor, layout["rollup"]["wall_s"]),
                           "yes" if layout["naive_matches_partials"] else "NO"])
    if naive_rows:
        out += ["Naive scan: read every score entity of the hour (query pages of 1,000) and build the same "
                "counters. Measured on fewer scores than the window holds; the 1,000,000-score figures are "
                "**linear extrapolations**, not measurements:", "",
                table(["window", "runs", "scores scanned (measured)", "wall s (median)", "storage requests",
                       "µs per score", "wall s for the whole window", "storage requests for the whole window",
                       "naive / partials (time)", "counters equal the partials'"], naive_rows), ""]
    return out


def drift_section(result: dict[str, Any]) -> list[str]:
    compute, storage, noise = result["compute"], result["storage"], result["noise"]
    out = ["## Drift: a year of hour windows x 5 metrics x 3 segments", "", provenance(result), "",
           f"(a) Full recompute in memory (monitor/drift/compute.py): {fmt(compute['hours'])} hour windows x "
           f"{compute['series']} series = {fmt(compute['window_rows'])} window rows, every window against its "
           "baseline.", ""]
    rows = [[c["baseline"], len(c["runs"]), c["median"]["points"], c["median"]["wall_s"], c["median"]["cpu_s"],
             c["us_per_point"]] for c in compute["cells"]]
    out += [table(["baseline", "runs", "drift points", "wall s (median)", "CPU s (median)", "µs per point (wall)"],
                  rows), ""]
    out += [f"(b) One timer run's drift step on Azurite (7 planned windows, 24 more for `recovered`, their "
            f"baselines) with {fmt(storage['window_rows'])} window rows stored (loaded in {fmt(storage['load_s'])} s):",
            ""]
    rows = [[c["label"], len(c["runs"]), c["median"]["points"], c["median"]["wall_s"], c["median"]["storage_ops"]]
            for c in storage["cells"]]
    out += [table(["stored history", "runs", "drift points", "wall s (median)", "storage requests"], rows), ""]
    out += [f"(c) Sampling noise of the Jensen-Shannon distance: a window of n scores and a baseline of 24 n drawn "
            f"from the same distribution {noise['distribution']}, {fmt(noise['trials'])} trials per row "
            "(docs/drift.md uses it for the default threshold):", ""]
    rows = [[r["n"], r["baseline_n"], r["p50"], r["p95"], r["p99"]] for r in noise["rows"]]
    out += [table(["window n", "baseline n", "median JS", "95th percentile", "99th percentile"],
                  [[a, b, f"{c:.3f}", f"{d:.3f}", f"{e:.3f}"] for a, b, c, d, e in rows]), ""]
    out += ["Real shifts of that distribution (large samples): " + "; ".join(
        f"{e['description']}: JS {e['js_distance']:.3f}" for e in noise["examples"]) + ".", ""]
    return out


SECTIONS = (("judge", "## Judge throughput", judge_section), ("quota", "## Quota saturation", quota_section),
            ("ingest", "## Ingestion", ingest_section), ("aggregate", "## Aggregation", aggregate_section),
            ("drift", "## Drift", drift_section))


def previous_sections() -> dict[str, list[str]]:
    """Sections of the page as it stands, by heading: a scenario not re-run keeps its last figures."""
    if not DOC.exists():
        return {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line, [])
        if current is not None:
            current.append(line)
    return sections


def render() -> str:
    parts = [HEADER]
    previous = previous_sections()
    for name, heading, section in SECTIONS:
        result = load(name)
        kept = next((lines for title, lines in previous.items() if title.startswith(heading)), None)
        if result is not None:
            parts += section(result)
        elif kept is not None:
            parts += kept
        else:
            parts += [f"## {name}", "", "_Not run yet: `make bench`._", ""]
    notes = ROOT / "bench" / "NOTES.md"
    if notes.exists():
        parts += [notes.read_text().strip(), ""]
    return "\n".join(parts)


HEADER = """# Benchmarks

<!-- Generated by `python -m bench.render` from bench/out/*.json; edit bench/render.py or bench/NOTES.md. -->

Reproduce with `make bench` (about 20 minutes on 2 cores; `BENCH_ONLY="judge quota"` for some
scenarios, `BENCH_QUICK=1 make bench` for a small run of a few minutes). `bench/run.sh` builds the
benchmark's own virtual environment `.venv-bench` (the app's requirements + azure-ai-evaluation
1.18 + psutil), runs every scenario in a fresh process, writes `bench/out/*.json` and regenerates
this page. Every figure is the median of the runs shown, on the
machine named above its table. How the numbers are produced and what they do not say: see
[Method and caveats](#method-and-caveats) at the end.
"""


def main() -> None:
    DOC.write_text(render())
    print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
