"""Recovery correction of lesions, lobe pooling, IA/IV ratio and their uncertainty, by hand.

Curves are flat (contrast recovery the same at every volume) or linear in contrast, so the corrected
T/N and its derivatives have closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from luprrt.calibration import (
    BOUNDARY_RECTANGULAR_FACTOR,
    LesionMeasurement,
    RecoveryCurve,
    SiteCalibration,
    correct_lesions,
    corrected_ratio,
)


# Every lesion below lies under the second-largest measured volume (40 mL): the flat fitted value holds.
def _flat(value: float, ratio: float | None, variance: float = 0.0) -> RecoveryCurve:
    return RecoveryCurve("contrast", ratio, (value, 1e-6, 1.0), np.diag([variance, 0.0, 0.0]), (0.5, 1, 40, 50),
                         (value,) * 4, (0.01,) * 4)


def test_corrected_ratio_with_a_contrast_dependent_recovery():
    calibration = SiteCalibration(curves=(_flat(0.4, 4.0), _flat(0.6, 10.0)))
    tn, recovery = corrected_ratio(4.0, 2.0, calibration)
    # T = 1 + 3 / CR(T), CR(T) = 0.4 + (T - 4) / 30 for 4 <= T <= 10: (T - 1)(T + 8) = 90, T = 7.
    expected = 7.0
    assert tn == pytest.approx(expected, rel=1e-6)
    assert recovery.value == pytest.approx(3.0 / (expected - 1.0), rel=1e-6)
    assert math.isnan(corrected_ratio(4.0, 2.0, SiteCalibration(curves=(_flat(0.01, None),)))[0])


def test_lesions_lobes_ratio_and_budget():
    calibration = SiteCalibration(curves=(_flat(0.5, None, variance=0.02**2),))
    lesions = [LesionMeasurement("a", "right", 10.0, 6.0e5, 1.0e4, 14.0, 5.0e5, 7.0, 7.0e5),
               LesionMeasurement("b", "right", 30.0, 9.0e5, 1.0e4),
               LesionMeasurement("c", "left", 20.0, 4.0e5, 2.0e4)]
    background = {"right": (1.0e5, 1.0e3), "left": (0.8e5, 0.0)}
    result = correct_lesions(lesions, background, calibration, ia_side="right")
    tn = [1 + (6.0 - 1) / 0.5, 1 + (9.0 - 1) / 0.5, 1 + (5.0 - 1) / 0.5]
    assert result.lesion_tn == pytest.approx(tn, rel=1e-6)
    assert result.lesion_concentration == pytest.approx([tn[0] * 1e5, tn[1] * 1e5, tn[2] * 0.8e5], rel=1e-6)
    right = (10 * tn[0] + 30 * tn[1]) / 40
    assert result.lobe_tn["right"] == pytest.approx(right, rel=1e-6)
    assert result.ratio == pytest.approx(right / tn[2], rel=1e-6)
    # Counting: T = 1 + (M / B - 1) / CR, so dT/dM = 1 / (B CR) and dT/dB = -M / (B^2 CR).
    counting = result.budget.contributions["counting"]
    assert counting[0] == pytest.approx(math.hypot(1e4 / (1e5 * 0.5), 6e5 * 1e3 / (1e10 * 0.5)), rel=1e-3)
    assert counting[2] == pytest.approx(2e4 / (0.8e5 * 0.5), rel=1e-3)
    # Recovery: dT/dCR = -(m - 1) / CR^2 with u(CR) = 0.02 (a flat curve: u(a) is u(CR)).
    recovery = result.budget.contributions["recovery"]
    assert recovery[0] == pytest.approx(5.0 / 0.25 * 0.02, rel=0.05)
    # The lobes share the curve: the ratio's recovery term nearly cancels (ratio ~ independent of CR?).
    ratio_index = len(tn) * 2 + 2
    assert recovery[ratio_index] < 0.1 * recovery[0] / tn[0] * result.ratio
    # Segmentation of lesion a: half the range of T between its outline moved out and in, over sqrt(3).
    segmentation = result.budget.contributions["segmentation"]
    half = abs((1 + (5.0 - 1) / 0.5) - (1 + (7.0 - 1) / 0.5)) / 2
    assert segmentation[0] == pytest.approx(half * BOUNDARY_RECTANGULAR_FACTOR, rel=1e-6)
    assert segmentation[1] == 0.0
    low, high = result.budget.interval()
    assert low[0] < tn[0] < high[0]
    assert result.lesion_columns(0)["tn_mean_corrected_ci95_high"] == pytest.approx(high[0])


def test_an_uneven_response_gets_an_asymmetric_interval():
    """f(x) = x^2 at x = 1 with x known to +-1: it rises by 3 one way and falls by 1 the other.

    Each side is a rectangle (+-3 up, +-1 down) plus the normal counting term: its own 95 % half-width.
    """
    from luprrt.calibration import UncertaintyBudget, coverage_half_width_95

    budget = UncertaintyBudget(np.array([1.0]))
    budget.central("segmentation", lambda x: np.array([x**2]), 2.0, 0.0, BOUNDARY_RECTANGULAR_FACTOR)
    budget.add("counting", np.array([0.1]))
    low, high = budget.interval()
    s = BOUNDARY_RECTANGULAR_FACTOR
    assert high[0] == pytest.approx(1.0 + coverage_half_width_95(3 * s, 0.1), rel=1e-12)
    assert low[0] == pytest.approx(1.0 - coverage_half_width_95(1 * s, 0.1), rel=1e-12)
    # Noise only widens a symmetric interval (Anderson's inequality): at least 0.95 of the half-range
    # (2.85, 0.95), and at most the normal 1.96 u of the side (3.40, 1.17).
    for half, rise in ((high[0] - 1.0, 3.0), (1.0 - low[0], 1.0)):
        assert 0.95 * rise <= half <= 1.959963984540054 * math.hypot(rise * s, 0.1)
    assert budget.contributions["segmentation"][0] == pytest.approx(s * math.sqrt((9 + 1) / 2), rel=1e-12)
