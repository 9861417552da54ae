"""The dashboard HTML: one self-contained page (inline CSS and SVG, no script, nothing fetched)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

from monitor.config import MonitorConfig
from monitor.dashboard.data import QUICK_SPANS, DashboardData, MetricView
from monitor.dashboard.html import dashboard_url, document, e, headers, num, pct, short_time
from monitor.dashboard.quality import drift_figure, judge_panel, traffic_panel
from monitor.dashboard.sections import alerts_section, data_panel, failing_section
from monitor.dashboard.svg import histogram_chart, pass_rate_chart
from monitor.keys import iso

# --------------------------------------------------------------------------------------------
# Dashboard of one monitor


def render_dashboard(data: DashboardData, *, link_params: Mapping[str, str] | None = None,
                     static: bool = False) -> str:
    """The page; `static` (an exported file) replaces the navigation links by plain text."""
    links = dict(link_params or {})
    ordered = _by_severity(data.metrics)
    body = "".join([
        _header(data, links, static),
        "<main>",
        "".join(f'<p class="notice" role="alert" data-testid="notice">{e(n)}</p>' for n in data.notices),
        _tiles(data, ordered),
        data_panel(data),
        '<section aria-labelledby="metrics-h"><h2 id="metrics-h">Metrics</h2>'
        '<p class="legend">Metrics with breached windows come first.</p>',
        "".join(_metric(data, m) for m in ordered) or '<p class="empty">No metric is enabled.</p>',
        "</section>",
        traffic_panel(data.quality),
        judge_panel(data.quality),
        alerts_section(data, links, static),
        failing_section(data, links, static),
        f"<footer>Generated {iso(data.generated_at)} · monitor {e(data.name)} · source "
        f"{e(data.config.source.container)}/{e(data.config.source.prefix)} · window {e(data.config.window)}"
        "</footer></main>",
    ])
    return document(f"{data.name}: generative-AI quality", body)


def _range_text(data: DashboardData) -> str:
    span = f"{iso(data.start) if data.start else 'the beginning'} to {iso(data.end) if data.end else 'now'}"
    if data.default_range:
        return f"last 7 days of data, {span} (default: up to the newest aggregated data)"
    return span


def _header(data: DashboardData, links: dict[str, str], static: bool) -> str:
    badge = ('<span class="badge approx" data-testid="judge-badge" role="note">approximate: heuristic judge</span>'
             if data.approximate else f'<span class="badge" data-testid="judge-badge">judge: {e(data.judge)}</span>')
    return (f'<header><h1>Quality of <span data-testid="monitor-name">{e(data.name)}</span></h1>'
            f'<p class="meta">Judge: <strong data-testid="judge-name">{e(data.judge)}</strong>{badge} · '
            f'Range: <span data-testid="range">{e(_range_text(data))}</span> · Segment: '
            f"<strong>{e(data.segment)}</strong></p>"
            f"{_controls(data, links, static)}</header>")


def _controls(data: DashboardData, links: dict[str, str], static: bool) -> str:
    if static:
        return ('<p class="meta">Exported page: serve it with <code>python -m monitor serve</code> to switch '
                f"segments ({e(', '.join(data.segments))}), the time range or the failing examples' window.</p>")
    keep = {} if data.default_range else {"start": iso(data.start) if data.start else None,
                                          "end": iso(data.end) if data.end else None}
    items = []
    for segment in data.segments:
        label = "all traffic" if segment == "all" else segment
        if segment == data.segment:
            items.append(f'<li><span aria-current="page">{e(label)}</span></li>')
        else:
            href = dashboard_url(data.name, {**keep, **links, "segment": None if segment == "all" else segment})
            items.append(f'<li><a href="{e(href)}" data-testid="segment-link">{e(label)}</a></li>')
    return (f'<nav class="controls" aria-label="Dashboard filters"><a href="{e(_index_url(links))}">All monitors</a>'
            f'<span>Segment:</span><ul data-testid="segment-selector">{"".join(items)}</ul>'
            f"{_quick_links(data, links)}{_range_form(data, links)}</nav>")


def _quick_links(data: DashboardData, links: dict[str, str]) -> str:
    """Last 24 h / 7 d / 30 d up to the newest aggregated data."""
    if data.anchor is None:
        return ""
    segment = None if data.segment == "all" else data.segment
    items = []
    for label, span in QUICK_SPANS.items():
        start, end = data.anchor - span, data.anchor
        if (data.start, data.end) == (start, end):
            items.append(f'<li><span aria-current="true">{e(label)}</span></li>')
            continue
        href = dashboard_url(data.name, {"start": iso(start), "end": iso(end), "segment": segment, **links})
        items.append(f'<li><a data-testid="quick-range" href="{e(href)}">{e(label)}</a></li>')
    return f'<span>Last:</span><ul data-testid="quick-ranges">{"".join(items)}</ul>'


def _range_form(data: DashboardData, links: dict[str, str]) -> str:
    query = data.query
    bad = {key: any(n.startswith(label) for n in data.notices) for key, label in (("start", "From"), ("end", "To"))}
    chosen = not data.default_range
    shown = {
        "start": query.typed_start if bad["start"] else (iso(data.start) if data.start and chosen else ""),
        "end": query.typed_end if bad["end"] else (iso(data.end) if data.end and chosen else ""),
    }
    hidden = "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">'
                     for k, v in {**links, "segment": data.segment}.items())
    fields = "".join(
        f'<label for="{key}">{label}</label><input id="{key}" name="{key}" value="{e(shown[key])}" '
        f'placeholder="{placeholder}"' + (' aria-invalid="true"' if bad[key] else "") + ">"
        for key, label, placeholder in (("start", "From", "e.g. 2026-11-20T00:00:00Z"),
                                        ("end", "to", "e.g. 2026-11-21T00:00:00Z")))
    return (f'<form class="range" method="get" action="{e(dashboard_url(data.name, {}))}">{fields}'
            f'{hidden}<button type="submit">Apply</button></form>')


def _tiles(data: DashboardData, metrics: Sequence[MetricView]) -> str:
    return (f'<section aria-label="Overview" class="tiles">{"".join(_tile(data, v) for v in metrics)}</section>'
            '<p class="legend">Big number: the latest complete window. A breached window in the range is named '
            "below it; the whole range comes last.</p>")


def _tile(data: DashboardData, view: MetricView) -> str:
    window = data.config.window
    latest = view.latest
    if latest is None:
        head = '<div class="value" data-testid="card-latest">n/a</div><div class="meta">no window in this range</div>'
    else:
        rate = latest.get("pass_rate")
        kind = "latest complete window" if latest.get("final", True) else "latest window (still open)"
        head = (f'<div class="value" data-testid="card-latest">{pct(None if rate is None else float(rate))}</div>'
                f'<div class="meta">{e(kind)} {e(short_time(latest.get("window_start"), window))}</div>')
    breach = ""
    if view.breached is not None:
        b = view.breached
        counts = f"{b.get('passed', 0)}/{b.get('scored', 0)} passed"
        more = "" if view.breaches == 1 else f" · {view.breaches} breached windows in range"
        if latest is not None and b.get("window_start") == latest.get("window_start"):
            text = f"breached in this window ({counts}){more}"
        else:
            rate = pct(float(b["pass_rate"]) if b.get("pass_rate") is not None else None)
            text = f"breached: {rate} in {short_time(b.get('window_start'), window)} ({counts}){more}"
        breach = f'<div class="breach" data-testid="card-breach">{e(text)}</div>'
    return (f'<div class="tile" data-testid="tile-{e(view.name)}"><div>{e(view.name)} {_state(view)}</div>'
            f"{head}{breach}"
            f'<div class="meta" data-testid="card-range">range: {pct(view.pass_rate)} of {view.scored} scored · '
            f"threshold {pct(view.threshold)}</div></div>")


def _state(view: MetricView) -> str:
    """A text badge (never colour alone): the latest window below threshold, recovered after a
    breach in the range, ok, or no scores."""
    if view.latest_breached:
        return '<span class="badge bad">below threshold</span>'
    if view.breaches:
        return '<span class="badge warn">recovered after breach</span>'
    return '<span class="badge good">ok</span>' if view.scored else '<span class="badge">no scores</span>'


def _by_severity(metrics: Sequence[MetricView]) -> list[MetricView]:
    """Metrics breached now first, then those with breaches in the range, then the rest (stable)."""
    return sorted(metrics, key=lambda m: (not m.latest_breached, m.breaches == 0))


def _metric(data: DashboardData, view: MetricView) -> str:
    stats = [
        ("pass rate (range)", pct(view.pass_rate)), ("threshold", pct(view.threshold)),
        ("average score", num(view.average)), ("acceptable score", num(view.settings.acceptable_score, 1)),
        ("records seen", str(view.records_seen)), ("scored", str(view.scored)), ("errors", str(view.errors)),
        ("not applicable", str(view.not_applicable)), ("breached windows", str(view.breaches)),
    ]
    rows = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in stats)
    name = e(view.name)
    return (f'<article class="metric" aria-labelledby="m-{name}" data-testid="metric-{name}">'
            f'<h3 id="m-{name}">{name}</h3><div class="metric-body">'
            f'<dl class="stats" data-testid="stats-{name}">{rows}</dl>'
            f"<figure>{pass_rate_chart(view.name, view.points, view.threshold)}"
            f"<figcaption>Pass rate per window. Dashed line: threshold. Triangle labelled “breach”: "
            f"window below the threshold with enough samples. Square: window without scores.</figcaption>"
            f"{_window_table(data, view)}{drift_figure(view.name, data.quality)}</figure>"
            f"<figure>{histogram_chart(view.name, view.histogram, view.settings.acceptable_score)}"
            f"<figcaption>Scores 1-5 in the range; starred (vermilion) bars are below the acceptable "
            f"score.</figcaption></figure></div></article>")


def _window_table(data: DashboardData, view: MetricView) -> str:
    if not view.points:
        return ""
    rows = "".join(
        f"<tr><td>{e(short_time(iso(p.start), data.config.window))}</td><td class=\"num\">{pct(p.pass_rate)}</td>"
        f"<td>{'breached' if p.breached else 'no scores' if p.pass_rate is None else 'ok'}</td></tr>"
        for p in view.points)
    return (f"<details><summary>Window data ({len(view.points)} windows)</summary>"
            f'<div class="scroll"><table><thead><tr>{headers(("window", "pass rate", "state"))}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div></details>")


# --------------------------------------------------------------------------------------------
# Index of monitors


def _with(links: Mapping[str, str], path: str) -> str:
    query = urlencode(dict(links))
    return path + (f"?{query}" if query else "")


def _index_url(links: Mapping[str, str]) -> str:
    return _with(links, "/api/dashboard")


def render_index(configs: Sequence[MonitorConfig], *, link_params: Mapping[str, str] | None = None) -> str:
    links = dict(link_params or {})
    if configs:
        rows = "".join(
            f'<tr><td><a data-testid="monitor-link" href="{e(dashboard_url(c.name, links))}">{e(c.name)}</a></td>'
            f"<td>{e(c.source.format)}: {e(c.source.container)}/{e(c.source.prefix)}</td>"
            f"<td>{e(c.judge.provider)}{' (approximate)' if c.judge.provider == 'heuristic' else ''}</td>"
            f"<td>{e(', '.join(c.enabled_metrics()))}</td></tr>" for c in configs)
        table = (f'<div class="scroll"><table data-testid="monitor-index"><thead><tr>'
                      f"{headers(('monitor', 'source', 'judge', 'metrics'))}</tr></thead><tbody>{rows}</tbody>"
                      "</table></div>")
    else:
        table = ('<p class="empty" data-testid="monitor-index">No monitors yet: create one with '
                 "<code>PUT /api/monitors/{name}</code> or <code>python -m monitor monitors put FILE</code>.</p>")
    body = (f"<header><h1>Generative-AI quality monitors</h1><p class=\"meta\">{len(configs)} monitor(s)</p>"
            f'</header><main><h2>Monitors</h2>{table}<footer>API: <a href="{e(_with(links, "/api/docs"))}">'
            f'/api/docs</a> (reference) · <a href="{e(_with(links, "/api/openapi.json"))}">/api/openapi.json</a>'
            "</footer></main>")
    return document("Generative-AI quality monitors", body)
