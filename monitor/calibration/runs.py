"""Calibration runs: re-judge the golden set, store the judge's agreement, raise `judge_drift`.

A run is due (docs/calibration.md) when the monitor has a golden set and
* no run exists yet, or
* the judge changed (provider, model or deployment, endpoint, scoring mode, prompt versions or
  digests: the run's `judge_fingerprint`), or the golden set changed, or
* the last run is from an earlier schedule period (CALIBRATION_PERIOD_HOURS, default 24, aligned
  to UTC), since a deployment may change model version behind the same name.
Otherwise nothing is judged and nothing is spent; `force` re-judges anyway. Every run judges every
golden record x human-scored metric with the monitor's current judge and daily token budget; the
tokens it spent are stored with the run (shown apart from the scoring spend).

Runs live in the table `calibrationruns` (PartitionKey monitor, RowKey the run time, ISO 8601),
so the history is one partition query, oldest first.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError

from monitor.aggregate.alerts import alert_row_key
from monitor.calibration.agreement import Agreement, agreement
from monitor.calibration.golden import GoldenSet, current_digest, require_golden
from monitor.config import MonitorConfig
from monitor.errors import StorageError
from monitor.judge import JudgeEngine, JudgeTask, default_budget
from monitor.keys import iso
from monitor.monitors import MonitorStore
from monitor.settings import get_settings
from monitor.storage.tables import Tables, query_partition

log = logging.getLogger(__name__)


def judge_fingerprint(config: MonitorConfig, engine: JudgeEngine) -> tuple[str, dict[str, Any]]:
    """A digest of everything about the judge that can move its scores, and the parts it covers."""
    judge = config.judge
    desc = engine.description
    parts = {"provider": judge.provider, "model": judge.model_name, "endpoint": judge.endpoint,
             "base_url": judge.base_url, "api_version": judge.api_version if judge.provider == "azure_openai" else None,
             "scoring": desc["scoring"], "prompt_versions": desc["prompt_versions"],
             "prompt_digests": desc["prompt_digests"]}
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32], parts


def period_start(at: datetime, hours: int) -> datetime:
    """Start of the schedule period holding `at`: UTC-aligned blocks of `hours` since the epoch."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    blocks = int((at - epoch).total_seconds() // (hours * 3600))
    return epoch + timedelta(hours=blocks * hours)


@dataclass
class CalibrationResult:
    monitor: str
    ran: bool
    reason: str
    run: dict[str, Any] | None = None
    alerts: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "ran": self.ran, "reason": self.reason, "run": self.run,
                "alerts": self.alerts}


# --- storage ------------------------------------------------------------------------------------

def run_history(tables: Tables, monitor: str, start: datetime | None = None,
                end: datetime | None = None) -> list[dict[str, Any]]:
    rows = query_partition(tables["calibration"], monitor, row_from=iso(start) if start else None,
                           row_to=iso(end) if end else None)
    return [public_run(e) for e in rows]


def public_run(entity: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey", "Timestamp")}
    for key in ("metrics", "judge_parts", "statuses"):
        out[key] = json.loads(str(entity.get(key) or "{}"))
    return out


# --- deciding and running -----------------------------------------------------------------------

def due_reason(last: dict[str, Any] | None, fingerprint: str, digest: str, period: datetime) -> str | None:
    if last is None:
        return "first"
    if last.get("judge_fingerprint") != fingerprint:
        return "judge_changed"
    if last.get("golden_digest") != digest:
        return "golden_changed"
    if str(last.get("period_start")) < iso(period):
        return "schedule"
    return None


def calibrate(name: str, *, force: bool = False, at: datetime | None = None,
              tables: Tables | None = None) -> CalibrationResult:
    """`python -m monitor calibrate --monitor NAME [--force]`: run when due (or forced)."""
    tables = tables or Tables.default()
    config = MonitorStore(tables).get(name)
    return calibrate_config(tables, config, force=force, at=at)


def calibrate_config(tables: Tables, config: MonitorConfig, *, force: bool = False,
                     at: datetime | None = None) -> CalibrationResult:
    moment = at or datetime.now(UTC)
    golden = require_golden(tables, config.name)
    engine = JudgeEngine(config, budget=default_budget(config))
    fingerprint, parts = judge_fingerprint(config, engine)
    period = period_start(moment, get_settings().CALIBRATION_PERIOD_HOURS)
    history = run_history(tables, config.name)
    last = history[-1] if history else None
    reason = "forced" if force else due_reason(last, fingerprint, golden.digest, period)
    if reason is None:
        return CalibrationResult(config.name, False, "not_due", last)
    run = judge_golden(config, engine, golden, moment)
    run.update({"trigger": reason, "period_start": iso(period), "judge_fingerprint": fingerprint,
                "judge_parts": parts})
    entity = store_run(tables, config.name, run)
    stored = public_run(entity)
    result = CalibrationResult(config.name, True, reason, stored)
    # the bias is compared with the previous run on the same golden set (another set has another bias)
    same_set = [r for r in history if r.get("golden_digest") == golden.digest]
    result.alerts = raise_judge_drift(tables, config, stored, same_set[-1] if same_set else None, moment)
    return result


def store_run(tables: Tables, monitor: str, run: dict[str, Any]) -> dict[str, Any]:
    """Insert the run under a new RowKey: its time, plus `~2`, `~3`... for runs at the same instant."""
    base = run["run_id"]
    for attempt in range(1, 100):
        run["run_id"] = base if attempt == 1 else f"{base}~{attempt}"
        entity = {"PartitionKey": monitor, "RowKey": run["run_id"],
                  **{k: (json.dumps(v, sort_keys=True) if isinstance(v, dict) else v) for k, v in run.items()}}
        try:
            tables["calibration"].create_entity(entity)
            return entity
        except ResourceExistsError:
            continue
    raise StorageError(f"monitor {monitor}: too many calibration runs at {base}")


def judge_golden(config: MonitorConfig, engine: JudgeEngine, golden: GoldenSet, at: datetime) -> dict[str, Any]:
    """Judge every golden record x human-scored metric; agreement per metric plus what it cost."""
    tasks, humans = [], []
    for item in golden.records:
        record = item.record(config, at)
        for metric, human in sorted(item.human.items()):
            if metric in engine.metrics:
                tasks.append(JudgeTask(record, metric))
                humans.append(human)
    scores = engine.judge(tasks)
    pairs: dict[str, tuple[list[float], list[float]]] = {}
    statuses: dict[str, int] = {}
    tokens = calls = 0
    for score, human in zip(scores, humans, strict=True):
        statuses[score.status] = statuses.get(score.status, 0) + 1
        tokens += score.prompt_tokens + score.completion_tokens
        calls += 1 if score.prompt_tokens or score.completion_tokens else 0
        judge_scores, human_scores = pairs.setdefault(score.metric, ([], []))
        if score.status == "ok" and score.score is not None:
            judge_scores.append(score.score)
            human_scores.append(human)
    metrics = {m: agreement(j, h).to_json() for m, (j, h) in sorted(pairs.items())}
    judge = config.judge
    return {
        "run_id": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "at": iso(at), "monitor": config.name,
        "golden_digest": golden.digest,
        "golden_records": len(golden.records), "judge": "heuristic" if judge.provider == "heuristic"
        else f"{judge.provider}:{judge.model_name}", "provider": judge.provider, "model": judge.model_name,
        "approximate": engine.approximate, "prompt_version": _versions(engine), "metrics": metrics,
        "statuses": statuses, "tokens": tokens, "judge_calls": calls,
    }


def _versions(engine: JudgeEngine) -> str:
    versions = sorted(set(engine.description["prompt_versions"].values()))
    return ",".join(str(v) for v in versions)


# --- alerts -------------------------------------------------------------------------------------

def judge_drift_findings(config: MonitorConfig, run: dict[str, Any],
                         previous: dict[str, Any] | None) -> list[tuple[str, str, float, float]]:
    """(metric, message, value, threshold) for every metric whose agreement raises judge_drift."""
    rules = config.calibration
    found = []
    before = (previous or {}).get("metrics", {})
    for metric, data in run["metrics"].items():
        stats = Agreement(**data)
        if stats.n < rules.min_records:
            continue
        if stats.spearman is not None and stats.spearman < rules.min_spearman:
            found.append((metric, f"Spearman correlation with the human scores {stats.spearman:.3f} is below "
                                  f"{rules.min_spearman:.3f} (n = {stats.n})", stats.spearman, rules.min_spearman))
            continue
        old = before.get(metric, {}).get("mean_bias")
        if stats.mean_bias is not None and old is not None and abs(stats.mean_bias - old) > rules.max_bias_shift:
            found.append((metric, f"mean bias (judge minus human) moved from {old:+.3f} to {stats.mean_bias:+.3f}, "
                                  f"more than {rules.max_bias_shift:.3f}", stats.mean_bias - old,
                          rules.max_bias_shift))
    return found


def raise_judge_drift(tables: Tables, config: MonitorConfig, run: dict[str, Any],
                      previous: dict[str, Any] | None, at: datetime) -> list[str]:
    """Create (once per run x metric), emit and deliver the run's judge_drift alerts."""
    from monitor.aggregate.runner import publish_alerts

    entities = []
    webhook = config.alerts.webhook_url is not None
    for metric, detail, value, threshold in judge_drift_findings(config, run, previous):
        message = (f"Judge drift: {detail}; judge {run['judge']} (prompt version {run['prompt_version']}), "
                   f"calibration run {run['run_id']}: monitor {config.name}, metric {metric}.")
        entities.append({
            "PartitionKey": config.name, "RowKey": alert_row_key(run["run_id"], metric, "calibration", "judge_drift"),
            "monitor": config.name, "kind": "judge_drift", "metric": metric, "segment": "calibration",
            "window": "calibration", "window_start": run["run_id"], "window_end": run["run_id"],
            "value": round(value, 6), "threshold": threshold, "created_at": iso(at), "message": message,
            "row_count": run["metrics"][metric]["n"], "scored": run["metrics"][metric]["n"],
            "run_id": run["run_id"], "spearman": run["metrics"][metric]["spearman"],
            "mean_bias": run["metrics"][metric]["mean_bias"], "judge": run["judge"],
            "approximate": bool(run["approximate"]),
            "webhook_status": "pending" if webhook else "none", "webhook_attempts": 0, "webhook_error": "",
        })
    return publish_alerts(config, [{k: v for k, v in e.items() if v is not None} for e in entities], at)


def calibrate_due(at: datetime | None = None) -> list[CalibrationResult]:
    """What the timer runs after aggregating: every monitor with a golden set, when due. One
    monitor's failure is logged and does not stop the others."""
    tables = Tables.default()
    results = []
    for config in MonitorStore(tables).list():
        if current_digest(tables, config.name) is None:
            continue
        try:
            results.append(calibrate_config(tables, config, at=at))
        except Exception as exc:  # a judge outage must not stop the other monitors
            log.exception("calibration of monitor %s failed", config.name)
            results.append(CalibrationResult(config.name, False, f"failed: {type(exc).__name__}: {exc}"))
    return results


