"""Alert rules on window rows, and the `alerts` table (history plus webhook delivery state).

Rules (see docs/alerts.md):
* `pass_rate`: the row is breached (scored >= min_samples and pass_rate < threshold).
* `error_rate`: errors / (scored + errors) above the monitor's `alerts.error_rate_limit`, once at
  least min_samples records were judged (scored + errors).
* `no_scores`: rows to which the metric applies, none scored. To keep an in-progress window quiet,
  it fires only once every row has a judge outcome and the window has ended or holds at least
  min_samples such rows; a final window fires in any case. Rows that are all `not_applicable`
  (a monitor without ground truth, say) never raise it.
* `recovered`: an ended window, evaluated (scored >= min_samples) and not breached, whose previous
  evaluated window of the same metric x segment was breached.

Each alert is keyed monitor x window x metric x segment x kind and created only if absent, so
re-runs never repeat it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from azure.core.exceptions import ResourceExistsError

from monitor.aggregate.store import add_row_range, query
from monitor.keys import iso, safe_key
from monitor.storage.tables import Tables

AlertKind = Literal["pass_rate", "no_scores", "error_rate", "recovered"]
WebhookStatus = Literal["none", "pending", "sent", "failed"]


@dataclass(frozen=True)
class AlertCandidate:
    kind: AlertKind
    row: Mapping[str, Any]
    value: float
    threshold: float

    @property
    def metric(self) -> str:
        return str(self.row["metric"])

    @property
    def segment(self) -> str:
        return str(self.row["segment"])


def alert_row_key(window_start: str, metric: str, segment: str, kind: str) -> str:
    return f"{window_start}|{metric}|{safe_key(segment)}|{kind}"


# --- rules --------------------------------------------------------------------------------------

def evaluated(row: Mapping[str, Any]) -> bool:
    return int(row["scored"]) >= int(row["min_samples"])


def pass_rate_alert(row: Mapping[str, Any]) -> AlertCandidate | None:
    if not row["breached"]:
        return None
    return AlertCandidate("pass_rate", row, float(row["pass_rate"]), float(row["threshold"]))


def error_rate_alert(row: Mapping[str, Any], limit: float) -> AlertCandidate | None:
    judged = int(row["scored"]) + int(row["errors"])
    if judged < int(row["min_samples"]) or float(row["error_rate"]) <= limit:
        return None
    return AlertCandidate("error_rate", row, float(row["error_rate"]), limit)


def no_scores_alert(row: Mapping[str, Any], *, closed: bool) -> AlertCandidate | None:
    rows, scored = int(row["row_count"]), int(row["scored"])
    applicable = rows - int(row["not_applicable"])
    if rows == 0 or scored > 0 or applicable <= 0:
        return None
    all_judged = int(row["errors"]) + int(row["skipped"]) + int(row["not_applicable"]) >= rows
    enough = closed or applicable >= int(row["min_samples"])
    if row["final"] or (all_judged and enough):
        return AlertCandidate("no_scores", row, 0.0, 1.0)
    return None


def recovered_alert(row: Mapping[str, Any], previous: Mapping[str, Any] | None, *,
                    closed: bool) -> AlertCandidate | None:
    if not closed or previous is None or row["breached"] or not evaluated(row) or not previous["breached"]:
        return None
    return AlertCandidate("recovered", row, float(row["pass_rate"]), float(row["threshold"]))


def evaluate_row(row: Mapping[str, Any], *, closed: bool, previous: Mapping[str, Any] | None,
                 error_rate_limit: float) -> list[AlertCandidate]:
    """The alerts one window row raises (before de-duplication against stored alerts)."""
    found = (pass_rate_alert(row), error_rate_alert(row, error_rate_limit),
             no_scores_alert(row, closed=closed), recovered_alert(row, previous, closed=closed))
    return [c for c in found if c is not None]


def previous_evaluated(timeline: Mapping[str, Mapping[str, Any]], window_start: str) -> Mapping[str, Any] | None:
    """The latest row before `window_start` (in a metric x segment timeline) with enough samples."""
    for start in sorted((s for s in timeline if s < window_start), reverse=True):
        if evaluated(timeline[start]):
            return timeline[start]
    return None


# --- messages and entities ----------------------------------------------------------------------

def _span(row: Mapping[str, Any]) -> str:
    return f"{row['window']} window {row['window_start']} to {row['window_end']}"


def alert_message(c: AlertCandidate) -> str:
    r = c.row
    where = f"monitor {r['monitor']}, metric {c.metric}, segment {c.segment}, {_span(r)}"
    if c.kind == "pass_rate":
        return (f"Pass rate {c.value:.3f} ({r['passed']}/{r['scored']} passed, acceptable score "
                f"{r['acceptable_score']}) is below the threshold {c.threshold:.3f}: {where}.")
    if c.kind == "error_rate":
        return (f"Judge error rate {c.value:.3f} ({r['errors']} errors, {r['scored']} scored) is above the "
                f"limit {c.threshold:.3f}: {where}.")
    if c.kind == "no_scores":
        return (f"No record was scored out of {r['row_count']} rows ({r['errors']} errors, {r['skipped']} "
                f"skipped, {r['not_applicable']} not applicable): {where}.")
    return (f"Recovered: pass rate {c.value:.3f} ({r['passed']}/{r['scored']} passed) is back at or above "
            f"the threshold {c.threshold:.3f} after a breach: {where}.")


def alert_entity(c: AlertCandidate, *, created_at: datetime, webhook: bool) -> dict[str, Any]:
    r = c.row
    return {
        "PartitionKey": str(r["monitor"]),
        "RowKey": alert_row_key(str(r["window_start"]), c.metric, c.segment, c.kind),
        "monitor": r["monitor"], "kind": c.kind, "metric": c.metric, "segment": c.segment,
        "window": r["window"], "window_start": r["window_start"], "window_end": r["window_end"],
        "value": c.value, "threshold": c.threshold, "created_at": iso(created_at),
        "message": alert_message(c),
        "row_count": r["row_count"], "scored": r["scored"], "passed": r["passed"], "errors": r["errors"],
        "judge": r["judge"], "approximate": r["approximate"],
        "webhook_status": "pending" if webhook else "none", "webhook_attempts": 0, "webhook_error": "",
    }


def create_alert(tables: Tables, entity: dict[str, Any]) -> bool:
    """Insert the alert if absent; False when it already exists (a re-run)."""
    try:
        tables["alerts"].create_entity(entity)
    except ResourceExistsError:
        return False
    return True


def alert_keys(tables: Tables, monitor: str, first_start: str, last_end: str) -> set[str]:
    """RowKeys of the stored alerts of windows starting in [first_start, last_end)."""
    flt = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
    params = {"pk": monitor, "lo": first_start, "hi": last_end}
    return {str(e["RowKey"]) for e in tables["alerts"].query_entities(flt, parameters=params, select=["RowKey"])}


def undelivered(tables: Tables, monitor: str, max_attempts: int) -> Iterator[dict[str, Any]]:
    """Alerts whose webhook delivery is pending or failed with attempts left."""
    flt = ("PartitionKey eq @pk and (webhook_status eq 'pending' or webhook_status eq 'failed') "
           "and webhook_attempts lt @max")
    return query(tables["alerts"], flt, {"pk": monitor, "max": max_attempts})


def alerts_between(tables: Tables, monitor: str, start: datetime | None,
                   end: datetime | None) -> Iterator[dict[str, Any]]:
    clauses: list[str] = ["PartitionKey eq @pk"]
    params: dict[str, Any] = {"pk": monitor}
    add_row_range(clauses, params, start, end)
    return query(tables["alerts"], " and ".join(clauses), params)


def public_alert(entity: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")}
    out["id"] = f"{entity['PartitionKey']}|{entity['RowKey']}"
    out["webhook_error"] = entity.get("webhook_error") or None
    out["approximate"] = bool(entity.get("approximate", False))
    return out
