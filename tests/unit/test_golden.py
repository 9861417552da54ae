"""Golden-set validation: every bad line reported with its number and field, limits enforced."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from monitor.calibration.golden import GoldenSetError, digest_of, parse_golden
from monitor.config import MonitorConfig
from monitor.settings import reset_settings

CONFIG = MonitorConfig.model_validate({"name": "golden-test", "source": {"prefix": "p/"},
                                       "metrics": {"similarity": {"enabled": False}}})


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    reset_settings()
    yield
    reset_settings()


def line(human: object, **columns: object) -> str:
    row = {"question": "How do I reset my password?", "answer": "Open Settings > Security.", **columns}
    return json.dumps({**row, "human": human})


def test_a_valid_set_maps_the_monitor_columns() -> None:
    data = "\n".join([line({"coherence": 4, "fluency": 5}, id="a"), "", line({"groundedness": 2},
                                                                               context="Settings has it.")])
    records = parse_golden(data.encode(), CONFIG)
    assert [(r.line, r.key, r.human) for r in records] == [(1, "a", {"coherence": 4.0, "fluency": 5.0}),
                                                           (3, "line-3", {"groundedness": 2.0})]
    assert records[0].record(CONFIG, __import__("datetime").datetime.now()).completion == "Open Settings > Security."
    assert digest_of(records) == digest_of(parse_golden(data.encode(), CONFIG))


def test_every_bad_line_is_named() -> None:
    data = "\n".join([
        line({"coherence": 4}),                    # 1 ok
        "{not json",                               # 2
        "[1, 2]",                                  # 3
        json.dumps({"question": "q", "answer": "a"}),  # 4 no human
        line({"coherence": 6}),                    # 5 out of range
        line({"coherence": True}),                 # 6 a boolean is not a score
        line({"similarity": 3}),                   # 7 disabled metric
        line({"groundedness": 3}),                 # 8 lacks context
        line({"coherence": 3}, id="x"),            # 9
        line({"coherence": 3}, id="x"),            # 10 duplicate id
    ])
    with pytest.raises(GoldenSetError) as caught:
        parse_golden(data.encode(), CONFIG)
    found = [(d["line"], d["field"]) for d in caught.value.details]
    assert found == [(2, "(line)"), (3, "(line)"), (4, "human"), (5, "human.coherence"), (6, "human.coherence"),
                     (7, "human.similarity"), (8, "human.groundedness"), (10, "id")]
    assert caught.value.status == 422 and "line 2" in caught.value.message
    assert "['context']" in caught.value.details[6]["message"]


def test_limits_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOLDEN_MAX_RECORDS", "2")
    reset_settings()
    with pytest.raises(GoldenSetError, match="GOLDEN_MAX_RECORDS"):
        parse_golden("\n".join([line({"coherence": 3})] * 3).encode(), CONFIG)
    monkeypatch.setenv("GOLDEN_MAX_BYTES", "10")
    reset_settings()
    with pytest.raises(GoldenSetError, match="GOLDEN_MAX_BYTES"):
        parse_golden(line({"coherence": 3}).encode(), CONFIG)
    with pytest.raises(GoldenSetError, match="no records"):
        monkeypatch.delenv("GOLDEN_MAX_BYTES")
        reset_settings()
        parse_golden(b"\n\n", CONFIG)
    with pytest.raises(GoldenSetError, match="UTF-8"):
        parse_golden(b"\xff\xfe", CONFIG)
