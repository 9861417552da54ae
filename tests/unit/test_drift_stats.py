"""Drift statistics against values computed by hand (docs/drift.md has the formulas)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.drift.compute import Baseline, Rule, drift_points, previous_evaluated
from monitor.drift.series import ANSWERS, PROMPT_TOKENS, WindowPoint
from monitor.drift.stats import histogram_moments, js_distance, mean_shift, proportions, psi


def test_identical_distributions_are_zero_whatever_the_sizes() -> None:
    assert js_distance([2, 2, 0], [10, 10, 0]) == 0.0
    assert psi([2, 2, 0], [10, 10, 0]) == 0.0


def test_two_buckets_by_hand() -> None:
    # p = (.5, .5), q = (.75, .25), m = (.625, .375)
    # KL(p||m) = .5 log2(.5/.625) + .5 log2(.5/.375) = .5(-.321928) + .5(.415037) = .0465545
    # KL(q||m) = .75 log2(.75/.625) + .25 log2(.25/.375) = .197276 - .146241 = .0510350
    # JSD = .0487948 bits, distance = sqrt = .220895
    assert js_distance([1, 1], [3, 1]) == pytest.approx(0.220895, abs=1e-6)
    # PSI = (.5-.75) ln(.5/.75) + (.5-.25) ln(.5/.25) = .101366 + .173287 = .274653
    assert psi([1, 1], [3, 1]) == pytest.approx(0.274653, abs=1e-6)


def test_a_bucket_empty_on_both_sides_only_renormalises() -> None:
    # the empty bucket gets 1e-4 on both sides (p = q there: no contribution), the others / 1.0001
    assert psi([1, 1, 0], [3, 1, 0]) == pytest.approx(0.274653 / 1.0001, abs=1e-6)
    assert js_distance([1, 1, 0], [3, 1, 0]) == pytest.approx(0.220895 / 1.0001 ** 0.5, abs=1e-6)


def test_disjoint_histograms_stay_finite_and_bounded() -> None:
    # floored: a = 1/1.0001 = .99990001, b = 1e-4/1.0001 = .00009999; m = (.5, .5)
    # KL = a log2(2a) + b log2(2b) = .99975574 - .00122865 = .99852709 (both sides), distance .999263
    assert js_distance([10, 0], [0, 5]) == pytest.approx(0.999263, abs=1e-5)
    # PSI = 2 (a - b) ln(a / b) = 2 x .99980002 x 9.210340 = 18.41700
    assert psi([10, 0], [0, 5]) == pytest.approx(18.41700, abs=1e-4)


def test_an_empty_histogram_has_no_distribution() -> None:
    with pytest.raises(ValueError):
        proportions([0, 0, 0])


def test_mean_shift_and_standard_error_by_hand() -> None:
    # window: scores 3 and 4 -> mean 3.5, sample variance .5; baseline: 4,4,5,5 -> 4.5, variance 1/3
    current = histogram_moments([0, 0, 1, 1, 0], [1, 2, 3, 4, 5])
    baseline = histogram_moments([0, 0, 0, 2, 2], [1, 2, 3, 4, 5])
    assert (current.mean, current.variance) == (3.5, 0.5)
    shift = mean_shift(current, baseline)
    assert shift is not None
    assert shift.shift == pytest.approx(-1.0)
    assert shift.stderr == pytest.approx((0.5 / 2 + (1 / 3) / 4) ** 0.5)  # .577350


def test_constant_series_has_zero_distance_and_zero_error() -> None:
    current = histogram_moments([0, 0, 5, 0, 0], [1, 2, 3, 4, 5])
    baseline = histogram_moments([0, 0, 10, 0, 0], [1, 2, 3, 4, 5])
    shift = mean_shift(current, baseline)
    assert shift is not None and shift.shift == 0.0 and shift.stderr == 0.0
    assert js_distance([0, 0, 5, 0, 0], [0, 0, 10, 0, 0]) == 0.0


def test_one_record_has_no_variance() -> None:
    one = histogram_moments([0, 1, 0, 0, 0], [1, 2, 3, 4, 5])
    assert one.variance is None
    shift = mean_shift(one, histogram_moments([0, 2, 0, 0, 0], [1, 2, 3, 4, 5]))
    assert shift is not None and shift.stderr is None


T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def point(hour: int, counts: tuple[int, ...], series: str = "coherence", mean: float | None = None) -> WindowPoint:
    return WindowPoint(series, "all", T0 + hour * HOUR, T0 + (hour + 1) * HOUR, counts, mean)


def test_trailing_baseline_sums_the_previous_windows_only() -> None:
    points = [point(0, (0, 0, 0, 1, 1)), point(1, (0, 0, 0, 1, 1)), point(2, (0, 0, 0, 0, 0)),
              point(3, (0, 0, 2, 0, 0))]
    [result] = drift_points(points, [T0 + 3 * HOUR], Baseline(HOUR, windows=2), Rule(0.2, 2))
    # baseline = hours 1 and 2 (hour 0 is outside the trailing 2): counts (0,0,0,1,1), n = 2
    assert result.baseline_n == 2 and result.n == 2
    assert result.baseline_start == "2026-11-01T01:00:00Z" and result.baseline_end == "2026-11-01T03:00:00Z"
    assert result.mean_shift == pytest.approx(3.0 - 4.5)
    assert result.js_distance == pytest.approx(1.0, abs=2e-3) and result.drifted  # disjoint, floored


def test_exact_means_are_used_when_known() -> None:
    points = [point(0, (0, 0, 2, 0, 0), mean=3.2), point(1, (0, 0, 2, 0, 0), mean=2.8)]
    [result] = drift_points(points, [T0 + HOUR], Baseline(HOUR, windows=1), Rule(0.2, 1))
    assert result.js_distance == 0.0 and not result.drifted and result.evaluated
    assert result.mean_shift == pytest.approx(-0.4)


def test_min_samples_on_both_sides() -> None:
    points = [point(0, (5, 0, 0, 0, 0)), point(1, (0, 0, 0, 0, 50))]
    [result] = drift_points(points, [T0 + HOUR], Baseline(HOUR, windows=1), Rule(0.2, 10))
    assert result.js_distance is not None and result.js_distance > 0.9
    assert not result.evaluated and not result.drifted


def test_fixed_baseline_and_no_baseline_data() -> None:
    points = [point(0, (0, 0, 0, 4, 0)), point(5, (0, 0, 0, 4, 0)), point(6, (4, 0, 0, 0, 0))]
    fixed = Baseline(HOUR, start=T0, end=T0 + HOUR)
    results = drift_points(points, [T0 + 5 * HOUR, T0 + 6 * HOUR], fixed, Rule(0.2, 1))
    assert [r.js_distance for r in results] == [0.0, pytest.approx(0.9999, abs=1e-3)]
    [alone] = drift_points(points[:1], [T0], Baseline(HOUR, windows=3), Rule(0.2, 1))
    assert alone.js_distance is None and alone.baseline_n == 0 and not alone.evaluated


def test_windows_without_data_give_no_point_and_previous_skips_unevaluated() -> None:
    points = [point(0, (0, 0, 0, 0, 9)), point(1, (9, 0, 0, 0, 0)), point(3, (0, 0, 0, 0, 1))]
    results = drift_points(points, [T0 + h * HOUR for h in range(4)], Baseline(HOUR, windows=1), Rule(0.2, 2))
    assert [r.window_start[11:13] for r in results] == ["00", "01", "03"]
    previous = previous_evaluated(results, results[-1].window_start)
    assert previous is not None and previous.window_start.startswith("2026-11-01T01") and previous.drifted


def test_answer_share_mean_and_token_series_without_mean() -> None:
    answers = [point(0, (9, 1, 0), ANSWERS), point(1, (6, 2, 2), ANSWERS)]
    [result] = drift_points(answers, [T0 + HOUR], Baseline(HOUR, windows=1), Rule(0.2, 1))
    assert result.mean == pytest.approx(0.4) and result.baseline_mean == pytest.approx(0.1)
    # Bernoulli variances: .4 x .6 x 10/9 and .1 x .9 x 10/9, over n = 10 each
    assert result.mean_shift_stderr == pytest.approx(((0.24 + 0.09) * 10 / 9 / 10) ** 0.5)
    tokens = [point(0, (0, 5, 5, 0, 0, 0, 0), PROMPT_TOKENS), point(1, (0, 0, 5, 5, 0, 0, 0), PROMPT_TOKENS)]
    [result] = drift_points(tokens, [T0 + HOUR], Baseline(HOUR, windows=1), Rule(0.2, 1))
    assert result.mean_shift is None and result.js_distance is not None
