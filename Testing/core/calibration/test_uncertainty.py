"""First-order uncertainty budget: sources in quadrature, asymmetric sides, table columns, interval coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from luprrt.calibration.uncertainty import (
    COVERAGE_FACTOR_95,
    SOURCES,
    UncertaintyBudget,
    coverage_fraction,
    covered,
)


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
    contributions = budget.contributions
    np.testing.assert_allclose(contributions["counting"], [1.5, 1.5], rtol=1e-15)
    np.testing.assert_allclose(contributions["segmentation"], [0.5, 0.5], rtol=1e-15)
    np.testing.assert_allclose(contributions["calibration"], [0.6, 1.5], rtol=1e-15)
    combined = np.sqrt(np.array([1.5, 1.5]) ** 2 + 0.5**2 + np.array([0.6, 1.5]) ** 2)
    np.testing.assert_allclose(budget.combined, combined, rtol=1e-15)
    low, high = budget.interval()
    np.testing.assert_allclose(low, 3.0 * x - COVERAGE_FACTOR_95 * combined, rtol=1e-15)
    np.testing.assert_allclose(high, 3.0 * x + COVERAGE_FACTOR_95 * combined, rtol=1e-15)


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
    assert (row["dose_gy_ci95_low"], row["dose_gy_ci95_high"]) == pytest.approx(
        (20.0 - COVERAGE_FACTOR_95 * u_c, 20.0 + COVERAGE_FACTOR_95 * u_c), rel=1e-15)
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
