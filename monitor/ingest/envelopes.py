"""Parse one line of a blob: an MDC envelope (into join halves) or a custom JSONL record.

Every problem becomes a :class:`Rejection` naming the line (and row) and the reason; nothing here
raises on bad input, so one bad line never stops a file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core.exceptions import AzureError

from monitor.config import ColumnsConfig
from monitor.ingest.lines import Line
from monitor.ingest.paths import MdcPath, Side, side_of_type
from monitor.ingest.quarantine import RejectedInputError, Rejection, excerpt_of
from monitor.ingest.safejson import JsonRefusedError, loads
from monitor.keys import InvalidTimeError, TimeOutOfRangeError, parse_record_time
from monitor.storage.tables import MAX_PACKED_CHARS

log = logging.getLogger(__name__)
# A join key longer than this is refused (`join_key_too_long`): it is kept whole in a string property
# (at most 32K UTF-16 units) beside its hashed table key. See docs/ingest.md, "Table keys".
MAX_JOIN_KEY_CHARS = 16_000


class DatarefError(RejectedInputError):
    """A `dataref` payload could not be loaded (or may not be: outside the watched container)."""


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
        return loads(text), None
    except JsonRefusedError as exc:
        return None, Rejection(line.number, exc.reason, exc.detail, excerpt_of(line.data))


def _time_rejection(value: Any) -> tuple[str, str] | None:
    """(reason, detail) when `value` is not a usable record time."""
    if not isinstance(value, str):
        return "wrong_type", f"`time` is {type(value).__name__}, expected an ISO 8601 string"
    try:
        parse_record_time(value)
    except TimeOutOfRangeError as exc:
        return "time_out_of_range", f"`time` {exc}"
    except InvalidTimeError as exc:
        return "invalid_time", f"`time` {exc}"
    return None


def _key_rejection(key: str, join_column: str) -> tuple[str, str] | None:
    if len(key) > MAX_JOIN_KEY_CHARS:
        return "join_key_too_long", f"`{join_column}` has {len(key)} characters; at most {MAX_JOIN_KEY_CHARS} are kept"
    return None


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
    """Halves of one MDC envelope line, or the reasons it was rejected.

    Never raises for anything in the line: a failure nobody foresaw is quarantined as
    `unexpected_error` (and logged with its traceback) rather than stopping the file. Storage errors
    of the dataref loader (outages, throttling) do propagate: they are not the line's fault."""
    try:
        return _parse_mdc_line(line, path, join_column, load_dataref)
    except AzureError:
        raise
    except RejectedInputError as exc:
        return [], [Rejection(line.number, exc.reason, exc.detail, excerpt_of(line.data))]
    except Exception as exc:
        return [], [_unexpected(line, exc)]


def _unexpected(line: Line, exc: Exception) -> Rejection:
    log.exception("line %d could not be parsed", line.number)
    return Rejection(line.number, "unexpected_error", f"{type(exc).__name__}: {exc}"[:1000], excerpt_of(line.data))


def _parse_mdc_line(line: Line, path: MdcPath | None, join_column: str,
                    load_dataref: DatarefLoader) -> tuple[list[Half], list[Rejection]]:
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
    bad_time = _time_rejection(envelope["time"])
    if bad_time:
        return [], [reject(*bad_time)]
    side = (path.side if path else None) or side_of_type(str(envelope.get("type", "")))
    if side is None:
        return [], [reject("not_an_envelope",
                           "cannot tell inputs from outputs: neither the blob path nor `type` names the collection")]
    correlation = _text_id(envelope.get(join_column))
    if correlation is None:
        return [], [reject("missing_join_key", f"no `{join_column}` to join inputs with outputs")]
    bad_key = _key_rejection(correlation, join_column)
    if bad_key:
        return [], [reject(*bad_key)]
    rows, problem_rejection = _rows(envelope, load_dataref, reject)
    if problem_rejection:
        return [], [problem_rejection]
    if not rows:  # every line is accounted for: one without rows says so
        return [], [reject("missing_data", "the envelope's rows (`data` or its `dataref`) are an empty array")]
    time = parse_record_time(envelope["time"])
    halves, rejections = [], []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            rejections.append(reject("wrong_type", f"data[{index}] is {type(row).__name__}, expected an object", index))
            continue
        key = correlation if len(rows) == 1 else f"{correlation}_{index}"
        if _text_chars(row, MAX_PACKED_CHARS) > MAX_PACKED_CHARS:
            rejections.append(reject("record_too_large", f"data[{index}] (join key {key[:200]}) holds more than "
                                     f"{MAX_PACKED_CHARS} characters; a table entity holds at most that", index))
            continue
        halves.append(Half(
            key=key, side=side, row=row, time=time,
            endpoint=(path.endpoint if path else None) or _arm_part(envelope.get("source"), "onlineEndpoints"),
            deployment=(path.deployment if path else None) or _arm_part(envelope.get("source"), "deployments"),
            model_version=_text_id(envelope.get("modelversion")),
            line=line.number, request_id=_text_id(envelope.get("xrequestid")),
        ))
    return halves, rejections


def _text_chars(value: Any, limit: int) -> int:
    """Characters of the strings (and keys) in `value`, counted until `limit` is passed: a lower
    bound of its JSON size, so a row over the limit is refused before anything serialises it."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += sum(len(k) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


def _check_envelope_types(envelope: Mapping[str, Any], join_column: str) -> str | None:
    value = envelope.get(join_column)
    if value is not None and not isinstance(value, str) and _text_id(value) is None:
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
    """A custom-data-asset line: one complete record with the mapped columns (never raises for
    anything in the line, as :func:`parse_mdc_line`)."""
    try:
        return _parse_jsonl_line(line, join_column, fallback_key, fallback_time)
    except Exception as exc:
        return None, _unexpected(line, exc)


def _parse_jsonl_line(line: Line, join_column: str, fallback_key: str, fallback_time: datetime,
                      ) -> tuple[Flat | None, Rejection | None]:
    obj, rejected = _decode(line)
    if rejected:
        return None, rejected
    excerpt = excerpt_of(line.data)
    if not isinstance(obj, dict):
        return None, Rejection(line.number, "wrong_type", f"expected a JSON object, got {type(obj).__name__}", excerpt)
    raw_key = obj.get(join_column)
    key = _text_id(raw_key) if raw_key is not None else fallback_key
    if key is None:
        if isinstance(raw_key, str):
            return None, Rejection(line.number, "missing_join_key", f"`{join_column}` is blank", excerpt)
        return None, Rejection(line.number, "wrong_type", f"`{join_column}` must be a string", excerpt)
    bad_key = _key_rejection(key, join_column)
    if bad_key:
        return None, Rejection(line.number, *bad_key, excerpt)
    time = fallback_time
    if obj.get("time") is not None:
        bad_time = _time_rejection(obj["time"])
        if bad_time:
            return None, Rejection(line.number, *bad_time, excerpt)
        time = parse_record_time(obj["time"])
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
