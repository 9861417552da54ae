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
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableTransactionError, UpdateMode

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
        scores = self._store(ref, records, scores, acceptable)
        statuses: dict[str, int] = {}
        for score in scores:
            statuses[score.status] = statuses.get(score.status, 0) + 1
        return BatchOutcome(ref.batch_id, len(records), len(fresh), len(kept), statuses)

    def _load_records(self, ref: BatchRef) -> list[Record]:
        table = self._tables["records"]
        if ref.keys is None:  # an adopted batch: find its members by id
            entities = query_partition(table, ref.partition, extra_filter="batch_id eq @bid",
                                       parameters={"bid": ref.batch_id})
            return [r for r in (_readable(ref, e) for e in entities) if r is not None]
        found = self._pool.map(lambda key: get_entity(table, ref.partition, safe_key(key)), ref.keys)
        records = []
        for key, entity in zip(ref.keys, found, strict=True):
            if entity is None:
                log.error("batch %s: record %s is missing from %s", ref.batch_id, key[:200], ref.partition)
            elif (record := _readable(ref, entity)) is not None:
                records.append(record)
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
               acceptable: Mapping[str, float]) -> list[Score]:
        """Store the scores, the batch's partial and the dirty hour; returns the scores as stored."""
        scores = self._write_scores(ref, {r.key: r for r in records}, scores)
        now = iso(datetime.now(UTC))
        counts = count_batch(records, scores, acceptable, acceptable)
        self._tables["partials"].upsert_entity(partial_entity(ref.partition, ref.batch_id, counts, len(records), now,
                                                                 count_shapes(records)))
        monitor, hour = ref.partition.rsplit("|", 1)
        self._tables["dirty"].upsert_entity({"PartitionKey": monitor, "RowKey": hour, "updated_at": now})
        return scores

    def _write_scores(self, ref: BatchRef, by_key: Mapping[str, Record], scores: list[Score]) -> list[Score]:
        """Write the scores in table transactions. When the service refuses a transaction for one
        entity, its scores are written one by one, so one record's problem stays that record's: a
        score that cannot be stored becomes an `error` score (detail `store_failed`), itself stored."""
        def entity(score: Score) -> dict[str, Any]:
            record = by_key[score.record_key]
            return score.to_entity(ref.partition, {
                "time": iso(record.time), "deployment": record.deployment,
                "model_version": record.model_version, "batch_id": ref.batch_id,
            })

        table = self._tables["scores"]
        try:
            write_entities(table, [entity(score) for score in scores])
            return scores
        except (TableTransactionError, HttpResponseError, ValueError) as exc:
            log.warning("batch %s: a score transaction was refused (%s); writing its scores one by one",
                        ref.batch_id, exc)
        stored = []
        for score in scores:
            try:
                table.upsert_entity(entity(score), mode=UpdateMode.REPLACE)
            except (HttpResponseError, ValueError) as exc:
                if isinstance(exc, HttpResponseError) and not _refused(exc):
                    raise  # an outage or throttling: the whole batch is retried
                log.error("batch %s: the %s score of record %s cannot be stored: %s", ref.batch_id,
                          score.metric, score.record_key[:200], exc)
                score = store_failed(score, exc)
                table.upsert_entity(entity(score), mode=UpdateMode.REPLACE)
            stored.append(score)
        return stored


def _readable(ref: BatchRef, entity: dict[str, Any]) -> Record | None:
    """The record of a stored entity; None (logged) for one that cannot be read (e.g. written by an
    older version with a time it can no longer parse), so it does not stop the rest of its batch."""
    try:
        return Record.from_entity(entity)
    except (KeyError, ValueError, TypeError) as exc:
        log.error("batch %s: record %s in %s cannot be read, not judged: %s", ref.batch_id,
                  str(entity.get("key", entity.get("RowKey")))[:200], ref.partition, exc)
        return None


def _refused(exc: HttpResponseError) -> bool:
    """The service refused the entity itself (400, 413), not the request at this moment."""
    return exc.status_code in (400, 413)


def store_failed(score: Score, exc: Exception) -> Score:
    """The error score recorded in place of one the table refused (without the refused payload)."""
    return Score(record_key=score.record_key, metric=score.metric, status="error",
                 reason=f"the score could not be stored: {type(exc).__name__}: {exc}"[:1000],
                 provider=score.provider, model=score.model, prompt_version=score.prompt_version,
                 prompt_tokens=score.prompt_tokens, completion_tokens=score.completion_tokens,
                 latency_ms=score.latency_ms, detail="store_failed")
