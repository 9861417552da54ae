"""Seed partials with traffic shape exactly as the judge path writes them, for drift tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from monitor.keys import iso
from monitor.partials import count_batch, partial_entity
from monitor.records import Record
from monitor.scores import Score
from monitor.shape import count_shapes
from monitor.storage.tables import Tables, write_entities

H10 = datetime(2026, 11, 20, 10, tzinfo=UTC)
AT = datetime(2026, 11, 20, 16, 5, tzinfo=UTC)
ANSWER = "Open Settings, choose Security and select Reset password."
REFUSAL = "I'm sorry, but I can't help with that request."
_keys = itertools.count()


def seed_hour(monitor: str, hour: datetime, score: float, completion: str, n: int = 6) -> None:
    """One batch of `n` records scored `score` on coherence, written as the judge path writes it."""
    records = [Record(monitor=monitor, key=f"k{next(_keys)}", time=hour + timedelta(minutes=i),
                      prompt="How do I reset my password?", completion=completion, deployment="blue",
                      model_version="1") for i in range(n)]
    scores = [Score(r.key, "coherence", "ok", score=score, passed=score >= 3) for r in records]
    now = iso(datetime.now(UTC))
    entity = partial_entity(records[0].partition, f"b{next(_keys)}", count_batch(records, scores, ["coherence"]),
                            n, now, count_shapes(records))
    write_entities(Tables.default()["partials"], [entity])
    Tables.default()["dirty"].upsert_entity({"PartitionKey": monitor, "RowKey": records[0].hour, "updated_at": now})


def seed_regression(monitor: str) -> None:
    """Hours 10-12 good (4.6, answered), 13 bad (1.4, refused), 14-15 good again."""
    for offset, (score, completion) in enumerate([(4.6, ANSWER)] * 3 + [(1.4, REFUSAL)] + [(4.6, ANSWER)] * 2):
        seed_hour(monitor, H10 + timedelta(hours=offset), score, completion)
