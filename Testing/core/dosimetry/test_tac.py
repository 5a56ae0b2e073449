"""Region time-activity fits: analytic TIAs, model selection, fallbacks, uncertainty."""

from __future__ import annotations

import math

import numpy as np
import pytest

from luprrt.dosimetry import fit_time_activity, trapezoid_weights_h
from luprrt.physics import LU177_DECAY_CONSTANT_PER_H, LU177_HALF_LIFE_H

LAMBDA_70H = math.log(2.0) / 70.0
TIMES_H = np.array([4.0, 24.0, 48.0, 96.0, 168.0])


def mono(a0, lam, t):
    return a0 * np.exp(-lam * np.asarray(t))


def test_mono_exponential_tia_is_a0_over_lambda_exactly():
    fit = fit_time_activity(TIMES_H, mono(100.0, LAMBDA_70H, TIMES_H))
    assert fit.model == "mono"
    assert fit.tia_mbq_h == pytest.approx(100.0 / LAMBDA_70H, rel=1e-6)
    assert fit.params["a0_mbq"] == pytest.approx(100.0, rel=1e-6)
    assert fit.params["lambda_per_h"] == pytest.approx(LAMBDA_70H, rel=1e-6)
    assert fit.effective_half_life_h == pytest.approx(70.0, rel=1e-6)
    assert fit.tia_sd_mbq_h == pytest.approx(0.0, abs=1e-6 * fit.tia_mbq_h)
    assert fit.flags == []
    expected = [100.0, 50.0, 100.0 * 0.5 ** (500 / 70)]
    np.testing.assert_allclose(fit.curve([0.0, 70.0, 500.0]), expected, rtol=1e-6)


def test_bi_exponential_parameters_and_tia_recovered_to_one_percent():
    l1, l2 = math.log(2.0) / 80.0, math.log(2.0) / 4.0
    times = np.array([1.0, 4.0, 24.0, 48.0, 96.0, 168.0])
    activity = 250.0 * (np.exp(-l1 * times) - np.exp(-l2 * times))
    fit = fit_time_activity(times, activity)
    assert fit.model == "bi"
    assert fit.tia_mbq_h == pytest.approx(250.0 * (1 / l1 - 1 / l2), rel=0.01)
    assert fit.params["a0_mbq"] == pytest.approx(250.0, rel=0.01)
    assert fit.params["lambda1_per_h"] == pytest.approx(l1, rel=0.01)
    assert fit.params["lambda2_per_h"] == pytest.approx(l2, rel=0.01)
    assert fit.aicc_by_model["bi"] < fit.aicc_by_model["mono"]
    # The mono-exponential through uptake data clears slower than physics: flagged, not silent.
    assert any("non-physical mono" in flag for flag in fit.flags)


def test_aicc_picks_mono_for_noisy_mono_data_and_matches_formula():
    rng = np.random.default_rng(7)
    times = np.array([2.0, 24.0, 48.0, 72.0, 120.0, 168.0])
    activity = mono(80.0, LAMBDA_70H, times) * (1.0 + 0.03 * rng.standard_normal(times.size))
    fit = fit_time_activity(times, activity)
    assert fit.model == "mono"
    assert fit.aicc_by_model["mono"] < fit.aicc_by_model["bi"]
    residual = activity - fit.curve(times)
    n, k = times.size, 2
    expected = n * math.log(residual @ residual / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)
    assert fit.aicc == pytest.approx(expected, rel=1e-9)
    assert fit.tia_mbq_h == pytest.approx(80.0 / LAMBDA_70H, rel=0.05)


def test_noise_free_mono_data_select_mono_over_equally_exact_bi():
    fit = fit_time_activity(TIMES_H, mono(100.0, LAMBDA_70H, TIMES_H))
    assert fit.aicc_by_model["mono"] < fit.aicc_by_model["bi"]


def test_rising_data_fall_back_to_trapezoid_with_physical_tail_flagged():
    times, activity = np.array([24.0, 48.0, 96.0]), np.array([10.0, 20.0, 30.0])
    fit = fit_time_activity(times, activity)
    assert fit.model == "trapezoid"
    assert any("non-physical mono" in flag for flag in fit.flags)
    assert any("fell back to trapezoid" in flag for flag in fit.flags)
    # linear head 24*10/2, trapezoids 24*(10+20)/2 + 48*(20+30)/2, tail 30/lambda_phys.
    expected = 120.0 + 360.0 + 1200.0 + 30.0 / LU177_DECAY_CONSTANT_PER_H
    assert fit.tia_mbq_h == pytest.approx(expected, rel=1e-12)
    assert fit.effective_half_life_h == pytest.approx(LU177_HALF_LIFE_H)
    assert fit.curve(96.0 + LU177_HALF_LIFE_H) == pytest.approx(15.0)
    np.testing.assert_allclose(fit.curve([0.0, 12.0, 24.0, 72.0]), [0.0, 5.0, 10.0, 25.0])


def test_explicit_mono_on_slower_than_physical_data_falls_back():
    slow = math.log(2.0) / 400.0  # slower than the 159.5 h physical half-life
    fit = fit_time_activity(TIMES_H, mono(50.0, slow, TIMES_H), model="mono")
    assert fit.model == "trapezoid"
    assert any("below the physical" in flag for flag in fit.flags)


def test_trapezoid_heads_and_sd_propagation():
    times, activity, sd = np.array([24.0, 72.0]), np.array([40.0, 30.0]), np.array([2.0, 3.0])
    tail = 1.0 / LU177_DECAY_CONSTANT_PER_H
    linear = fit_time_activity(times, activity, sd, model="trapezoid")
    flat = fit_time_activity(times, activity, sd, model="trapezoid", head="flat")
    assert linear.tia_mbq_h == pytest.approx(12 * 40 + 24 * 70 + 30 * tail)
    assert flat.tia_mbq_h == pytest.approx(24 * 40 + 24 * 70 + 30 * tail)
    w = np.array([12.0 + 24.0, 24.0 + tail])
    assert linear.tia_sd_mbq_h == pytest.approx(math.sqrt((w[0] * 2) ** 2 + (w[1] * 3) ** 2))
    np.testing.assert_allclose(trapezoid_weights_h(times, "flat"), [48.0, 24.0])
    assert math.isnan(fit_time_activity(times, activity, model="trapezoid").tia_sd_mbq_h)


def test_delta_method_sd_matches_monte_carlo_spread():
    rng = np.random.default_rng(11)
    times = np.array([4.0, 24.0, 72.0, 168.0])
    truth = mono(100.0, LAMBDA_70H, times)
    sd = 0.05 * truth
    predicted = fit_time_activity(times, truth, sd, model="mono").tia_sd_mbq_h
    noisy = truth + sd * rng.standard_normal((300, times.size))
    samples = [fit_time_activity(times, row, sd, model="mono").tia_mbq_h for row in noisy]
    assert predicted == pytest.approx(np.std(samples, ddof=1), rel=0.15)
    assert predicted > 0.01 * 100.0 / LAMBDA_70H


def test_aicc_undefined_models_are_excluded_and_flagged():
    four = np.array([4.0, 24.0, 96.0, 168.0])
    fit = fit_time_activity(four, mono(100.0, LAMBDA_70H, four))
    assert fit.model == "mono"
    assert math.isnan(fit.aicc_by_model["bi"])
    assert any("bi excluded from AICc selection" in flag for flag in fit.flags)
    three = np.array([24.0, 96.0, 168.0])
    fit = fit_time_activity(three, mono(100.0, LAMBDA_70H, three))
    assert fit.model == "mono" and math.isnan(fit.aicc)
    assert any("AICc undefined for n = 3" in flag for flag in fit.flags)
    two = fit_time_activity([24.0, 96.0], mono(100.0, LAMBDA_70H, [24.0, 96.0]))
    assert two.tia_mbq_h == pytest.approx(100.0 / LAMBDA_70H, rel=1e-6)


@pytest.mark.parametrize(("times", "activity", "message"), [
    ([24.0, 24.0, 96.0], [3.0, 2.0, 1.0], "increase strictly"),
    ([96.0, 24.0], [3.0, 2.0], "96.0, 24.0"),
    ([24.0], [3.0], "at least 2 time points"),
    ([24.0, 96.0], [3.0, -1.0], "-1.0"),
    ([24.0, 96.0], [3.0, 2.0, 1.0], "3 activities"),
    ([24.0, 96.0], [0.0, 0.0], "all activities are zero"),
])
def test_bad_data_raise_naming_the_values(times, activity, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("-", r"\-")):
        fit_time_activity(times, activity)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="unknown time-activity model 'gamma'"):
        fit_time_activity([24.0, 96.0], [3.0, 2.0], model="gamma")
    with pytest.raises(ValueError, match="the bi model needs at least 3 points"):
        fit_time_activity([24.0, 96.0], [3.0, 2.0], model="bi")
    with pytest.raises(ValueError, match="SDs"):
        fit_time_activity([24.0, 96.0], [3.0, 2.0], sd_mbq=[1.0, 0.0])
