"""Dashboard parts of drift and judge calibration: the drift line under each metric's pass-rate
chart, the traffic-shape panel and the judge panel (docs/drift.md, docs/calibration.md).

Same rules as the rest of the page (monitor/dashboard/svg.py): inline SVG, no script, Okabe-Ito
colours, and every state also in text or shape, never in colour alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.dashboard.html import e as _e
from monitor.dashboard.svg import BLUE, BREACH_TEXT, GREY, INK, VERMILION, Frame
from monitor.drift.series import TRAFFIC_SERIES
from monitor.keys import parse_time

TRAFFIC_LABELS = {"traffic.prompt_tokens": "prompt length (tokens)",
                  "traffic.completion_tokens": "completion length (tokens)",
                  "traffic.answers": "empty or refused answers"}


@dataclass(frozen=True)
class QualityData:
    """Drift points of the chosen segment by series, its traffic rows, and the calibration report."""

    threshold: float
    min_samples: int
    baseline: Mapping[str, Any]
    drift: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    traffic: list[dict[str, Any]] = field(default_factory=list)
    calibration: Mapping[str, Any] | None = None


def load_quality(name: str, *, start: datetime | None, end: datetime | None, segment: str) -> QualityData:
    from monitor.calibration.query import calibration_report
    from monitor.drift.query import drift_report

    report = drift_report(name, segment=segment, start=start, end=end)
    by_series: dict[str, list[dict[str, Any]]] = {}
    for point in report["points"]:
        by_series.setdefault(str(point["series"]), []).append(point)
    return QualityData(threshold=float(report["threshold"]), min_samples=int(report["min_samples"]),
                       baseline=report["baseline"], drift=by_series, traffic=report["traffic"],
                       calibration=calibration_report(name))


def _f(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def _baseline_text(baseline: Mapping[str, Any]) -> str:
    if baseline.get("kind") == "fixed":
        return f"the fixed baseline {baseline.get('start')} to {baseline.get('end')}"
    return f"the {baseline.get('windows')} windows before it"


# --------------------------------------------------------------------------------------------
# The drift line


def drift_chart(series: str, points: Sequence[Mapping[str, Any]], threshold: float,
                *, width: int = 640, height: int = 120) -> str:
    """Jensen-Shannon distance per window (0-1), the threshold dashed, drifted windows as labelled
    triangles, windows with too few samples as hollow circles."""
    frame = Frame(width, height, right=70, top=10, bottom=26)
    ident = "drift-" + series.replace(".", "-")
    drifted = sum(1 for p in points if p.get("drifted"))
    desc = (f"{len(points)} windows; {drifted} drifted (Jensen-Shannon distance at or above {threshold:.2f} with "
            "enough samples). Hollow circles: too few samples to judge.")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
             f'aria-labelledby="{ident}-t {ident}-d" data-testid="drift-chart-{_e(series)}" class="chart drift">'
             f'<title id="{ident}-t">{_e(series)}: distance to the baseline per window</title>'
             f'<desc id="{ident}-d">{_e(desc)}</desc>']
    for tick in (0.0, 0.5, 1.0):
        y = frame.y(tick)
        parts.append(f'<line x1="{frame.left}" x2="{width - frame.right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#d9d9d9"/><text x="{frame.left - 6}" y="{y:.1f}" text-anchor="end" '
                     f'dominant-baseline="middle" font-size="11" fill="{INK}">{tick:.1f}</text>')
    present = [p for p in points if p.get("js_distance") is not None]
    if not present:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="12" fill="{INK}">'
                     "no drift computed in this range</text>")
    xs = _xs(present)
    line = " ".join(f"{frame.x(x):.1f},{frame.y(float(p['js_distance'])):.1f}" for p, x in zip(present, xs,
                                                                                                 strict=True))
    if len(present) > 1:
        parts.append(f'<polyline points="{line}" fill="none" stroke="{BLUE}" stroke-width="1.5"/>')
    y = frame.y(threshold)
    parts.append(f'<line data-testid="drift-threshold-{_e(series)}" x1="{frame.left}" x2="{width - frame.right}" '
                 f'y1="{y:.1f}" y2="{y:.1f}" stroke="{INK}" stroke-width="1.5" stroke-dasharray="6 4">'
                 f'<title>drift threshold {threshold:.2f}</title></line>'
                 f'<text x="{width - frame.right + 6}" y="{y + 4:.1f}" font-size="11" fill="{INK}">'
                 f"JS {threshold:.2f}</text>")
    parts += [_drift_marker(frame, p, x) for p, x in zip(present, xs, strict=True)]
    if present:
        parts.append(f'<text x="{frame.left}" y="{height - 6}" font-size="11" fill="{INK}">'
                     f"{_e(str(present[0]['window_start'])[:16])}</text>"
                     f'<text x="{width - frame.right}" y="{height - 6}" text-anchor="end" font-size="11" '
                     f'fill="{INK}">{_e(str(present[-1]["window_start"])[:16])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _xs(points: Sequence[Mapping[str, Any]]) -> list[float]:
    if len(points) <= 1:
        return [0.5] * len(points)
    times = [parse_time(str(p["window_start"])).timestamp() for p in points]
    span = (times[-1] - times[0]) or 1.0
    return [(t - times[0]) / span for t in times]


def _drift_marker(frame: Frame, point: Mapping[str, Any], x: float) -> str:
    cx, cy = frame.x(x), frame.y(float(point["js_distance"]))
    label = (f"{point['window_start']}: JS {_f(point['js_distance'])}, PSI {_f(point.get('psi'))}, "
             f"mean shift {_f(point.get('mean_shift'))} +/- {_f(point.get('mean_shift_stderr'))}; "
             f"{point['n']} records vs {point['baseline_n']} in the baseline")
    if point.get("drifted"):
        tri = f"{cx:.1f},{cy - 7:.1f} {cx - 6:.1f},{cy + 5:.1f} {cx + 6:.1f},{cy + 5:.1f}"
        return (f'<g data-testid="drift-marker"><title>{_e(label + " - DRIFTED")}</title>'
                f'<polygon points="{tri}" fill="{VERMILION}" stroke="{INK}"/>'
                f'<text x="{cx:.1f}" y="{max(frame.top + 8, cy - 9):.1f}" text-anchor="middle" font-size="11" '
                f'font-weight="bold" fill="{BREACH_TEXT}">drift</text></g>')
    if not point.get("evaluated"):
        return (f'<g data-testid="drift-thin"><title>{_e(label + " - too few samples")}</title>'
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="white" stroke="{GREY}" stroke-width="1.5"/></g>')
    return (f'<g data-testid="drift-point"><title>{_e(label)}</title>'
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{BLUE}" stroke="white"/></g>')


def drift_figure(series: str, quality: QualityData | None) -> str:
    """The drift line of one metric, to sit under its pass-rate chart."""
    if quality is None:
        return ""
    points = quality.drift.get(series, [])
    return (f'<figure class="drift" data-testid="drift-{_e(series)}">{drift_chart(series, points, quality.threshold)}'
            f"<figcaption>Distribution drift: Jensen-Shannon distance of each window's scores to "
            f"{_e(_baseline_text(quality.baseline))}; dashed: the alert threshold; triangle “drift”: at or above "
            f"it with at least {quality.min_samples} records on both sides.</figcaption></figure>")


# --------------------------------------------------------------------------------------------
# The traffic-shape panel


def traffic_panel(quality: QualityData | None) -> str:
    head = ('<section aria-labelledby="traffic-h" data-testid="traffic-panel"><h2 id="traffic-h">Traffic shape</h2>'
            '<p class="legend">Counted with each batch of sampled records: prompt and completion length in '
            "tokens and the share of empty or refused answers, each compared with the baseline.</p>")
    if quality is None or not quality.traffic:
        return head + '<p class="empty">No traffic counted in this range.</p></section>'
    charts = "".join(
        f'<figure class="tile"><h3>{_e(TRAFFIC_LABELS[s])}</h3>'
        f"{drift_chart(s, quality.drift.get(s, []), quality.threshold, width=420, height=130)}"
        "<figcaption>Jensen-Shannon distance to the baseline per window.</figcaption></figure>"
        for s in TRAFFIC_SERIES)
    grid = "grid-template-columns: repeat(auto-fill, minmax(min(100%, 380px), 1fr))"
    charts = f'<div class="tiles" style="{grid}">{charts}</div>'
    rows = "".join(_traffic_row(t) for t in quality.traffic)
    table = ('<details><summary>Traffic per window</summary><div class="scroll"><table data-testid="traffic-table">'
             '<thead><tr>'
             '<th scope="col">window start</th><th scope="col">records</th><th scope="col">empty</th>'
             '<th scope="col">refused</th><th scope="col">typical prompt</th><th scope="col">typical completion</th>'
             f"</tr></thead><tbody>{rows}</tbody></table></div></details>")
    return head + charts + table + "</section>"


def _mode(histogram: Mapping[str, int]) -> str:
    if not histogram or not any(histogram.values()):
        return "n/a"
    return max(histogram.items(), key=lambda kv: kv[1])[0] + " tokens"


def _traffic_row(row: Mapping[str, Any]) -> str:
    answers: Mapping[str, int] = row.get("answers") or {}
    records = int(row.get("records") or 0)

    def share(kind: str) -> str:
        count = int(answers.get(kind, 0))
        return f"{count} ({count / records:.0%})" if records else "0"

    return (f"<tr><td>{_e(row.get('window_start'))}</td><td class=\"num\">{records}</td>"
            f"<td class=\"num\">{share('empty')}</td><td class=\"num\">{share('refused')}</td>"
            f"<td>{_e(_mode(row.get('prompt_tokens') or {}))}</td>"
            f"<td>{_e(_mode(row.get('completion_tokens') or {}))}</td></tr>")


# --------------------------------------------------------------------------------------------
# The judge panel


def judge_panel(quality: QualityData | None) -> str:
    head = '<section aria-labelledby="judge-h" data-testid="judge-panel"><h2 id="judge-h">Judge calibration</h2>'
    report = quality.calibration if quality else None
    if not report or report.get("latest") is None:
        golden = (report or {}).get("golden")
        hint = ("a golden set is stored; the first calibration runs with the next timer run or "
                "<code>python -m monitor calibrate</code>" if golden else
                "no golden set yet: upload human scores with <code>python -m monitor golden put</code>")
        return head + f'<p class="empty">{hint}.</p></section>'
    latest, settings = report["latest"], report["settings"]
    approximate = bool(latest.get("approximate"))
    note = ('<p class="legend" data-testid="judge-honesty"><strong>The heuristic judge is approximate</strong>: '
            "text statistics and word overlap, not a language model. Its agreement with the human labels below "
            "is what it is; use an LLM judge for decisions.</p>" if approximate else "")
    spend = report.get("spend") or {}
    meta = (f'<p class="meta">Latest run {_e(latest.get("run_id"))} ({_e(latest.get("trigger"))}) · judge '
            f"<strong>{_e(latest.get('judge'))}</strong> · prompt version {_e(latest.get('prompt_version'))} · "
            f"{_e(latest.get('golden_records'))} golden records · {_e(latest.get('tokens'))} tokens "
            f"(calibration today: {_e(spend.get('calibration_tokens'))}, all judging today: "
            f"{_e(spend.get('judge_tokens_total') if spend.get('judge_tokens_total') is not None else 'n/a')})</p>")
    rows = "".join(_agreement_row(m, a, settings) for m, a in latest.get("metrics", {}).items())
    table = ('<div class="scroll"><table data-testid="judge-agreement"><thead><tr><th scope="col">metric</th>'
             '<th scope="col">n</th>'
             '<th scope="col">Spearman</th><th scope="col">Kendall tau-b</th><th scope="col">exact</th>'
             '<th scope="col">within 1</th><th scope="col">mean bias (judge - human)</th><th scope="col">state</th>'
             f"</tr></thead><tbody>{rows}</tbody></table></div>")
    return head + note + meta + table + _history(report.get("runs") or []) + "</section>"


def _agreement_row(metric: str, a: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    rho = a.get("spearman")
    low = rho is not None and int(a.get("n") or 0) >= int(settings.get("min_records", 0)) and \
        float(rho) < float(settings.get("min_spearman", 0))
    state = (f'<span class="badge bad">below {float(settings["min_spearman"]):.2f}</span>' if low else
             '<span class="badge good">ok</span>' if rho is not None else '<span class="badge">n/a</span>')
    return (f'<tr data-testid="agreement-{_e(metric)}"><td>{_e(metric)}</td><td class="num">{_e(a.get("n"))}</td>'
            f'<td class="num">{_f(rho)}</td><td class="num">{_f(a.get("kendall_tau_b"))}</td>'
            f'<td class="num">{_f(a.get("exact_accuracy"), 2)}</td>'
            f'<td class="num">{_f(a.get("within_one_accuracy"), 2)}</td>'
            f'<td class="num">{_f(a.get("mean_bias"), 2)}</td><td>{state}</td></tr>')


def _history(runs: Sequence[Mapping[str, Any]]) -> str:
    if len(runs) < 1:
        return ""
    metrics = sorted({m for r in runs for m in r.get("metrics", {})})
    header = "".join(f'<th scope="col">{_e(m)}</th>' for m in metrics)
    rows = "".join(
        f"<tr><td>{_e(r.get('run_id'))}</td><td>{_e(r.get('judge'))}</td><td>{_e(r.get('prompt_version'))}</td>"
        f"<td>{_e(r.get('trigger'))}</td>"
        + "".join(f'<td class="num">{_f((r.get("metrics", {}).get(m) or {}).get("spearman"))} / '
                  f'{_f((r.get("metrics", {}).get(m) or {}).get("mean_bias"), 2)}</td>' for m in metrics)
        + f'<td class="num">{_e(r.get("tokens"))}</td></tr>' for r in reversed(runs))
    return (f'<details data-testid="judge-history"><summary>History ({len(runs)} runs): Spearman / mean bias per '
            'metric</summary><div class="scroll"><table><thead><tr><th scope="col">run</th><th scope="col">judge</th>'
            f'<th scope="col">prompt version</th><th scope="col">trigger</th>{header}<th scope="col">tokens</th>'
            f"</tr></thead><tbody>{rows}</tbody></table></div></details>")
