"""Strict reading of judge replies (pure functions; the same cases run through the real client in
tests/integration/test_judge_llm.py)."""

from __future__ import annotations

import math

import pytest

from monitor.judge.parsing import digit_probabilities, expected_score, parse_digit, parse_explain

MESSY = ["", " ", "six", "0", "7", "3.5 out of 5", "{", "Score: 4", "4.", "45", "4/5", "５", "-1", "1e0", "four"]


@pytest.mark.parametrize("reply", MESSY)
def test_anything_but_one_digit_is_not_a_score(reply: str) -> None:
    assert parse_digit(reply) is None


@pytest.mark.parametrize(("reply", "digit"), [("1", 1), ("5", 5), (" 4\n", 4), ("\t3 ", 3)])
def test_a_single_digit_with_whitespace_is_a_score(reply: str, digit: int) -> None:
    assert parse_digit(reply) == digit


def test_expected_value_is_renormalised_over_digits_only() -> None:
    top = [("4", math.log(0.6)), ("5", math.log(0.2)), ("Sure", math.log(0.2))]
    probabilities = digit_probabilities(top)
    assert expected_score(probabilities) == pytest.approx((4 * 0.6 + 5 * 0.2) / 0.8)


def test_tokens_are_stripped_and_equal_digits_add_up() -> None:
    top = [(" 4", math.log(0.3)), ("4", math.log(0.3)), ("2\n", math.log(0.4)), ("nan", float("nan"))]
    assert digit_probabilities(top) == pytest.approx({4: 0.6, 2: 0.4})


def test_no_digits_means_no_expected_value() -> None:
    assert expected_score(digit_probabilities([("The", -0.1), ("6", -1.0), ("0", -2.0)])) is None


@pytest.mark.parametrize("reply", ['{"score": 2, "reason": "misses the point"}',
                                   '  {"reason": "ok", "score": 5.0}  '])
def test_explain_reply_is_a_json_object_with_score_and_reason(reply: str) -> None:
    result = parse_explain(reply)
    assert isinstance(result, tuple)
    assert 1 <= result[0] <= 5 and result[1]


@pytest.mark.parametrize("reply", ["", "{", "[]", '"4"', '{"score": 6, "reason": "x"}', '{"score": 0, "reason": "x"}',
                                   '{"score": "4", "reason": "x"}', '{"score": true, "reason": "x"}',
                                   '{"score": 4}', '{"score": 4, "reason": ""}', "Score: 4 because"])
def test_bad_explain_replies_are_parse_errors(reply: str) -> None:
    assert parse_explain(reply) == "parse"
