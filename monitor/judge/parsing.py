"""Strict reading of judge replies (STYLE.md 8): a score in 1-5 or an error with the raw reply.

Score mode: the expected value over the digits "1".."5" among the first token's top log-probabilities,
renormalised over those digits (G-Eval); where no digit log-probabilities come back, the reply text
must be exactly one digit 1-5 (surrounding whitespace allowed). Everything else ("Score: 4", "4.",
"3.5 out of 5", "six", "0", "") is a parse error, never a pass and never a fail.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DIGITS = ("1", "2", "3", "4", "5")
_DIGIT_REPLY = re.compile(r"^\s*([1-5])\s*$")
# Where the reply text is not a digit, the digits must carry at least this much probability for the
# expected value to mean anything; below it the model was mostly saying something else.
MIN_DIGIT_MASS = 0.5
MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class Parsed:
    """The reading of one score-mode reply: a score, or an error kind with the raw reply."""

    score: float | None
    logprobs: bool | None = None
    error: str | None = None
    raw: str | None = None


def parse_digit(text: str | None) -> int | None:
    """The score of a reply that is exactly one digit 1-5, else None."""
    match = _DIGIT_REPLY.match(text or "")
    return int(match.group(1)) if match else None


def digit_probabilities(top: Iterable[tuple[str, float]]) -> dict[int, float]:
    """Probability of each digit 1-5 among (token, logprob) pairs; whitespace around tokens is
    ignored and tokens that decode to the same digit (" 4", "4") add up. Other tokens are ignored."""
    out: dict[int, float] = {}
    for token, logprob in top:
        digit = token.strip()
        if digit in DIGITS and isinstance(logprob, int | float) and math.isfinite(logprob):
            out[int(digit)] = out.get(int(digit), 0.0) + math.exp(min(0.0, float(logprob)))
    return out


def expected_score(probabilities: dict[int, float]) -> float | None:
    total = sum(probabilities.values())
    if total <= 0:
        return None
    return sum(d * p for d, p in probabilities.items()) / total


def read_score(completion: Any) -> Parsed:
    """Read a score-mode chat completion (an openai ChatCompletion or anything shaped like it)."""
    choice = _first_choice(completion)
    if choice is None:
        return Parsed(None, error="parse", raw=raw_reply(completion))
    text = _content(choice)
    if getattr(choice, "finish_reason", None) == "content_filter":
        return Parsed(None, error="content_filter", raw=text)
    probabilities = digit_probabilities(_top_logprobs(choice))
    expected = expected_score(probabilities)
    digit = parse_digit(text)
    if expected is not None and (digit is not None or sum(probabilities.values()) >= MIN_DIGIT_MASS):
        return Parsed(_clamp(expected), logprobs=True, raw=text)
    if digit is not None:
        return Parsed(float(digit), logprobs=False, raw=text)
    return Parsed(None, error="parse", raw=text if text is not None else raw_reply(completion))


def read_explain(completion: Any) -> tuple[float, str] | str:
    """(score, reason) from an explain-mode reply, or an error kind ("parse", "content_filter")."""
    choice = _first_choice(completion)
    if choice is None:
        return "parse"
    if getattr(choice, "finish_reason", None) == "content_filter":
        return "content_filter"
    return parse_explain(_content(choice))


def parse_explain(text: str | None) -> tuple[float, str] | str:
    """Strict: a JSON object with an integer-valued `score` in 1-5 and a non-empty string `reason`."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return "parse"
    if not isinstance(data, dict):
        return "parse"
    score, reason = data.get("score"), data.get("reason")
    if isinstance(score, bool) or not isinstance(score, int | float) or not 1 <= score <= 5:
        return "parse"
    if not isinstance(reason, str) or not reason.strip():
        return "parse"
    return float(score), reason.strip()[:MAX_REASON_CHARS]


def _clamp(value: float) -> float:
    return min(5.0, max(1.0, value))


def well_formed(completion: Any) -> bool:
    """Whether a 200 reply has the shape of a chat completion (a first choice with a message). A
    reply without it (an HTML error page, `null`, `[]`, a truncated body) is garbage from a proxy or
    an overloaded server: retried, unlike a well-formed reply whose text is not a score."""
    choice = _first_choice(completion)
    return choice is not None and getattr(choice, "message", None) is not None


def _first_choice(completion: Any) -> Any:
    choices = getattr(completion, "choices", None)
    if not isinstance(choices, list) or not choices:
        return None
    return choices[0]


def _content(choice: Any) -> str | None:
    message = getattr(choice, "message", None)
    content = getattr(message, "content", None)
    return content if isinstance(content, str) else None


def _top_logprobs(choice: Any) -> list[tuple[str, float]]:
    """(token, logprob) of the first position's alternatives; the sampled token where the server
    lists no alternatives."""
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not isinstance(content, list) or not content:
        return []
    first = content[0]
    top = getattr(first, "top_logprobs", None) or []
    pairs = [(getattr(t, "token", None), getattr(t, "logprob", None)) for t in top]
    if not pairs:
        pairs = [(getattr(first, "token", None), getattr(first, "logprob", None))]
    return [(t, lp) for t, lp in pairs if isinstance(t, str) and isinstance(lp, int | float)]


def raw_reply(completion: Any) -> str:
    """Something to show for a reply without a usable choice (a non-JSON body arrives as str)."""
    if isinstance(completion, str | bytes):
        return str(completion if isinstance(completion, str) else completion.decode(errors="replace"))[:2000]
    try:
        dump = (completion.model_dump_json(warnings=False) if hasattr(completion, "model_dump_json")
                else repr(completion))
    except Exception:
        dump = repr(completion)
    return str(dump)[:2000]
