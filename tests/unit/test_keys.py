"""Table keys: every string gets a key the table service accepts, distinct strings distinct keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.keys import (
    MAX_KEY_CHARS,
    InvalidTimeError,
    TimeOutOfRangeError,
    hour_key,
    iso,
    original_key,
    parse_record_time,
    parse_time,
    safe_key,
)

# What a key may hold: none of `/ \ # ?`, no control characters, none of the characters that break
# some table operations (`%`, `'`, `~`), and no `|` (our separator in composite keys).
ALLOWED = re.compile(r"^[A-Za-z0-9\-_.=:,@!]*$")
ANY_TEXT = st.text(st.characters(codec=None), max_size=700)  # every code point, lone surrogates included


def test_plain_ids_are_unchanged() -> None:
    for plain in ("7415b7a9-0002_1", "deployment=blue", "a.b:c,d@e", "x" * MAX_KEY_CHARS):
        assert safe_key(plain) == plain


def test_forbidden_characters_are_escaped() -> None:
    assert safe_key("a/b\\c#d?e%f\x01") == "a!2Fb!5Cc!23d!3Fe!25f!01"
    assert safe_key("!~'|") == "!21!7E!27!7C"
    assert safe_key("é") == "!C3!A9"


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
@example("r" * 500)  # the 500-character id that poisoned an evaluation batch
@example("/" * 2500)
@example("\ud800")
def test_every_string_gets_an_allowed_bounded_key(value: str) -> None:
    key = safe_key(value)
    assert ALLOWED.match(key), key
    assert len(key) <= MAX_KEY_CHARS
    decoded = original_key(key)
    assert decoded is None or decoded == value  # reversible unless hashed
    if len(value) <= MAX_KEY_CHARS // 12:  # at most 12 characters per code point (4 bytes, !XX each)
        assert decoded == value


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT, ANY_TEXT)
@example("a" * 300, "a" * 300 + "b")  # same head, different tails: the hash tells them apart
@example("!", "!21")
def test_distinct_strings_get_distinct_keys(a: str, b: str) -> None:
    if a != b:
        assert safe_key(a) != safe_key(b)


def test_long_keys_keep_a_readable_head_and_never_split_an_escape() -> None:
    key = safe_key("ab/" * 200)
    assert key.startswith("ab!2Fab!2F") and "!!" in key
    head = key.split("!!")[0]
    assert re.fullmatch(r"(ab!2F)*(ab?)?", head), head
    assert original_key(key) is None


@pytest.mark.parametrize(("text", "error"), [
    ("9999-12-31T23:59:59-05:00", TimeOutOfRangeError),
    ("0001-01-01T00:00:00+05:00", TimeOutOfRangeError),
    ("yesterday", InvalidTimeError),
])
def test_parse_time_raises_specific_errors(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_time(text)


@pytest.mark.parametrize("text", ["0001-06-01T00:00:00Z", "0999-06-01T00:00:00Z", "1969-12-31T23:59:59Z",
                                  "9000-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00"])
def test_record_times_outside_the_range_are_refused(text: str) -> None:
    with pytest.raises(TimeOutOfRangeError):
        parse_record_time(text)


def test_keys_of_early_years_keep_four_digits() -> None:
    moment = datetime(999, 6, 1, 7, tzinfo=UTC)
    assert hour_key(moment) == "0999060107"
    assert iso(moment) == "0999-06-01T07:00:00Z"
    assert parse_time(iso(moment)) == moment
