"""The golden set of a monitor: records with human scores, validated and stored (docs/calibration.md).

A golden set is JSONL: one object per line with the monitor's record columns (as mapped by
`columns`, e.g. `question`, `answer`, `context`) plus `human: {metric: score}` (1-5, metrics the
monitor has enabled), optionally `id`. Every bad line is reported with its line number and field;
nothing is stored unless the whole file is valid.

Storage (table `goldenset`): the lines of one upload live in the partition `{monitor}|{digest}`
(RowKey = zero-padded line index); the row `{monitor}` / `current` names the digest in use. An
upload writes its partition first and then switches `current`, so readers never see half a set;
the previous upload's partition is deleted afterwards.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.config import MonitorConfig
from monitor.errors import ConfigError, UserError
from monitor.ingest.envelopes import map_columns
from monitor.judge.metrics import enabled_metrics
from monitor.keys import iso
from monitor.records import Record
from monitor.settings import get_settings
from monitor.storage.tables import Tables, get_entity, pack_text, query_partition, unpack_text, write_entities

CURRENT = "current"
MAX_REPORTED_ERRORS = 50


class GoldenSetError(ConfigError):
    """A golden set failed validation; details list `{line, field, message}` for each problem."""

    code = "invalid_golden_set"


@dataclass(frozen=True)
class GoldenRecord:
    line: int
    key: str
    row: dict[str, Any]
    human: dict[str, float]

    def record(self, config: MonitorConfig, at: datetime) -> Record:
        columns = map_columns(self.row, config.columns)
        return Record(monitor=config.name, key=self.key, time=at, prompt=columns["prompt"],
                      completion=columns["completion"], context=columns["context"],
                      ground_truth=columns["ground_truth"], chat_history=columns["chat_history"])


@dataclass(frozen=True)
class GoldenSet:
    monitor: str
    digest: str
    records: list[GoldenRecord]
    uploaded_at: str

    def summary(self) -> dict[str, Any]:
        per_metric: dict[str, int] = {}
        for record in self.records:
            for metric in record.human:
                per_metric[metric] = per_metric.get(metric, 0) + 1
        return {"monitor": self.monitor, "digest": self.digest, "records": len(self.records),
                "human_scores": dict(sorted(per_metric.items())), "uploaded_at": self.uploaded_at}


# --- validation ---------------------------------------------------------------------------------

def parse_golden(data: bytes, config: MonitorConfig) -> list[GoldenRecord]:
    """Validate a golden-set file against the monitor; GoldenSetError lists every bad line."""
    settings = get_settings()
    if len(data) > settings.GOLDEN_MAX_BYTES:
        raise GoldenSetError(f"the golden set has {len(data)} bytes; at most {settings.GOLDEN_MAX_BYTES} "
                             "(setting GOLDEN_MAX_BYTES)", details=[{"line": 0, "field": "(file)",
                                                                     "message": "too large"}])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GoldenSetError("the golden set is not UTF-8 text",
                             details=[{"line": 0, "field": "(file)", "message": str(exc)}]) from None
    metrics = enabled_metrics(config)
    records: list[GoldenRecord] = []
    errors: list[dict[str, Any]] = []
    keys: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        record, problems = _parse_line(number, raw, config, metrics)
        if record is not None and record.key in keys:
            problems.append(_error(number, "id", f"duplicate id {record.key!r}"))
        errors.extend(problems)
        if record is not None and not problems:
            keys.add(record.key)
            records.append(record)
    if not errors and not records:
        errors.append(_error(0, "(file)", "the golden set holds no records"))
    if not errors and len(records) > settings.GOLDEN_MAX_RECORDS:
        errors.append(_error(0, "(file)", f"{len(records)} records; at most {settings.GOLDEN_MAX_RECORDS} "
                                          "(setting GOLDEN_MAX_RECORDS)"))
    if errors:
        first = errors[0]
        where = f"line {first['line']}, " if first["line"] else ""
        raise GoldenSetError(f"invalid golden set: {len(errors)} problem(s); first: {where}{first['field']}: "
                             f"{first['message']}", details=errors[:MAX_REPORTED_ERRORS])
    return records


def _error(line: int, field: str, message: str) -> dict[str, Any]:
    return {"line": line, "field": field, "message": message}


def _parse_line(number: int, raw: str, config: MonitorConfig,
                metrics: dict[str, Any]) -> tuple[GoldenRecord | None, list[dict[str, Any]]]:
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, [_error(number, "(line)", f"invalid JSON at column {exc.colno}: {exc.msg}")]
    if not isinstance(row, dict):
        return None, [_error(number, "(line)", "expected a JSON object")]
    human = row.pop("human", None)
    if not isinstance(human, dict) or not human:
        return None, [_error(number, "human", "missing: an object of metric -> human score (1-5)")]
    key = row.pop("id", None)
    if key is not None and not isinstance(key, str | int):
        return None, [_error(number, "id", "must be a string or an integer")]
    problems: list[dict[str, Any]] = []
    scores: dict[str, float] = {}
    record = GoldenRecord(number, str(key) if key is not None else f"line-{number}", row, scores)
    probe = record.record(config, datetime.now(UTC))
    for metric, value in human.items():
        field = f"human.{metric}"
        if metric not in metrics:
            problems.append(_error(number, field, f"not an enabled metric of this monitor; enabled: {sorted(metrics)}"))
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not 1 <= value <= 5:
            problems.append(_error(number, field, f"must be a number from 1 to 5, got {value!r}"))
        elif not metrics[metric].applicable(probe):
            missing = [c for c in metrics[metric].required if probe.column(c) is None]
            problems.append(_error(number, field, f"the record lacks the column(s) {metric} needs: "
                                                  f"{[getattr(config.columns, c) for c in missing]}"))
        else:
            scores[metric] = float(value)
    return record, problems


def digest_of(records: list[GoldenRecord]) -> str:
    canonical = json.dumps([[r.key, r.row, r.human] for r in records], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- storage ------------------------------------------------------------------------------------

def put_golden(tables: Tables, config: MonitorConfig, data: bytes) -> GoldenSet:
    """Validate and store a golden set (replacing the previous one); returns its summary source."""
    records = parse_golden(data, config)
    digest = digest_of(records)
    table = tables["golden"]
    partition = f"{config.name}|{digest[:32]}"
    rows = []
    for index, record in enumerate(records):
        line = json.dumps({"id": record.key, "row": record.row, "human": record.human, "line": record.line},
                          ensure_ascii=False, separators=(",", ":"))
        try:
            rows.append({"PartitionKey": partition, "RowKey": f"{index:06d}", **pack_text("record", line)})
        except ValueError as exc:
            raise GoldenSetError(f"line {record.line}: {exc}",
                                 details=[_error(record.line, "(line)", str(exc))]) from None
    write_entities(table, rows, "upsert")
    previous = get_entity(table, config.name, CURRENT)
    uploaded_at = iso(datetime.now(UTC))
    table.upsert_entity({"PartitionKey": config.name, "RowKey": CURRENT, "digest": digest,
                         "partition": partition, "records": len(records), "uploaded_at": uploaded_at})
    if previous is not None and previous.get("partition") != partition:
        _delete_partition(tables, str(previous["partition"]))
    return GoldenSet(config.name, digest, records, uploaded_at)


def _delete_partition(tables: Tables, partition: str) -> None:
    table = tables["golden"]
    keys = [e["RowKey"] for e in query_partition(table, partition, select=["RowKey"])]
    for start in range(0, len(keys), 100):
        table.submit_transaction([("delete", {"PartitionKey": partition, "RowKey": k})
                                  for k in keys[start:start + 100]])


def current_digest(tables: Tables, monitor: str) -> str | None:
    entity = get_entity(tables["golden"], monitor, CURRENT)
    return str(entity["digest"]) if entity else None


def load_golden(tables: Tables, monitor: str) -> GoldenSet | None:
    """The monitor's current golden set, or None when none was uploaded."""
    table = tables["golden"]
    current = get_entity(table, monitor, CURRENT)
    if current is None:
        return None
    records = []
    for entity in query_partition(table, str(current["partition"])):
        data = json.loads(unpack_text(entity, "record") or "{}")
        records.append(GoldenRecord(int(data["line"]), str(data["id"]), dict(data["row"]),
                                    {k: float(v) for k, v in data["human"].items()}))
    return GoldenSet(monitor, str(current["digest"]), records, str(current.get("uploaded_at", "")))


def require_golden(tables: Tables, monitor: str) -> GoldenSet:
    golden = load_golden(tables, monitor)
    if golden is None:
        raise UserError(f"monitor {monitor!r} has no golden set: upload one with `python -m monitor golden put "
                        f"--monitor {monitor} FILE` or PUT /api/monitors/{monitor}/golden")
    return golden
