"""Deterministic keys: table-safe key components, hour buckets and stable hashes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

_FORBIDDEN = {"/": "%2F", "\\": "%5C", "#": "%23", "?": "%3F", "%": "%25"}


def safe_key(value: str) -> str:
    """A string usable in PartitionKey/RowKey: forbidden characters percent-encoded, reversibly."""
    out = []
    for char in value:
        if char in _FORBIDDEN:
            out.append(_FORBIDDEN[char])
        elif ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
            out.append(f"%{ord(char):02X}")
        else:
            out.append(char)
    return "".join(out)


def stable_hash(value: str) -> str:
    return hashlib.sha1(value.encode("utf-8"), usedforsecurity=False).hexdigest()


def hour_key(moment: datetime) -> str:
    """`yyyymmddHH` of a moment, in UTC."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H")


def hour_start(hour: str) -> datetime:
    return datetime.strptime(hour, "%Y%m%d%H").replace(tzinfo=UTC)


def record_partition(monitor: str, moment: datetime) -> str:
    return f"{monitor}|{hour_key(moment)}"


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, second precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    """Parse ISO 8601; a naive time is taken as UTC. Raises ValueError."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


JOIN_SHARDS = 16


def join_shard(key: str) -> str:
    """The shard (`00`..`15`) of a join key; join halves are spread over 16 partitions per monitor."""
    return f"{int(stable_hash(key)[:4], 16) % JOIN_SHARDS:02d}"


def join_partitions(monitor: str) -> list[str]:
    return [f"{monitor}|{shard:02d}" for shard in range(JOIN_SHARDS)]
