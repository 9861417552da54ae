"""The heuristic judge: deterministic text statistics and lexical overlap mapped onto 1-5.

No network, no model: the embedded default for the demo and CI. Its scores are approximate and are
labelled so (`approximate=True`, provider "heuristic") wherever they appear. Each metric is a ratio
in [0, 1] mapped linearly onto 1-5, so the direction is easy to reason about:

* similarity   - token F1 between the answer and the ground truth (SQuAD style); identical -> 5.
* groundedness - share of the answer's content words found in the context; no support -> 1.
* relevance    - half: share of the question's content words the answer takes up; half: share of
                 the answer's content words that belong to the question or the context.
* fluency      - sentence length in a readable range, word-like tokens, no stuttered repeats,
                 sentences that start with a capital and end with punctuation.
* coherence    - adjacent sentences linked by a shared content word or a connective, no repeated
                 sentences, a varied vocabulary, and a link to the question.

Content words are lower-cased word tokens minus common function words, lightly stemmed.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

VERSION = "heuristic-1.0"



def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n{2,}")
STOPWORDS = _wordset("""
a an the and or but if then else of to in on at by for with from as into onto about over under
is are was were be been being am do does did done has have had having can could should would will
shall may might must i me my we our you your he him his she her it its they them their this that
these those there here what which who whom whose when where why how not no nor so too very just
also than such only own same any all each both few more most other some s t don isn aren wasn
""")
CONNECTIVES = _wordset("""
also and but because therefore thus however so then first second finally next moreover furthermore
instead meanwhile consequently additionally besides overall hence otherwise similarly likewise this
these it they that such
""")
_SUFFIXES = ("ingly", "ings", "ing", "edly", "ed", "ies", "es", "ly", "s")


@dataclass(frozen=True)
class Verdict:
    """A heuristic score in 1-5 and the short reason shown on the dashboard."""

    score: float
    reason: str


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def stem(word: str) -> str:
    """Strip one common English suffix so 'deployments' and 'deployment' match."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {stem(w) for w in words(text) if w not in STOPWORDS}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s and s.strip()]


def to_scale(ratio: float) -> float:
    """[0, 1] -> [1, 5], rounded to two decimals (deterministic, readable)."""
    return round(1.0 + 4.0 * min(1.0, max(0.0, ratio)), 2)


def token_f1(answer: str, truth: str) -> float:
    a, t = Counter(words(answer)), Counter(words(truth))
    common = sum((a & t).values())
    if not a or not t or common == 0:
        return 1.0 if not a and not t else 0.0
    precision, recall = common / sum(a.values()), common / sum(t.values())
    return 2 * precision * recall / (precision + recall)


def similarity(prompt: str, completion: str, ground_truth: str) -> Verdict:
    f1 = token_f1(completion, ground_truth)
    return Verdict(to_scale(f1), f"word overlap with the reference answer (F1) is {f1:.2f}")


def groundedness(prompt: str, completion: str, context: str) -> Verdict:
    claimed, evidence = content_words(completion), content_words(context)
    if not claimed:
        return Verdict(3.0, "the answer has no content words to check against the context")
    supported = claimed & evidence
    ratio = len(supported) / len(claimed)
    missing = sorted(claimed - evidence)[:5]
    note = f"; not in the context: {', '.join(missing)}" if missing else ""
    return Verdict(to_scale(ratio), f"{len(supported)} of {len(claimed)} content words of the answer "
                                    f"appear in the context{note}")


def relevance(prompt: str, completion: str, context: str) -> Verdict:
    asked, answered = content_words(prompt), content_words(completion)
    if not answered:
        return Verdict(1.0, "the answer has no content words")
    taken_up = len(asked & answered) / len(asked) if asked else 0.5
    on_topic = len(answered & (asked | content_words(context))) / len(answered)
    ratio = 0.5 * taken_up + 0.5 * on_topic
    return Verdict(to_scale(ratio), f"the answer takes up {taken_up:.0%} of the question's terms; "
                                    f"{on_topic:.0%} of its terms relate to the question or context")


def fluency(prompt: str, completion: str) -> Verdict:
    tokens, parts = words(completion), sentences(completion)
    if not tokens:
        return Verdict(1.0, "the answer has no words")
    lengths = [len(words(s)) for s in parts] or [len(tokens)]
    average = sum(lengths) / len(lengths)
    length_ok = 1.0 if 4 <= average <= 30 else max(0.0, 1.0 - abs(average - (4 if average < 4 else 30)) / 30)
    wordlike = sum(1 for w in tokens if _wordlike(w)) / len(tokens)
    stutter = sum(1 for x, y in itertools.pairwise(tokens) if x == y) / max(1, len(tokens) - 1)
    formed = sum(1 for s in parts if s[:1].isupper() or s[:1].isdigit()) / len(parts) if parts else 0.0
    closed = 1.0 if completion.rstrip()[-1:] in ".!?)\"'" else 0.5
    ratio = (length_ok + wordlike + (1.0 - min(1.0, stutter * 5)) + formed + closed) / 5
    return Verdict(to_scale(ratio), f"{len(parts)} sentence(s) of {average:.0f} words on average; "
                                    f"{wordlike:.0%} word-like tokens; {stutter:.0%} repeated words")


def coherence(prompt: str, completion: str) -> Verdict:
    parts = sentences(completion)
    if not words(completion):
        return Verdict(1.0, "the answer has no words")
    linked = _linked_pairs(parts)
    distinct = len({s.lower() for s in parts}) / len(parts)
    vocabulary = words(completion)
    variety = min(1.0, len(set(vocabulary)) / len(vocabulary) / 0.5)
    on_question = 1.0 if content_words(prompt) & content_words(completion) else 0.5
    ratio = (linked + distinct + variety + on_question) / 4
    return Verdict(to_scale(ratio), f"{linked:.0%} of adjacent sentences are linked; "
                                    f"{distinct:.0%} of sentences are distinct")


def _wordlike(word: str) -> bool:
    return word.isdigit() or (len(word) <= 20 and any(c in "aeiouy" for c in word)) or not word.isascii()


def _linked_pairs(parts: list[str]) -> float:
    """Share of adjacent sentence pairs sharing a content word or joined by a connective."""
    if len(parts) < 2:
        return 1.0
    links = 0
    for first, second in itertools.pairwise(parts):
        opener = words(second)[:1]
        if content_words(first) & content_words(second) or (opener and opener[0] in CONNECTIVES):
            links += 1
    return links / (len(parts) - 1)


# metric -> (function, the record columns it reads after prompt and completion)
HEURISTICS: dict[str, Callable[..., Verdict]] = {
    "coherence": coherence,
    "fluency": fluency,
    "groundedness": groundedness,
    "relevance": relevance,
    "similarity": similarity,
}
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    "coherence": (),
    "fluency": (),
    "groundedness": ("context",),
    "relevance": ("context",),
    "similarity": ("ground_truth",),
}


def supports(metric: str) -> bool:
    return metric in HEURISTICS


def judge(metric: str, values: dict[str, str | None]) -> Verdict:
    """The heuristic verdict of a built-in metric; `values` maps column names to text."""
    columns = ("prompt", "completion", *EXTRA_COLUMNS[metric])
    return HEURISTICS[metric](*(values.get(c) or "" for c in columns))
