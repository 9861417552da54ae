"""Parse one line of a blob: an MDC envelope (into join halves) or a custom JSONL record.

Every problem becomes a :class:`Rejection` naming the line (and row) and the reason; nothing here
raises on bad input, so one bad line never stops a file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.config import ColumnsConfig
from monitor.ingest.lines import Line
from monitor.ingest.paths import MdcPath, Side, side_of_type
from monitor.ingest.quarantine import Rejection, excerpt_of
from monitor.keys import parse_time


class DatarefError(Exception):
    """A `dataref` payload could not be loaded; `reason` is a quarantine reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


DatarefLoader = Callable[[str], Any]
# Envelope fields (CONTRACTS.md section 1) that must be strings when present.
STRING_FIELDS = ("specversion", "id", "source", "type", "datacontenttype", "contentrange", "xrequestid",
                 "modelversion", "collectdatatype", "agent")


@dataclass(frozen=True)
class Half:
    """One row of one MDC envelope: the input or the output side of a request."""

    key: str
    side: Side
    row: dict[str, Any]
    time: datetime
    endpoint: str | None
    deployment: str | None
    model_version: str | None
    line: int
    request_id: str | None = None  # the envelope's xrequestid


@dataclass(frozen=True)
class Flat:
    """One complete record of a custom JSONL file, before sampling and claiming."""

    key: str
    row: dict[str, Any]
    time: datetime
    deployment: str | None
    model_version: str | None
    endpoint: str | None
    line: int
    request_id: str | None = None


def _decode(line: Line) -> tuple[Any, Rejection | None]:
    if line.too_long:
        return None, Rejection(line.number, "line_too_long",
                               f"line has {line.size} bytes, over the limit (MAX_LINE_BYTES)", excerpt_of(line.data))
    try:
        text = line.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, Rejection(line.number, "invalid_utf8", f"not UTF-8: {exc}", excerpt_of(line.data))
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, Rejection(line.number, "invalid_json", f"invalid JSON: {exc}", excerpt_of(line.data))


def _arm_part(source: Any, name: str) -> str | None:
    """`onlineEndpoints/{x}` or `deployments/{x}` from the envelope's ARM `source` path."""
    if not isinstance(source, str):
        return None
    parts = source.strip("/").split("/")
    for index, part in enumerate(parts[:-1]):
        if part.lower() == name.lower():
            return parts[index + 1]
    return None


def _text_id(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def parse_mdc_line(line: Line, path: MdcPath | None, join_column: str,
                   load_dataref: DatarefLoader) -> tuple[list[Half], list[Rejection]]:
    """Halves of one MDC envelope line, or the reasons it was rejected."""
    envelope, rejected = _decode(line)
    if rejected:
        return [], [rejected]
    excerpt = excerpt_of(line.data)

    def reject(reason: str, detail: str, row: int | None = None) -> Rejection:
        return Rejection(line.number, reason, detail, excerpt, row)

    if not isinstance(envelope, dict) or "specversion" not in envelope or "time" not in envelope:
        return [], [reject("not_an_envelope", "expected a JSON object with specversion, time and data")]
    problem = _check_envelope_types(envelope, join_column)
    if problem:
        return [], [reject("wrong_type", problem)]
    side = (path.side if path else None) or side_of_type(str(envelope.get("type", "")))
    if side is None:
        return [], [reject("not_an_envelope",
                           "cannot tell inputs from outputs: neither the blob path nor `type` names the collection")]
    correlation = _text_id(envelope.get(join_column))
    if correlation is None:
        return [], [reject("missing_join_key", f"no `{join_column}` to join inputs with outputs")]
    rows, problem_rejection = _rows(envelope, load_dataref, reject)
    if problem_rejection:
        return [], [problem_rejection]
    time = parse_time(envelope["time"])
    halves, rejections = [], []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            rejections.append(reject("wrong_type", f"data[{index}] is {type(row).__name__}, expected an object", index))
            continue
        key = correlation if len(rows) == 1 else f"{correlation}_{index}"
        halves.append(Half(
            key=key, side=side, row=row, time=time,
            endpoint=(path.endpoint if path else None) or _arm_part(envelope.get("source"), "onlineEndpoints"),
            deployment=(path.deployment if path else None) or _arm_part(envelope.get("source"), "deployments"),
            model_version=_text_id(envelope.get("modelversion")),
            line=line.number, request_id=_text_id(envelope.get("xrequestid")),
        ))
    return halves, rejections


def _check_envelope_types(envelope: Mapping[str, Any], join_column: str) -> str | None:
    if not isinstance(envelope["time"], str):
        return f"`time` is {type(envelope['time']).__name__}, expected an ISO 8601 string"
    try:
        parse_time(envelope["time"])
    except ValueError:
        return f"`time` {envelope['time']!r} is not an ISO 8601 time"
    value = envelope.get(join_column)
    if value is not None and _text_id(value) is None:
        return f"`{join_column}` is {type(value).__name__}, expected a string"
    if "data" in envelope and not isinstance(envelope["data"], list):
        return f"`data` is {type(envelope['data']).__name__}, expected an array of rows"
    if "dataref" in envelope and "data" not in envelope and not isinstance(envelope["dataref"], str):
        return "`dataref` must be a string (a blob URL or path)"
    for name in STRING_FIELDS:
        if name in envelope and envelope[name] is not None and not isinstance(envelope[name], str | int):
            return f"`{name}` is {type(envelope[name]).__name__}, expected a string"
    return None


def _rows(envelope: Mapping[str, Any], load_dataref: DatarefLoader,
          reject: Callable[[str, str], Rejection]) -> tuple[list[Any], Rejection | None]:
    if "data" in envelope:
        return list(envelope["data"]), None
    ref = envelope.get("dataref")
    if not ref:
        return [], reject("missing_data", "the envelope has neither `data` nor `dataref`")
    try:
        payload = load_dataref(str(ref))
    except DatarefError as exc:
        return [], reject(exc.reason, exc.detail)
    if not isinstance(payload, list):
        return [], reject("dataref_invalid", f"dataref {ref} holds {type(payload).__name__}, expected an array of rows")
    return payload, None


def parse_jsonl_line(line: Line, join_column: str, fallback_key: str, fallback_time: datetime,
                     ) -> tuple[Flat | None, Rejection | None]:
    """A custom-data-asset line: one complete record with the mapped columns."""
    obj, rejected = _decode(line)
    if rejected:
        return None, rejected
    excerpt = excerpt_of(line.data)
    if not isinstance(obj, dict):
        return None, Rejection(line.number, "wrong_type", f"expected a JSON object, got {type(obj).__name__}", excerpt)
    raw_key = obj.get(join_column)
    key = _text_id(raw_key) if raw_key is not None else fallback_key
    if key is None:
        return None, Rejection(line.number, "wrong_type", f"`{join_column}` must be a string", excerpt)
    time = fallback_time
    if obj.get("time") is not None:
        try:
            time = parse_time(obj["time"])
        except (ValueError, AttributeError):
            detail = f"`time` {obj['time']!r} is not an ISO 8601 time"
            return None, Rejection(line.number, "wrong_type", detail, excerpt)
    return Flat(key=key, row=obj, time=time, deployment=_text_id(obj.get("deployment")),
                model_version=_text_id(obj.get("modelversion") or obj.get("model_version")),
                endpoint=_text_id(obj.get("endpoint")), line=line.number,
                request_id=_text_id(obj.get("xrequestid"))), None


def map_columns(row: Mapping[str, Any], columns: ColumnsConfig) -> dict[str, str | None]:
    """The judge columns of a row: prompt, completion, context, ground_truth and chat_history."""
    out: dict[str, str | None] = {}
    for name in ("prompt", "completion", "context", "ground_truth", "chat_history"):
        source = getattr(columns, name)
        out[name] = as_text(row.get(source)) if source else None
    if out["chat_history"] == "[]":
        out["chat_history"] = None
    return out


def as_text(value: Any) -> str | None:
    """Strings as they are; other JSON values (lists of documents, numbers) as compact JSON text."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
