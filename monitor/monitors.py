"""The configuration service: monitor configs stored in Table Storage (table `monitors`).

The CLI (`monitors put|list|get|delete`) and the HTTP API both go through this module.
"""

from __future__ import annotations

import builtins
import functools
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from pydantic import ValidationError

from monitor.config import MonitorConfig, field_errors, parse_config
from monitor.errors import ConfigError, NotFoundError
from monitor.keys import iso
from monitor.outbound import OutboundError, OutboundPolicy, current_policy
from monitor.storage.tables import Tables, get_entity

PARTITION = "monitor"
log = logging.getLogger(__name__)


class MonitorStore:
    def __init__(self, tables: Tables | None = None) -> None:
        self._tables = tables or Tables.default()

    @property
    def _table(self) -> Any:
        return self._tables["monitors"]

    def put(self, data: Any, *, name: str | None = None) -> tuple[MonitorConfig, bool]:
        """Validate and store a config; returns it and whether it was new."""
        config = parse_config(data, name=name)
        self._check_prompts(config)
        existing = get_entity(self._table, PARTITION, config.name)
        now = iso(datetime.now(UTC))
        self._table.upsert_entity({
            "PartitionKey": PARTITION,
            "RowKey": config.name,
            "config": config.model_dump_json(),
            "created_at": existing.get("created_at", now) if existing else now,
            "updated_at": now,
        })
        return config, existing is None

    def get(self, name: str) -> MonitorConfig:
        entity = get_entity(self._table, PARTITION, name)
        if entity is None:
            raise NotFoundError(f"no monitor named {name!r}; `monitors list` shows the existing ones")
        return stored_config(entity)

    def list(self) -> list[MonitorConfig]:
        """Every stored config that is still valid; one that is not (stored before a limit existed)
        is logged with what to fix and left out, so that it cannot stop the other monitors."""
        entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION})
        configs = []
        for entity in entities:
            try:
                configs.append(stored_config(entity))
            except ConfigError as exc:
                log.error("%s", exc.message)
        return sorted(configs, key=lambda c: c.name)

    def delete(self, name: str) -> None:
        try:
            self._table.get_entity(PARTITION, name)
        except ResourceNotFoundError:
            raise NotFoundError(f"no monitor named {name!r}") from None
        self._table.delete_entity(PARTITION, name)

    def owners(self, container: str, blob_path: str) -> builtins.list[MonitorConfig]:
        """Monitors whose source (container + prefix) covers a blob."""
        return [c for c in self.list() if c.owns(container, blob_path)]

    @staticmethod
    def _check_prompts(config: MonitorConfig) -> None:
        """What a config reaches outside itself must be allowed (docs/security.md), and custom metrics
        must name a prompt that loads: fail at put time, not at judge time. Errors name the field
        (and the metric), never a path of the server."""
        errors = trust_errors(config, current_policy())
        if errors:
            raise ConfigError("invalid monitor configuration: " + "; ".join(
                f"{e['field']}: {e['message']}" for e in errors), details=errors)


def stored_config(entity: dict[str, Any]) -> MonitorConfig:
    """A stored config, validated again; ConfigError (naming the monitor and the fields) when it no
    longer passes, e.g. a field over a size limit introduced after it was stored."""
    try:
        return MonitorConfig.model_validate(json.loads(entity["config"]))
    except ValidationError as exc:
        errors = field_errors(exc)
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise ConfigError(f"the stored configuration of monitor {entity['RowKey']!r} is no longer valid ({summary}); "
                          "put a corrected configuration", details=errors) from None


def trust_errors(config: MonitorConfig, policy: OutboundPolicy) -> builtins.list[dict[str, str]]:
    """Every outbound URL, key setting and prompt of a config checked against the policy."""
    from monitor.judge.prompts import PromptError, load_prompt

    errors: builtins.list[dict[str, str]] = []
    judge = config.judge
    checks: builtins.list[tuple[str, Callable[[], object]]] = []
    if judge.api_key_setting:
        checks.append(("judge.api_key_setting", lambda: policy.check_key_setting(str(judge.api_key_setting))))
    urls = {"judge.endpoint": judge.endpoint if judge.provider == "azure_openai" else None,
            "judge.base_url": judge.base_url if judge.provider == "openai" else None,
            "alerts.webhook_url": config.alerts.webhook_url}
    for field, url in urls.items():
        if url is not None:
            checks.append((field, functools.partial(policy.check_url, url, field)))
    if judge.provider == "azure_openai" and not judge.api_key_setting and judge.endpoint:
        endpoint = judge.endpoint
        checks.append(("judge.endpoint", lambda: _token_host(policy, endpoint)))
    for name, metric in config.metrics.items():
        if metric.prompt is not None:
            checks.append((f"metrics.{name}.prompt", functools.partial(load_prompt, metric.prompt)))
    for field, check in checks:
        try:
            check()
        except OutboundError as exc:
            errors.append({"field": field, "message": str(exc.details[0]["message"])})
        except PromptError as exc:
            errors.append({"field": field, "message": exc.message})
    return errors


def _token_host(policy: OutboundPolicy, endpoint: str) -> None:
    if not policy.token_allowed(endpoint):
        raise OutboundError("judge.endpoint", "the app sends its Entra ID token only to Azure AI hosts "
                            "(*.openai.azure.com, *.cognitiveservices.azure.com, *.services.ai.azure.com) or "
                            "to hosts listed by name in OUTBOUND_ALLOWED_HOSTS; name a key setting in "
                            "judge.api_key_setting for another server")


def overlap_warnings(config: MonitorConfig, others: builtins.list[MonitorConfig]) -> builtins.list[str]:
    """Warnings for monitors watching some of the same blobs as `config` (same container, one prefix
    starting with the other): both monitors receive those blobs, and each judges and pays for them."""
    out = []
    for other in others:
        if other.name == config.name or other.source.container != config.source.container:
            continue
        mine, theirs = config.source.prefix, other.source.prefix
        if mine.startswith(theirs) or theirs.startswith(mine):
            out.append(f"monitor {config.name!r} (prefix {mine!r}) overlaps monitor {other.name!r} (prefix "
                       f"{theirs!r}) in container {config.source.container!r}: blobs under both prefixes are "
                       "ingested, judged and paid for by both monitors")
    return out
