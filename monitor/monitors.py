"""The configuration service: monitor configs stored in Table Storage (table `monitors`).

The CLI (`monitors put|list|get|delete`) and the HTTP API both go through this module.
"""

from __future__ import annotations

import builtins
import json
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from monitor.config import MonitorConfig, parse_config
from monitor.errors import ConfigError, NotFoundError
from monitor.keys import iso
from monitor.storage.tables import Tables, get_entity

PARTITION = "monitor"


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
        return MonitorConfig.model_validate(json.loads(entity["config"]))

    def list(self) -> list[MonitorConfig]:
        entities = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION})
        return sorted((MonitorConfig.model_validate(json.loads(e["config"])) for e in entities),
                      key=lambda c: c.name)

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
        """Custom metrics must name a prompt file that loads; fail at put time, not at judge time."""
        from monitor.judge.prompts import PromptError, load_prompt

        errors = []
        for name, metric in config.metrics.items():
            if metric.prompt is None:
                continue
            try:
                load_prompt(metric.prompt)
            except PromptError as exc:
                errors.append({"field": f"metrics.{name}.prompt", "message": str(exc)})
        if errors:
            raise ConfigError("invalid monitor configuration: " + "; ".join(e["message"] for e in errors),
                              details=errors)


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
