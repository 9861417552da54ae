"""One long-lived event loop per process, on a background thread, for every judge call.

The app is synchronous (function bodies, CLI), but the openai client is cheapest async with the
aiohttp transport and ONE client per process (PLATFORM.md). A loop that lives as long as the process
lets that client (and its connection pool, rate limiter and slow-down state) outlive a single
invocation: sync callers hand coroutines over with `asyncio.run_coroutine_threadsafe` and wait.
Objects bound to the loop (clients, limiters) are created on it and kept in :meth:`Runtime.shared`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Runtime:
    """A daemon thread running an asyncio loop, plus a cache of objects that live on it."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="judge-loop", daemon=True)
        self._shared: dict[Any, Any] = {}
        self._closers: dict[Any, Callable[[Any], Awaitable[None]]] = {}
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and wait for its result (from any thread but the loop's own)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("Runtime.run() called from the judge loop itself; await instead")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except (KeyboardInterrupt, concurrent.futures.TimeoutError):
            future.cancel()
            raise

    def shared(self, key: Any, factory: Callable[[], T],
               close: Callable[[T], Awaitable[None]] | None = None) -> T:
        """The object cached under `key`, built by `factory` on first use. Call on the loop only, so
        that loop-bound objects (aiohttp sessions, asyncio locks) are created where they are used."""
        if key not in self._shared:
            self._shared[key] = factory()
            if close is not None:
                self._closers[key] = close
        return self._shared[key]  # type: ignore[no-any-return]

    def objects(self) -> list[Any]:
        """The shared objects alive now (for figures: throttles, leases)."""
        return list(self._shared.values())

    async def _close_shared(self) -> None:
        items, closers = dict(self._shared), dict(self._closers)
        self._shared.clear()
        self._closers.clear()
        for key, close in closers.items():
            with contextlib.suppress(Exception):  # closing is best effort
                await close(items[key])

    def reset(self) -> None:
        """Close and forget every shared object (tests, or after settings change)."""
        self.run(self._close_shared(), timeout=10)

    def stop(self) -> None:
        """Close the shared clients and end the loop thread (at interpreter exit)."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self.reset()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()


_lock = threading.Lock()
_runtime: Runtime | None = None
_pid: int | None = None


def get_runtime() -> Runtime:
    """The process's runtime, started on first use (and again in a forked child)."""
    global _runtime, _pid
    with _lock:
        if _runtime is None or _pid != os.getpid():
            _runtime, _pid = Runtime(), os.getpid()
            atexit.register(_runtime.stop)  # close connections cleanly, no "unclosed session" noise
        return _runtime


def reset_runtime() -> None:
    """Close the shared clients and limiters of the running runtime (if any); keep the loop."""
    with _lock:
        runtime = _runtime if _pid == os.getpid() else None
    if runtime is not None:
        runtime.reset()
