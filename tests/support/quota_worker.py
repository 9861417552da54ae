"""One judge instance in its own process, for the fleet-budget tests (an Azure Functions instance).

    python -m tests.support.quota_worker --base-url URL --rpm N --pool NAME --tasks K [--start-at T]

Storage comes from MONITOR_STORAGE, lease timing from QUOTA_LEASE_SECONDS / QUOTA_LEASE_TTL_SECONDS.
Judges K coherence tasks with the real engine against the loopback server and prints one JSON line:
its instance name, the scores by status, and the lease's storage requests.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from monitor.config import MonitorConfig
from monitor.judge import JudgeEngine, JudgeTask
from monitor.judge.limits import Throttle
from monitor.judge.runtime import get_runtime
from monitor.records import Record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--rpm", type=int, required=True)
    parser.add_argument("--pool", required=True)
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--start-at", type=float, default=0.0)
    args = parser.parse_args()
    config = MonitorConfig.model_validate({
        "name": "quota-worker", "source": {"prefix": "p/"},
        "judge": {"provider": "openai", "model": "judge-model", "base_url": args.base_url, "explain": "off",
                  "requests_per_minute": args.rpm, "quota_pool": args.pool, "max_attempts": 10},
    })
    when = datetime(2026, 11, 28, 10, tzinfo=UTC)
    tasks = [JudgeTask(Record(monitor="quota-worker", key=f"r{i}", time=when, prompt=f"question {i}",
                              completion=f"answer {i}"), "coherence") for i in range(args.tasks)]
    engine = JudgeEngine(config)
    time.sleep(max(0.0, args.start_at - time.time()))
    print(json.dumps({"event": "started"}), flush=True)
    scores = engine.judge(tasks)
    runtime = get_runtime()
    [throttle] = [t for t in runtime.objects() if isinstance(t, Throttle)]
    runtime.reset()  # hand the lease back
    assert throttle.quota is not None
    statuses: dict[str, int] = {}
    for score in scores:
        statuses[score.status] = statuses.get(score.status, 0) + 1
    print(json.dumps({"instance": throttle.quota.instance, "statuses": statuses,
                      "storage_requests": throttle.quota.storage_requests}), flush=True)


if __name__ == "__main__":
    main()
