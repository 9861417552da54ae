"""Plain-text views of results for the command line: aligned tables of windows, alerts and records.

Each view takes exactly what the matching HTTP route returns (see :mod:`monitor.results`) and
renders it; `--json` prints the same object as JSON instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

CELL_LIMIT = 60


def _cell(value: Any, limit: int = CELL_LIMIT) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1%}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, numeric: Sequence[int] = ()) -> str:
    """An aligned table: a header line, a rule, one line per row; numeric columns right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def windows_table(answer: Mapping[str, Any]) -> str:
    """`metrics`: one line per window x metric x segment, oldest first."""
    windows = answer.get("windows") or []
    if not windows:
        return f"monitor {answer.get('monitor')}: no windows in this range (has the timer run? `aggregate`)"
    headers = ("window start", "metric", "segment", "records seen", "scored", "passed", "pass rate",
               "threshold", "average", "errors", "breached", "final")
    rows = [[_cell(w.get("window_start")), _cell(w.get("metric")), _cell(w.get("segment")),
             _cell(w.get("row_count")), _cell(w.get("scored")), _cell(w.get("passed")),
             _pct(w.get("pass_rate")), _pct(w.get("threshold")),
             "-" if w.get("average_score") is None else f"{float(w['average_score']):.2f}",
             _cell(w.get("errors")), "BREACHED" if w.get("breached") else "", _cell(w.get("final"))]
            for w in windows]
    return table(headers, rows, numeric=(3, 4, 5, 6, 7, 8, 9))


def alerts_table(answer: Mapping[str, Any]) -> str:
    """`alerts`: one line per alert, oldest window first."""
    alerts = answer.get("alerts") or []
    if not alerts:
        return f"monitor {answer.get('monitor')}: no alerts in this range"
    headers = ("window start", "kind", "metric", "segment", "value", "threshold", "raised", "webhook")
    rows = [[_cell(a.get("window_start")), _cell(a.get("kind")), _cell(a.get("metric")), _cell(a.get("segment")),
             _cell(a.get("value")), _cell(a.get("threshold")), _cell(a.get("created_at")),
             _cell(a.get("webhook_status"))] for a in alerts]
    return table(headers, rows, numeric=(4, 5))


def records_table(answer: Mapping[str, Any]) -> str:
    """`records`: one line per record (lowest score first), its failing metrics and the prompt."""
    records = answer.get("records") or []
    if not records:
        return f"monitor {answer.get('monitor')}: no scored records match"
    headers = ("lowest", "time", "deployment", "failing metrics", "prompt", "key")
    rows = []
    for r in records:
        scores: Mapping[str, Mapping[str, Any]] = r.get("scores") or {}
        failing = ", ".join(f"{m} {float(s['score']):.1f}" for m, s in scores.items()
                            if s.get("passed") is False and s.get("score") is not None)
        rows.append([_cell(r.get("lowest_score")), _cell(r.get("time")), _cell(r.get("deployment")),
                     failing or "-", _cell(r.get("prompt"), 48), _cell(r.get("key"), 40)])
    return table(headers, rows, numeric=(0,))
