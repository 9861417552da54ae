"""Partial aggregates: the per-batch counters the judge path writes and the timer merges.

A batch holds records of one hour partition. Its partial counts, per segment and metric, the
records seen and the scores by status and histogram bucket. Partials are rewritten in full from
the batch's scores on every evaluation of the batch (idempotent), keyed by batch id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.records import Record
from monitor.scores import Score
from monitor.shape import Shapes, shapes_from_json, shapes_to_json
from monitor.storage.tables import pack_text, unpack_text


@dataclass
class Counter:
    """Counters of one metric in one segment (of one batch, hour or window)."""

    row_count: int = 0
    scored: int = 0
    passed: int = 0
    score_sum: float = 0.0
    errors: int = 0
    not_applicable: int = 0
    skipped: int = 0
    histogram: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])

    def add_score(self, score: Score, acceptable: float | None = None) -> None:
        """Count one score; `acceptable` (the metric's current acceptable score) decides `passed`
        when given, so that re-counting a batch applies a changed threshold without re-judging."""
        if score.status == "ok" and score.score is not None:
            self.scored += 1
            passed = score.score >= acceptable if acceptable is not None else bool(score.passed)
            self.passed += 1 if passed else 0
            self.score_sum += score.score
            bucket = score.bucket
            if bucket is not None:
                self.histogram[bucket - 1] += 1
        elif score.status == "error":
            self.errors += 1
        elif score.status == "not_applicable":
            self.not_applicable += 1
        elif score.status == "skipped":
            self.skipped += 1

    def merge(self, other: Counter) -> None:
        self.row_count += other.row_count
        self.scored += other.scored
        self.passed += other.passed
        self.score_sum += other.score_sum
        self.errors += other.errors
        self.not_applicable += other.not_applicable
        self.skipped += other.skipped
        self.histogram = [a + b for a, b in zip(self.histogram, other.histogram, strict=True)]

    def to_json(self) -> dict[str, Any]:
        return {
            "row_count": self.row_count, "scored": self.scored, "passed": self.passed,
            "score_sum": self.score_sum, "errors": self.errors, "not_applicable": self.not_applicable,
            "skipped": self.skipped, "histogram": list(self.histogram),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Counter:
        return cls(
            row_count=int(data.get("row_count", 0)), scored=int(data.get("scored", 0)),
            passed=int(data.get("passed", 0)), score_sum=float(data.get("score_sum", 0.0)),
            errors=int(data.get("errors", 0)), not_applicable=int(data.get("not_applicable", 0)),
            skipped=int(data.get("skipped", 0)),
            histogram=[int(x) for x in data.get("histogram", [0, 0, 0, 0, 0])],
        )


# segment -> metric -> Counter
Counts = dict[str, dict[str, Counter]]


def count_batch(records: Iterable[Record], scores: Iterable[Score], metrics: Iterable[str],
                acceptable: Mapping[str, float] | None = None) -> Counts:
    """Counters of one batch: every record counts as a row of every metric, in each of its segments.
    `acceptable` maps metric -> acceptable score (else each score's stored `passed` is used)."""
    thresholds = acceptable or {}
    metric_names = list(metrics)
    by_record: dict[str, list[Score]] = {}
    for score in scores:
        by_record.setdefault(score.record_key, []).append(score)
    counts: Counts = {}
    for record in records:
        for segment in record.segments():
            per_metric = counts.setdefault(segment, {})
            for metric in metric_names:
                per_metric.setdefault(metric, Counter()).row_count += 1
            for score in by_record.get(record.key, []):
                per_metric.setdefault(score.metric, Counter()).add_score(score, thresholds.get(score.metric))
    return counts


def merge_counts(target: Counts, other: Counts) -> Counts:
    for segment, per_metric in other.items():
        into = target.setdefault(segment, {})
        for metric, counter in per_metric.items():
            into.setdefault(metric, Counter()).merge(counter)
    return target


def counts_to_json(counts: Counts) -> str:
    return json.dumps({s: {m: c.to_json() for m, c in pm.items()} for s, pm in counts.items()},
                      separators=(",", ":"), sort_keys=True)


def counts_from_json(text: str) -> Counts:
    data = json.loads(text)
    return {s: {m: Counter.from_json(c) for m, c in pm.items()} for s, pm in data.items()}


def partial_entity(partition: str, batch_id: str, counts: Counts, records: int, updated_at: str,
                   shapes: Shapes | None = None) -> dict[str, Any]:
    entity = {
        "PartitionKey": partition, "RowKey": batch_id, "records": records, "updated_at": updated_at,
        **pack_text("counts", counts_to_json(counts)),
    }
    if shapes is not None:  # traffic shape (monitor/shape.py), merged by the timer like the counts
        entity.update(pack_text("shape", json.dumps(shapes_to_json(shapes), separators=(",", ":"))))
    return entity


def counts_of_entity(entity: Mapping[str, Any]) -> Counts:
    text = unpack_text(entity, "counts")
    return counts_from_json(text) if text else {}


def shapes_of_entity(entity: Mapping[str, Any]) -> Shapes:
    """The traffic-shape counters of a partial (empty for partials written before they existed)."""
    text = unpack_text(entity, "shape")
    return shapes_from_json(json.loads(text)) if text else {}
