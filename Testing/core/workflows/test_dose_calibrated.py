"""Dosimetry with a site calibration on the synthetic patient in the Gaussian world, against its truth.

Truth doses use the same S-value methods as the rows they check, applied to the patient's true
time-integrated activities, volumes and densities (so only the activity estimate is under test).
"""

from __future__ import annotations

import math

import pytest
from gaussian_world import FWHM_MM, site_calibration

from luprrt.dosimetry import HuDensityCalibration, organ_s_value_dose_gy, sphere_s_value_dose_gy
from luprrt.io import QuantitativeImage
from luprrt.phantom import make_patient
from luprrt.phantom.anatomy import KIDNEY, TISSUE_HU
from luprrt.workflows.dose_calibrated import CALIBRATED_DOSE_COLUMNS
from luprrt.workflows.dose_cycle import DOSE_COLUMNS, DosimetryOptions, cycle_dosimetry
from luprrt.workflows.dose_inputs import CycleData, TimePoint


@pytest.fixture(scope="module")
def patient():
    return make_patient(3, small=True, n_cycles=1, spect_fwhm_mm=FWHM_MM, followup_weeks=())


def _cycle(patient) -> CycleData:
    session = patient.sessions[0]
    points = [TimePoint(QuantitativeImage(a.image, "Bq/mL"), a.hours_post_injection) for a in session.spect]
    return CycleData(1, patient.administrations[0].activity_mbq, session.ct, session.segmentation, points)


def _truth_dose(patient, row) -> float:
    truth, density = patient.truth.cycle(1), HuDensityCalibration()
    volume = patient.truth.volumes_ml["cycle1"][row["region"]]
    if row["role"] == "kidney":
        mass = volume * float(density.density(TISSUE_HU[KIDNEY]))
        return float(organ_s_value_dose_gy(truth.tia_mbq_h[row["region"]], "kidney", "AM", mass))
    lesion = patient.truth.lesion(row["region"])
    return float(sphere_s_value_dose_gy(truth.tia_mbq_h[row["region"]], volume, float(density.density(lesion.hu))))


def test_recovery_corrected_doses_against_truth(patient):
    options = DosimetryOptions(site_calibration=site_calibration(), boundary_uncertainty=False)
    result = cycle_dosimetry("p", _cycle(patient), options=options, registration="none", voxel_dose=False,
                             reference_fits={})
    assert list(result.dose_rows[0]) == list(DOSE_COLUMNS + CALIBRATED_DOSE_COLUMNS)
    checked = 0
    for row in result.dose_rows:
        if row["method"] not in ("sphere_s_value", "organ_s_value") or row["role"] not in ("lesion", "kidney"):
            continue
        truth = _truth_dose(patient, row)
        if row["role"] == "kidney":
            assert row["dose_gy"] == pytest.approx(truth, rel=0.05)
            assert row["uncorrected_dose_gy"] < 0.9 * truth  # spill-out without the correction
            assert "transfer matrix" in row["correction"]
        elif patient.truth.lesion(row["region"]).diameter_mm["cycle1"] >= 20.0:
            assert row["dose_gy"] == pytest.approx(truth, rel=0.10)
            assert row["uncorrected_dose_gy"] < 0.8 * truth
            assert row["correction"].startswith("recovery curve")
        else:
            continue
        checked += 1
        # No boundary term here: counting, calibration (none measured: 0) and recovery.
        assert row["dose_gy_u_segmentation"] is None or math.isnan(row["dose_gy_u_segmentation"])
        assert row["dose_gy_u"] == pytest.approx(math.hypot(row["dose_gy_u_counting"], row["dose_gy_u_recovery"],
                                                            row["dose_gy_u_calibration"]), rel=1e-9)
        assert row["dose_gy_ci95_low"] < row["dose_gy"] < row["dose_gy_ci95_high"]
    assert checked == 2 + 5  # both kidneys, the lesions of 20 mm and more
    assert result.safety.kidney_dose_gy == pytest.approx(
        sum(_truth_dose(patient, r) for r in result.dose_rows if r["role"] == "kidney"
            and r["method"] == "organ_s_value") / 2, rel=0.05)
