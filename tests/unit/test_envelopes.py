"""MDC envelope parsing: rows, join keys, sides, metadata, and every rejection reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.config import ColumnsConfig
from monitor.ingest.envelopes import DatarefError, map_columns, parse_jsonl_line, parse_mdc_line
from monitor.ingest.lines import Line
from monitor.ingest.paths import parse_mdc_path
from tests.support.mdc import envelope

T = datetime(2026, 11, 20, 14, 2, 11, tzinfo=UTC)
PATH = parse_mdc_path("modelDataCollector/contoso-chat/blue/model_outputs/2026/11/20/14/f.jsonl")


def _line(obj: Any, number: int = 7) -> Line:
    data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return Line(number, data, size=len(data))


def _no_dataref(ref: str) -> Any:
    raise DatarefError("dataref_not_found", f"no {ref}")


def test_path_parts() -> None:
    assert PATH is not None
    assert (PATH.endpoint, PATH.deployment, PATH.collection, PATH.side) == ("contoso-chat", "blue", "model_outputs",
                                                                            "output")
    assert PATH.hour == datetime(2026, 11, 20, 14, tzinfo=UTC)
    assert parse_mdc_path("somewhere/else.jsonl") is None
    assert parse_mdc_path("modelDataCollector/e/d/app_traces/2026/11/20/14/f.jsonl").side is None  # type: ignore[union-attr]
    assert parse_mdc_path("modelDataCollector/e/d/model_inputs/2026/13/20/14/f.jsonl") is None  # month 13


def test_batched_line_gets_indexed_keys() -> None:
    rows = [{"answer": "a"}, {"answer": "b"}]
    halves, rejected = parse_mdc_line(_line(envelope("model_outputs", "cid", T, rows)), PATH, "correlationid",
                                      _no_dataref)
    assert rejected == []
    assert [h.key for h in halves] == ["cid_0", "cid_1"]
    assert {h.side for h in halves} == {"output"} and halves[0].model_version == "default"
    assert halves[1].line == 7 and halves[1].time == T and halves[1].deployment == "blue"


def test_single_row_keeps_the_correlation_id_and_source_gives_deployment_without_path() -> None:
    halves, _ = parse_mdc_line(_line(envelope("model_inputs", "cid", T, [{"q": 1}], deployment="green")), None,
                               "correlationid", _no_dataref)
    assert halves[0].key == "cid" and halves[0].side == "input" and halves[0].deployment == "green"


def test_dataref_rows_are_loaded() -> None:
    env = envelope("model_outputs", "cid", T, None, dataref="x/rows.json")
    halves, _ = parse_mdc_line(_line(env), PATH, "correlationid", lambda ref: [{"answer": ref}])
    assert halves[0].row == {"answer": "x/rows.json"}


@pytest.mark.parametrize(("line", "reason"), [
    (b"{not json", "invalid_json"),
    (b'"\xff"', "invalid_utf8"),
    ([1, 2], "not_an_envelope"),
    ({"hello": "world"}, "not_an_envelope"),
    (envelope("model_outputs", "c", T, None), "missing_data"),
    (envelope("model_outputs", "c", T, None, dataref="gone.json"), "dataref_not_found"),
    (envelope("model_outputs", "c", T, None, dataref=42), "wrong_type"),
    (envelope("model_outputs", "c", T, None, data="rows"), "wrong_type"),
    ({**envelope("model_outputs", "c", T, [{}]), "time": 1700000000}, "wrong_type"),
    ({**envelope("model_outputs", "c", T, [{}]), "time": "yesterday"}, "invalid_time"),
    ({**envelope("model_outputs", "c", T, [{}]), "correlationid": ["x"]}, "wrong_type"),
    ({**envelope("model_outputs", "c", T, [{}]), "agent": {"name": "mdc"}}, "wrong_type"),
    ({**envelope("model_outputs", "c", T, [{}]), "xrequestid": 3.5}, "wrong_type"),
    ({k: v for k, v in envelope("model_outputs", "c", T, [{}]).items() if k != "correlationid"}, "missing_join_key"),
])
def test_rejections_name_the_reason_and_line(line: Any, reason: str) -> None:
    halves, rejected = parse_mdc_line(_line(line), PATH, "correlationid", _no_dataref)
    assert halves == []
    assert [(r.reason, r.line) for r in rejected] == [(reason, 7)]
    assert rejected[0].detail


def test_too_long_line_is_rejected_without_parsing() -> None:
    line = Line(3, b'{"specversion"', too_long=True, size=10_000_000)
    _, rejected = parse_mdc_line(line, PATH, "correlationid", _no_dataref)
    assert rejected[0].reason == "line_too_long" and "10000000" in rejected[0].detail


def test_custom_jsonl_line() -> None:
    flat, rejected = parse_jsonl_line(_line({"correlationid": 17, "time": "2026-11-20T10:00:00+02:00",
                                             "model_version": "3"}), "correlationid", "fallback", T)
    assert rejected is None and flat is not None
    assert flat.key == "17" and flat.time == datetime(2026, 11, 20, 8, tzinfo=UTC) and flat.model_version == "3"
    flat, _ = parse_jsonl_line(_line({"question": "q"}), "correlationid", "blob:1", T)
    assert flat is not None and flat.key == "blob:1" and flat.time == T


def test_column_mapping_keeps_chat_history_and_serialises_structures() -> None:
    row = {"question": "q", "answer": "a", "context": [{"doc": "d1"}], "chat_history": [{"inputs": "hi"}]}
    mapped = map_columns(row, ColumnsConfig())
    assert mapped["prompt"] == "q" and mapped["completion"] == "a"
    assert json.loads(mapped["context"] or "") == [{"doc": "d1"}]
    assert json.loads(mapped["chat_history"] or "") == [{"inputs": "hi"}]
    assert mapped["ground_truth"] is None
    assert map_columns({"chat_history": []}, ColumnsConfig())["chat_history"] is None
