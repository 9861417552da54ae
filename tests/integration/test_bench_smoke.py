"""Smoke test of the benchmark harness (bench/), our side only: the main venv has no
azure-ai-evaluation. Correctness of the harness, never thresholds on time: 20 records judged against
the benchmark server in its own process with the accounting checked, the peer-format policy, the
quota analysis, a tiny parse and Ingestor run, and a tiny aggregation comparison."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench.common import run_child
from bench.data import write_records
from bench.judge_bench import Cell, one_run
from bench.quota_bench import analyse
from bench.quota_bench import one_run as one_quota_run
from bench.server import STEP_BY_STEP, ServerProcess, bench_policy
from tests.support.fake_openai import ChatRequest

pytestmark = pytest.mark.slow


def test_our_judge_run_is_accounted_by_the_server(tmp_path: Path) -> None:
    data = write_records(tmp_path / "records.jsonl", 20)
    with ServerProcess(latency=0.0, python=sys.executable) as server:
        off = one_run(server, Cell("ours", "ours", 0.0, 20, 1, "off"), str(data))
        failing = one_run(server, Cell("ours", "ours", 0.0, 20, 1, "failing"), str(data))
    assert (off["records"], off["calls"], off["scored"], off["errors"], off["http_429"]) == (20, 100, 100, 0, 0)
    # Score mode: exactly one request and one completion token (the digit) per record x metric.
    assert off["requests"] == 100 and off["completion_tokens"] == 100 and off["explained"] == 0
    assert off["prompt_tokens_per_record"] > 500 and off["cpu_ms_per_call"] > 0
    # Explain "failing": one more request per failing score, each carrying a reason.
    assert failing["explained"] > 0 and failing["requests"] == 100 + failing["explained"]
    assert failing["prompt_tokens"] > off["prompt_tokens"] and failing["completion_tokens"] > 100


def test_the_policy_answers_the_peer_format_and_ours() -> None:
    def request(messages: list[dict[str, str]], **body: object) -> ChatRequest:
        return ChatRequest(path="/v1/chat/completions", deployment=None, query={}, headers={},
                           body={"messages": messages, **body}, arrived=0.0, prompt_tokens=0)

    peer = bench_policy(request([{"role": "system", "content": "judge"},
                                 {"role": "user", "content": f'reason: Start with "{STEP_BY_STEP}:". QUERY: q'}],
                                response_format={"type": "json_object"}))
    answer = json.loads(peer.text or "")
    assert answer["status"] == "completed" and 1 <= answer["score"] <= 5
    assert answer["reason"].startswith(STEP_BY_STEP)
    ours = bench_policy(request([{"role": "user", "content": "rate it"}], logprobs=True, top_logprobs=5))
    assert ours.text in {"1", "2", "3", "4", "5"} and ours.logprobs


def test_quota_analysis() -> None:
    # 60 rpm over a 10 s window: 10 free at once, then 1 per second; 20 successes in 20 s.
    stats = {"ok_times": [100.0 + i for i in range(20)], "first_arrival": 100.0, "requests": 25, "throttled": 5}
    result = analyse(stats, 60.0)
    assert result["ok"] == 20 and result["share_429"] == 0.2
    assert result["fraction_of_quota"] == pytest.approx(20 / 19, abs=1e-3)


@pytest.mark.azurite
def test_quota_run_with_two_clients_on_a_shared_budget(storage: object, tmp_path: Path) -> None:
    data = write_records(tmp_path / "records.jsonl", 8)
    with ServerProcess(latency=0.0, rpm=1200, quota_window=10, python=sys.executable) as server:
        shared = one_quota_run(server, mode="shared", clients=2, records=8, rpm=1200, data=str(data), tag="smoke")
    assert (shared["clients"], shared["calls"], shared["ok"], shared["errors"]) == (2, 40, 40, 0)
    # Each client leased (acquire, renewals, hand-back): a few storage requests, not one per call.
    assert 4 <= shared["lease_storage_requests"] < shared["calls"]
    assert shared["lease_failures"] == 0 and shared["http_429"] == 0


def test_parse_only_counts_every_line(tmp_path: Path) -> None:
    from bench.ingest_bench import child_parse
    from bench.mdcgen import generate

    info = generate(tmp_path / "in.jsonl", tmp_path / "out.jsonl", requests=200)
    result = child_parse(tmp_path / "in.jsonl", tmp_path / "out.jsonl")
    assert (result["lines"], result["halves"], result["rejected"]) == (400, 400, 0)
    assert result["bytes"] == info["bytes"] and result["peak_rss_mib"] > 0


@pytest.mark.azurite
def test_tail_run_joins_every_request(tmp_path: Path) -> None:
    result = run_child("bench.ingest_bench", ["tail", "--requests", "60"], env={"BENCH_OUT": str(tmp_path)},
                       timeout=240)
    assert (result["requests"], result["records"], result["quarantined"], result["unmatched_after"]) == (60, 60, 0, 0)
    assert result["bytes_read"] == result["bytes"]  # 12 appends cut mid-line, every byte read once
    # Per pass: sweep listings, a lease, a read and a commit per blob, a claim per batch: bounded.
    assert result["batches"] >= 2 and 0 < result["storage_ops"] / result["passes"] < 30


@pytest.mark.azurite
def test_aggregation_partials_and_naive_scan_agree(tmp_path: Path) -> None:
    result = run_child("bench.aggregate_bench", ["run", "--scores", "2500", "--naive", "2500", "--repeat", "1"],
                       timeout=240)
    assert result["partials"] == 10 and result["scores_in_partials"] == 2500
    assert result["rollup"]["error"] is None and result["rollup"]["scores_in_window_rows"] == 2500
    assert result["naive"]["scores"] == 2500 and result["naive_matches_partials"] is True
    assert result["rollup"]["storage_ops"] > 0 and result["naive"]["storage_ops"] >= 3  # pages of 1,000
