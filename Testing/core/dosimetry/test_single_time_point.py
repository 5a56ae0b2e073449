"""Single-time-point TIA: a golden table of the Haenscheid and Madsen formulas and the hybrid scheme.

Haenscheid H, et al. J Nucl Med 2018;59:75-81 (TIA = A(t) 2t/ln 2); Madsen MT, et al. Med Phys
2018;45:2318-2324 (TIA = A(t) e^(lambda t)/lambda). The golden doses are these formulas evaluated by
hand for 100 MBq in a liver with the OpenDose AM liver S-value (Chauvin et al. J Nucl Med 2020).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from luprrt.dosimetry import (
    activity_scaled_tia_mbq_h,
    fit_time_activity,
    haenscheid_tia_mbq_h,
    hybrid_tia_mbq_h,
    madsen_tia_mbq_h,
    s_value_dose_gy,
)

# Golden table: 100 MBq in a liver ROI, S = 1.3713e-5 mGy/(MBq s) (OpenDose AM liver).
LIVER_S_MGY_PER_MBQ_S = 1.3713e-5
GOLDEN = [  # t h, T_eff h, Haenscheid Gy, Madsen Gy
    (24.0, 70.0, 0.342, 0.632),
    (72.0, 70.0, 1.026, 1.017),
    (96.0, 70.0, 1.367, 1.290),
    (96.0, 50.0, 1.367, 1.348),
    (144.0, 100.0, 2.051, 1.932),
]


@pytest.mark.parametrize(("time_h", "t_eff_h", "haenscheid_gy", "madsen_gy"), GOLDEN)
def test_golden_single_time_point_doses(time_h, t_eff_h, haenscheid_gy, madsen_gy):
    dose_h = s_value_dose_gy(haenscheid_tia_mbq_h(100.0, time_h), LIVER_S_MGY_PER_MBQ_S)
    dose_m = s_value_dose_gy(madsen_tia_mbq_h(100.0, time_h, t_eff_h), LIVER_S_MGY_PER_MBQ_S)
    assert dose_h == pytest.approx(haenscheid_gy, rel=0.005)
    assert dose_m == pytest.approx(madsen_gy, rel=0.005)


def test_vectorised_over_regions():
    times, t_eff = np.array([r[0] for r in GOLDEN]), np.array([r[1] for r in GOLDEN])
    doses = s_value_dose_gy(madsen_tia_mbq_h(np.full(5, 100.0), times, t_eff), LIVER_S_MGY_PER_MBQ_S)
    np.testing.assert_allclose(doses, [r[3] for r in GOLDEN], rtol=0.005)


def test_madsen_is_exact_for_mono_exponential_and_haenscheid_exact_at_t_equal_t_eff():
    lam = math.log(2.0) / 60.0
    activity_96h = 200.0 * math.exp(-lam * 96.0)
    assert madsen_tia_mbq_h(activity_96h, 96.0, 60.0) == pytest.approx(200.0 / lam, rel=1e-12)
    assert haenscheid_tia_mbq_h(200.0 * math.exp(-lam * 60.0), 60.0) == pytest.approx(200.0 / lam, rel=1e-12)


def test_hybrid_scheme_uses_cycle_one_kinetics():
    lam = math.log(2.0) / 55.0
    times = np.array([4.0, 24.0, 96.0, 168.0])
    cycle1 = fit_time_activity(times, 300.0 * np.exp(-lam * times), model="mono")
    # Cycle 2: same kinetics, 10 % lower uptake, one scan at 96 h.
    cycle2_tia = hybrid_tia_mbq_h(270.0 * math.exp(-lam * 96.0), 96.0, cycle1)
    assert cycle2_tia == pytest.approx(270.0 / lam, rel=1e-6)


def _biexponential(a0_mbq, washout_half_life_h, uptake_half_life_h):
    """Analytic uptake-washout curve A(t) = a0 (e^-l1 t - e^-l2 t) and its exact TIA a0 (1/l1 - 1/l2)."""
    l1 = math.log(2.0) / washout_half_life_h
    l2 = l1 + math.log(2.0) / uptake_half_life_h

    def activity(t):
        return a0_mbq * (np.exp(-l1 * np.asarray(t, dtype=float)) - np.exp(-l2 * np.asarray(t, dtype=float)))

    return activity, a0_mbq * (1.0 / l1 - 1.0 / l2)


@pytest.mark.parametrize("uptake_half_life_h", [3.0, 6.0, 12.0])
def test_hybrid_activity_scaling_is_exact_for_biexponential_cycle_one_and_teff_route_is_biased(
        uptake_half_life_h):
    washout_half_life_h = 50.0
    times = np.array([1.0, 4.0, 24.0, 48.0, 96.0, 168.0])
    cycle1_curve, _ = _biexponential(300.0, washout_half_life_h, uptake_half_life_h)
    cycle1 = fit_time_activity(times, cycle1_curve(times), model="bi")
    # Cycle 3: the same kinetics with 35 % less uptake, one scan at 96 h.
    cycle3_curve, cycle3_truth = _biexponential(195.0, washout_half_life_h, uptake_half_life_h)
    activity_96h = float(cycle3_curve(96.0))
    scaled = activity_scaled_tia_mbq_h(activity_96h, 96.0, cycle1)
    assert scaled == pytest.approx(cycle3_truth, rel=1e-6)
    teff_route = hybrid_tia_mbq_h(activity_96h, 96.0, cycle1)
    # Closed form of the bias: (1 - e^-(l2-l1) 96 h) l2 / (l2 - l1) - 1 ~ T_up / T_washout.
    l1 = math.log(2.0) / washout_half_life_h
    dl = math.log(2.0) / uptake_half_life_h
    expected_bias = (1.0 - math.exp(-dl * 96.0)) * (l1 + dl) / dl - 1.0
    bias = teff_route / cycle3_truth - 1.0
    assert bias == pytest.approx(expected_bias, rel=1e-6)
    assert 0.05 <= bias <= 0.24


def test_activity_scaling_refuses_a_reference_without_activity_at_the_scan_time():
    lam = math.log(2.0) / 55.0
    times = np.array([4.0, 24.0, 96.0])
    reference = fit_time_activity(times, 100.0 * np.exp(-lam * times), model="mono")
    with pytest.raises(ValueError, match="scan time must be positive"):
        activity_scaled_tia_mbq_h(10.0, -1.0, reference)
    reference.params["a0_mbq"] = 0.0
    with pytest.raises(ValueError, match="needs a positive reference activity at the scan time"):
        activity_scaled_tia_mbq_h(10.0, 96.0, reference)


def test_stp_errors_name_the_value():
    with pytest.raises(ValueError, match=r"200\.0 h exceeds the physical half-life"):
        madsen_tia_mbq_h(100.0, 96.0, 200.0)
    with pytest.raises(ValueError, match="effective half-life must be positive, got -5"):
        madsen_tia_mbq_h(100.0, 96.0, -5.0)
    with pytest.raises(ValueError, match="scan time must be positive"):
        haenscheid_tia_mbq_h(100.0, 0.0)
