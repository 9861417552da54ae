"""Agreement between a judge and human scores: pure functions (docs/calibration.md).

Spearman's rho is Pearson's correlation of average ranks (ties get the mean of their ranks);
Kendall's tau-b corrects for ties on either side. Both are None when a side is constant (the
correlation is undefined) or fewer than two pairs exist. Exact and within-1 accuracy compare
the judge's score rounded half up (the histogram bucket) with the human score; the bias is the
mean of judge minus human on the unrounded scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks; tied values share the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        rank = (i + j) / 2 + 1
        for k in range(i, j + 1):
            ranks[order[k]] = rank
        i = j + 1
    return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    n = len(x)
    if n < 2 or n != len(y):
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    return pearson(average_ranks(x), average_ranks(y))


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """(concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)) over all pairs (O(n^2);
    golden sets are capped at a few thousand records)."""
    n = len(x)
    if n < 2 or n != len(y):
        return None
    concordant = discordant = tied_x = tied_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0:
                tied_x += 1
            if dy == 0:
                tied_y += 1
            if dx == 0 or dy == 0:
                continue
            if (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - tied_x) * (pairs - tied_y))
    if denominator == 0:
        return None
    return (concordant - discordant) / denominator


def bucket(score: float) -> int:
    """A score rounded half up and clamped to 1-5 (the histogram bucket)."""
    return min(5, max(1, math.floor(score + 0.5)))


@dataclass(frozen=True)
class Agreement:
    """How well a judge agrees with human scores on one metric."""

    n: int
    spearman: float | None
    kendall_tau_b: float | None
    exact_accuracy: float | None
    within_one_accuracy: float | None
    mean_bias: float | None

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def agreement(judge: Sequence[float], human: Sequence[float]) -> Agreement:
    """Agreement over paired scores (judge[i] and human[i] score the same record)."""
    n = len(judge)
    if n != len(human):
        raise ValueError("judge and human scores must pair up")
    if n == 0:
        return Agreement(0, None, None, None, None, None)
    exact = sum(1 for j, h in zip(judge, human, strict=True) if bucket(j) == bucket(h))
    within = sum(1 for j, h in zip(judge, human, strict=True) if abs(bucket(j) - bucket(h)) <= 1)
    bias = sum(j - h for j, h in zip(judge, human, strict=True)) / n
    return Agreement(n, spearman(judge, human), kendall_tau_b(judge, human), exact / n, within / n, bias)
