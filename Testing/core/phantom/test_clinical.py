"""The synthetic patient's clinical data, imaging after each cycle and dose-driven response, against their rules."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from luprrt.phantom import clinical as pc
from luprrt.phantom import kinetics as pk
from luprrt.phantom import make_patient
from luprrt.physics import LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G


@pytest.fixture(scope="module")
def patients():
    uptake = make_patient(11, small=True, noise=False)
    dose = make_patient(11, small=True, noise=False, response_model="dose")
    return uptake, dose


def test_organ_dose_truth_follows_the_region_time_integrals(patients):
    patient = patients[0]
    for cycle, doses in zip(patient.truth.cycles, patient.organ_doses, strict=True):
        # dose = TIA (MBq h) / mass (g, unit density) x 0.0853 Gy g / (MBq h): an independent route via the TIA table
        kidney = cycle.tia_mbq_h["kidney_right"] / cycle.effective_volume_ml["kidney_right"]
        assert doses.kidney_dose_gy == pytest.approx(kidney * LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G, rel=1e-9)
        t_eff = doses.kidney_effective_half_life_h
        # BED by hand: D (1 + D T_rep / ((T_rep + T_eff) alpha/beta)), 2.8 h and 2.6 Gy
        d = doses.kidney_dose_gy
        assert doses.kidney_bed_gy == pytest.approx(d * (1 + d * 2.8 / ((2.8 + t_eff) * 2.6)), rel=1e-12)
        assert 0.2 < doses.marrow_dose_gy < 0.8 and 1.0 < doses.ia_lobe_liver_dose_gy < 4.0


def test_labs_follow_the_toxicity_relations_of_the_true_doses(patients):
    patient = patients[0]
    m = pc.TOXICITY_MODEL
    labs = {row["date"]: row for row in patient.labs}
    cycles = [a.datetime.date() for a in patient.administrations]
    bed_total = sum(d.kidney_bed_gy for d in patient.organ_doses)
    egfr0 = labs[min(labs)]["egfr_ml_per_min_1_73m2"]
    residuals = []
    for day, row in labs.items():
        years = (date.fromisoformat(day) - cycles[0]).days / 365.25
        expected = egfr0 + m["egfr_slope_per_year_per_gy_bed"] * bed_total * max(years, 0.0)
        residuals.append(row["egfr_ml_per_min_1_73m2"] - expected)
    # noise SD 2 on each value (and on the baseline the residuals are taken against): 5 SD bound
    assert np.max(np.abs(residuals)) < 5 * 2.0 * math.sqrt(2.0)
    for k, (start, doses) in enumerate(zip(cycles, patient.organ_doses, strict=True)):
        pre = [row for d, row in labs.items() if date.fromisoformat(d) <= start][-1]
        nadir = labs[date.fromordinal(start.toordinal() + m["nadir_days_after_cycle"]).isoformat()]
        log_ratio = math.log(nadir["platelets_1e9_per_l"] / pre["platelets_1e9_per_l"])
        assert log_ratio == pytest.approx(m["platelet_nadir_log_per_gy"] * doses.marrow_dose_gy,
                                          abs=5 * 0.05 * math.sqrt(2.0) + 0.01), k


def test_creatinine_inverts_ckd_epi_2021():
    for egfr, age, sex in ((95.0, 45, "F"), (60.0, 70, "M"), (30.0, 80, "F"), (110.0, 30, "M")):
        scr_mg_dl = pc.creatinine_umol_per_l(egfr, age, sex) / 88.4
        k, alpha, factor = (0.7, -0.241, 1.012) if sex == "F" else (0.9, -0.302, 1.0)
        forward = (142 * min(scr_mg_dl / k, 1) ** alpha * max(scr_mg_dl / k, 1) ** -1.200 * 0.9938**age * factor)
        assert forward == pytest.approx(egfr, rel=1e-9)


def test_characteristics_are_plausible_and_seeded(patients):
    people = patients[0].characteristics
    assert people == make_patient(11, small=True, noise=False).characteristics
    assert 35 <= people["age_years"] <= 85 and people["sex"] in ("F", "M") and people["grade"] in ("G1", "G2", "G3")
    low, high = pc.KI67_RANGE_PCT[people["grade"]]
    assert low <= people["ki67_pct"] <= high


def test_imaging_after_each_cycle_falls_with_the_cumulative_dose(patients):
    m = pk.AFTER_CYCLE_IMAGING_MODEL
    for lesion in patients[0].truth.lesions:
        for cycle, values in lesion.after_cycle_imaging.items():
            per_100_gy = lesion.cumulative_dose_gy[cycle] / 100.0
            assert math.log(values["fdg_suv"] / lesion.biology.fdg_suv) == pytest.approx(
                m["fdg_log_per_100_gy"] * per_100_gy, abs=5 * m["noise_sd_log"])
            assert math.log(values["adc_mm2_per_s"] / lesion.biology.adc_mm2_per_s) == pytest.approx(
                m["adc_log_per_100_gy"] * per_100_gy, abs=5 * m["noise_sd_log"])
    image = patients[0].after_cycle_pet_image("FDG", 2)
    assert image.GetSize() == patients[0].ct.GetSize()


def test_dose_response_model_moves_only_the_sizes(patients):
    uptake, dose = patients
    for a, b in zip(uptake.truth.lesions, dose.truth.lesions, strict=True):
        assert a.tn_at_24h == b.tn_at_24h and a.cumulative_dose_gy == b.cumulative_dose_gy
        assert a.diameter_mm["cycle1"] == b.diameter_mm["cycle1"]
        r = b.biology.growth_rate_per_week
        expected = pk.growth_rate_from_dose_per_week(b.biology.fdg_suv, b.cumulative_dose_gy[4], 0.0)
        m = pk.DOSE_RESPONSE_MODEL
        if m["rate_min_per_week"] < r < m["rate_max_per_week"]:
            assert r == pytest.approx(expected, abs=5 * m["noise_sd_per_week"])
        assert b.diameter_mm["followup2"] == pytest.approx(b.diameter_mm["cycle1"] * math.exp(r * 59.0), rel=1e-9)
    assert uptake.administrations == dose.administrations


def test_unknown_response_model_is_named():
    with pytest.raises(ValueError, match="response_model must be one of"):
        make_patient(0, small=True, response_model="tumour size")
