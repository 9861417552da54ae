"""Agreement statistics against values computed by hand (docs/calibration.md)."""

from __future__ import annotations

import pytest

from monitor.calibration.agreement import agreement, average_ranks, kendall_tau_b, spearman


def test_average_ranks_share_ties() -> None:
    assert average_ranks([1, 2, 2, 3]) == [1, 2.5, 2.5, 4]
    assert average_ranks([5, 5, 5]) == [2, 2, 2]


def test_spearman_and_kendall_with_ties_by_hand() -> None:
    x, y = [1, 2, 2, 3], [1, 3, 2, 4]
    # ranks x (1, 2.5, 2.5, 4), y (1, 3, 2, 4): deviations (-1.5, 0, 0, 1.5), (-1.5, .5, -.5, 1.5)
    # sxy = 4.5, sxx = 4.5, syy = 5 -> rho = 4.5 / sqrt(22.5) = .948683
    assert spearman(x, y) == pytest.approx(0.948683, abs=1e-6)
    # pairs: 5 concordant, 0 discordant, 1 tied in x (records 2 and 3): 5 / sqrt((6-1)(6-0)) = .912871
    assert kendall_tau_b(x, y) == pytest.approx(0.912871, abs=1e-6)


def test_discordant_order_by_hand() -> None:
    x, y = [1, 2, 3], [3, 1, 2]
    # d = (-2, 1, 1): rho = 1 - 6 x 6 / (3 x 8) = -.5; pairs: 1 concordant, 2 discordant -> -1/3
    assert spearman(x, y) == pytest.approx(-0.5)
    assert kendall_tau_b(x, y) == pytest.approx(-1 / 3)


def test_ties_on_both_sides() -> None:
    x, y = [1, 1, 2, 2], [1, 2, 1, 2]
    # pairs: (1,2) tie x, (3,4) tie x, (1,3) tie y, (2,4) tie y, (1,4) concordant, (2,3) discordant
    assert kendall_tau_b(x, y) == 0.0
    assert spearman(x, y) == 0.0


def test_constant_series_has_no_correlation() -> None:
    assert spearman([3, 3, 3], [1, 2, 3]) is None
    assert kendall_tau_b([3, 3, 3], [1, 2, 3]) is None
    assert spearman([1], [1]) is None


def test_accuracy_and_bias_by_hand() -> None:
    result = agreement([1.4, 2.6, 4.5, 5.0], [1, 2, 5, 3])
    # judge buckets (1, 3, 5, 5) vs (1, 2, 5, 3): exact 2/4, within one 3/4
    assert result.n == 4 and result.exact_accuracy == 0.5 and result.within_one_accuracy == 0.75
    # bias = (.4 + .6 - .5 + 2) / 4 = .625
    assert result.mean_bias == pytest.approx(0.625)
    assert agreement([], []).spearman is None
    with pytest.raises(ValueError):
        agreement([1.0], [])
