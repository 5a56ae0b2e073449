"""Single-time-point TIA: the golden table of LU177.md and the hybrid scheme."""

from __future__ import annotations

import math

import numpy as np
import pytest

from luprrt.dosimetry import (
    fit_time_activity,
    haenscheid_tia_mbq_h,
    hybrid_tia_mbq_h,
    madsen_tia_mbq_h,
    s_value_dose_gy,
)

# LU177.md golden table: 100 MBq in a liver ROI, S = 1.3713e-5 mGy/(MBq s) (OpenDose AM liver).
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


def test_stp_errors_name_the_value():
    with pytest.raises(ValueError, match=r"200\.0 h exceeds the physical half-life"):
        madsen_tia_mbq_h(100.0, 96.0, 200.0)
    with pytest.raises(ValueError, match="effective half-life must be positive, got -5"):
        madsen_tia_mbq_h(100.0, 96.0, -5.0)
    with pytest.raises(ValueError, match="scan time must be positive"):
        haenscheid_tia_mbq_h(100.0, 0.0)
