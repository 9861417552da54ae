"""The LLM judge: render, budget, throttle, call with one retry loop, parse, explain.

Everything here runs on the judge loop (:mod:`monitor.judge.runtime`). Failures are sorted once, in
:func:`classify`: transient ones (408, 409, 429, 5xx, timeouts, connection errors) are retried with
the server's retry-after or jittered backoff; record-level ones (content filter, context too long, or
a transient failure that outlived every attempt) become an error score for that record only; fatal
ones (401, 403, 404, other 400s, no quota) raise :class:`JudgeFatalError` at once, which cancels the
batch, with a message that says what to fix.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import openai
from azure.core.exceptions import ClientAuthenticationError

from monitor.config import JudgeConfig
from monitor.errors import JudgeFatalError
from monitor.judge.budget import TokenBudget
from monitor.judge.clients import ClientSpec, shared_client
from monitor.judge.limits import RetryPolicy, Throttle, build_throttle, retry_after
from monitor.judge.metrics import Metric
from monitor.judge.parsing import raw_reply, read_explain, read_score, well_formed
from monitor.judge.prompts import Mode
from monitor.judge.runtime import Runtime
from monitor.judge.tokens import estimate_messages
from monitor.outbound import OutboundRefusedError
from monitor.records import Record
from monitor.scores import Score

log = logging.getLogger(__name__)

TOP_LOGPROBS = 5  # the Azure OpenAI maximum
RETRYABLE_STATUS = {408, 409, 429}
CONTENT_FILTER_MARKERS = ("content_filter", "ResponsibleAIPolicyViolation", "content management policy")


@dataclass(frozen=True)
class Outcome:
    """The result of one logical call (all its attempts)."""

    completion: Any = None
    error: str | None = None
    raw: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0


@dataclass(frozen=True)
class Failure:
    kind: str
    retry: bool = False
    fatal: str | None = None
    headers: Mapping[str, str] | None = None
    # What the server or the transport said, kept in Score.raw when the record ends in error.
    message: str | None = None


class LLMJudge:
    """Judges records with an OpenAI-compatible model through the shared client of its endpoint."""

    def __init__(self, judge: JudgeConfig, spec: ClientSpec, runtime: Runtime, *, policy: RetryPolicy,
                 budget: TokenBudget | None = None, rng: random.Random | None = None) -> None:
        self.judge = judge
        self.spec = spec
        self.runtime = runtime
        self.policy = policy
        self.budget = budget
        self.rng = rng or random.Random()
        # Set by the first fatal failure: calls that get a slot afterwards stop instead of sending.
        self.fatal: str | None = None
        # Failed attempts by kind ("parse" = a garbage 200 reply, "http_429", ...), for one summary log.
        self.failed_attempts: collections.Counter[str] = collections.Counter()

    @property
    def throttle(self) -> Throttle:
        """The throttle shared by every call to this deployment in the process (on the loop)."""
        j = self.judge
        key = ("throttle", self.spec, j.model_name, j.max_concurrency, j.adaptive_concurrency,
               j.requests_per_minute, j.tokens_per_minute, j.quota_pool)
        return self.runtime.shared(key, lambda: build_throttle(j), Throttle.close)

    async def score(self, metric: Metric, record: Record, prior: Score | None = None) -> Score:
        """One record on one metric: a score-mode call, then an explain call where configured.
        With `prior` (an ok score whose explain call failed), only the explain call is made."""
        values = metric.values(record)
        if prior is not None and prior.status == "ok" and prior.score is not None:
            return await self._explain(metric, values, replace(prior, detail=None))
        outcome = await self.complete(metric.prompt.render(values, "score"), "score",
                                      metric.prompt.max_tokens("score"), metric.prompt.parameters)
        base = Score(record_key=record.key, metric=metric.name, status="skipped", provider=self.judge.provider,
                     model=self.judge.model_name, prompt_version=metric.prompt.version,
                     prompt_tokens=outcome.prompt_tokens, completion_tokens=outcome.completion_tokens,
                     latency_ms=round(outcome.latency_ms, 3))
        if outcome.error == "budget":
            return replace(base, detail="budget")
        if outcome.error is not None:
            return replace(base, status="error", detail=outcome.error, raw=outcome.raw)
        parsed = read_score(outcome.completion)
        if parsed.score is None:
            return replace(base, status="error", detail=parsed.error, raw=parsed.raw)
        value = round(parsed.score, 6)
        scored = replace(base, status="ok", score=value, passed=metric.passed(value), logprobs=parsed.logprobs)
        if self._wants_reason(metric, value):
            return await self._explain(metric, values, scored)
        return scored

    def _wants_reason(self, metric: Metric, value: float) -> bool:
        mode = self.judge.explain
        return mode == "all" or (mode == "failing" and not metric.passed(value))

    async def _explain(self, metric: Metric, values: dict[str, str | None], scored: Score) -> Score:
        """Ask for a reason; the score-mode score is kept whatever happens here."""
        outcome = await self.complete(metric.prompt.render(values, "explain"), "explain",
                                      metric.prompt.max_tokens("explain"), metric.prompt.parameters)
        totals = replace(scored, prompt_tokens=scored.prompt_tokens + outcome.prompt_tokens,
                         completion_tokens=scored.completion_tokens + outcome.completion_tokens,
                         latency_ms=round(scored.latency_ms + outcome.latency_ms, 3))
        if outcome.error is not None:
            return replace(totals, detail=f"explain_{outcome.error}")
        result = read_explain(outcome.completion)
        if isinstance(result, str):
            return replace(totals, detail=f"explain_{result}")
        return replace(totals, reason=result[1])

    def _request(self, messages: list[dict[str, str]], mode: Mode, max_tokens: int) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.judge.model_name, "messages": messages, "max_tokens": max_tokens}
        if mode == "score" and self.judge.use_logprobs:
            params.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        if mode == "explain":
            params["response_format"] = {"type": "json_object"}
        return params

    async def complete(self, messages: list[dict[str, str]], mode: Mode, max_tokens: int,
                       parameters: Mapping[str, Any] | None = None) -> Outcome:
        """One logical call: reserve budget, then attempt until success, a final failure or a fatal
        error (raised). The budget reservation is settled with the tokens really used."""
        params = {**(parameters or {}), **self._request(messages, mode, max_tokens)}
        estimate = estimate_messages(messages) + max_tokens
        if self.budget is not None and not await asyncio.to_thread(self.budget.reserve, estimate):
            return Outcome(error="budget")
        spent = 0
        try:
            outcome = await self._attempts(params, estimate)
            spent = outcome.prompt_tokens + outcome.completion_tokens
            if outcome.error == "timeout":
                spent = estimate  # the server may have processed (and billed) it
            return outcome
        finally:
            if self.budget is not None:
                self.budget.settle(estimate, spent)
                if self.budget.flush_due():
                    await asyncio.to_thread(self.budget.flush)

    async def _attempts(self, params: dict[str, Any], estimate: int) -> Outcome:
        client = shared_client(self.runtime, self.spec)
        throttle = self.throttle
        failure, latency = Failure("none"), 0.0
        for attempt in range(1, self.policy.max_attempts + 1):
            async with throttle.slot(estimate):
                if self.fatal is not None:
                    raise JudgeFatalError(self.fatal)
                started = time.perf_counter()
                try:
                    completion = await client.chat.completions.create(**params, timeout=self.judge.timeout_seconds)
                except Exception as exc:  # classify() sorts every failure
                    failure = classify(exc, self.judge, self.spec)
                    self.fatal = self.fatal or failure.fatal
                else:
                    took = time.perf_counter() - started
                    throttle.on_success(took)
                    if well_formed(completion):
                        return _success(completion, took * 1000)
                    failure = Failure("parse", retry=True, message=raw_reply(completion))
                finally:
                    latency = (time.perf_counter() - started) * 1000
            self.failed_attempts[failure.kind] += 1
            if failure.fatal is not None:
                raise JudgeFatalError(failure.fatal)
            if failure.kind == "http_429":
                throttle.on_throttled(retry_after(failure.headers, self.policy.max_retry_after))
            if not failure.retry or attempt == self.policy.max_attempts:
                break
            await asyncio.sleep(self.policy.delay(attempt, failure.headers, self.rng))
        return Outcome(error=failure.kind, raw=failure.message, latency_ms=latency)


def _success(completion: Any, latency_ms: float) -> Outcome:
    usage = getattr(completion, "usage", None)
    return Outcome(completion=completion, prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
                   completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0), latency_ms=latency_ms)


def classify(exc: BaseException, judge: JudgeConfig, spec: ClientSpec) -> Failure:
    """Sort a failed attempt: retry it, fail this record, or stop everything (with what to fix)."""
    refused = _outbound_refusal(exc)
    if refused is not None:
        return Failure("outbound_refused", fatal=f"the judge at {spec.target} was not called: {refused}; "
                                                 "see docs/security.md")
    if isinstance(exc, openai.APITimeoutError):
        return Failure("timeout", retry=True, message=f"no reply within judge.timeout_seconds={judge.timeout_seconds}")
    if isinstance(exc, openai.APIConnectionError):
        return Failure("connection", retry=True, message=f"{exc.message} {exc.__cause__ or ''}".strip()[:300])
    if isinstance(exc, openai.APIStatusError):
        return _classify_status(exc, judge, spec)
    if isinstance(exc, openai.APIResponseValidationError):
        return Failure("parse", retry=True, message=str(exc.body)[:2000])
    if isinstance(exc, json.JSONDecodeError | ValueError | TypeError | KeyError | AttributeError):
        # A 200 whose body the client could not decode (truncated JSON, a proxy's page): garbage,
        # retried like a transient failure; one line, no traceback (it is the server's fault).
        log.debug("undecodable judge reply: %s: %s", type(exc).__name__, exc)
        return Failure("parse", retry=True, message=f"undecodable reply: {exc}"[:300])
    if isinstance(exc, ClientAuthenticationError):
        return Failure("auth", fatal=(
            f"cannot get an Entra ID token for the judge at {spec.target}: {exc.message}. Locally, sign in "
            "with `az login`; in Azure, give the function app a managed identity (and AZURE_CLIENT_ID for "
            "a user-assigned one), or set judge.api_key_setting"))
    log.exception("unexpected judge failure")
    return Failure(f"internal_{type(exc).__name__}", message=str(exc)[:300])


def _outbound_refusal(exc: BaseException) -> str | None:
    """The outbound policy's refusal somewhere in an exception's chain (raised by the resolver)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OutboundRefusedError):
            return str(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__ or getattr(current, "os_error", None)
    return None


def _classify_status(exc: openai.APIStatusError, judge: JudgeConfig, spec: ClientSpec) -> Failure:
    status, headers, detail = exc.status_code, dict(exc.response.headers), _message(exc)
    kind = f"http_{status}"
    if status == 429 and exc.code == "insufficient_quota":
        return Failure(kind, fatal=f"the judge account at {spec.target} has no quota left (429 insufficient_quota): "
                                   "check the account's billing and quota")
    if status in RETRYABLE_STATUS or status >= 500:
        return Failure(kind, retry=True, headers=headers, message=detail)
    if status == 400 and _content_filtered(exc):
        return Failure("content_filter", message=detail)
    if (status == 400 and exc.code == "context_length_exceeded") or status == 413:
        return Failure("context_length", message=detail)
    return Failure(kind, fatal=_fatal_message(status, detail, judge, spec))


def _fatal_message(status: int, detail: str, judge: JudgeConfig, spec: ClientSpec) -> str:
    where = spec.target
    if status == 401:
        if spec.key_source == "entra":
            fix = ("check that the function app's identity has the 'Cognitive Services OpenAI User' role "
                   "on the Azure OpenAI resource")
        else:
            fix = f"check the API key in {spec.key_source.removeprefix('setting:')} (judge.api_key_setting)"
        return f"the judge at {where} rejected the credentials (401: {detail}): {fix}"
    if status == 403:
        return (f"the judge at {where} refused access (403: {detail}): check the identity's role assignment "
                "and the resource's network rules")
    if status == 404:
        if judge.provider == "azure_openai":
            return (f"the judge deployment '{judge.deployment}' was not found at {where} (404: {detail}): "
                    "check judge.deployment and judge.api_version")
        return (f"the judge model '{judge.model}' was not found at {where} (404: {detail}): "
                "check judge.model and judge.base_url")
    return (f"the judge at {where} rejected the request ({status}: {detail}): check that judge "
            f"'{judge.model_name}' is a chat model that accepts logprobs (or set judge.use_logprobs to false) "
            "and that judge.api_version is current")


def _message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:300]
    return str(exc.message)[:300]


def _content_filtered(exc: openai.APIStatusError) -> bool:
    text = f"{exc.code} {exc.body}"
    return any(marker in text for marker in CONTENT_FILTER_MARKERS)
