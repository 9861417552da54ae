"""The heuristic judge moves the right way, is deterministic, and is labelled approximate."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.config import MonitorConfig
from monitor.judge import JudgeEngine, JudgeTask
from monitor.judge import heuristic as h
from monitor.records import Record

QUESTION = "How do I reset my password in the portal?"
CONTEXT = ("To reset a password, open the portal, choose Settings, then Security, and click Reset password. "
           "A reset link is sent by e-mail.")
GOOD = "Open the portal, choose Settings and then Security, and click Reset password. A reset link is sent by e-mail."
UNSUPPORTED = "Our company was founded in 1998 by three engineers in Oslo."
GIBBERISH = "qwrtz xkcdp lkjh zzzz bbbb qwrtz"


def record(completion: str | None = GOOD, **overrides: str | None) -> Record:
    values: dict[str, str | None] = {"prompt": QUESTION, "context": CONTEXT, "ground_truth": GOOD, **overrides}
    return Record(monitor="heur", key="k1", time=datetime(2026, 11, 28, tzinfo=UTC), completion=completion,
                  prompt=values["prompt"], context=values["context"], ground_truth=values["ground_truth"])


def judge(metric: str, completion: str, **overrides: str) -> float:
    values = {"prompt": QUESTION, "completion": completion, "context": CONTEXT, "ground_truth": GOOD, **overrides}
    return h.judge(metric, values).score


def test_an_answer_equal_to_the_ground_truth_scores_5_on_similarity() -> None:
    assert judge("similarity", GOOD) == 5.0
    assert judge("similarity", GOOD.upper()) == 5.0  # case and punctuation do not matter
    assert judge("similarity", UNSUPPORTED) < 2


def test_similarity_grows_with_overlap() -> None:
    half = "Open the portal and choose Settings."
    assert judge("similarity", UNSUPPORTED) < judge("similarity", half) < judge("similarity", GOOD)


def test_an_answer_without_support_in_the_context_scores_low_on_groundedness() -> None:
    assert judge("groundedness", UNSUPPORTED) == 1.0
    assert judge("groundedness", GOOD) >= 4.5
    mixed = GOOD + " The portal was built in 1998 in Oslo by three engineers."
    assert judge("groundedness", UNSUPPORTED) < judge("groundedness", mixed) < judge("groundedness", GOOD)


def test_relevance_follows_the_question() -> None:
    assert judge("relevance", GOOD) >= 4
    assert judge("relevance", UNSUPPORTED) <= 1.5


def test_fluency_and_coherence_prefer_well_formed_text() -> None:
    stutter = "reset reset reset the the password password portal portal"
    assert judge("fluency", GOOD) > judge("fluency", stutter)
    assert judge("fluency", GOOD) > judge("fluency", GIBBERISH)
    assert judge("coherence", GOOD) > judge("coherence", "Reset. Bananas are yellow. Oslo has trams. Reset.")


@pytest.mark.parametrize("metric", sorted(h.HEURISTICS))
@pytest.mark.parametrize("completion", [GOOD, UNSUPPORTED, GIBBERISH, "x", "¿Cómo? Ñandú — 你好。"])
def test_every_metric_is_deterministic_and_within_1_to_5(metric: str, completion: str) -> None:
    first = h.judge(metric, {"prompt": QUESTION, "completion": completion, "context": CONTEXT, "ground_truth": GOOD})
    again = h.judge(metric, {"prompt": QUESTION, "completion": completion, "context": CONTEXT, "ground_truth": GOOD})
    assert first == again
    assert 1.0 <= first.score <= 5.0 and first.reason


def config(**judge: object) -> MonitorConfig:
    return MonitorConfig.model_validate({"name": "heur", "source": {"prefix": "p/"},
                                         "judge": {"provider": "heuristic", **judge}})


def test_the_engine_labels_heuristic_scores_approximate() -> None:
    engine = JudgeEngine(config())
    scores = engine.judge([JudgeTask(record(), m) for m in sorted(h.HEURISTICS)])
    assert [s.metric for s in scores] == sorted(h.HEURISTICS)
    for score in scores:
        assert score.status == "ok" and score.approximate and score.provider == "heuristic"
        assert score.model == "heuristic" and score.prompt_version == h.VERSION
        assert score.record_key == "k1" and score.passed == (score.score is not None and score.score >= 3)
        assert score.logprobs is None and score.prompt_tokens == 0
    assert engine.description["approximate"] is True
    assert set(engine.description["prompt_versions"].values()) == {h.VERSION}


def test_reasons_follow_the_explain_setting() -> None:
    bad = record(UNSUPPORTED)
    failing = JudgeEngine(config()).judge([JudgeTask(bad, "groundedness"), JudgeTask(record(), "groundedness")])
    assert failing[0].passed is False and failing[0].reason and "context" in failing[0].reason
    assert failing[1].passed is True and failing[1].reason is None
    everything = JudgeEngine(config(explain="all")).judge([JudgeTask(record(), "groundedness")])
    assert everything[0].reason
    off = JudgeEngine(config(explain="off")).judge([JudgeTask(bad, "groundedness")])
    assert off[0].reason is None


def test_missing_columns_are_not_applicable() -> None:
    engine = JudgeEngine(config())
    scores = engine.judge([JudgeTask(record(context=None), "groundedness"),
                           JudgeTask(record(ground_truth="  "), "similarity"),
                           JudgeTask(record(completion=None), "fluency")])
    assert [s.status for s in scores] == ["not_applicable"] * 3
    assert scores[0].detail == "missing:context" and scores[0].score is None and scores[0].passed is None


def test_custom_metrics_are_skipped_by_the_heuristic_judge() -> None:
    cfg = MonitorConfig.model_validate({"name": "heur", "source": {"prefix": "p/"}, "metrics": {
        "politeness": {"prompt": "examples/politeness", "required": ["completion"]}}})
    [score] = JudgeEngine(cfg).judge([JudgeTask(record(), "politeness")])
    assert (score.status, score.detail, score.approximate) == ("skipped", "heuristic_unsupported", True)
