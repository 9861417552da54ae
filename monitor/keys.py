"""Deterministic keys: table-safe key components, hour buckets and stable hashes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

# Table keys (see docs/ingest.md, "Table keys"): characters outside this set are escaped as `!XX`
# per UTF-8 byte. The set excludes what the table service forbids (`/ \\ # ?`, control characters)
# and what breaks some of its operations (`%`, `'`, `~`, `|` is our own separator).
_KEEP = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=:,@")
_ESCAPE = "!"
# An encoded key longer than this is cut and suffixed with a hash of the whole original
# (PartitionKey and RowKey hold at most 1 KiB; composite keys add a metric or a window after it).
MAX_KEY_CHARS = 255
_HASHED_HEAD = 180
_HASHED_MARK = "!!"


def safe_key(value: str) -> str:
    """A string usable in PartitionKey/RowKey, injective over all strings.

    Plain ids (letters, digits, `-_.=:,@`) are unchanged; any other character is escaped as `!XX`
    per UTF-8 byte, reversibly (:func:`original_key`). An encoding longer than MAX_KEY_CHARS becomes
    its first characters + `!!` + the SHA-256 of the whole value: bounded, and collision-safe
    (`!!` never occurs in an unhashed encoding). Keep the original in a property beside such keys.
    """
    if all(char in _KEEP for char in value):
        encoded = value
    else:
        encoded = "".join(char if char in _KEEP else _escape(char) for char in value)
    if len(encoded) <= MAX_KEY_CHARS:
        return encoded
    head = encoded[:_HASHED_HEAD]
    cut = head.rfind(_ESCAPE, len(head) - 2)
    if cut >= 0:  # never split an escape
        head = head[:cut]
    digest = hashlib.sha256(value.encode("utf-8", errors="surrogatepass")).hexdigest()
    return f"{head}{_HASHED_MARK}{digest}"


def _escape(char: str) -> str:
    return "".join(f"{_ESCAPE}{byte:02X}" for byte in char.encode("utf-8", errors="surrogatepass"))


def original_key(encoded: str) -> str | None:
    """The value :func:`safe_key` encoded; None for a hashed (shortened) key, whose original is
    kept in the entity's `key` property."""
    if _HASHED_MARK in encoded:
        return None
    out = bytearray()
    index = 0
    while index < len(encoded):
        char = encoded[index]
        if char == _ESCAPE:
            out.append(int(encoded[index + 1:index + 3], 16))
            index += 3
        else:
            out += char.encode("ascii")
            index += 1
    return out.decode("utf-8", errors="surrogatepass")


def stable_hash(value: str) -> str:
    return hashlib.sha1(value.encode("utf-8"), usedforsecurity=False).hexdigest()


def hour_key(moment: datetime) -> str:
    """`yyyymmddHH` of a moment, in UTC (four-digit years, so keys sort as times do)."""
    m = moment.astimezone(UTC)
    return f"{m.year:04d}{m.month:02d}{m.day:02d}{m.hour:02d}"


def hour_start(hour: str) -> datetime:
    return datetime.strptime(hour, "%Y%m%d%H").replace(tzinfo=UTC)


def record_partition(monitor: str, moment: datetime) -> str:
    return f"{monitor}|{hour_key(moment)}"


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a Z, second precision."""
    m = moment.astimezone(UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


class InvalidTimeError(ValueError):
    """A time that is not ISO 8601."""


class TimeOutOfRangeError(ValueError):
    """An ISO 8601 time outside the range records may have (MIN_TIME <= t < MAX_TIME, UTC)."""


# Records are dated within this range (docs/ingest.md), the range the API accepts: it keeps every
# window, key and timestamp computed from a record time valid (a time near year 1 or 9999 leaves
# datetime's range once converted to UTC).
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9000, 1, 1, tzinfo=UTC)


def parse_time(value: str) -> datetime:
    """Parse ISO 8601; a naive time is taken as UTC.

    Raises InvalidTimeError (not ISO 8601) or TimeOutOfRangeError (not representable in UTC); both are
    ValueError."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidTimeError(f"{value[:100]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise TimeOutOfRangeError(f"{value[:100]!r} is not representable in UTC") from None


def parse_record_time(value: str) -> datetime:
    """:func:`parse_time` for the time of a record: also refuses times outside MIN_TIME..MAX_TIME."""
    moment = parse_time(value)
    if not MIN_TIME <= moment < MAX_TIME:
        raise TimeOutOfRangeError(f"{value[:100]!r} is outside {iso(MIN_TIME)} .. {iso(MAX_TIME)}")
    return moment


JOIN_SHARDS = 16


def join_shard(key: str) -> str:
    """The shard (`00`..`15`) of a join key; join halves are spread over 16 partitions per monitor."""
    return f"{int(stable_hash(key)[:4], 16) % JOIN_SHARDS:02d}"


def join_partitions(monitor: str) -> list[str]:
    return [f"{monitor}|{shard:02d}" for shard in range(JOIN_SHARDS)]
