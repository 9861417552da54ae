"""Traffic shape of records: prompt and completion lengths and empty or refused answers.

Counted per segment where a batch's records are counted into its partial aggregate (see
monitor/partials.py), so windows get them from the same merge as the scores, never from a scan.
Lengths are tokens (the offline cl100k encoding, else characters / 4, as monitor/judge/tokens.py)
in fixed buckets. See docs/drift.md for the buckets and the refusal patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.judge.tokens import count_tokens
from monitor.records import Record

# Upper bounds (inclusive) of the token buckets; the last bucket is open.
TOKEN_EDGES = (0, 16, 64, 256, 1024, 4096)
TOKEN_BUCKETS = ("0", "1-16", "17-64", "65-256", "257-1024", "1025-4096", ">4096")
ANSWER_KINDS = ("answered", "empty", "refused")
# A completion refuses when it opens with one of these (case-insensitive, within its first 200
# characters): the common wordings of chat models declining a request.
REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry,? (but )?i|i apologi[sz]e|unfortunately,? i (can(no|')t|am unable)"
    r"|i (can(no|')t|am unable to|'m unable to|am not able to|'m not able to|won'?t) (help|assist|answer"
    r"|provide|comply|do that|share)|as an ai\b)",
    re.IGNORECASE,
)


def token_bucket(tokens: int) -> int:
    for index, edge in enumerate(TOKEN_EDGES):
        if tokens <= edge:
            return index
    return len(TOKEN_EDGES)


def answer_kind(completion: str | None) -> int:
    """0 answered, 1 empty (missing or blank), 2 refused."""
    if completion is None or not completion.strip():
        return 1
    return 2 if REFUSAL.match(completion[:200]) else 0


def text_tokens(text: str | None) -> int:
    return count_tokens(text) if text else 0


@dataclass
class ShapeCounter:
    """Shape counters of one segment (of one batch, hour or window)."""

    records: int = 0
    prompt_tokens: list[int] = field(default_factory=lambda: [0] * len(TOKEN_BUCKETS))
    completion_tokens: list[int] = field(default_factory=lambda: [0] * len(TOKEN_BUCKETS))
    answers: list[int] = field(default_factory=lambda: [0] * len(ANSWER_KINDS))

    def add(self, record: Record) -> None:
        self.records += 1
        self.prompt_tokens[token_bucket(text_tokens(record.prompt))] += 1
        self.completion_tokens[token_bucket(text_tokens(record.completion))] += 1
        self.answers[answer_kind(record.completion)] += 1

    def merge(self, other: ShapeCounter) -> None:
        self.records += other.records
        self.prompt_tokens = [a + b for a, b in zip(self.prompt_tokens, other.prompt_tokens, strict=True)]
        self.completion_tokens = [a + b for a, b in zip(self.completion_tokens, other.completion_tokens,
                                                        strict=True)]
        self.answers = [a + b for a, b in zip(self.answers, other.answers, strict=True)]

    def to_json(self) -> dict[str, Any]:
        return {"records": self.records, "prompt_tokens": list(self.prompt_tokens),
                "completion_tokens": list(self.completion_tokens), "answers": list(self.answers)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShapeCounter:
        return cls(records=int(data.get("records", 0)),
                   prompt_tokens=_ints(data.get("prompt_tokens"), len(TOKEN_BUCKETS)),
                   completion_tokens=_ints(data.get("completion_tokens"), len(TOKEN_BUCKETS)),
                   answers=_ints(data.get("answers"), len(ANSWER_KINDS)))


def _ints(value: Any, size: int) -> list[int]:
    items = [int(x) for x in value] if isinstance(value, list) else []
    return (items + [0] * size)[:size]


# segment -> counter
Shapes = dict[str, ShapeCounter]


def count_shapes(records: Iterable[Record]) -> Shapes:
    """Shape counters of a batch, per segment: every record of the batch (the sampled records; the
    ingestion counts requests outside the sample without storing them, so they have no shape)."""
    shapes: Shapes = {}
    for record in records:
        for segment in record.segments():
            shapes.setdefault(segment, ShapeCounter()).add(record)
    return shapes


def merge_shapes(target: Shapes, other: Shapes) -> Shapes:
    for segment, counter in other.items():
        target.setdefault(segment, ShapeCounter()).merge(counter)
    return target


def shapes_to_json(shapes: Shapes) -> dict[str, Any]:
    return {segment: counter.to_json() for segment, counter in sorted(shapes.items())}


def shapes_from_json(data: Mapping[str, Any]) -> Shapes:
    return {str(s): ShapeCounter.from_json(c) for s, c in data.items() if isinstance(c, Mapping)}
