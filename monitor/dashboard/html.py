"""Small HTML helpers and the stylesheet shared by every dashboard page (no script, nothing fetched)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from monitor.keys import parse_time

# Below this width, wide tables become one card per row (see `table.stack`).
STACK_BELOW_PX = 760

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1a1a1a; background: #f4f5f7; }
header { background: #fff; border-bottom: 1px solid #c8c8c8; padding: 12px 24px; }
header h1 { margin: 0 0 4px; font-size: 22px; overflow-wrap: anywhere; }
main { max-width: 1320px; margin: 0 auto; padding: 12px 24px 32px; }
h2 { font-size: 18px; margin: 24px 0 8px; }
h3 { font-size: 16px; margin: 0 0 6px; }
a { color: #005a8c; }
a:focus, button:focus, input:focus { outline: 3px solid #e69f00; outline-offset: 2px; }
code { overflow-wrap: anywhere; }
.meta { color: #4d4d4d; margin: 0; }
.badge { display: inline-block; padding: 2px 8px; border-radius: 10px; font-size: 13px; font-weight: 600;
         border: 1px solid #1a1a1a; background: #fff; margin-left: 6px; }
.badge.approx { background: #fff1cc; border-color: #8a5a00; color: #3d2a00; }
.badge.bad { background: #ffe3d6; border-color: #a33f00; color: #6b2900; }
.badge.warn { background: #fff1cc; border-color: #8a5a00; color: #3d2a00; }
.badge.good { background: #e0f0ff; border-color: #005a8c; color: #003a5c; }
.notice { background: #ffe3d6; border: 1px solid #a33f00; color: #4a1d00; border-radius: 6px; padding: 8px 12px;
          margin: 12px 0 0; }
nav.controls { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; margin-top: 8px; }
nav.controls ul { list-style: none; display: flex; flex-wrap: wrap; gap: 6px; margin: 0; padding: 0; }
nav.controls li a, nav.controls li span { display: inline-block; padding: 3px 10px; border: 1px solid #8c8c8c;
         border-radius: 4px; background: #fff; text-decoration: none; overflow-wrap: anywhere; }
nav.controls li [aria-current] { background: #003a5c; color: #fff; border-color: #003a5c; font-weight: 600; }
form.range { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
form.range input { width: 16em; max-width: 100%; padding: 3px 6px; border: 1px solid #8c8c8c; border-radius: 4px; }
form.range input[aria-invalid="true"] { border: 2px solid #a33f00; }
form.range button { padding: 3px 12px; border: 1px solid #003a5c; border-radius: 4px; background: #003a5c;
         color: #fff; cursor: pointer; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 10px; }
.tile { background: #fff; border: 1px solid #c8c8c8; border-radius: 6px; padding: 8px 12px; min-width: 0; }
.tile .value { font-size: 26px; font-weight: 700; line-height: 1.2; font-variant-numeric: tabular-nums; }
.tile .breach { color: #6b2900; font-weight: 600; }
.panel { background: #fff; border: 1px solid #c8c8c8; border-radius: 6px; padding: 8px 12px; margin-top: 10px; }
.panel dl { display: flex; flex-wrap: wrap; gap: 4px 20px; margin: 0; }
.panel dt { color: #4d4d4d; }
.panel dd { margin: 0 0 0 4px; font-weight: 600; }
.panel div { display: flex; }
article.metric { background: #fff; border: 1px solid #c8c8c8; border-radius: 6px; padding: 12px 16px;
         margin-bottom: 12px; min-width: 0; }
.metric-body { display: grid; grid-template-columns: 200px minmax(0, 2.1fr) minmax(0, 1fr); gap: 16px;
         align-items: start; }
dl.stats { display: grid; grid-template-columns: auto auto; gap: 2px 10px; margin: 0; }
dl.stats dt { color: #4d4d4d; }
dl.stats dd { margin: 0; font-weight: 600; text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 0; min-width: 0; }
figcaption { font-size: 12px; color: #4d4d4d; }
svg.chart { display: block; max-height: 240px; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #c8c8c8; }
th, td { text-align: left; vertical-align: top; padding: 6px 8px; border-bottom: 1px solid #e0e0e0; }
th { background: #eef0f3; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { min-width: 14em; max-width: 360px; overflow-wrap: anywhere; }
td ul { margin: 0; padding-left: 18px; }
details summary { cursor: pointer; color: #005a8c; }
.empty { color: #4d4d4d; font-style: italic; }
.legend { font-size: 12px; color: #4d4d4d; margin: 4px 0; }
.pager { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; margin: 8px 0; }
footer { color: #4d4d4d; font-size: 12px; margin-top: 24px; overflow-wrap: anywhere; }
@media (max-width: 1100px) { .metric-body { grid-template-columns: 1fr; } }
@media (max-width: STACK_PX) {
  header { padding: 10px 12px; }
  main { padding: 8px 12px 24px; }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: 100%; }
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.stack tr { border-bottom: 2px solid #c8c8c8; padding: 4px 0; }
  table.stack td { border: 0; padding: 3px 8px; max-width: none; min-width: 0; text-align: left; }
  table.stack td::before { content: attr(data-label) ": "; font-weight: 600; color: #4d4d4d; }
}
""".replace("STACK_PX", f"{STACK_BELOW_PX}px")


def e(value: Any) -> str:
    """Text escaped for HTML content and attribute values."""
    return escape("" if value is None else str(value), quote=True)


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def as_float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def short_time(value: Any, window: str = "hour") -> str:
    """`2026-11-20` for a day window, `2026-11-20 14:00` for an hour (UTC), the text itself otherwise."""
    try:
        moment = parse_time(str(value))
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d" if window == "day" else "%Y-%m-%d %H:%M")


def dashboard_url(name: str, params: Mapping[str, str | None], anchor: str = "") -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"/api/monitors/{quote(name)}/dashboard" + (f"?{query}" if query else "") + anchor


def headers(columns: Iterable[str]) -> str:
    return "".join(f'<th scope="col">{e(c)}</th>' for c in columns)


def cells(values: Iterable[tuple[str, str, str]]) -> str:
    """`<td>`s from (label, css class, inner HTML); the label heads the cell when the table stacks."""
    return "".join(f'<td data-label="{e(label)}"' + (f' class="{css}"' if css else "") + f">{inner}</td>"
                   for label, css, inner in values)


def document(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(title)}</title><style>{CSS}</style></head><body>{body}</body></html>")
