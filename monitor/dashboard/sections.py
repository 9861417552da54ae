"""Dashboard sections below the charts: the data panel, the alert history and the failing examples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.dashboard.data import DashboardData, FailingView
from monitor.dashboard.html import as_float, cells, dashboard_url, e, headers, num, short_time
from monitor.keys import iso

TEXT_PREVIEW = 240


def _range_params(data: DashboardData, links: Mapping[str, str]) -> dict[str, str | None]:
    """The parameters that keep the page's range (when chosen) and the function key."""
    if data.default_range:
        return dict(links)
    return {"start": iso(data.start) if data.start else None, "end": iso(data.end) if data.end else None, **links}


# --------------------------------------------------------------------------------------------
# Data panel


def data_panel(data: DashboardData) -> str:
    """Records seen and unmatched halves in range (from the windows): the words docs/api.md defines."""
    u = data.unmatched
    items: list[tuple[str, object]] = [("records seen", u.get("records_seen", 0)),
             ("unmatched halves expired", u.get("expired", 0)),
             ("unmatched halves waiting", u.get("waiting", 0))]
    if data.ingestion is not None:  # now, whatever the range (docs/ingestion.md)
        items += [("open blobs", data.ingestion.get("open_blobs", 0)),
                  ("ingestion lag", f"{int(data.ingestion.get('ingestion_lag_seconds') or 0)} s")]
    body = "".join(f'<div><dt>{e(k)}</dt><dd data-testid="panel-{e(k.replace(" ", "-"))}">{e(v)}</dd></div>'
                   for k, v in items)
    return (f'<section class="panel" aria-label="Data in range" data-testid="status-panel"><dl>{body}</dl>'
            '<p class="legend">Records seen: joined request/response pairs in the range\'s windows. An unmatched half '
            "is a request or response whose partner has not arrived: waiting within the join time-to-live "
            f"({data.config.source.join_ttl_minutes} min after its request time), expired after it. Open blobs: "
            "blobs still being appended to; ingestion lag: the age of the oldest byte not read yet.</p></section>")


# --------------------------------------------------------------------------------------------
# Alert history


def alerts_section(data: DashboardData, links: Mapping[str, str], static: bool) -> str:
    head = '<section aria-labelledby="alerts-h"><h2 id="alerts-h">Alert history</h2>'
    if not data.alerts:
        return head + '<p class="empty" data-testid="alert-history">No alerts in this range.</p></section>'
    columns = ("window", "kind", "metric", "segment", "value", "threshold", "message", "webhook", "raised")
    rows = "".join(_alert_row(data, a, links, static) for a in data.alerts)
    return (head + '<p class="legend">Newest first. Each window links to its failing examples.</p>'
            f'<div class="scroll"><table class="stack" data-testid="alert-history"><caption class="meta">'
            f"{len(data.alerts)} alert(s)</caption><thead><tr>{headers(columns)}</tr></thead>"
            f"<tbody>{rows}</tbody></table></div></section>")


def _alert_row(data: DashboardData, alert: Mapping[str, Any], links: Mapping[str, str], static: bool) -> str:
    label = e(short_time(alert.get("window_start"), data.config.window))
    kind = str(alert.get("kind"))
    if static or kind == "judge_drift":  # a calibration run, not a window (the judge panel shows it)
        window = label
    else:
        # a traffic-shape drift (docs/drift.md) names a series, not a metric: every metric's examples
        metric = None if str(alert.get("metric", "")).startswith("traffic.") else alert.get("metric")
        href = dashboard_url(data.name, {**_range_params(data, links), "segment": _segment_param(alert.get("segment")),
                                         "window": str(alert.get("window_start")), "metric": metric},
                             "#failing-h")
        window = f'<a data-testid="alert-window-link" data-kind="{e(kind)}" href="{e(href)}">{label}</a>'
    return '<tr data-testid="alert-row">' + cells([
        ("window", "", window), ("kind", "", f"<strong>{e(alert.get('kind'))}</strong>"),
        ("metric", "", e(alert.get("metric"))), ("segment", "", e(alert.get("segment"))),
        ("value", "num", num(as_float(alert.get("value")))),
        ("threshold", "num", num(as_float(alert.get("threshold")))),
        ("message", "text", e(alert.get("message"))), ("webhook", "", e(alert.get("webhook_status"))),
        ("raised", "", e(alert.get("created_at"))),
    ]) + "</tr>"


def _segment_param(segment: Any) -> str | None:
    return None if segment in (None, "all") else str(segment)


# --------------------------------------------------------------------------------------------
# Failing examples


def failing_section(data: DashboardData, links: Mapping[str, str], static: bool) -> str:
    view = data.failing
    head = '<section aria-labelledby="failing-h"><h2 id="failing-h">Failing examples</h2>'
    if view.window_start is None:
        return (head + '<p class="empty" data-testid="failing-examples">No failing scores in this range.</p>'
                + _choices(data, view, links, static) + "</section>")
    parts = [head, _scope_line(data, view)]
    if view.error:
        parts.append(f'<p class="notice" role="alert" data-testid="failing-error">{e(view.error)}</p>')
    elif not view.records:
        parts.append('<p class="empty" data-testid="failing-examples">No failing examples on this page.</p>')
    else:
        columns = ("lowest", "failed metrics (score: reason)", "prompt", "context", "completion", "time",
                   "deployment", "key")
        rows = "".join(_failing_row(r) for r in view.records)
        parts.append(f'<div class="scroll"><table class="stack" data-testid="failing-examples"><thead><tr>'
                     f"{headers(columns)}</tr></thead><tbody>{rows}</tbody></table></div>")
        parts.append(_pager(data, view, links, static))
    parts.append(_choices(data, view, links, static))
    return "".join(parts) + "</section>"


def _scope_line(data: DashboardData, view: FailingView) -> str:
    why = {"breached": "the latest breached window in this range",
           "selected": "the window you picked",
           "latest": "the latest window with failing scores (no window breached in this range)"}[view.why]
    what = f"{view.metric} scores" if view.metric else "scores"
    per_metric = ", ".join(f"{m} {n}" for m, n in sorted(view.per_metric.items()))
    return (f'<p data-testid="failing-scope">Window <strong>{e(short_time(view.window_start, data.config.window))}'
            f"</strong> · segment <strong>{e(view.segment)}</strong>"
            + (f" · metric <strong>{e(view.metric)}</strong>" if view.metric else "")
            + f" ({e(why)}): <strong data-testid=\"failing-total\">{view.total}</strong> failing {e(what)}"
            + (f" (by metric: {e(per_metric)})" if per_metric and not view.metric else "")
            + ".</p><p class=\"legend\">Lowest score first, newest first among equal scores, with the judge's "
            "reason. Counts come from the window's aggregates.</p>")


def _pager(data: DashboardData, view: FailingView, links: Mapping[str, str], static: bool) -> str:
    last = view.first + len(view.records) - 1
    shown = f"Showing {view.first}-{last} of {view.total}" if view.metric else \
        f"Showing records {view.first}-{last} ({view.total} failing scores)"
    items = [f'<span data-testid="failing-shown">{e(shown)}</span>']
    if not static:
        base = {**_range_params(data, links), "segment": _segment_param(view.segment),
                "window": view.window_start, "metric": view.metric}
        if view.page:
            items.append(f'<a href="{e(dashboard_url(data.name, base, "#failing-h"))}">First page</a>')
        if view.next:
            href = dashboard_url(data.name, {**base, "page": view.next, "first": str(last + 1)}, "#failing-h")
            items.append(f'<a data-testid="failing-next" href="{e(href)}">Next page</a>')
    elif view.next:
        items.append("<span>(serve the dashboard to page through the rest)</span>")
    return f'<nav class="pager" aria-label="Failing examples pages">{"".join(items)}</nav>'


def _choices(data: DashboardData, view: FailingView, links: Mapping[str, str], static: bool) -> str:
    others = [c for c in view.choices if c.window_start != view.window_start]
    if not others:
        return ""
    items = []
    for choice in others:
        label = f"{short_time(choice.window_start, data.config.window)} ({choice.failing})"
        if static:
            items.append(f"<li><span>{e(label)}</span></li>")
            continue
        href = dashboard_url(data.name, {**_range_params(data, links), "segment": _segment_param(choice.segment),
                                         "window": choice.window_start}, "#failing-h")
        items.append(f'<li><a data-testid="failing-window-link" href="{e(href)}">{e(label)}</a></li>')
    return (f'<p class="legend">Other windows of segment {e(view.segment)} with failing scores (count), newest '
            f'first:</p><nav class="controls" aria-label="Windows with failing scores"><ul>{"".join(items)}</ul></nav>')


def _failing_row(record: Mapping[str, Any]) -> str:
    scores: Mapping[str, Mapping[str, Any]] = record.get("scores") or {}
    failed = [(m, s) for m, s in scores.items() if s.get("passed") is False]
    reasons = "".join(
        f'<li><strong>{e(m)}</strong> {num(as_float(s.get("score")))}: '
        f'<span data-testid="failing-reason">{e(s.get("reason") or "no reason recorded")}</span></li>'
        for m, s in failed)
    lowest = as_float(record.get("lowest_score"))
    return '<tr data-testid="failing-row">' + cells([
        ("lowest", "num", num(lowest)), ("failed", "text", f"<ul>{reasons}</ul>"),
        ("prompt", "text", _preview(record.get("prompt"))), ("context", "text", _preview(record.get("context"))),
        ("completion", "text", _preview(record.get("completion"))),
        ("time", "", f'<span data-testid="failing-time">{e(record.get("time"))}</span>'),
        ("deployment", "", e(record.get("deployment"))), ("key", "", f"<code>{e(record.get('key'))}</code>"),
    ]).replace("<td", f'<td data-score="{"" if lowest is None else lowest}"', 1) + "</tr>"


def _preview(text: Any) -> str:
    if not text:
        return '<span class="empty">none</span>'
    value = str(text)
    if len(value) <= TEXT_PREVIEW:
        return e(value)
    return f"<details><summary>{e(value[:TEXT_PREVIEW])}…</summary>{e(value)}</details>"
