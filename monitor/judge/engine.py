"""The judge engine: one call, `judge(tasks)`, turns records x metrics into one Score each.

The engine is synchronous for its callers (function bodies, the CLI). Tasks whose record lacks a
required column are `not_applicable` without any call; the heuristic judge scores the rest in the
caller's thread; LLM tasks run concurrently on the process's judge loop, throttled and retried by
:class:`~monitor.judge.llm.LLMJudge`. Scores come back in task order, one per task, never dropped:
a record that fails every attempt is an `error` score. Only a judge that cannot work at all (bad
key, unknown deployment) raises, as :class:`JudgeFatalError`, after cancelling the rest of the batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from monitor.config import MonitorConfig
from monitor.errors import ConfigError, JudgeFatalError
from monitor.judge import heuristic
from monitor.judge.budget import TokenBudget
from monitor.judge.clients import client_spec
from monitor.judge.limits import RetryPolicy
from monitor.judge.llm import LLMJudge
from monitor.judge.metrics import Metric, enabled_metrics
from monitor.judge.runtime import Runtime, get_runtime
from monitor.records import Record
from monitor.scores import Score

log = logging.getLogger(__name__)
# A task waiting for the remote judge: its index, metric, record and earlier score (see JudgeTask).
_Pending = tuple[int, Metric, Record, Score | None]


@dataclass(frozen=True)
class JudgeTask:
    """One record x one metric."""

    record: Record
    metric: str
    # An ok score judged earlier whose explain call failed: only the reason is asked for again
    # (the score call is not paid twice).
    prior: Score | None = None


class JudgeEngine:
    """Scores tasks for one monitor with its configured judge (see module docstring)."""

    def __init__(self, config: MonitorConfig, *, budget: TokenBudget | None = None,
                 retry: RetryPolicy | None = None, runtime: Runtime | None = None) -> None:
        self.config = config
        self.metrics: dict[str, Metric] = enabled_metrics(config)
        self.budget = budget
        self.retry = retry or RetryPolicy(max_attempts=config.judge.max_attempts)
        self._runtime = runtime

    @property
    def approximate(self) -> bool:
        return self.config.judge.provider == "heuristic"

    @property
    def description(self) -> dict[str, Any]:
        """What judged the scores, for the dashboard: provider, model, approximate flag, prompts."""
        judge = self.config.judge
        return {
            "provider": judge.provider,
            "model": judge.model_name,
            "approximate": self.approximate,
            "scoring": "heuristic" if self.approximate else ("logprobs" if judge.use_logprobs else "digit"),
            "explain": judge.explain,
            "prompt_versions": {
                name: heuristic.VERSION if self.approximate and heuristic.supports(name) else m.prompt.version
                for name, m in self.metrics.items()
            },
            "prompt_digests": {name: m.prompt.digest for name, m in self.metrics.items()},
        }

    def judge(self, tasks: Sequence[JudgeTask]) -> list[Score]:
        """One Score per task, in task order. Raises JudgeFatalError (nothing else) for judge problems."""
        metrics = [self._metric(task.metric) for task in tasks]
        scores: list[Score | None] = [None] * len(tasks)
        pending: list[_Pending] = []
        for index, (task, metric) in enumerate(zip(tasks, metrics, strict=True)):
            if not metric.applicable(task.record):
                scores[index] = self._not_applicable(task.record, metric)
            elif self.approximate:
                scores[index] = self._heuristic(task.record, metric)
            else:
                pending.append((index, metric, task.record, task.prior))
        if pending:
            for index, score in self._judge_remote(pending).items():
                scores[index] = score
        return [score for score in scores if score is not None]

    def _metric(self, name: str) -> Metric:
        metric = self.metrics.get(name)
        if metric is None:
            raise ConfigError(f"metric {name!r} is not enabled for monitor {self.config.name!r}; "
                              f"enabled: {sorted(self.metrics)}")
        return metric

    def _base(self, record: Record, metric: Metric) -> dict[str, Any]:
        return {"record_key": record.key, "metric": metric.name, "provider": self.config.judge.provider,
                "model": self.config.judge.model_name, "prompt_version": metric.prompt.version}

    def _not_applicable(self, record: Record, metric: Metric) -> Score:
        missing = [c for c in metric.required if record.column(c) is None]
        return Score(status="not_applicable", detail=f"missing:{','.join(missing)}", **self._base(record, metric))

    def _heuristic(self, record: Record, metric: Metric) -> Score:
        base = {**self._base(record, metric), "approximate": True}
        if not heuristic.supports(metric.name):
            return Score(status="skipped", detail="heuristic_unsupported", **base)
        started = time.perf_counter()
        values = {c: record.column(c) for c in ("prompt", "completion", "context", "ground_truth")}
        verdict = heuristic.judge(metric.name, values)
        explain = self.config.judge.explain
        wants_reason = explain == "all" or (explain == "failing" and not metric.passed(verdict.score))
        base["prompt_version"] = heuristic.VERSION
        return Score(status="ok", score=verdict.score, passed=metric.passed(verdict.score),
                     reason=verdict.reason if wants_reason else None,
                     latency_ms=round((time.perf_counter() - started) * 1000, 3), **base)

    def _judge_remote(self, pending: list[_Pending]) -> dict[int, Score]:
        runtime = self._runtime or get_runtime()
        llm = LLMJudge(self.config.judge, client_spec(self.config.judge), runtime,
                       policy=self.retry, budget=self.budget)
        try:
            return runtime.run(_judge_all(llm, pending))
        finally:
            if llm.failed_attempts:  # one line per batch, not a traceback per failed attempt
                log.warning("monitor %s: judge attempts that failed and were retried or recorded: %s",
                            self.config.name, dict(llm.failed_attempts))
            if self.budget is not None:
                self.budget.flush()


async def _judge_all(llm: LLMJudge, pending: list[_Pending]) -> dict[int, Score]:
    """Every pending task concurrently (the throttle bounds what is in flight); the first fatal error
    cancels the others and is raised alone."""
    results: dict[int, Score] = {}

    async def one(index: int, metric: Metric, record: Record, prior: Score | None) -> None:
        results[index] = await _guarded(llm, metric, record, prior)

    try:
        async with llm.throttle.session(), asyncio.TaskGroup() as group:
            for index, metric, record, prior in pending:
                group.create_task(one(index, metric, record, prior))
    except BaseExceptionGroup as group_error:
        fatal = group_error.subgroup(JudgeFatalError)
        if fatal is not None:
            raise _first(fatal) from None
        raise
    return results


async def _guarded(llm: LLMJudge, metric: Metric, record: Record, prior: Score | None) -> Score:
    """Never lose a record: an unexpected failure becomes an error score (and is logged)."""
    try:
        return await llm.score(metric, record, prior)
    except (JudgeFatalError, asyncio.CancelledError):
        raise
    except Exception as exc:  # a bug must not drop the record
        log.exception("judging record %s on %s failed unexpectedly", record.key, metric.name)
        return Score(record_key=record.key, metric=metric.name, status="error",
                     detail=f"internal_{type(exc).__name__}", provider=llm.judge.provider,
                     model=llm.judge.model_name, prompt_version=metric.prompt.version)


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
