"""Judge one batch and store the results, idempotently.

Scores are upserted per record x metric; the partial aggregate of the batch is rewritten in full
from all of the batch's scores; the hour is marked dirty for the timer. A batch evaluated again
(queue re-delivery, backfill) keeps its ok scores and re-judges only errors and skipped ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from monitor.config import MonitorConfig
from monitor.ingest.claims import BatchRef
from monitor.judge import JudgeEngine, JudgeTask
from monitor.keys import iso, safe_key
from monitor.partials import count_batch, partial_entity
from monitor.records import Record
from monitor.scores import Score
from monitor.shape import count_shapes
from monitor.storage.tables import Tables, get_entity, query_partition, write_entities

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({"error", "skipped"})


@dataclass(frozen=True)
class BatchOutcome:
    batch_id: str
    records: int
    judged: int
    kept: int
    statuses: dict[str, int]


def needs_reason(score: Score, config: MonitorConfig) -> bool:
    """An ok score whose explain call failed, where the judge is configured to explain it: evaluated
    again, it gets only the explain call (its score is kept, not paid twice)."""
    if score.status != "ok" or score.reason is not None or not (score.detail or "").startswith("explain_"):
        return False
    mode = config.judge.explain
    return mode == "all" or (mode == "failing" and score.passed is False)


class BatchEvaluator:
    def __init__(self, tables: Tables, engine_for: Callable[[MonitorConfig], JudgeEngine],
                 pool: ThreadPoolExecutor) -> None:
        self._tables = tables
        self._engine_for = engine_for
        self._pool = pool

    def evaluate(self, config: MonitorConfig, ref: BatchRef) -> BatchOutcome:
        records = self._load_records(ref)
        acceptable = {name: m.acceptable_score for name, m in config.enabled_metrics().items()}
        metrics = list(acceptable)
        kept = self._kept_scores(ref, acceptable, (config.judge.provider, config.judge.model_name))
        unexplained = {k: kept.pop(k) for k in [k for k, s in kept.items() if needs_reason(s, config)]}
        tasks = [JudgeTask(r, m, unexplained.get((r.key, m))) for r in records if r.sampled for m in metrics
                 if (r.key, m) not in kept]
        fresh = self._engine_for(config).judge(tasks) if tasks else []
        scores = list(kept.values()) + fresh
        self._store(ref, records, scores, acceptable)
        statuses: dict[str, int] = {}
        for score in scores:
            statuses[score.status] = statuses.get(score.status, 0) + 1
        return BatchOutcome(ref.batch_id, len(records), len(fresh), len(kept), statuses)

    def _load_records(self, ref: BatchRef) -> list[Record]:
        table = self._tables["records"]
        if ref.keys is None:  # an adopted batch: find its members by id
            entities = query_partition(table, ref.partition, extra_filter="batch_id eq @bid",
                                       parameters={"bid": ref.batch_id})
            return [Record.from_entity(e) for e in entities]
        found = self._pool.map(lambda key: get_entity(table, ref.partition, safe_key(key)), ref.keys)
        records = []
        for key, entity in zip(ref.keys, found, strict=True):
            if entity is None:
                log.error("batch %s: record %s is missing from %s", ref.batch_id, key, ref.partition)
            else:
                records.append(Record.from_entity(entity))
        return records

    def _kept_scores(self, ref: BatchRef, acceptable: Mapping[str, float],
                     judge: tuple[str, str]) -> dict[tuple[str, str], Score]:
        """Scores from an earlier evaluation of this batch that need no new judge call: ok or not
        applicable, by the judge configured now (a changed judge re-judges). `passed` follows the
        current acceptable score (a changed threshold applies without re-judging)."""
        if get_entity(self._tables["partials"], ref.partition, ref.batch_id) is None:
            return {}  # never evaluated: nothing to keep, and no scan needed
        entities = query_partition(self._tables["scores"], ref.partition, extra_filter="batch_id eq @bid",
                                   parameters={"bid": ref.batch_id})
        kept = {}
        for entity in entities:
            score = Score.from_entity(entity)
            same_judge = (score.provider, score.model) == judge or score.status == "not_applicable"
            if score.metric in acceptable and score.status not in RETRY_STATUSES and same_judge:
                if score.score is not None:
                    score = replace(score, passed=score.score >= acceptable[score.metric])
                kept[(score.record_key, score.metric)] = score
        return kept

    def _store(self, ref: BatchRef, records: list[Record], scores: list[Score],
               acceptable: Mapping[str, float]) -> None:
        by_key = {r.key: r for r in records}
        entities = []
        for score in scores:
            record = by_key[score.record_key]
            entities.append(score.to_entity(ref.partition, {
                "time": iso(record.time), "deployment": record.deployment,
                "model_version": record.model_version, "batch_id": ref.batch_id,
            }))
        write_entities(self._tables["scores"], entities)
        now = iso(datetime.now(UTC))
        counts = count_batch(records, scores, acceptable, acceptable)
        self._tables["partials"].upsert_entity(partial_entity(ref.partition, ref.batch_id, counts, len(records), now,
                                                                 count_shapes(records)))
        monitor, hour = ref.partition.rsplit("|", 1)
        self._tables["dirty"].upsert_entity({"PartitionKey": monitor, "RowKey": hour, "updated_at": now})
