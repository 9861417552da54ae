"""The per-monitor daily token budget, kept in Table Storage (`tokenusage`: PK monitor, RK yyyymmdd).

A judge call is made only after it reserved its estimated tokens (prompt estimate + max_tokens)
against the budget; a call that does not fit is not made (the engine marks the score skipped with
detail "budget", to be re-evaluated later by backfill). After the call the reservation is settled
with the tokens the response's `usage` reports; settled tokens are added to the day's entity with
ETag optimistic concurrency (read, add, replace If-Match; on 412 read again), in batches of
`flush_tokens` (the engine flushes in a worker thread) and at the end of every `JudgeEngine.judge()`.

Overshoot bound. Within one process the in-memory reservation counts every in-flight call, so the
process overshoots only by the difference between estimated and actual tokens (small with the
offline tiktoken encoding; chars/4 otherwise). Across P processes judging the same monitor at the
same time, each sees the others' spending as of its last read (refreshed every `refresh_seconds`
and on every flush), so the day can overshoot by at most about
    (P - 1) x (flush_tokens + max_concurrency x largest call estimate + tokens spent in refresh_seconds)
With the defaults (flush every 2% of the budget, refresh every 10 s) and a handful of instances this
stays within a few percent of the budget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, TableClient, UpdateMode

from monitor.config import MonitorConfig
from monitor.errors import StorageError
from monitor.settings import get_settings

INT32_MAX = 2**31 - 1
MAX_CONFLICTS = 50


class TokenBudget:
    """The daily token budget of one monitor, shared by every call in the process (thread-safe)."""

    def __init__(self, monitor: str, daily_tokens: int, table: TableClient | None = None, *,
                 flush_tokens: int | None = None, refresh_seconds: float = 10.0,
                 now: Callable[[], datetime] | None = None) -> None:
        self.monitor = monitor
        self.daily_tokens = daily_tokens
        self.flush_tokens = flush_tokens if flush_tokens is not None else max(1, daily_tokens // 50)
        self.refresh_seconds = refresh_seconds
        self._table = table
        self._now = now or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._day = ""
        self._stored = 0
        self._read_at = -float("inf")
        self._unflushed = 0
        self._reserved = 0

    @property
    def table(self) -> TableClient:
        if self._table is None:
            from monitor.storage.tables import Tables

            self._table = Tables.default()["usage"]
        return self._table

    def reserve(self, tokens: int) -> bool:
        """Reserve `tokens` for one call; False (nothing reserved) when the day's budget can't hold it."""
        with self._lock:
            self._roll()
            if time.monotonic() - self._read_at > self.refresh_seconds:
                self._refresh()
            if self._committed() + self._reserved + tokens > self.daily_tokens:
                return False
            self._reserved += tokens
            return True

    def settle(self, reserved: int, spent: int) -> None:
        """Release a reservation and count what the call really spent (in memory only, so it is safe
        on the judge loop and in cleanup after cancellation; see :meth:`flush_due`)."""
        with self._lock:
            self._reserved = max(0, self._reserved - reserved)
            self._unflushed += max(0, spent)

    def flush_due(self) -> bool:
        """Whether enough settled tokens are unwritten that they should be flushed now."""
        with self._lock:
            return self._unflushed >= self.flush_tokens

    def flush(self) -> None:
        """Write settled tokens to the table (the engine calls this at the end of each batch)."""
        with self._lock:
            self._flush()

    def spent(self) -> int:
        """Tokens counted for today, stored or not yet flushed (reservations excluded)."""
        with self._lock:
            self._roll()
            return self._committed()

    def _committed(self) -> int:
        return self._stored + self._unflushed

    def _today(self) -> str:
        return self._now().astimezone(UTC).strftime("%Y%m%d")

    def _roll(self) -> None:
        """On a new UTC day: write yesterday's remainder, start from the new day's entity."""
        day = self._today()
        if day != self._day:
            if self._day:
                self._flush()
            self._day = day
            self._unflushed = 0
            self._refresh()

    def _refresh(self) -> None:
        entity = self._get()
        self._stored = _tokens(entity) if entity is not None else 0
        self._read_at = time.monotonic()

    def _flush(self) -> None:
        if self._unflushed <= 0:
            return
        self._stored = self._add(self._unflushed)
        self._unflushed = 0
        self._read_at = time.monotonic()

    def _get(self) -> Any:
        try:
            return self.table.get_entity(self.monitor, self._day)
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise StorageError(f"cannot read the token usage of monitor {self.monitor!r}: {exc}") from exc

    def _add(self, amount: int) -> int:
        """Add `amount` to the day's total with ETag optimistic concurrency; returns the new total."""
        try:
            for _ in range(MAX_CONFLICTS):
                entity = self._get()
                if entity is None:
                    try:
                        self.table.create_entity(self._entity(amount))
                        return amount
                    except ResourceExistsError:
                        continue
                total = _tokens(entity) + amount
                try:
                    self.table.update_entity(self._entity(total), mode=UpdateMode.REPLACE,
                                             etag=entity.metadata["etag"],
                                             match_condition=MatchConditions.IfNotModified)
                    return total
                except ResourceModifiedError:
                    continue
        except AzureError as exc:
            raise StorageError(f"cannot record the token usage of monitor {self.monitor!r}: {exc}") from exc
        raise StorageError(f"token usage of monitor {self.monitor!r}: {MAX_CONFLICTS} write conflicts in a row")

    def _entity(self, tokens: int) -> dict[str, Any]:
        value: Any = tokens if tokens <= INT32_MAX else EntityProperty(tokens, EdmType.INT64)
        return {"PartitionKey": self.monitor, "RowKey": self._day, "tokens": value}


def _tokens(entity: Any) -> int:
    value = entity.get("tokens", 0)
    return int(getattr(value, "value", value) or 0)


_budgets: dict[tuple[str, int, str], TokenBudget] = {}
_budgets_lock = threading.Lock()


def default_budget(config: MonitorConfig) -> TokenBudget | None:
    """The storage-backed budget of a monitor when `judge.daily_token_budget` is set (None for the
    heuristic judge, which spends no tokens). One instance per monitor per process, so that
    concurrent invocations share the in-process reservation."""
    limit = config.judge.daily_token_budget
    if limit is None or config.judge.provider == "heuristic":
        return None
    key = (config.name, limit, repr(get_settings().monitor_storage()))
    with _budgets_lock:
        if key not in _budgets:
            _budgets[key] = TokenBudget(config.name, limit)
        return _budgets[key]


def reset_budgets() -> None:
    with _budgets_lock:
        _budgets.clear()
