"""Distribution distances between a window and its baseline: pure functions (docs/drift.md).

Histograms are lists of counts over the same fixed buckets. Proportions are smoothed the same way
for both distances: a bucket's proportion below :data:`FLOOR` is raised to it and the distribution
renormalised (only when something was raised). Identical histograms therefore stay at exactly 0,
and an empty bucket on one side only gives a large but finite PSI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Smallest proportion a bucket may have (the usual PSI practice); applied to both distances.
FLOOR = 1e-4


def proportions(counts: Sequence[float]) -> list[float]:
    """Smoothed proportions of a non-empty histogram (see the module docstring)."""
    total = float(sum(counts))
    if total <= 0:
        raise ValueError("an empty histogram has no distribution")
    raw = [c / total for c in counts]
    if all(p >= FLOOR for p in raw):
        return raw
    floored = [max(p, FLOOR) for p in raw]
    norm = sum(floored)
    return [p / norm for p in floored]


def _kl2(p: Sequence[float], q: Sequence[float]) -> float:
    """Kullback-Leibler divergence in bits; terms with p = 0 are 0 (their limit)."""
    return sum(pi * math.log2(pi / qi) for pi, qi in zip(p, q, strict=True) if pi > 0)


def js_distance(current: Sequence[float], baseline: Sequence[float]) -> float:
    """Jensen-Shannon distance (square root of the divergence, base 2): 0 identical, 1 disjoint."""
    p, q = proportions(current), proportions(baseline)
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    divergence = (_kl2(p, m) + _kl2(q, m)) / 2
    return math.sqrt(min(1.0, max(0.0, divergence)))


def psi(current: Sequence[float], baseline: Sequence[float]) -> float:
    """Population stability index: sum over buckets of (p - q) ln(p / q), q the baseline."""
    p, q = proportions(current), proportions(baseline)
    return sum((a - b) * math.log(a / b) for a, b in zip(p, q, strict=True))


@dataclass(frozen=True)
class Moments:
    """Count, mean and sample variance of a sample (None where undefined)."""

    n: int
    mean: float | None
    variance: float | None


def histogram_moments(counts: Sequence[int], values: Sequence[float],
                      mean: float | None = None) -> Moments:
    """Moments of a histogram whose bucket i holds the value values[i]. `mean` (when the exact
    mean is known, e.g. from fractional scores) replaces the bucketed one; the variance is always
    the sample variance of the bucketed values (windows keep counts, not the scores)."""
    n = int(sum(counts))
    if n == 0:
        return Moments(0, None, None)
    centre = sum(c * v for c, v in zip(counts, values, strict=True)) / n
    reported = mean if mean is not None else centre
    if n < 2:
        return Moments(n, reported, None)
    squares = sum(c * (v - centre) ** 2 for c, v in zip(counts, values, strict=True))
    return Moments(n, reported, squares / (n - 1))


@dataclass(frozen=True)
class Shift:
    """Difference of means (current minus baseline) and its standard error (Welch)."""

    shift: float
    stderr: float | None


def mean_shift(current: Moments, baseline: Moments) -> Shift | None:
    if current.mean is None or baseline.mean is None:
        return None
    shift = current.mean - baseline.mean
    if current.variance is None or baseline.variance is None:
        return Shift(shift, None)
    return Shift(shift, math.sqrt(current.variance / current.n + baseline.variance / baseline.n))
