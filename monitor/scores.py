"""A score: the immutable result of judging one record on one metric."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from monitor.keys import safe_key

Status = Literal["ok", "error", "not_applicable", "skipped"]
STATUSES: tuple[Status, ...] = ("ok", "error", "not_applicable", "skipped")


@dataclass(frozen=True)
class Score:
    record_key: str
    metric: str
    status: Status
    score: float | None = None
    passed: bool | None = None
    reason: str | None = None
    # The judge's raw reply where it could not be parsed (status error), for diagnosis.
    raw: str | None = None
    provider: str = ""
    model: str = ""
    prompt_version: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    # True: expected value over the top log-probabilities; False: the parsed digit; None: no call.
    logprobs: bool | None = None
    # True where the heuristic judge produced the score (approximate).
    approximate: bool = False
    # Why a score was skipped ("budget", "not_sampled") or failed ("parse", "http_500", ...).
    detail: str | None = None

    def __post_init__(self) -> None:
        if self.status == "ok":
            if self.score is None or not math.isfinite(self.score) or not 1.0 <= self.score <= 5.0:
                raise ValueError(f"an ok score must be within 1-5, got {self.score!r}")
        elif self.score is not None:
            raise ValueError(f"a {self.status} score carries no value")

    @property
    def bucket(self) -> int | None:
        """Histogram bucket 1-5: the score rounded half up, clamped."""
        if self.score is None:
            return None
        return min(5, max(1, math.floor(self.score + 0.5)))

    def to_entity(self, partition: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        entity = {"PartitionKey": partition, "RowKey": f"{safe_key(self.record_key)}|{self.metric}", **data}
        if extra:
            entity.update({k: v for k, v in extra.items() if v is not None})
        return entity

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> Score:
        fields = cls.__dataclass_fields__
        return cls(**{k: entity[k] for k in fields if k in entity})
