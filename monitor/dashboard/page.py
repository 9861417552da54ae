"""The dashboard HTML: one self-contained page (inline CSS and SVG, no script, nothing fetched)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from monitor.config import MonitorConfig
from monitor.dashboard.data import DashboardData, MetricView
from monitor.dashboard.quality import QualityData, drift_figure, judge_panel, traffic_panel
from monitor.dashboard.svg import histogram_chart, pass_rate_chart
from monitor.keys import iso

TEXT_PREVIEW = 240

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1a1a1a; background: #f4f5f7; }
header { background: #fff; border-bottom: 1px solid #c8c8c8; padding: 12px 24px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
main { max-width: 1320px; margin: 0 auto; padding: 12px 24px 32px; }
h2 { font-size: 18px; margin: 24px 0 8px; }
h3 { font-size: 16px; margin: 0 0 6px; }
a { color: #005a8c; }
a:focus, button:focus, input:focus { outline: 3px solid #e69f00; outline-offset: 2px; }
.meta { color: #4d4d4d; margin: 0; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 10px; font-size: 13px; font-weight: 600;
         border: 1px solid #1a1a1a; background: #fff; margin-left: 6px; }
.badge.approx { background: #fff1cc; border-color: #8a5a00; color: #3d2a00; }
.badge.bad { background: #ffe3d6; border-color: #a33f00; color: #6b2900; }
.badge.warn { background: #fff1cc; border-color: #8a5a00; color: #3d2a00; }
.badge.good { background: #e0f0ff; border-color: #005a8c; color: #003a5c; }
nav.controls { display: flex; flex-wrap: wrap; gap: 16px; align-items: center; margin-top: 8px; }
nav.controls ul { list-style: none; display: flex; flex-wrap: wrap; gap: 6px; margin: 0; padding: 0; }
nav.controls li a, nav.controls li span { display: inline-block; padding: 3px 10px; border: 1px solid #8c8c8c;
         border-radius: 4px; background: #fff; text-decoration: none; }
nav.controls li [aria-current] { background: #003a5c; color: #fff; border-color: #003a5c; font-weight: 600; }
form.range { display: flex; gap: 6px; align-items: center; }
form.range input { width: 190px; padding: 3px 6px; border: 1px solid #8c8c8c; border-radius: 4px; }
form.range button { padding: 3px 12px; border: 1px solid #003a5c; border-radius: 4px; background: #003a5c;
         color: #fff; cursor: pointer; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; }
.tile { background: #fff; border: 1px solid #c8c8c8; border-radius: 6px; padding: 8px 12px; }
.tile .value { font-size: 22px; font-weight: 700; line-height: 1.2; }
article.metric { background: #fff; border: 1px solid #c8c8c8; border-radius: 6px; padding: 12px 16px;
         margin-bottom: 12px; }
.metric-body { display: grid; grid-template-columns: 200px minmax(0, 2.1fr) minmax(0, 1fr); gap: 16px;
         align-items: start; }
dl.stats { display: grid; grid-template-columns: auto auto; gap: 2px 10px; margin: 0; }
dl.stats dt { color: #4d4d4d; }
dl.stats dd { margin: 0; font-weight: 600; text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0; }
figcaption { font-size: 12px; color: #4d4d4d; }
svg.chart { display: block; max-height: 240px; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #c8c8c8; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid #e0e0e0; }
th { background: #eef0f3; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.text { max-width: 360px; overflow-wrap: anywhere; }
details summary { cursor: pointer; color: #005a8c; }
.empty { color: #4d4d4d; font-style: italic; }
.legend { font-size: 12px; color: #4d4d4d; margin: 4px 0 0; }
footer { color: #4d4d4d; font-size: 12px; margin-top: 24px; }
@media (max-width: 1100px) { .metric-body { grid-template-columns: 1fr; } }
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def dashboard_url(name: str, params: Mapping[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"/api/monitors/{quote(name)}/dashboard" + (f"?{query}" if query else "")


def _document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>")


# --------------------------------------------------------------------------------------------
# Dashboard of one monitor


def render_dashboard(data: DashboardData, *, link_params: Mapping[str, str] | None = None,
                     static: bool = False) -> str:
    """The page; `static` (an exported file) replaces the navigation links by plain text."""
    links = dict(link_params or {})
    body = "".join([
        _header(data, links, static),
        "<main>",
        _tiles(_by_severity(data.metrics)),
        '<section aria-labelledby="metrics-h"><h2 id="metrics-h">Metrics</h2>'
        '<p class="legend">Metrics with breached windows come first.</p>',
        "".join(_metric(m, data.quality) for m in _by_severity(data.metrics))
        or '<p class="empty">No metric is enabled.</p>',
        "</section>",
        traffic_panel(data.quality),
        judge_panel(data.quality),
        _alerts(data.alerts),
        _failing(data.failing),
        f"<footer>Generated {iso(data.generated_at)} · monitor {_e(data.name)} · source "
        f"{_e(data.config.source.container)}/{_e(data.config.source.prefix)} · window {_e(data.config.window)}"
        "</footer></main>",
    ])
    return _document(f"{data.name}: generative-AI quality", body)


def _header(data: DashboardData, links: dict[str, str], static: bool) -> str:
    badge = ('<span class="badge approx" data-testid="judge-badge" role="note">approximate: heuristic judge</span>'
             if data.approximate else f'<span class="badge" data-testid="judge-badge">judge: {_e(data.judge)}</span>')
    span = f"{iso(data.start) if data.start else 'beginning'} to {iso(data.end) if data.end else 'now'}"
    return (f'<header><h1>Quality of <span data-testid="monitor-name">{_e(data.name)}</span></h1>'
            f'<p class="meta">Judge: <strong data-testid="judge-name">{_e(data.judge)}</strong>{badge} · '
            f'Range: {_e(span)} · Segment: <strong>{_e(data.segment)}</strong></p>'
            f"{_controls(data, links, static)}</header>")


def _controls(data: DashboardData, links: dict[str, str], static: bool) -> str:
    if static:
        return ('<p class="meta">Exported page: serve it with <code>python -m monitor serve</code> to switch '
                f"segments ({_e(', '.join(data.segments))}) or the time range.</p>")
    base = {"start": iso(data.start) if data.start else None, "end": iso(data.end) if data.end else None, **links}
    items = []
    for segment in data.segments:
        label = "all traffic" if segment == "all" else segment
        if segment == data.segment:
            items.append(f'<li><span aria-current="page">{_e(label)}</span></li>')
        else:
            href = dashboard_url(data.name, {**base, "segment": None if segment == "all" else segment})
            items.append(f'<li><a href="{_e(href)}" data-testid="segment-link">{_e(label)}</a></li>')
    hidden = "".join(f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">'
                     for k, v in {**links, "segment": data.segment}.items())
    return (f'<nav class="controls" aria-label="Dashboard filters"><a href="{_e(_index_url(links))}">All monitors</a>'
            f'<span>Segment:</span><ul data-testid="segment-selector">{"".join(items)}</ul>'
            f'<form class="range" method="get" action="{_e(dashboard_url(data.name, {}))}">'
            f'<label for="start">From</label><input id="start" name="start" value="{_e(base["start"])}" '
            f'placeholder="YYYY-MM-DDTHH:MM:SSZ">'
            f'<label for="end">to</label><input id="end" name="end" value="{_e(base["end"])}" placeholder="now">'
            f'{hidden}<button type="submit">Apply</button></form></nav>')


def _tiles(metrics: Sequence[MetricView]) -> str:
    tiles = []
    for view in metrics:
        tiles.append(f'<div class="tile" data-testid="tile-{_e(view.name)}"><div>{_e(view.name)} {_state(view)}</div>'
                     f'<div class="value">{_pct(view.pass_rate)}</div>'
                     f'<div class="meta">threshold {_pct(view.threshold)} · '
                     f"{view.breaches} breached window{'s' if view.breaches != 1 else ''}</div></div>")
    return f'<section aria-label="Overview" class="tiles">{"".join(tiles)}</section>'


def _state(view: MetricView) -> str:
    """A text badge (never colour alone): below threshold now, recovered after a breach, ok, no scores."""
    if view.latest_breached:
        return '<span class="badge bad">below threshold</span>'
    if view.breaches:
        return '<span class="badge warn">recovered after breach</span>'
    return '<span class="badge good">ok</span>' if view.scored else '<span class="badge">no scores</span>'


def _by_severity(metrics: Sequence[MetricView]) -> list[MetricView]:
    """Metrics breached now first, then those with breaches in the range, then the rest (stable)."""
    return sorted(metrics, key=lambda m: (not m.latest_breached, m.breaches == 0))


def _metric(view: MetricView, quality: QualityData | None = None) -> str:
    stats = [
        ("pass rate", _pct(view.pass_rate)), ("threshold", _pct(view.threshold)),
        ("average score", _num(view.average)), ("acceptable score", _num(view.settings.acceptable_score, 1)),
        ("rows", str(view.rows)), ("scored", str(view.scored)), ("errors", str(view.errors)),
        ("not applicable", str(view.not_applicable)), ("breached windows", str(view.breaches)),
    ]
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in stats)
    name = _e(view.name)
    return (f'<article class="metric" aria-labelledby="m-{name}" data-testid="metric-{name}">'
            f'<h3 id="m-{name}">{name}</h3><div class="metric-body">'
            f'<dl class="stats" data-testid="stats-{name}">{rows}</dl>'
            f"<figure>{pass_rate_chart(view.name, view.points, view.threshold)}"
            f"<figcaption>Pass rate per window. Dashed line: threshold. Triangle labelled “breach”: "
            f"window below the threshold with enough samples. Square: window without scores.</figcaption>"
            f"{_window_table(view)}{drift_figure(view.name, quality)}</figure>"
            f"<figure>{histogram_chart(view.name, view.histogram, view.settings.acceptable_score)}"
            f"<figcaption>Scores 1-5 in the range; starred (vermilion) bars are below the acceptable "
            f"score.</figcaption></figure></div></article>")


def _window_table(view: MetricView) -> str:
    if not view.points:
        return ""
    rows = "".join(
        f"<tr><td>{_e(iso(p.start))}</td><td class=\"num\">{_pct(p.pass_rate)}</td>"
        f"<td>{'breached' if p.breached else 'no scores' if p.pass_rate is None else 'ok'}</td></tr>"
        for p in view.points)
    return (f"<details><summary>Window data ({len(view.points)} windows)</summary>"
            f'<table><thead><tr><th scope="col">window start</th><th scope="col">pass rate</th>'
            f'<th scope="col">state</th></tr></thead><tbody>{rows}</tbody></table></details>')


def _alerts(alerts: Sequence[Mapping[str, Any]]) -> str:
    head = '<section aria-labelledby="alerts-h"><h2 id="alerts-h">Alert history</h2>'
    if not alerts:
        return head + '<p class="empty" data-testid="alert-history">No alerts in this range.</p></section>'
    columns = ("window start", "kind", "metric", "segment", "value", "threshold", "message", "webhook", "raised")
    rows = "".join(
        f"<tr><td>{_e(a.get('window_start'))}</td><td><strong>{_e(a.get('kind'))}</strong></td>"
        f"<td>{_e(a.get('metric'))}</td><td>{_e(a.get('segment'))}</td>"
        f"<td class=\"num\">{_num(_float(a.get('value')))}</td>"
        f"<td class=\"num\">{_num(_float(a.get('threshold')))}</td>"
        f"<td class=\"text\">{_e(a.get('message'))}</td><td>{_e(a.get('webhook_status'))}</td>"
        f"<td>{_e(a.get('created_at'))}</td></tr>" for a in alerts)
    return (head + f'<table data-testid="alert-history"><caption class="meta">{len(alerts)} alert(s), newest '
            f"first</caption><thead><tr>{_headers(columns)}</tr></thead><tbody>{rows}</tbody></table></section>")


def _failing(records: Sequence[Mapping[str, Any]]) -> str:
    head = ('<section aria-labelledby="failing-h"><h2 id="failing-h">Failing examples</h2>'
            '<p class="legend">Records with a score below the acceptable score, lowest first, with the '
            "judge's reason.</p>")
    if not records:
        return head + '<p class="empty" data-testid="failing-examples">No failing examples in this range.</p></section>'
    columns = ("lowest", "failed metrics (score: reason)", "prompt", "completion", "time", "deployment", "key")
    rows = "".join(_failing_row(r) for r in records)
    return (head + f'<table data-testid="failing-examples"><thead><tr>{_headers(columns)}</tr></thead>'
            f"<tbody>{rows}</tbody></table></section>")


def _failing_row(record: Mapping[str, Any]) -> str:
    scores: Mapping[str, Mapping[str, Any]] = record.get("scores") or {}
    failed = [(m, s) for m, s in scores.items() if s.get("passed") is False]
    reasons = "".join(
        f'<li><strong>{_e(m)}</strong> {_num(_float(s.get("score")))}: '
        f'<span data-testid="failing-reason">{_e(s.get("reason") or "no reason recorded")}</span></li>'
        for m, s in failed)
    return (f'<tr data-testid="failing-row"><td class="num">{_num(_float(record.get("lowest_score")))}</td>'
            f'<td class="text"><ul>{reasons}</ul></td>'
            f'<td class="text">{_preview(record.get("prompt"))}</td>'
            f'<td class="text">{_preview(record.get("completion"))}</td>'
            f"<td>{_e(record.get('time'))}</td><td>{_e(record.get('deployment'))}</td>"
            f"<td><code>{_e(record.get('key'))}</code></td></tr>")


def _preview(text: Any) -> str:
    if not text:
        return '<span class="empty">none</span>'
    value = str(text)
    if len(value) <= TEXT_PREVIEW:
        return _e(value)
    return f"<details><summary>{_e(value[:TEXT_PREVIEW])}…</summary>{_e(value)}</details>"


def _headers(columns: Iterable[str]) -> str:
    return "".join(f'<th scope="col">{_e(c)}</th>' for c in columns)


def _float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# Index of monitors


def _index_url(links: Mapping[str, str]) -> str:
    query = urlencode(dict(links))
    return "/api/dashboard" + (f"?{query}" if query else "")


def render_index(configs: Sequence[MonitorConfig], *, link_params: Mapping[str, str] | None = None) -> str:
    links = dict(link_params or {})
    if configs:
        rows = "".join(
            f'<tr><td><a data-testid="monitor-link" href="{_e(dashboard_url(c.name, links))}">{_e(c.name)}</a></td>'
            f"<td>{_e(c.source.format)}: {_e(c.source.container)}/{_e(c.source.prefix)}</td>"
            f"<td>{_e(c.judge.provider)}{' (approximate)' if c.judge.provider == 'heuristic' else ''}</td>"
            f"<td>{_e(', '.join(c.enabled_metrics()))}</td></tr>" for c in configs)
        table = (f'<table data-testid="monitor-index"><thead><tr>'
                 f"{_headers(('monitor', 'source', 'judge', 'metrics'))}</tr></thead><tbody>{rows}</tbody></table>")
    else:
        table = ('<p class="empty" data-testid="monitor-index">No monitors yet: create one with '
                 "<code>PUT /api/monitors/{name}</code> or <code>python -m monitor monitors put FILE</code>.</p>")
    body = (f"<header><h1>Generative-AI quality monitors</h1><p class=\"meta\">{len(configs)} monitor(s)</p>"
            f'</header><main><h2>Monitors</h2>{table}<footer>API: <a href="/api/docs">/api/docs</a> · '
            f'<a href="/api/openapi.json">/api/openapi.json</a></footer></main>')
    return _document("Generative-AI quality monitors", body)
