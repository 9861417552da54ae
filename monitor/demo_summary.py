"""The summary `python -m monitor demo` prints: a table per day and deployment, then what it means.

Words (docs/demo.md): *lines read* are JSONL lines in the blobs; *records* are joined
request/response pairs (a window's `row_count` is the records seen in it); an *unmatched half* is a
request or response whose partner has not arrived, *expired* once the join time-to-live has passed
since its request time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.keys import iso

METRIC_ORDER = ("coherence", "fluency", "groundedness", "relevance", "similarity")
DEMO_NAME = "contoso-support"


@dataclass(frozen=True)
class Totals:
    """What the demo's ingestion did in this run (blob-trigger and queue-trigger paths)."""

    blobs: int
    processed: int
    skipped: int
    judged_inline: int
    drained: int
    poisoned: int


def segment_label(segment: str) -> str:
    return segment.split("=", 1)[1] if segment.startswith("deployment=") else "(all)"


def window_label(start: str, kind: str) -> str:
    return start[:10] if kind == "day" else start[:13].replace("T", " ") + "h"


def judge_name(config: Any) -> str:
    judge = config.judge
    return "heuristic" if judge.provider == "heuristic" else f"{judge.provider}:{judge.model_name}"


def judge_line(config: Any) -> str:
    judge = config.judge
    if judge.provider == "heuristic":
        return ("Judge: heuristic (built-in text statistics and lexical overlap, no network): "
                "scores are approximate")
    target = judge.endpoint if judge.provider == "azure_openai" else (judge.base_url or "api.openai.com")
    return f"Judge: {judge.provider}:{judge.model_name} at {target} (LLM-as-judge)"


def ordered_metrics(config: Any) -> list[str]:
    metrics = [m for m in METRIC_ORDER if m in config.enabled_metrics()]
    return metrics + [m for m in config.enabled_metrics() if m not in metrics]


def summary_table(config: Any, windows: Sequence[Mapping[str, Any]], alerts: Sequence[Mapping[str, Any]]
                  ) -> tuple[list[str], list[Mapping[str, Any]]]:
    """The table lines (deployments and all traffic) and the breached deployment windows."""
    alert_count: Counter[tuple[str, str]] = Counter(
        (str(a["window_start"]), str(a.get("segment", "all"))) for a in alerts)
    metrics = ordered_metrics(config)
    cells: dict[tuple[str, str], dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for w in windows:
        if w["segment"] == "all" or str(w["segment"]).startswith("deployment="):
            cells[(str(w["window_start"]), str(w["segment"]))][str(w["metric"])] = w
    width = max([12, *(len(m) + 1 for m in metrics)])
    head = (f"{'window':<13} {'deployment':<11} {'records':>7} " + "".join(f"{m:>{width}}" for m in metrics)
            + "  alerts")
    lines = [head, "-" * len(head)]
    breached: list[Mapping[str, Any]] = []
    for window_start, segment in sorted(cells, key=lambda k: (k[0], k[1] == "all", k[1])):
        row = cells[(window_start, segment)]
        seen = max(int(item.get("row_count") or 0) for item in row.values())
        text = f"{window_label(window_start, config.window):<13} {segment_label(segment):<11} {seen:>7} "
        for metric in metrics:
            window = row.get(metric)
            rate = None if window is None else window.get("pass_rate")
            flagged = bool(window and window.get("breached"))
            text += f"{'-' if rate is None else f'{rate:.2f}' + ('!' if flagged else ' '):>{width}}"
            if window is not None and flagged and segment != "all":
                breached.append(window)
        lines.append(text + f"  {alert_count.get((window_start, segment), 0):>6}")
    return lines, breached


def regression_lines(breached: Sequence[Mapping[str, Any]], kind: str) -> list[str]:
    """One line per deployment window with breached metrics: metric, pass rate, window, deployment."""
    grouped: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for w in breached:
        grouped[(str(w["window_start"]), str(w["window_end"]), segment_label(str(w["segment"])))].append(w)
    lines = []
    for (start, end, deployment), rows in sorted(grouped.items()):
        metrics = ", ".join(f"{w['metric']} {w['pass_rate']:.2f} < {w['threshold']:.2f} "
                            f"({w['passed']}/{w['scored']} passed)" for w in rows)
        lines.append(f"REGRESSION: deployment {deployment}, {kind} window {window_label(start, kind)} "
                     f"({start} to {end}): {metrics}")
    return lines or ["No regression: every window of every deployment is above its pass-rate thresholds."]


def alerts_line(alerts: Sequence[Mapping[str, Any]], new: int) -> str:
    """How many alerts, and which segments and kinds they belong to, so the count adds up."""
    by_segment = Counter(str(a.get("segment", "all")) for a in alerts)
    kinds = Counter(str(a.get("kind")) for a in alerts)
    parts = ", ".join(f"{n} for {'all traffic' if s == 'all' else s}" for s, n in sorted(by_segment.items()))
    line = f"Alerts: {len(alerts)} stored, {new} new in this run"
    if not alerts:
        return line
    return (line + f": {parts} ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}; one per metric, "
            "window and segment; the table's alerts column counts those of the deployments and all "
            "traffic; the model_version segments are on the dashboard)")


def similarity_line(windows: Sequence[Mapping[str, Any]]) -> str | None:
    """Why similarity has fewer scores: it needs a ground truth, which only some records carry."""
    own = [w for w in windows if w["metric"] == "similarity" and w["segment"] == "all"]
    if not own:
        return None
    seen = sum(int(w.get("row_count") or 0) for w in own)
    judged = sum(int(w.get("scored") or 0) + int(w.get("errors") or 0) for w in own)
    missing = sum(int(w.get("not_applicable") or 0) for w in own)
    return (f"Similarity compares the answer with a ground truth, so only the {judged} of {seen} records that "
            f"carry one are scored; the other {missing} count as not applicable, not as failures.")


def failing_lines(breached: Sequence[Mapping[str, Any]], port: int | None) -> list[str]:
    """Where to read the failing examples of the regression."""
    if not breached:
        return []
    worst = min(breached, key=lambda w: (float(w.get("pass_rate") or 0), str(w["metric"])))
    start = str(worst["window_start"])
    where = "the dashboard lists those of the breached window first"
    if port is not None:
        where += f" (http://127.0.0.1:{port}/api/monitors/{DEMO_NAME}/dashboard#failing-h)"
        shell = "from the shell, with the export lines printed below:"
    else:
        shell = "from the shell, against the demo's storage while `make demo` serves:"
    return [f"Failing examples: {where}; {shell}",
            f"  python -m monitor records --monitor {DEMO_NAME} --segment {worst['segment']} "
            f"--metric {worst['metric']} --failing --start {start} --end {worst['window_end']}"]


def ingestion_lines(status: Mapping[str, Any], totals: Totals) -> list[str]:
    detail = status.get("unmatched_detail") or {}
    reasons = ", ".join(f"{k} {v}" for k, v in status["quarantine_reasons"].items()) or "none"
    scores = ", ".join(f"{k} {v}" for k, v in status["scores"].items())
    return [
        f"Blobs: {totals.blobs} JSONL ({totals.processed} processed, {totals.skipped} already done), "
        f"{status.get('lines', 0)} lines read; batches: {totals.judged_inline} judged in the blob trigger, "
        f"{totals.drained} through the queue" + (f", {totals.poisoned} poisoned" if totals.poisoned else ""),
        f"Records: {status['records']} joined, {status['unmatched']} unmatched halves "
        f"({detail.get('expired', 0)} expired, {detail.get('waiting', 0)} waiting for their partner), "
        f"{status['quarantined']} quarantined lines ({reasons}); scores: {scores}",
    ]


def summary_lines(config: Any, days: Sequence[datetime], totals: Totals, new_alerts: int,
                  port: int | None) -> tuple[list[str], list[str]]:
    """Every line of the summary, and the segments (`deployment=NAME`) with breached windows."""
    from monitor.aggregate import query_alerts, query_windows
    from monitor.status import monitor_status

    start, end = days[0], days[-1] + timedelta(days=1)
    windows = query_windows(DEMO_NAME, start=start, end=end)
    alerts = query_alerts(DEMO_NAME, start=start, end=end)
    table, breached = summary_table(config, windows, alerts)
    lines = ["", f"Monitor {DEMO_NAME}: {config.window} windows from {iso(start)} to {iso(end)}, pass rate per "
             f"metric (acceptable score >= 3, '!' = below the threshold 0.70 with at least "
             f"{config.alerts.min_samples} scores); records = joined request/response pairs",
             judge_line(config), "", *table, ""]
    lines += ingestion_lines(monitor_status(DEMO_NAME), totals)
    similarity = similarity_line(windows)
    lines += [similarity] if similarity else []
    lines.append(alerts_line(alerts, new_alerts))
    lines += regression_lines(breached, config.window)
    lines += failing_lines(breached, port)
    return lines, sorted({str(w["segment"]) for w in breached})
