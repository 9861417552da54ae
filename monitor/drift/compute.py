"""Drift points of one series and segment: each window against its baseline. Pure functions.

The baseline of a window is either the trailing N windows before it ([start - N x length, start),
all of them complete when the window is) or a fixed period (windows starting in [start, end)).
Baselines are summed from prefix sums over the sorted window points, so a year of hour windows
costs one pass plus a binary search per window (see bench/drift_bench.py).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.drift.series import WindowPoint, values_of
from monitor.drift.stats import Moments, histogram_moments, js_distance, mean_shift, psi
from monitor.keys import iso


@dataclass(frozen=True)
class Baseline:
    """Trailing `windows` windows of `length` each, or the fixed period [start, end)."""

    length: timedelta
    windows: int | None = None
    start: datetime | None = None
    end: datetime | None = None

    def span(self, window_start: datetime) -> tuple[datetime, datetime]:
        if self.start is not None and self.end is not None:
            return self.start, self.end
        return window_start - (self.windows or 0) * self.length, window_start

    def describe(self) -> dict[str, Any]:
        if self.start is not None and self.end is not None:
            return {"kind": "fixed", "start": iso(self.start), "end": iso(self.end)}
        return {"kind": "trailing", "windows": self.windows}


@dataclass(frozen=True)
class Rule:
    threshold: float
    min_samples: int


@dataclass(frozen=True)
class DriftPoint:
    series: str
    segment: str
    window_start: str
    window_end: str
    n: int
    baseline_n: int
    baseline_start: str
    baseline_end: str
    js_distance: float | None
    psi: float | None
    mean: float | None
    baseline_mean: float | None
    mean_shift: float | None
    mean_shift_stderr: float | None
    threshold: float
    min_samples: int
    evaluated: bool
    drifted: bool

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class _Prefix:
    """Prefix sums of counts and of mean x n over points sorted by start."""

    def __init__(self, points: Sequence[WindowPoint], values: tuple[float, ...] | None) -> None:
        width = len(points[0].counts) if points else 0
        self.starts = [p.start for p in points]
        self.counts: list[list[int]] = [[0] * width]
        self.sums: list[float] = [0.0]
        for point in points:
            self.counts.append([a + b for a, b in zip(self.counts[-1], point.counts, strict=True)])
            self.sums.append(self.sums[-1] + _weighted_sum(point, values))

    def between(self, start: datetime, end: datetime) -> tuple[list[int], float]:
        lo, hi = bisect.bisect_left(self.starts, start), bisect.bisect_left(self.starts, end)
        return [b - a for a, b in zip(self.counts[lo], self.counts[hi], strict=True)], self.sums[hi] - self.sums[lo]


def _weighted_sum(point: WindowPoint, values: tuple[float, ...] | None) -> float:
    if values is None:
        return 0.0
    if point.mean is not None:
        return point.mean * point.n
    return sum(c * v for c, v in zip(point.counts, values, strict=True))


def _moments(counts: Sequence[int], total: float, values: tuple[float, ...] | None) -> Moments | None:
    n = sum(counts)
    if values is None or n == 0:
        return None
    return histogram_moments(counts, values, mean=total / n)


def drift_points(points: Sequence[WindowPoint], targets: Sequence[datetime], baseline: Baseline,
                 rule: Rule) -> list[DriftPoint]:
    """Drift of every target window holding data. `points`: one series and segment, any order;
    they must cover the targets and their baselines."""
    ordered = sorted(points, key=lambda p: p.start)
    if not ordered:
        return []
    values = values_of(ordered[0].series)
    prefix = _Prefix(ordered, values)
    by_start = {p.start: p for p in ordered}
    out = []
    for target in targets:
        point = by_start.get(target)
        if point is None or point.n == 0:
            continue
        b_start, b_end = baseline.span(target)
        b_counts, b_sum = prefix.between(b_start, b_end)
        out.append(_point(point, b_counts, b_sum, b_start, b_end, values, rule))
    return out


def _point(point: WindowPoint, b_counts: list[int], b_sum: float, b_start: datetime, b_end: datetime,
           values: tuple[float, ...] | None, rule: Rule) -> DriftPoint:
    b_n = sum(b_counts)
    js = psi_value = None
    if b_n > 0:
        js, psi_value = js_distance(point.counts, b_counts), psi(point.counts, b_counts)
    current = _moments(point.counts, _weighted_sum(point, values), values)
    reference = _moments(b_counts, b_sum, values)
    shift = mean_shift(current, reference) if current is not None and reference is not None else None
    evaluated = point.n >= rule.min_samples and b_n >= rule.min_samples and js is not None
    return DriftPoint(
        series=point.series, segment=point.segment, window_start=iso(point.start), window_end=iso(point.end),
        n=point.n, baseline_n=b_n, baseline_start=iso(b_start), baseline_end=iso(b_end),
        js_distance=js, psi=psi_value,
        mean=current.mean if current else None, baseline_mean=reference.mean if reference else None,
        mean_shift=shift.shift if shift else None, mean_shift_stderr=shift.stderr if shift else None,
        threshold=rule.threshold, min_samples=rule.min_samples, evaluated=evaluated,
        drifted=evaluated and js is not None and js >= rule.threshold,
    )


def previous_evaluated(points: Sequence[DriftPoint], window_start: str) -> DriftPoint | None:
    """The latest evaluated point before `window_start` (points of one series and segment)."""
    earlier = [p for p in points if p.window_start < window_start and p.evaluated]
    return max(earlier, key=lambda p: p.window_start) if earlier else None
