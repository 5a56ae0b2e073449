"""Sphere-S-value lesion dose of every lesion against truth computed here, without luprrt's S-value code.

Truth of a lesion: a uniform activity in a sphere of radius r of soft tissue (1.03 g/mL); its
time-integrated activity (TIA) is the analytic integral of its mono- or bi-exponential curve;
its mean self-dose is TIA x S(r) x 3.6 (MBq h x mGy/(MBq s) x 3600 s/h / 1000 mGy/Gy), S(r)
from the published sphere table typed in Testing/sphere_s_values.py, interpolated linearly in
log S against log r (log-log in mass at one density) by numpy there.

Tolerances: the curves are noise-free and sampled from the model fitted, so the fitted TIA
differs from the integral only by the optimiser's convergence (below 1e-6 in practice), and a
tabulated radius or the log-log line between two is matched to rounding. rel = 1e-3 leaves room
for another optimiser and is 50 times smaller than the smallest error class these tests are for
(a 5 % scale of S, a 5 % change of the half-life, a neighbouring table row).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sphere_s_values import (
    GY_PER_MBQ_H_PER_MGY_PER_MBQ_S,
    TABLE_RADIUS_MM,
    TABLE_S_MGY_PER_MBQ_S,
    TISSUE_DENSITY_G_PER_ML,
    s_truth,
)
from sphere_s_values import sphere_volume_ml as volume_ml

from luprrt.dosimetry import fit_time_activity, sphere_s_value_dose_gy
from luprrt.physics import decay_correct

LU177_HALF_LIFE_H = 159.528  # ICRP Publication 107 (6.647 d), typed here on purpose
SCAN_TIMES_H = np.array([1.0, 4.0, 24.0, 96.0, 168.0])
REL_TOL = 1e-3

# Every tabulated radius and one between each pair; each lesion with its own curve:
# ("mono", A0 MBq, effective half-life h) or ("bi", A0 MBq, washout half-life h, uptake half-life h).
LESIONS = {
    "r1.0": (1.0, ("mono", 0.02, 90.0)),
    "r1.5": (1.5, ("bi", 0.09, 110.0, 6.0)),
    "r2.0": (2.0, ("mono", 0.15, 70.0)),
    "r3.5": (3.5, ("bi", 0.8, 80.0, 3.0)),
    "r5.0": (5.0, ("mono", 2.4, 120.0)),
    "r7.0": (7.0, ("bi", 5.5, 95.0, 10.0)),
    "r10": (10.0, ("mono", 14.0, 60.0)),
    "r14": (14.0, ("bi", 30.0, 130.0, 5.0)),
    "r20": (20.0, ("mono", 85.0, 100.0)),
    "r25": (25.0, ("bi", 120.0, 75.0, 8.0)),
    "r30": (30.0, ("mono", 210.0, 140.0)),
    "r45": (45.0, ("bi", 500.0, 105.0, 4.0)),
    "r60": (60.0, ("mono", 900.0, 85.0)),
}

def curve_mbq(kinetics: tuple, t_h: np.ndarray) -> np.ndarray:
    """Activity (MBq) of the lesion at times ``t_h`` (h), not decay-corrected."""
    if kinetics[0] == "mono":
        _, a0, half_life = kinetics
        return a0 * np.exp(-math.log(2) / half_life * t_h)
    _, a0, washout, uptake = kinetics
    return a0 * (np.exp(-math.log(2) / washout * t_h) - np.exp(-math.log(2) / uptake * t_h))


def tia_truth_mbq_h(kinetics: tuple) -> float:
    """Integral of the curve from 0 to infinity (MBq h): A0 / lambda, or A0 (1/lambda1 - 1/lambda2)."""
    if kinetics[0] == "mono":
        _, a0, half_life = kinetics
        return a0 * half_life / math.log(2)
    _, a0, washout, uptake = kinetics
    return a0 * (washout - uptake) / math.log(2)


def test_truth_table_is_the_published_one():
    """The typed table falls steeply and smoothly: S x r^3 (self-dose x mass) within 0.75-1.2 of r = 5 mm."""
    product = TABLE_S_MGY_PER_MBQ_S * TABLE_RADIUS_MM ** 3
    assert np.all(np.diff(TABLE_S_MGY_PER_MBQ_S) < 0)
    assert np.all((product / product[2] > 0.15) & (product / product[2] < 1.3))
    assert [s_truth(r) for r in TABLE_RADIUS_MM] == pytest.approx(TABLE_S_MGY_PER_MBQ_S, rel=1e-12)
    # Half-way in log r between 10 and 20 mm: the geometric mean of the two rows.
    assert s_truth(math.sqrt(200.0)) == pytest.approx(math.sqrt(5.46e-3 * 6.93e-4), rel=1e-12)


@pytest.mark.parametrize("radius_mm", TABLE_RADIUS_MM.tolist())
def test_sphere_dose_at_every_tabulated_radius_is_tia_times_the_table(radius_mm):
    tia_mbq_h = 1000.0
    got = float(sphere_s_value_dose_gy(tia_mbq_h, volume_ml(radius_mm), TISSUE_DENSITY_G_PER_ML))
    expected = tia_mbq_h * s_truth(radius_mm) * GY_PER_MBQ_H_PER_MGY_PER_MBQ_S
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("lesion_id", list(LESIONS))
def test_fitted_tia_of_every_lesion_is_the_integral_of_its_curve(lesion_id):
    _, kinetics = LESIONS[lesion_id]
    fit = fit_time_activity(SCAN_TIMES_H, curve_mbq(kinetics, SCAN_TIMES_H), model=kinetics[0])
    assert fit.model == kinetics[0]
    assert fit.tia_mbq_h == pytest.approx(tia_truth_mbq_h(kinetics), rel=REL_TOL)


def test_lesion_dose_of_every_lesion_against_closed_form_truth():
    """All 13 lesions, 1-60 mm, each from its own fitted curve: dose = TIA x S(r) x 3.6."""
    errors = {}
    for lesion_id, (radius_mm, kinetics) in LESIONS.items():
        fit = fit_time_activity(SCAN_TIMES_H, curve_mbq(kinetics, SCAN_TIMES_H), model=kinetics[0])
        got = float(sphere_s_value_dose_gy(fit.tia_mbq_h, volume_ml(radius_mm), TISSUE_DENSITY_G_PER_ML))
        expected = tia_truth_mbq_h(kinetics) * s_truth(radius_mm) * GY_PER_MBQ_H_PER_MGY_PER_MBQ_S
        errors[lesion_id] = got / expected - 1.0
    assert all(abs(error) < REL_TOL for error in errors.values()), errors


def test_physical_decay_correction_of_a_known_activity_between_two_times():
    """7400 MBq decayed from 09:00 on day 0 to 14:30 on day 4 (101.5 h): 7400 x 2^(-101.5 / 159.528)."""
    expected_mbq = 7400.0 * 2.0 ** (-101.5 / LU177_HALF_LIFE_H)
    assert float(decay_correct(7400.0, 0.0, 101.5)) == pytest.approx(expected_mbq, rel=1e-12)
    assert float(decay_correct(expected_mbq, 101.5, 0.0)) == pytest.approx(7400.0, rel=1e-12)


def test_tia_of_a_physical_decay_only_curve_in_its_trapezoid_tail():
    """An activity that only decays (no washout): trapezoid over the points plus A_last x T_phys / ln 2.

    The points are joined by straight lines (and from 0 MBq at injection, ``head="linear"``);
    the tail after 168 h holds 48 % of the TIA, so a 5 % error of the half-life moves it 2.4 %.
    """
    times_h = np.array([4.0, 24.0, 96.0, 168.0])
    activity_mbq = 300.0 * 2.0 ** (-times_h / LU177_HALF_LIFE_H)
    knots_t, knots_a = np.concatenate([[0.0], times_h]), np.concatenate([[0.0], activity_mbq])
    trapezoid = float(np.sum(np.diff(knots_t) * (knots_a[1:] + knots_a[:-1]) / 2.0))
    tail = activity_mbq[-1] * LU177_HALF_LIFE_H / math.log(2)
    fit = fit_time_activity(times_h, activity_mbq, model="trapezoid")
    assert tail / (trapezoid + tail) > 0.45
    assert fit.tia_mbq_h == pytest.approx(trapezoid + tail, rel=1e-9)
