"""The loopback judge server of the benchmarks, in its own process (its CPU is never the client's).

It is tests/support/fake_openai.FakeOpenAI (latency, RPM/TPM quota with 429 + retry-after, exact
token accounting) with two additions made here, without touching the test server:

* :func:`bench_policy`: answers every request in the format its prompt asks for. Our judge's score
  mode asks for one digit with top logprobs (the default policy's reply); our explain mode and every
  azure-ai-evaluation 1.18 quality prompt (coherence, fluency, groundedness, relevance, similarity:
  ``response_format: json_object`` and "a valid JSON object with exactly these keys: reason, score,
  status") get ``{"reason", "score", "status": "completed"}``. The reason is the same two sentences
  for both sides, prefixed by "Let's think step by step:" where the prompt demands that opening, so
  completion tokens differ only by what each prompt asks for. Scores come from the fake's hash of
  the user message (uniform over 1-5), as in the tests.
* :class:`BenchServer`: also records when each reply left and with what status (for the achieved
  rate of successful requests in the quota scenario).

Run as ``python -m bench.server --latency 0.3 --rpm 1200 --quota-window 10``: it prints
``{"port": N}`` and then answers line commands on stdin (``stats``, ``reset``, ``quit``) with one
JSON line each. :class:`ServerProcess` is the parent side.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from typing import Any

from aiohttp import web

from tests.support.fake_openai import ChatRequest, FakeOpenAI, Reply, default_policy, default_score

REASON = ("The answer follows from the question in a clear order and stays on the topic that was asked. "
          "One supporting detail is thin, which keeps the rating from the top of the scale.")
STEP_BY_STEP = "Let's think step by step"


def bench_policy(request: ChatRequest) -> Reply:
    if request.json_mode:
        score = default_score(request.user_text)
        wants_steps = any(STEP_BY_STEP in str(m.get("content", "")) for m in request.messages)
        reason = f"{STEP_BY_STEP}: {REASON}" if wants_steps else REASON
        return Reply(text=json.dumps({"reason": reason, "score": score, "status": "completed"}))
    return default_policy(request)


class BenchServer(FakeOpenAI):
    """FakeOpenAI that also keeps (time, status) of every reply it sends."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(policy=bench_policy, keep_log=False, **kwargs)
        self.finished: list[tuple[float, int]] = []

    def _finish(self, response: web.Response) -> web.Response:
        self.finished.append((time.monotonic(), response.status))
        return super()._finish(response)

    def snapshot(self) -> dict[str, Any]:
        stats = self.stats
        done = list(self.finished)
        ok = [t for t, status in done if status == 200]
        return {
            "requests": stats.requests, "statuses": {str(k): v for k, v in stats.statuses.items()},
            "throttled": stats.throttled, "quota_throttled": stats.quota_throttled,
            "prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens,
            "first_arrival": min(stats.timestamps) if stats.timestamps else None,
            "last_reply": max((t for t, _ in done), default=None),
            "ok_times": ok,
        }

    def clear(self) -> None:
        self.reset_stats()
        self.finished = []


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rpm", type=float, default=None)
    parser.add_argument("--tpm", type=float, default=None)
    parser.add_argument("--quota-window", type=float, default=60.0)
    args = parser.parse_args()
    server = BenchServer(latency=args.latency, requests_per_minute=args.rpm, tokens_per_minute=args.tpm,
                         quota_window=args.quota_window).start()
    print(json.dumps({"port": server.port}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "stats":
            print(json.dumps(server.snapshot()), flush=True)
        elif command == "reset":
            server.clear()
            print(json.dumps({"ok": True}), flush=True)
        elif command == "quit":
            break
    server.stop()


class ServerProcess:
    """Parent side: start the server process, ask it for stats, stop it."""

    def __init__(self, *, latency: float = 0.0, rpm: float | None = None, tpm: float | None = None,
                 quota_window: float = 60.0, python: str | None = None) -> None:
        argv = [python or sys.executable, "-m", "bench.server", "--latency", str(latency),
                "--quota-window", str(quota_window)]
        if rpm:
            argv += ["--rpm", str(rpm)]
        if tpm:
            argv += ["--tpm", str(tpm)]
        from bench.common import ROOT

        self.process = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._lock = threading.Lock()
        self.port = int(self._read()["port"])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"bench server exited ({self.process.poll()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def _ask(self, command: str) -> dict[str, Any]:
        with self._lock:
            assert self.process.stdin is not None
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
            return self._read()

    def stats(self) -> dict[str, Any]:
        return self._ask("stats")

    def reset(self) -> None:
        self._ask("reset")

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
