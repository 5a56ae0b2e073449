"""First-order uncertainty budget: sources in quadrature, asymmetric sides, table columns, interval coverage.

The 95 % half-width of a rectangular plus a normal error is checked against its two limits, an
independent numerical convolution and a Monte Carlo of the sum.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from luprrt.calibration.uncertainty import (
    COVERAGE_FACTOR_95,
    RECTANGULAR_SOURCES,
    SOURCES,
    UncertaintyBudget,
    coverage_fraction,
    coverage_half_width_95,
    covered,
)

RECTANGLE_95 = 0.95 * math.sqrt(3.0)  # 95 % half-width of U(-a, a) over its u = a / sqrt(3): 1.6454


def test_coverage_factor_is_the_normal_97_5_percentile():
    assert COVERAGE_FACTOR_95 == pytest.approx(norm.ppf(0.975), rel=1e-15)


def test_a_linear_calculation_gets_half_the_range_both_ways_and_sources_add_in_quadrature():
    x = np.array([2.0, 5.0])
    budget = UncertaintyBudget(3.0 * x)
    # f(x) = 3 x moved by +-0.5: the result moves by +-1.5 on each side.
    budget.central("counting", lambda inputs: 3.0 * inputs, x + 0.5, x - 0.5)
    # Two independent contributions of one source: (0.3, 0.4) -> 0.5.
    budget.add("segmentation", [0.3, -0.3])
    budget.add("segmentation", [-0.4, 0.4])
    budget.relative("calibration", 0.1)
    assert RECTANGULAR_SOURCES == ("segmentation",)
    contributions = budget.contributions
    np.testing.assert_allclose(contributions["counting"], [1.5, 1.5], rtol=1e-15)
    np.testing.assert_allclose(contributions["segmentation"], [0.5, 0.5], rtol=1e-15)
    np.testing.assert_allclose(contributions["calibration"], [0.6, 1.5], rtol=1e-15)
    combined = np.sqrt(np.array([1.5, 1.5]) ** 2 + 0.5**2 + np.array([0.6, 1.5]) ** 2)
    np.testing.assert_allclose(budget.combined, combined, rtol=1e-15)
    low, high = budget.interval(coverage_factor=COVERAGE_FACTOR_95)  # a normal k: h = k u_c
    np.testing.assert_allclose(low, 3.0 * x - COVERAGE_FACTOR_95 * combined, rtol=1e-15)
    np.testing.assert_allclose(high, 3.0 * x + COVERAGE_FACTOR_95 * combined, rtol=1e-15)
    # The 95 % interval: the larger segmentation move (0.4) is the rectangle, the rest (0.3 too) normal.
    normal = np.sqrt(combined**2 - 0.4**2)
    low, high = budget.interval()
    np.testing.assert_allclose(high - 3.0 * x, coverage_half_width_95(0.4, normal), rtol=1e-15)
    np.testing.assert_allclose(3.0 * x - low, coverage_half_width_95(0.4, normal), rtol=1e-15)
    rectangular, rest = budget.side_parts("up")
    np.testing.assert_allclose(rectangular, [0.4, 0.4], rtol=1e-15)
    np.testing.assert_allclose(rest, normal, rtol=1e-15)


def test_a_nonlinear_calculation_gets_an_asymmetric_interval_and_a_missing_side_mirrors_the_other():
    budget = UncertaintyBudget(np.array([4.0, 9.0]))
    # f(x) = x^2 at x = 2 moved to 3 and 1: rises by 5, falls by 3. At x = 3 the lower side has no
    # value (NaN): the fall mirrors the rise of 7 (9 to 16).
    budget.central("recovery", lambda inputs: np.where(inputs == 2.0, np.nan, inputs**2),
                   np.array([3.0, 4.0]), np.array([1.0, 2.0]))
    np.testing.assert_allclose(budget.up["recovery"], [5.0, 7.0], rtol=1e-15)
    np.testing.assert_allclose(budget.down["recovery"], [3.0, 7.0], rtol=1e-15)
    np.testing.assert_allclose(budget.contributions["recovery"], [math.sqrt((25 + 9) / 2), 7.0], rtol=1e-15)
    # scale: a +-2 u move scaled back by 1/2 is the same contribution again; the sources' sides add apart.
    budget.central("counting", lambda inputs: inputs**2, np.array([4.0, 3.0]), np.array([0.0, 3.0]), scale=0.5)
    np.testing.assert_allclose(budget.up["counting"], [6.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(budget.down["counting"], [2.0, 0.0], rtol=1e-15)
    low, high = budget.interval(coverage_factor=2.0)
    np.testing.assert_allclose(low, [4.0 - 2.0 * math.hypot(3.0, 2.0), 9.0 - 2.0 * 7.0], rtol=1e-15)
    np.testing.assert_allclose(high, [4.0 + 2.0 * math.hypot(5.0, 6.0), 9.0 + 2.0 * 7.0], rtol=1e-15)


def test_columns_of_one_result_name_the_combined_the_interval_and_each_present_source():
    budget = UncertaintyBudget(np.array([10.0, 20.0]))
    budget.add("segmentation", [1.0, 2.0])
    budget.add("counting", [3.0, 4.0])
    budget.add("unlisted", [5.0, 5.0])  # counts in u_c, has no column of its own
    row = budget.columns(1, "dose_gy")
    u_c = math.sqrt(2.0**2 + 4.0**2 + 5.0**2)
    assert list(row) == ["dose_gy_sd", "dose_gy_ci95_low", "dose_gy_ci95_high", "dose_gy_sd_counting",
                         "dose_gy_sd_segmentation"]
    assert row["dose_gy_sd"] == pytest.approx(u_c, rel=1e-15)
    half = float(coverage_half_width_95(2.0, math.sqrt(4.0**2 + 5.0**2)))  # segmentation rectangular
    assert (row["dose_gy_ci95_low"], row["dose_gy_ci95_high"]) == pytest.approx((20.0 - half, 20.0 + half),
                                                                              rel=1e-15)
    assert (row["dose_gy_ci95_low"], row["dose_gy_ci95_high"]) == pytest.approx(
        tuple(side[1] for side in budget.interval()), rel=1e-15)
    assert (row["dose_gy_sd_counting"], row["dose_gy_sd_segmentation"]) == (4.0, 2.0)
    assert set(SOURCES) >= {"counting", "segmentation"}
    assert list(budget.columns(0, "tn", sd="u")) == ["tn_u", "tn_ci95_low", "tn_ci95_high", "tn_u_counting",
                                                     "tn_u_segmentation"]


def test_an_empty_budget_has_no_uncertainty():
    budget = UncertaintyBudget(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(budget.combined, [0.0, 0.0])
    low, high = budget.interval()
    np.testing.assert_array_equal(low, [1.0, 2.0])
    np.testing.assert_array_equal(high, [1.0, 2.0])


def test_coverage_counts_hits_with_the_wilson_interval():
    hits = covered([0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], [0.0, 2.5, 3.0, 5.0])
    np.testing.assert_array_equal(hits, [True, False, True, False])  # ends included
    for n_hit, n in ((90, 100), (19, 20), (0, 12), (30, 30)):
        fraction, low, high = coverage_fraction([True] * n_hit + [False] * (n - n_hit))
        assert fraction == n_hit / n
        expected = proportion_confint(n_hit, n, alpha=0.05, method="wilson")
        assert (low, high) == pytest.approx(expected, abs=1e-9)
    assert all(math.isnan(v) for v in coverage_fraction([]))


def _half_width_by_quadrature(a: float, s: float) -> float:
    """95 % half-width of U(-a, a) + N(0, s^2) by numerical convolution (independent of the closed form)."""
    def cdf(x: float) -> float:
        return quad(lambda t: norm.cdf((x - t) / s), -a, a, epsabs=1e-14, epsrel=1e-13)[0] / (2.0 * a)

    return brentq(lambda x: cdf(x) - 0.975, 0.0, a + 2.0 * s, xtol=1e-13)


def test_rectangular_plus_normal_half_width_meets_its_two_limits():
    for u in (1e-3, 1.0, 250.0):
        assert coverage_half_width_95(u, 0.0) == pytest.approx(RECTANGLE_95 * u, rel=1e-12)
        assert coverage_half_width_95(0.0, u) == pytest.approx(COVERAGE_FACTOR_95 * u, rel=1e-12)
        # Nearly at the limits (ratios 1e-12 to 1e-6, through the small-rectangle expansion): within 1e-6.
        for ratio in (1e-12, 1e-9, 1e-6):
            assert coverage_half_width_95(u, ratio * u) == pytest.approx(RECTANGLE_95 * u, rel=1e-6)
            assert coverage_half_width_95(ratio * u, u) == pytest.approx(COVERAGE_FACTOR_95 * u, rel=1e-6)
    assert coverage_half_width_95(0.0, 0.0) == 0.0


def test_rectangular_plus_normal_half_width_matches_a_numerical_convolution():
    # a / s from 3e-3 (just above the expansion's switch) to 300; u_c = 1 throughout.
    for u_rectangular in (1e-3, 0.1, 0.5, 1 / math.sqrt(2.0), 0.9, 0.99, 0.99999):
        u_normal = math.sqrt(1.0 - u_rectangular**2)
        expected = _half_width_by_quadrature(math.sqrt(3.0) * u_rectangular, u_normal)
        assert coverage_half_width_95(u_rectangular, u_normal) == pytest.approx(expected, rel=1e-9)
    # The coverage factor h / u_c falls from 1.96 to 1.645 as the rectangle takes over.
    fractions = np.linspace(0.0, 1.0, 41)
    k = coverage_half_width_95(fractions, np.sqrt(1.0 - fractions**2))
    assert np.all(np.diff(k) < 0)
    assert (k[0], k[-1]) == pytest.approx((COVERAGE_FACTOR_95, RECTANGLE_95), rel=1e-12)


def test_rectangular_plus_normal_half_width_matches_a_monte_carlo_of_the_sum():
    """a = sqrt(3) s (u_rectangular = s): 10^6 draws of U + N, the 95th percentile of |U + N|."""
    s, n = 2.0, 10**6
    a = math.sqrt(3.0) * s
    rng = np.random.default_rng(20240612)
    draws = np.abs(rng.uniform(-a, a, n) + rng.normal(0.0, s, n))
    half = float(coverage_half_width_95(s, s))
    # Standard error of a sample quantile: sqrt(p (1 - p) / n) / f(h), f the density of |U + N| at h.
    density = 2.0 * (norm.cdf((half + a) / s) - norm.cdf((half - a) / s)) / (2.0 * a)
    standard_error = math.sqrt(0.95 * 0.05 / n) / density
    assert abs(np.quantile(draws, 0.95) - half) < 4.0 * standard_error
    assert standard_error < 2e-3 * half  # the check resolves 0.2 %
    assert np.mean(draws <= half) == pytest.approx(0.95, abs=4.0 * math.sqrt(0.95 * 0.05 / n))
    assert half / math.hypot(s, s) == pytest.approx(1.917, abs=1e-3)  # between 1.645 and 1.96


def test_rectangular_plus_normal_half_width_is_vectorised_and_nan_for_non_finite_input():
    half = coverage_half_width_95([[0.0, 1.0], [2.0, math.nan]], 1.0)
    assert half.shape == (2, 2)
    assert half[0, 0] == pytest.approx(COVERAGE_FACTOR_95, rel=1e-15)
    assert half[1, 0] == pytest.approx(2.0 * float(coverage_half_width_95(1.0, 0.5)), rel=1e-12)  # scales
    assert math.isnan(half[1, 1]) and math.isnan(float(coverage_half_width_95(1.0, math.inf)))


def test_the_budget_interval_of_one_segmentation_term_is_095_of_its_range_and_of_counting_196_u():
    u = np.array([0.5, 3.0])
    values = np.array([10.0, 100.0])
    segmentation = UncertaintyBudget(values)
    segmentation.add("segmentation", u)
    low, high = segmentation.interval()
    np.testing.assert_allclose(high - values, RECTANGLE_95 * u, rtol=1e-12)
    np.testing.assert_allclose(values - low, RECTANGLE_95 * u, rtol=1e-12)
    # The +-1 voxel range is sqrt(3) u each way: the interval is 95 % of it.
    np.testing.assert_allclose(high - values, 0.95 * math.sqrt(3.0) * u, rtol=1e-12)
    counting = UncertaintyBudget(values)
    counting.add("counting", u)
    low, high = counting.interval()
    np.testing.assert_allclose(high - values, COVERAGE_FACTOR_95 * u, rtol=1e-15)
    np.testing.assert_allclose(values - low, COVERAGE_FACTOR_95 * u, rtol=1e-15)


def test_each_side_of_the_interval_takes_its_own_rectangular_and_normal_parts():
    budget = UncertaintyBudget(np.array([5.0]))
    budget.add_sided("segmentation", [3.0], [1.0])
    budget.add_sided("counting", [0.5], [2.0])
    low, high = budget.interval()
    assert high[0] - 5.0 == pytest.approx(_half_width_by_quadrature(3.0 * math.sqrt(3.0), 0.5), rel=1e-9)
    assert 5.0 - low[0] == pytest.approx(_half_width_by_quadrature(1.0 * math.sqrt(3.0), 2.0), rel=1e-9)
    # The columns of that result give the same interval.
    row = budget.columns(0, "x")
    assert (row["x_ci95_low"], row["x_ci95_high"]) == pytest.approx((low[0], high[0]), rel=1e-15)


def test_several_segmentation_moves_keep_only_the_largest_as_a_rectangle_erring_wide():
    """Two independent moves of +-1 each: their sum is triangular on (-2, 2), 95 % half-width 2 (1 - sqrt(0.05))."""
    budget = UncertaintyBudget(np.array([0.0]))
    u = 1.0 / math.sqrt(3.0)
    budget.add("segmentation", [u])
    budget.add("segmentation", [u])
    low, high = budget.interval()
    triangle = 2.0 * (1.0 - math.sqrt(0.05))  # 1.5528
    assert high[0] == pytest.approx(float(coverage_half_width_95(u, u)), rel=1e-15)
    assert low[0] == pytest.approx(-high[0], rel=1e-15)
    assert triangle <= high[0] <= 1.01 * triangle
    # One rectangle of the combined variance would cover too little: 1.645 u_c = 1.343.
    assert RECTANGLE_95 * math.sqrt(2.0) * u < triangle
