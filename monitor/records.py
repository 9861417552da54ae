"""A joined record: one request and its response, mapped onto the judge's columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.keys import hour_key, iso, parse_time, safe_key
from monitor.storage.tables import pack_text, unpack_text

TEXT_FIELDS = ("prompt", "completion", "context", "ground_truth", "chat_history")


@dataclass(frozen=True)
class Record:
    monitor: str
    key: str
    time: datetime
    prompt: str | None = None
    completion: str | None = None
    context: str | None = None
    ground_truth: str | None = None
    chat_history: str | None = None
    endpoint: str | None = None
    deployment: str | None = None
    model_version: str | None = None
    request_id: str | None = None
    sampled: bool = True
    origin_blob: str = ""
    batch_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def hour(self) -> str:
        return hour_key(self.time)

    @property
    def partition(self) -> str:
        return f"{self.monitor}|{self.hour}"

    @property
    def row_key(self) -> str:
        return safe_key(self.key)

    def column(self, name: str) -> str | None:
        """The value of a judge column (prompt, completion, context, ground_truth)."""
        value = getattr(self, name, None)
        return value if isinstance(value, str) and value.strip() else None

    def segments(self) -> list[str]:
        """The aggregation segments this record belongs to."""
        out = ["all"]
        if self.deployment:
            out.append(f"deployment={self.deployment}")
        if self.model_version:
            out.append(f"model_version={self.model_version}")
        return out

    def to_entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {
            "PartitionKey": self.partition,
            "RowKey": self.row_key,
            "key": self.key,
            "time": iso(self.time),
            "endpoint": self.endpoint,
            "deployment": self.deployment,
            "model_version": self.model_version,
            "request_id": self.request_id,
            "sampled": self.sampled,
            "origin_blob": self.origin_blob,
            "batch_id": self.batch_id,
        }
        for name in TEXT_FIELDS:
            entity.update(pack_text(name, getattr(self, name)))
        return {k: v for k, v in entity.items() if v is not None}

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> Record:
        monitor = str(entity["PartitionKey"]).rsplit("|", 1)[0]
        texts = {name: unpack_text(entity, name) for name in TEXT_FIELDS}
        return cls(
            prompt=texts["prompt"], completion=texts["completion"], context=texts["context"],
            ground_truth=texts["ground_truth"], chat_history=texts["chat_history"],
            monitor=monitor,
            key=str(entity.get("key") or entity["RowKey"]),
            time=parse_time(str(entity["time"])),
            endpoint=entity.get("endpoint"),
            deployment=entity.get("deployment"),
            model_version=entity.get("model_version"),
            request_id=entity.get("request_id"),
            sampled=bool(entity.get("sampled", True)),
            origin_blob=str(entity.get("origin_blob", "")),
            batch_id=str(entity.get("batch_id", "")),
        )
