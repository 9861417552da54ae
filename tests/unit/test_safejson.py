"""Untrusted JSON: deep nesting, long numbers and lone surrogates are refused, quickly, by name."""

from __future__ import annotations

import contextlib
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.api.middleware import json_depth_exceeds
from monitor.ingest.safejson import MAX_JSON_DEPTH, JsonRefusedError, loads
from monitor.jsondepth import too_deep

DEEP = 100_000


@pytest.mark.parametrize(("text", "reason"), [
    ("[" * DEEP + "]" * DEEP, "json_too_deep"),
    ('{"a":' * DEEP + "1" + "}" * DEEP, "json_too_deep"),
    ("[" * DEEP, "json_too_deep"),
    ("[" + "7" * 5000 + "]", "number_too_long"),
    ('["\\ud800"]', "invalid_unicode"),
    ('{"\\udfff": 1}', "invalid_unicode"),
    ('{"a": ', "invalid_json"),
    ('"' + '\\"' * 100_000, "invalid_json"),  # an unterminated string full of escaped quotes
])
def test_refusals_name_their_reason(text: str, reason: str) -> None:
    with pytest.raises(JsonRefusedError) as caught:
        loads(text)
    assert caught.value.reason == reason and caught.value.detail


def test_a_hostile_line_costs_milliseconds() -> None:
    """Ratios, side by side: refusing a 100,000-deep line costs less than parsing a good line of
    the same size (no stack overflow, no quadratic scan)."""
    good = json.dumps([{"a": "[[{{"}] * 20_000)
    hostile = ["[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP, '"' + '\\"' * DEEP]

    def cost(text: str) -> float:
        """Best of five runs: the least disturbed by other work on a shared machine."""
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            with contextlib.suppress(JsonRefusedError):
                loads(text)
            runs.append(time.perf_counter() - started)
        return min(runs)

    baseline = cost(good)
    for text in hostile:
        # A quadratic scan or a recursive parse of 100,000 levels costs seconds: far beyond this bound.
        assert cost(text) < 10 * baseline + 0.1


def test_depth_limit_is_exact_and_ignores_brackets_in_strings() -> None:
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert not too_deep(at_limit, MAX_JSON_DEPTH) and loads(at_limit)
    assert too_deep("[" + at_limit + "]", MAX_JSON_DEPTH)
    assert not too_deep(json.dumps(["[" * 1000, "{" * 1000, '"\\' * 10]), MAX_JSON_DEPTH)
    assert loads("\ufeff[1]") == [1]  # a byte order mark is not part of the JSON


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=200, deadline=1000)
@given(JSON)
def test_every_storable_value_round_trips(value: object) -> None:
    assert loads(json.dumps(value)) == value


@settings(max_examples=200, deadline=1000)
@given(st.text(alphabet='[]{}",:\\0123456789truefalsn ', max_size=400))
def test_any_text_is_parsed_or_refused_by_name(text: str) -> None:
    try:
        loads(text)
    except JsonRefusedError as exc:
        assert exc.reason in ("invalid_json", "json_too_deep", "number_too_long", "invalid_unicode")


def test_an_unterminated_string_of_escaped_quotes_costs_linear_time() -> None:
    """Brackets first (so the scan runs), then one string that never ends, full of escaped quotes:
    a string pattern retried at every quote took 27 s for 40,000 of them (API bodies and lines)."""
    small, large = ("[]" * 100 + '"' + '\\"' * n for n in (10_000, 160_000))

    def cost(text: str) -> float:
        """Best of three runs: the least disturbed by other work on a shared machine."""
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            assert not json_depth_exceeds(text.encode(), 64) and not too_deep(text, 64)
            runs.append(time.perf_counter() - started)
        return min(runs)

    # 16x the input: linear, with room for noise. The quadratic scan this guards against took
    # 27 s for 40,000 quotes, minutes for these 160,000.
    assert cost(large) < 16 * 6 * cost(small) + 0.25
