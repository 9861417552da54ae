"""Smoke test of the drift benchmark (bench/drift_bench.py): correctness of the harness, never time."""

from __future__ import annotations

import pytest

from bench.common import run_child

pytestmark = pytest.mark.slow


def test_compute_covers_every_window_of_every_series() -> None:
    result = run_child("bench.drift_bench", ["compute", "--hours", "48", "--repeat", "1"], timeout=240)
    assert result["series"] == 15 and result["window_rows"] == 720
    assert [c["median"]["points"] for c in result["cells"]] == [720, 720]


def test_noise_quantiles_shrink_with_the_sample() -> None:
    result = run_child("bench.drift_bench", ["noise", "--trials", "100"], timeout=240)
    p99 = [row["p99"] for row in result["rows"]]
    assert p99[0] > p99[-1] > 0 and len(result["examples"]) == 3


@pytest.mark.azurite
def test_timer_step_reads_a_bounded_number_of_rows() -> None:
    result = run_child("bench.drift_bench", ["storage", "--hours", "240", "--repeat", "1"], timeout=240)
    week, all_days = (c["median"] for c in result["cells"])
    assert week["points"] == all_days["points"] == 6 * 15  # 6 closed windows planned x 15 series
    assert all_days["storage_ops"] <= week["storage_ops"] + 1
