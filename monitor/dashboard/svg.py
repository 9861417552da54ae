"""A small server-side SVG renderer: the pass-rate line chart and the score histogram.

No JavaScript and nothing fetched: each chart is an inline ``<svg role="img">`` with a ``<title>``
and ``<desc>`` for screen readers and a ``<title>`` on every point (the browser's tooltip).
Colours come from the Okabe-Ito palette (safe for the common colour-vision deficiencies), each at
3:1 or more against white for graphics and 4.5:1 or more for text, and no meaning rests on colour
alone: breached windows are also a different shape and carry a text label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

BLUE = "#0072B2"
VERMILION = "#D55E00"
BREACH_TEXT = "#A33F00"  # vermilion darkened to 6.4:1 on white for small text
GREY = "#595959"
INK = "#1a1a1a"
GRID = "#d9d9d9"


@dataclass(frozen=True)
class Point:
    """One window of a pass-rate chart; `pass_rate` None when nothing was scored."""

    start: datetime
    pass_rate: float | None
    breached: bool
    label: str


@dataclass(frozen=True)
class Frame:
    """The plot area inside an SVG of `width` x `height`."""

    width: int
    height: int
    left: int = 44
    right: int = 16
    top: int = 16
    bottom: int = 34

    @property
    def plot_width(self) -> int:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> int:
        return self.height - self.top - self.bottom

    def y(self, fraction: float) -> float:
        return self.top + (1.0 - fraction) * self.plot_height

    def x(self, fraction: float) -> float:
        return self.left + fraction * self.plot_width


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}"


def _open_svg(frame: Frame, ident: str, title: str, desc: str, testid: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} {frame.height}" '
        f'width="100%" role="img" aria-labelledby="{ident}-title {ident}-desc" data-testid="{_attr(testid)}" '
        f'class="chart" preserveAspectRatio="xMidYMid meet">'
        f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(desc)}</desc>'
    )


def _y_axis(frame: Frame) -> list[str]:
    parts = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _num(frame.y(tick))
        parts.append(f'<line x1="{frame.left}" x2="{frame.width - frame.right}" y1="{y}" y2="{y}" '
                     f'stroke="{GRID}" stroke-width="1"/>')
        parts.append(f'<text x="{frame.left - 6}" y="{y}" text-anchor="end" dominant-baseline="middle" '
                     f'font-size="11" fill="{INK}">{int(tick * 100)}%</text>')
    return parts


def _x_positions(points: Sequence[Point]) -> list[float]:
    """Fractions 0..1 along the time axis (a lone window sits in the middle)."""
    if len(points) <= 1:
        return [0.5] * len(points)
    first, last = points[0].start.timestamp(), points[-1].start.timestamp()
    span = (last - first) or 1.0
    return [(p.start.timestamp() - first) / span for p in points]


def _x_labels(frame: Frame, points: Sequence[Point], xs: Sequence[float]) -> list[str]:
    """At most four time labels: first, last and evenly spaced ones between."""
    if not points:
        return []
    count = min(4, len(points))
    picks = sorted({round(i * (len(points) - 1) / max(1, count - 1)) for i in range(count)})
    base = frame.height - frame.bottom + 16
    out = []
    for index in picks:
        anchor = "start" if index == 0 and len(points) > 1 else "end" if index == len(points) - 1 and \
            len(points) > 1 else "middle"
        out.append(f'<text x="{_num(frame.x(xs[index]))}" y="{base}" text-anchor="{anchor}" font-size="11" '
                   f'fill="{INK}">{escape(points[index].start.strftime("%m-%d %H:%M"))}</text>')
    return out


def _threshold(frame: Frame, metric: str, threshold: float) -> list[str]:
    y = _num(frame.y(threshold))
    return [
        f'<line data-testid="threshold-line-{_attr(metric)}" class="threshold" x1="{frame.left}" '
        f'x2="{frame.width - frame.right}" y1="{y}" y2="{y}" stroke="{INK}" stroke-width="1.5" '
        f'stroke-dasharray="6 4"><title>threshold {threshold:.0%}</title></line>',
        f'<text x="{frame.width - frame.right + 6}" y="{_num(frame.y(threshold) - 2)}" font-size="11" '
        f'fill="{INK}">threshold</text>',
        f'<text x="{frame.width - frame.right + 6}" y="{_num(frame.y(threshold) + 11)}" font-size="11" '
        f'fill="{INK}">{threshold:.0%}</text>',
    ]


def _line(frame: Frame, points: Sequence[Point], xs: Sequence[float]) -> list[str]:
    """The pass-rate line, broken where a window has no pass rate."""
    segments: list[list[str]] = [[]]
    for point, x in zip(points, xs, strict=True):
        if point.pass_rate is None:
            segments.append([])
            continue
        segments[-1].append(f"{_num(frame.x(x))},{_num(frame.y(point.pass_rate))}")
    return [f'<polyline points="{" ".join(s)}" fill="none" stroke="{BLUE}" stroke-width="2"/>'
            for s in segments if len(s) > 1]


def _marker(frame: Frame, point: Point, x: float) -> str:
    cx = frame.x(x)
    if point.pass_rate is None:
        cy = frame.y(0.0)
        return (f'<g data-testid="no-score-marker"><title>{escape(point.label)}</title>'
                f'<rect x="{_num(cx - 4)}" y="{_num(cy - 8)}" width="8" height="8" fill="white" '
                f'stroke="{GREY}" stroke-width="1.5"/></g>')
    cy = frame.y(point.pass_rate)
    if point.breached:
        triangle = f"{_num(cx)},{_num(cy - 8)} {_num(cx - 7)},{_num(cy + 5)} {_num(cx + 7)},{_num(cy + 5)}"
        # A breach lies below the threshold: its label goes further below (away from the threshold
        # labels), or above the marker at the bottom edge; near the right edge it ends at the marker.
        bottom = frame.height - frame.bottom
        label_y = cy + 18 if cy + 18 <= bottom - 2 else cy - 11
        near_right = cx > frame.width - frame.right - 20
        label_x, anchor = (cx + 7, "end") if near_right else (cx, "middle")
        return (f'<g data-testid="breach-marker" class="breach"><title>{escape(point.label)}</title>'
                f'<polygon points="{triangle}" fill="{VERMILION}" stroke="{INK}" stroke-width="1"/>'
                f'<text x="{_num(label_x)}" y="{_num(label_y)}" text-anchor="{anchor}" font-size="11" '
                f'font-weight="bold" fill="{BREACH_TEXT}">breach</text></g>')
    return (f'<g data-testid="window-point"><title>{escape(point.label)}</title>'
            f'<circle cx="{_num(cx)}" cy="{_num(cy)}" r="4" fill="{BLUE}" stroke="white" stroke-width="1"/></g>')


def pass_rate_chart(metric: str, points: Sequence[Point], threshold: float | None,
                    *, width: int = 640, height: int = 210) -> str:
    """Pass rate per window (0-100%), the threshold dashed, breached windows as labelled triangles."""
    frame = Frame(width, height, right=70)
    breaches = sum(1 for p in points if p.breached)
    desc = (f"{len(points)} windows; {breaches} breached the threshold"
            + (f" of {threshold:.0%}" if threshold is not None else "") + ". Triangles labelled 'breach' "
            "mark breached windows; squares mark windows without scores.")
    parts = [_open_svg(frame, f"pr-{metric}", f"{metric}: pass rate over time", desc, f"passrate-chart-{metric}")]
    parts += _y_axis(frame)
    if not points:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="13" '
                     f'fill="{INK}">no windows in this range</text>')
    xs = _x_positions(points)
    parts += _line(frame, points, xs)
    if threshold is not None:
        parts += _threshold(frame, metric, threshold)
    parts += [_marker(frame, p, x) for p, x in zip(points, xs, strict=True)]
    parts += _x_labels(frame, points, xs)
    parts.append("</svg>")
    return "".join(parts)


def histogram_chart(metric: str, counts: Sequence[int], acceptable: float | None,
                    *, width: int = 300, height: int = 210) -> str:
    """Counts of scores 1-5; bars below the acceptable score in vermilion and starred (`2*`)."""
    frame = Frame(width, height, left=40, right=10)
    total = sum(counts)
    peak = max(counts) if counts and max(counts) > 0 else 1
    desc = ", ".join(f"score {i + 1}: {c}" for i, c in enumerate(counts)) + f"; {total} scored."
    parts = [_open_svg(frame, f"hist-{metric}", f"{metric}: histogram of scores 1-5", desc, f"histogram-{metric}")]
    parts.append(f'<line x1="{frame.left}" x2="{width - frame.right}" y1="{frame.y(0)}" y2="{frame.y(0)}" '
                 f'stroke="{INK}" stroke-width="1"/>')
    slot = frame.plot_width / 5
    for index, count in enumerate(counts):
        parts.append(_bar(frame, index, count, peak, slot, acceptable))
    parts.append("</svg>")
    return "".join(parts)


def _bar(frame: Frame, index: int, count: int, peak: int, slot: float, acceptable: float | None) -> str:
    score = index + 1
    failing = acceptable is not None and score < acceptable
    colour = VERMILION if failing else BLUE
    bar_height = frame.plot_height * count / peak
    x = frame.left + index * slot + slot * 0.15
    y = frame.y(0) - bar_height
    label = f"score {score}: {count}" + (" (below acceptable score)" if failing else "")
    return (f'<g data-testid="histogram-bar"><title>{escape(label)}</title>'
            f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(slot * 0.7)}" height="{_num(bar_height)}" '
            f'fill="{colour}" stroke="{INK}" stroke-width="0.5"/>'
            f'<text x="{_num(x + slot * 0.35)}" y="{_num(y - 4)}" text-anchor="middle" font-size="11" '
            f'fill="{INK}">{count}</text>'
            f'<text x="{_num(x + slot * 0.35)}" y="{_num(frame.y(0) + 15)}" text-anchor="middle" font-size="12" '
            f'fill="{INK}">{score}{"*" if failing else ""}</text></g>')
