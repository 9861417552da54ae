"""The fleet budget against Azurite and the loopback judge: several engines in one process and in
several processes share one requests-per-minute budget; a killed holder's share comes back after
its lease lapses; storage down or silent -> a conservative local share with a warning; a 429 slows
the whole fleet; status shows the leases."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.azurite import Azurite
from monitor.config import MonitorConfig
from monitor.judge import JudgeEngine, JudgeTask, RetryPolicy
from monitor.judge.limits import judge_pool
from monitor.judge.runtime import Runtime, reset_runtime
from monitor.quota import Budget, FleetQuota, default_store, pool_status
from monitor.quota.lease import FALLBACK_SPLIT
from monitor.records import Record
from monitor.settings import azurite_connection_string, reset_settings
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.storage import reset_caches, storage_env

pytestmark = pytest.mark.azurite
PERIOD, TTL = 1.0, 4.0
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def fast_leases(storage: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[Azurite]:
    """Leases renewed every second and lapsing after 4 s (the defaults are 5 s and 15 s)."""
    monkeypatch.setenv("QUOTA_LEASE_SECONDS", str(PERIOD))
    monkeypatch.setenv("QUOTA_LEASE_TTL_SECONDS", str(TTL))
    reset_settings()
    yield storage
    reset_runtime()
    reset_settings()


def config(server: FakeOpenAI, pool: str, rpm: int, **judge: Any) -> MonitorConfig:
    return MonitorConfig.model_validate({
        "name": "quota-test", "source": {"prefix": "p/"},
        "judge": {"provider": "openai", "model": "judge-model", "base_url": server.openai_base_url,
                  "explain": "off", "requests_per_minute": rpm, "quota_pool": pool, **judge},
    })


def tasks(n: int, prefix: str = "r") -> list[JudgeTask]:
    when = datetime(2026, 11, 28, 10, tzinfo=UTC)
    return [JudgeTask(Record(monitor="quota-test", key=f"{prefix}{i}", time=when, prompt=f"question {i}",
                             completion=f"answer {i}"), "coherence") for i in range(n)]


def busiest_window(times: list[float], width: float) -> int:
    """The most requests that arrived in any window of `width` seconds."""
    times = sorted(times)
    return max((bisect_left(times, t + width) - i for i, t in enumerate(times)), default=0)


def slice_of(rpm: float) -> float:
    """One lease slice: what a share of the whole budget sends in one lease period."""
    return rpm * PERIOD / 60


def watch_pool(pool: str, limits: dict[str, float]) -> tuple[threading.Event, list[dict[str, Any]]]:
    """Poll the pool's status every 0.3 s in a thread until the returned event is set."""
    stop, seen = threading.Event(), []
    store = default_store()

    def poll() -> None:
        while not stop.wait(0.3):
            seen.append(pool_status(store, pool, limits, time.time()))

    threading.Thread(target=poll, daemon=True).start()
    return stop, seen


@pytest.mark.slow
def test_engines_in_one_process_share_one_budget(fast_leases: Azurite) -> None:
    rpm, engines, per_engine = 900, 3, 50  # 150 requests at 15 per second: about 10 s
    runtimes = [Runtime() for _ in range(engines)]  # each its own throttle and lease: an instance each
    with FakeOpenAI(latency=0.05) as server:
        cfg = config(server, "one-process", rpm)
        stop, seen = watch_pool(judge_pool(cfg.judge), {"requests": rpm})
        started = time.monotonic()
        with ThreadPoolExecutor(engines) as pool:
            futures = [pool.submit(JudgeEngine(cfg, retry=RetryPolicy(max_attempts=10), runtime=rt).judge,
                                   tasks(per_engine, f"e{i}-")) for i, rt in enumerate(runtimes)]
            results = [f.result(timeout=120) for f in futures]
        elapsed = time.monotonic() - started
        stop.set()
        stats = server.stats
    for rt in runtimes:
        rt.stop()
    assert all(s.status == "ok" for scores in results for s in scores)
    assert stats.throttled == 0 and stats.requests == engines * per_engine
    # Never above the budget by more than one slice, in any 10 s (a sixth of a minute) or minute.
    assert busiest_window(stats.timestamps, 10.0) <= rpm / 6 + slice_of(rpm)
    assert busiest_window(stats.timestamps, 60.0) <= rpm + slice_of(rpm)
    assert stats.requests / elapsed >= 0.6 * rpm / 60  # and the budget is used, not wasted
    assert max(s["instances"] for s in seen) == engines
    assert all(s["leased_per_minute"]["requests"] <= rpm + 1e-6 for s in seen)


def worker(server: FakeOpenAI, pool: str, rpm: int, n: int, start_at: float = 0.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.quota_worker", "--base-url", server.openai_base_url, "--rpm", str(rpm),
         "--pool", pool, "--tasks", str(n), "--start-at", str(start_at)],
        cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))


@pytest.mark.slow
def test_processes_sharing_azurite_share_one_budget_over_more_than_a_minute(storage: Azurite) -> None:
    # Default lease timing (5 s renewals, 15 s lease): one slice = a share of the budget for 5 s.
    rpm, processes, per_process = 240, 3, 96  # 288 requests at 4 per second: about 72 s
    with FakeOpenAI(latency=0.05) as server:
        start_at = time.time() + 4.0
        procs = [worker(server, "processes", rpm, per_process, start_at) for _ in range(processes)]
        try:
            outputs = [p.communicate(timeout=150) for p in procs]
        finally:
            for proc in procs:  # never leave a worker behind when the test fails
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        stats = server.stats
    results = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert len({r["instance"] for r in results}) == processes
    assert all(r["statuses"] == {"ok": per_process} for r in results)
    assert stats.throttled == 0 and stats.requests == processes * per_process
    lease_slice = rpm * 5.0 / 60
    assert busiest_window(stats.timestamps, 10.0) <= rpm / 6 + lease_slice
    assert busiest_window(stats.timestamps, 60.0) <= rpm + lease_slice  # any minute of the run
    assert busiest_window(stats.timestamps, 60.0) >= 0.85 * rpm  # and the fleet used its budget
    # Leases cost storage requests per renewal (about 2 per instance per 5 s), not per call.
    assert sum(r["storage_requests"] for r in results) < processes * per_process / 2


@pytest.mark.slow
def test_a_killed_holder_gives_its_share_back_when_its_lease_lapses(fast_leases: Azurite) -> None:
    rpm = 600
    with FakeOpenAI(latency=0.2) as server:
        victim = worker(server, "killed", rpm, 1_000)  # busy for far longer than the test
        store = default_store()
        try:
            _wait_for(lambda: pool_status(store, "pool:killed", {"requests": rpm}, time.time())["instances"] == 1,
                      timeout=30)
            shares = asyncio.run(_newcomer_while_killing(victim, rpm))
        finally:
            victim.kill()
            victim.wait()
    before_kill, after_kill, lapsed_after = shares
    assert before_kill == pytest.approx(rpm / 2, rel=0.05)  # the victim gave back half
    assert after_kill == pytest.approx(rpm / 2, rel=0.05)  # its half stays held while its lease is valid
    assert lapsed_after <= TTL + 2 * PERIOD + 1.0  # then comes back within the lease time-to-live


async def _newcomer_while_killing(victim: subprocess.Popen[str], rpm: int) -> tuple[float, float, float]:
    quota = FleetQuota(Budget("pool:killed", {"requests": float(rpm)}), default_store, period=PERIOD, ttl=TTL)
    await quota.enter()
    hungry = asyncio.create_task(_keep_hungry([quota]))
    try:
        await _until(lambda: quota.rate("requests") >= rpm * 0.45, timeout=10)
        before = quota._share["requests"]
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await asyncio.sleep(1.5)
        after = quota._share["requests"]
        await _until(lambda: quota._share.get("requests", 0) >= rpm * 0.99, timeout=TTL + 10)
        return before, after, time.monotonic() - killed_at
    finally:
        hungry.cancel()
        await quota.close()


async def _keep_hungry(quotas: list[FleetQuota]) -> None:
    """Calls keep waiting for the rate (as a busy instance's do): each quota wants all it can get."""
    while True:
        for quota in quotas:
            quota.starved()
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("storage_state", ["refused", "silent"])
def test_storage_unavailable_gives_a_local_share_with_a_warning(
        storage_state: str, caplog: pytest.LogCaptureFixture) -> None:
    rpm = 2400  # the local share is a FALLBACK_SPLIT-th: 300 per minute, 5 per second
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        if storage_state == "silent":
            listener.listen(16)  # connections are accepted by the kernel and never answered
        else:
            listener.close()
        dead = azurite_connection_string(blob=port, queue=port, table=port)
        with storage_env(dead), FakeOpenAI() as server, caplog.at_level(logging.WARNING):
            started = time.monotonic()
            scores = JudgeEngine(config(server, f"down-{storage_state}", rpm)).judge(tasks(6))
            elapsed = time.monotonic() - started
            reset_runtime()
    reset_caches()
    assert [s.status for s in scores] == ["ok"] * 6
    assert "conservative local share" in caplog.text and f"{rpm / FALLBACK_SPLIT:.0f}/min" in caplog.text
    assert elapsed >= 5 / (rpm / FALLBACK_SPLIT / 60) * 0.9  # paced at the local share, not the budget
    assert elapsed < 15  # never waits for storage to come back


def test_a_429_slows_the_whole_fleet(fast_leases: Azurite) -> None:
    rpm = 1200
    with FakeOpenAI() as server:
        cfg = config(server, "slowdown", rpm)
        server.script(Reply.rate_limited(retry_after_ms=50))
        scores = JudgeEngine(cfg, retry=RetryPolicy(max_attempts=3, base_delay=0.01)).judge(tasks(3))
    assert [s.status for s in scores] == ["ok"] * 3
    reset_runtime()
    state = default_store().read(judge_pool(cfg.judge))
    assert state.slowdown(state.slowdown_at) < 1.0  # the instance that saw the 429 cut the fleet's rate

    async def other_instance() -> float:
        quota = FleetQuota(Budget(judge_pool(cfg.judge), {"requests": float(rpm)}), default_store,
                           period=PERIOD, ttl=TTL)
        await quota.enter()
        try:
            return quota.rate("requests")
        finally:
            await quota.close()

    assert asyncio.run(other_instance()) < rpm * 0.99  # another instance paces slower too


def test_status_shows_the_leases(fast_leases: Azurite, monitor_name: str, capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.cli import main
    from monitor.monitors import MonitorStore
    from monitor.status import monitor_status

    data = {"name": monitor_name, "source": {"prefix": "p/"},
            "judge": {"provider": "azure_openai", "endpoint": "https://contoso-aoai.openai.azure.com",
                      "deployment": "gpt-4o", "requests_per_minute": 600, "tokens_per_minute": 90_000}}
    cfg, _ = MonitorStore().put(data)
    budget = Budget(judge_pool(cfg.judge), {"requests": 600.0, "tokens": 90_000.0})

    async def hold_and_read() -> tuple[dict[str, Any], int, str]:
        quotas = [FleetQuota(budget, default_store, period=PERIOD, ttl=TTL) for _ in range(2)]
        for quota in quotas:
            await quota.enter()
        hungry = asyncio.create_task(_keep_hungry(quotas))
        await asyncio.sleep(3.0)  # both renewed: the fair split
        status = await asyncio.to_thread(monitor_status, monitor_name)
        code = await asyncio.to_thread(main, ["status", "--monitor", monitor_name])
        hungry.cancel()
        for quota in quotas:
            await quota.close()
        return status, code, quotas[0].instance

    status, code, instance = asyncio.run(hold_and_read())
    quota = status["quota"]
    assert quota["pool"] == "azure_openai:https://contoso-aoai.openai.azure.com/gpt-4o"
    assert quota["limits_per_minute"] == {"requests": 600.0, "tokens": 90_000.0}
    assert quota["instances"] == 2 and instance in {lease["instance"] for lease in quota["leases"]}
    assert quota["leased_per_minute"]["requests"] <= 600
    for lease in quota["leases"]:
        assert lease["share_per_minute"]["requests"] == pytest.approx(300, rel=0.05)
        assert set(lease["used_per_minute"]) == {"requests", "tokens"}
    out = capsys.readouterr().out
    assert code == 0 and "quota pool" in out and "2 instance(s)" in out and instance in out
    # Once both handed their leases back, nobody holds any.
    assert monitor_status(monitor_name)["quota"]["instances"] == 0


def _wait_for(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.2)


async def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)
