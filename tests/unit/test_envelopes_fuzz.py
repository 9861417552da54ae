"""Property-based envelopes: whatever a line holds, parsing returns halves or named rejections.

Any example that ever failed is kept below as a regular case (`@example`), so it stays checked
whatever Hypothesis draws next time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.ingest.envelopes import DatarefError, parse_jsonl_line, parse_mdc_line
from monitor.ingest.lines import Line
from monitor.ingest.paths import parse_mdc_path
from monitor.ingest.quarantine import REASONS
from monitor.keys import MAX_TIME, MIN_TIME, safe_key
from tests.support.mdc import envelope

PATH = parse_mdc_path("modelDataCollector/contoso-chat/blue/model_outputs/2026/11/20/14/f.jsonl")
T = datetime(2026, 11, 20, 14, 2, 11, tzinfo=UTC)
SETTINGS = settings(max_examples=250, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                      max_leaves=12)
TIMES = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "-05:00"),
    st.datetimes().map(lambda d: d.isoformat() + "+14:00"),
    st.text(max_size=30), st.integers(), st.none(),
)
IDS = st.one_of(st.text(max_size=60), st.text(st.characters(codec=None), min_size=200, max_size=1200),
                st.integers(), st.floats(), st.lists(st.text(max_size=3), max_size=2), st.none())
ROWS = st.one_of(st.lists(st.dictionaries(st.sampled_from(["question", "answer", "context", "x"]), VALUES,
                                          max_size=4), max_size=4),
                 VALUES)


def _dataref(ref: str) -> Any:
    if "ok" in ref:
        return [{"answer": "from a dataref"}]
    raise DatarefError("dataref_not_found", f"no {ref}")


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    env: dict[str, Any] = envelope("model_outputs", "c", T, [{"answer": "a"}])
    env["time"] = draw(TIMES)
    env["correlationid"] = draw(IDS)
    if draw(st.booleans()):
        env["data"] = draw(ROWS)
    else:
        del env["data"]
        env["dataref"] = draw(st.one_of(st.just("modelDataCollector/ok.json"), st.text(max_size=30), VALUES))
    for name in draw(st.lists(st.sampled_from(sorted(env)), max_size=3)):
        env[name] = draw(VALUES)
    text = json.dumps(env) if _dumpable(env) else "{}"  # NaN and Infinity included: Python reads them
    mangle = draw(st.sampled_from(["none", "bom", "truncate", "deep", "bigint", "surrogate"]))
    if mangle == "bom":
        text = "\ufeff" + text
    elif mangle == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    elif mangle == "deep":
        depth = draw(st.integers(100, 5000))
        text = text.replace('"data": ', '"data": ' + "[" * depth, 1) + "]" * depth
    elif mangle == "bigint":
        text = text.replace('"time": ', '"n": ' + "9" * draw(st.integers(4000, 6000)) + ', "time": ', 1)
    elif mangle == "surrogate":
        text = text.replace('"specversion": "1.0"', '"specversion": "1.0\\udc80"', 1)
    return text.encode("utf-8", errors="surrogatepass")


def _dumpable(env: dict[str, Any]) -> bool:
    try:
        json.dumps(env)
        return True
    except ValueError:
        return False


def _check(halves: list[Any], rejections: list[Any]) -> None:
    for rejection in rejections:
        assert rejection.reason in REASONS and rejection.reason != "unexpected_error", rejection
        assert rejection.detail
    for half in halves:
        assert MIN_TIME <= half.time < MAX_TIME
        assert isinstance(half.key, str) and half.key.strip()
        safe_key(half.key)
        json.dumps(half.row, ensure_ascii=False).encode("utf-8")  # storable


@SETTINGS
@given(envelopes())
@example(b'{"specversion": "1.0", "time": "9999-12-31T23:59:59-05:00", "correlationid": "x", "data": [{}]}')
@example(b'{"specversion": "1.0", "time": "0001-01-01T00:00:00+05:00", "correlationid": "x", "data": [{}]}')
@example(b'{"specversion": "1.0", "time": "2026-11-20T14:00:00Z", "correlationid": "  ", "data": [{}]}')
@example(b'{"specversion": "1.0", "time": "2026-11-20T14:00:00Z", "correlationid": "x", "dataref": "a/../b"}')
@example(b'{"specversion": "1.0", "time": "2026-11-20T14:00:00Z", "correlationid": "x", "data": []}')  # found
def test_any_envelope_parses_or_is_rejected_by_name(data: bytes) -> None:
    halves, rejections = parse_mdc_line(Line(3, data, size=len(data)), PATH, "correlationid", _dataref)
    assert halves or rejections
    _check(halves, rejections)


@SETTINGS
@given(envelopes())
@example(b'{"correlationid": "x", "time": "0999-06-01T00:00:00Z", "question": "q"}')
def test_any_custom_line_parses_or_is_rejected_by_name(data: bytes) -> None:
    flat, rejection = parse_jsonl_line(Line(3, data, size=len(data)), "correlationid", "blob:3", T)
    assert (flat is None) != (rejection is None)
    _check([flat] if flat else [], [rejection] if rejection else [])
