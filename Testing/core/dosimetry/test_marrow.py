"""Blood-based red-marrow dosimetry (EANM 2010): S-values, blood clearance fits, the dose formula, the CSV."""

from __future__ import annotations

import math

import numpy as np
import pytest

from luprrt.dosimetry.blood_samples import read_blood_samples
from luprrt.dosimetry.marrow import (
    blood_based_marrow_dose,
    fit_blood_clearance,
    marrow_s_values,
    red_marrow_to_blood_ratio,
    whole_body_tia_from_excretion_mbq_h,
)
from luprrt.physics import LU177_DECAY_CONSTANT_PER_H, LU177_ELECTRON_ENERGY_J

SAMPLE_HOURS = np.array([0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 24.0, 48.0, 96.0, 168.0])


def test_reference_s_values_scale_with_the_icrp89_marrow_masses():
    male, female = marrow_s_values("AM"), marrow_s_values("AF")
    assert (male.mass_g["red_marrow"], female.mass_g["red_marrow"]) == (1170.0, 900.0)
    # Self S x mass is a property of the skeleton model, not of its size: equal within 1 %.
    male_product = male.s_mgy_per_mbq_s["red_marrow"] * male.mass_g["red_marrow"]
    female_product = female.s_mgy_per_mbq_s["red_marrow"] * female.mass_g["red_marrow"]
    assert male_product == pytest.approx(female_product, rel=0.01)
    # ... and below the all-electrons-absorbed bound E_e / m (part of the beta energy reaches bone).
    electron_only = LU177_ELECTRON_ENERGY_J * 1e6 * 1e3 * 1e3  # mGy g / (MBq s)
    assert 0.4 < male_product / electron_only < 1.0
    with pytest.raises(ValueError, match="unknown red-marrow S-value phantom 'XX'"):
        marrow_s_values("XX")


def test_remainder_s_value_is_the_total_body_one_without_the_explicit_sources():
    table = marrow_s_values("AM")
    s, m = table.s_mgy_per_mbq_s, table.mass_g
    # Hand evaluation of S(RM<-RB) = S(RM<-TB) m_TB/m_RB - sum S(RM<-s) m_s / m_RB.
    m_rb = m["total_body"] - m["red_marrow"] - m["kidneys"]
    expected = (s["total_body"] * m["total_body"] - s["red_marrow"] * m["red_marrow"]
                - s["kidneys"] * m["kidneys"]) / m_rb
    assert table.remainder_s_mgy_per_mbq_s(["kidneys"]) == pytest.approx(expected, rel=1e-12)
    # Activity spread over the whole body in proportion to mass gives the total-body S-value back.
    sources = ["kidneys", "liver", "spleen"]
    fractions = {name: m[name] / m["total_body"] for name in ["red_marrow", *sources]}
    rest = 1.0 - sum(fractions.values())
    mixed = sum(fractions[k] * s[k] for k in fractions) + rest * table.remainder_s_mgy_per_mbq_s(sources)
    assert mixed == pytest.approx(s["total_body"], rel=1e-12)


def test_red_marrow_to_blood_ratio():
    assert red_marrow_to_blood_ratio() == 1.0
    assert red_marrow_to_blood_ratio(0.40) == pytest.approx(0.19 / 0.60, rel=1e-15)
    with pytest.raises(ValueError, match="haematocrit must be a fraction between 0 and 1"):
        red_marrow_to_blood_ratio(42.0)


@pytest.mark.parametrize(("coefficients", "half_lives_h", "model"), [
    ((1173.0, 13.5), (1.2, 69.6), "bi"),
    ((40.0,), (60.0,), "mono"),
])
def test_blood_clearance_fit_recovers_the_integral(coefficients, half_lives_h, model):
    rates = np.log(2.0) / np.asarray(half_lives_h)
    concentration = np.exp(-np.outer(SAMPLE_HOURS, rates)) @ np.asarray(coefficients)
    fit = fit_blood_clearance(SAMPLE_HOURS, concentration)
    assert fit.model == model
    assert fit.tiac_kbq_h_per_ml == pytest.approx(float(np.sum(np.asarray(coefficients) / rates)), rel=1e-6)
    np.testing.assert_allclose(fit.curve(SAMPLE_HOURS), concentration, rtol=1e-6)


def test_blood_clearance_fit_with_sampling_noise_and_its_sd():
    rates = np.log(2.0) / np.array([1.2, 69.6])
    coefficients = np.array([1173.0, 13.5])
    truth = float(np.sum(coefficients / rates))
    rng = np.random.default_rng(7)
    errors, sds = [], []
    for _ in range(200):
        clean = np.exp(-np.outer(SAMPLE_HOURS, rates)) @ coefficients
        fit = fit_blood_clearance(SAMPLE_HOURS, clean * (1 + 0.03 * rng.standard_normal(SAMPLE_HOURS.size)))
        errors.append(fit.tiac_kbq_h_per_ml / truth - 1)
        sds.append(fit.tiac_sd_kbq_h_per_ml / truth)
    errors = np.array(errors)
    # 3 % per sample: the TIAC is unbiased within 1 % and within 5 % (RMSE), its SD the right size.
    assert abs(errors.mean()) < 0.01 and np.sqrt(np.mean(errors**2)) < 0.05
    assert 0.6 < np.median(sds) / errors.std() < 1.6


def test_blood_based_dose_by_hand():
    table = marrow_s_values("AM")
    blood_tiac = 3.4  # MBq h/mL
    organs = {"kidneys": 9800.0, "liver": 30000.0, "spleen": 12000.0}
    dose = blood_based_marrow_dose(blood_tiac, 62000.0, organs, phantom="AM")
    s, m = table.s_mgy_per_mbq_s, table.mass_g
    rm_tia = blood_tiac * 1.0 * 1170.0
    assert dose.red_marrow_tia_mbq_h == pytest.approx(rm_tia, rel=1e-15)
    # MBq h x mGy/(MBq s) x 3600 s/h / 1000 mGy/Gy.
    assert dose.self_dose_gy == pytest.approx(rm_tia * s["red_marrow"] * 3.6, rel=1e-12)
    remainder = 62000.0 - rm_tia - sum(organs.values())
    assert dose.remainder_tia_mbq_h == pytest.approx(remainder, rel=1e-12)
    assert dose.remainder_dose_gy == pytest.approx(
        remainder * table.remainder_s_mgy_per_mbq_s(organs) * 3.6, rel=1e-12)
    assert dose.organ_dose_gy["liver"] == pytest.approx(30000.0 * s["liver"] * 3.6, rel=1e-12)
    assert dose.dose_gy == pytest.approx(dose.self_dose_gy + dose.remainder_dose_gy
                                         + sum(dose.organ_dose_gy.values()), rel=1e-15)
    # A patient marrow mass: the concentration-based self-dose does not depend on it (mass cancels).
    heavier = blood_based_marrow_dose(blood_tiac, 62000.0, organs, red_marrow_mass_g=1500.0)
    assert heavier.self_dose_gy == pytest.approx(dose.self_dose_gy, rel=1e-12)
    assert m["red_marrow"] == 1170.0


def test_blood_based_dose_flags_a_negative_remainder_and_rejects_bad_input():
    dose = blood_based_marrow_dose(3.4, 1000.0, {"liver": 5000.0})
    assert dose.remainder_tia_mbq_h == 0.0 and dose.remainder_dose_gy == 0.0
    assert "remainder-of-body TIA set to 0" in dose.flags[0]
    with pytest.raises(ValueError, match=r"no red-marrow cross-dose S-value for \['lungs'\]"):
        blood_based_marrow_dose(3.4, 1e5, {"lungs": 10.0})
    with pytest.raises(ValueError, match="blood TIAC must be finite and >= 0, got nan"):
        blood_based_marrow_dose(math.nan, 1e5)


def test_whole_body_tia_from_excretion():
    injected = 7400.0
    lam = LU177_DECAY_CONSTANT_PER_H
    dense = np.linspace(0.5, 400.0, 4000)
    # No excretion: the whole body keeps everything, TIA = A0 / lambda_phys (trapezoid error < 1e-5).
    assert whole_body_tia_from_excretion_mbq_h(injected, dense, np.zeros(dense.size)) == pytest.approx(
        injected / lam, rel=1e-5)
    # Half excreted at once: half the TIA.
    assert whole_body_tia_from_excretion_mbq_h(injected, dense, np.full(dense.size, 0.5)) == pytest.approx(
        injected / lam / 2, rel=2e-3)
    with pytest.raises(ValueError, match="cumulative excreted fractions must rise within"):
        whole_body_tia_from_excretion_mbq_h(injected, [1.0, 2.0], [0.5, 0.4])


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_blood_samples_csv_is_read_per_cycle_and_left_unchanged(tmp_path):
    text = ("cycle,time_h,blood_activity_concentration_kBq_per_mL,urine_cumulative_excreted_percent\n"
            "1,0.5,900,5\n1,4,120,30\n1,24,20,50\n2,1,700,8\n2,24,18,55\n")
    path = _write(tmp_path / "blood.csv", text)
    samples = read_blood_samples(path)
    assert sorted(samples) == [1, 2]
    np.testing.assert_array_equal(samples[1].times_h, [0.5, 4.0, 24.0])
    np.testing.assert_array_equal(samples[2].blood_kbq_per_ml, [700.0, 18.0])
    np.testing.assert_array_equal(samples[1].urine_cumulative_excreted_percent, [5.0, 30.0, 50.0])
    assert path.read_text(encoding="utf-8") == text
    single = read_blood_samples(_write(tmp_path / "one.csv", "time_h,blood_activity_concentration_kBq_per_mL\n"
                                                             "1,10\n24,2\n"))
    assert list(single) == [None] and single[None].urine_cumulative_excreted_percent is None


@pytest.mark.parametrize(("text", "message"), [
    ("time_h,blood_activity_concentration_Bq_per_mL\n1,5\n",
     "missing column(s) blood_activity_concentration_kBq_per_mL ('blood_activity_concentration_Bq_per_mL' found: "
     "convert it to kBq/mL"),
    ("time_h,blood_activity_concentration_kBq_per_mL\n1,5\n2,abc\n",
     "row 3: blood_activity_concentration_kBq_per_mL 'abc' is not >= 0 kBq/mL; correct the value"),
    ("time_h,blood_activity_concentration_kBq_per_mL\n4,5\n2,3\n",
     "times must increase strictly, got [4.0, 2.0] h; sort the rows by time_h"),
    ("time_h,blood_activity_concentration_kBq_per_mL\n-1,5\n2,3\n", "row 2: time_h '-1' is not > 0 h"),
    ("time_h,blood_activity_concentration_kBq_per_mL\n1,5\n", "1 sample; blood clearance needs at least 2"),
    ("time_h,blood_activity_concentration_kBq_per_mL\n", "no sample rows below the header"),
    ("time_h,blood_activity_concentration_kBq_per_mL,urine_cumulative_excreted_percent\n1,5,10\n2,3,8\n",
     "urine_cumulative_excreted_percent must be given on every row and rise with time, got [10.0, 8.0] %"),
], ids=["Bq units", "not a number", "decreasing", "negative time", "one sample", "empty", "urine falls"])
def test_blood_samples_csv_errors_are_one_line_naming_file_and_fix(tmp_path, text, message):
    path = _write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError) as error:
        read_blood_samples(path)
    assert message in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(FileNotFoundError, match=r"blood samples file not found: .*pass blood_samples=FILE"):
        read_blood_samples(tmp_path / "absent.csv")


def test_blood_clearance_with_few_samples_and_bad_arguments_is_named():
    # Three samples of a mono-exponential: mono only (the bi-exponential needs 4), its AICc
    # undefined (3 points, 2 parameters), the integral C0 T / ln 2 exact.
    times = np.array([1.0, 24.0, 96.0])
    concentration = 40.0 * np.exp(-np.log(2.0) / 60.0 * times)
    fit = fit_blood_clearance(times, concentration)
    assert fit.model == "mono" and fit.flags == ["bi not fitted: needs 4 samples, have 3"]
    assert math.isnan(fit.aicc_by_model["mono"])
    assert fit.tiac_kbq_h_per_ml == pytest.approx(40.0 * 60.0 / np.log(2.0), rel=1e-9)
    with pytest.raises(ValueError) as error:
        fit_blood_clearance(times, concentration, model="bi")
    assert str(error.value) == (f"no blood clearance fit for samples {concentration.tolist()} kBq/mL at "
                                f"[1.0, 24.0, 96.0] h (bi not fitted: needs 4 samples, have 3); give more samples "
                                f"or model='auto'")
    with pytest.raises(ValueError) as error:
        fit_blood_clearance(times, concentration, model="tri")
    assert str(error.value) == "unknown blood clearance model 'tri'; expected one of ('auto', 'mono', 'bi')"
    with pytest.raises(ValueError) as error:
        fit_blood_clearance([2.0], [10.0])
    assert str(error.value) == "blood clearance needs at least 2 samples, got 1"


def test_blood_based_dose_rejects_a_bad_rmblr_or_marrow_mass():
    with pytest.raises(ValueError) as error:
        blood_based_marrow_dose(3.4, 1e5, rmblr=0.0)
    assert str(error.value) == "RMBLR must be positive, got 0.0"
    with pytest.raises(ValueError) as error:
        blood_based_marrow_dose(3.4, 1e5, red_marrow_mass_g=-5.0)
    assert str(error.value) == "red-marrow mass must be positive, got -5.0 g"
    with pytest.raises(ValueError) as error:
        whole_body_tia_from_excretion_mbq_h(7400.0, [2.0, 1.0], [0.1, 0.2])
    assert str(error.value) == "urine sample times must be positive and increase, got [2.0, 1.0] h"
