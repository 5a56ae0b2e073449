"""Recovery-corrected T/N on the synthetic patient in the Gaussian world, against its known truth.

The patient's SPECT is its truth blurred by the same 10 mm Gaussian as the calibration phantoms
(Testing/gaussian_world.py); the truth T/N comes from the patient's kinetics, volumes from its
truth label map.
"""

from __future__ import annotations

import math

import pytest
from gaussian_world import FWHM_MM, site_calibration

from luprrt.liver import (
    CORRECTED_COLUMNS,
    TN_COLUMNS,
    TRIAL_COLUMNS,
    CycleSpect,
    assign_lesions_to_lobes,
    assign_routes,
    tumour_to_nontumour,
)
from luprrt.phantom import make_patient


@pytest.fixture(scope="module")
def patient():
    return make_patient(3, small=True, n_cycles=1, hours_post_injection=(24.0,), spect_fwhm_mm=FWHM_MM,
                        followup_weeks=())


@pytest.fixture(scope="module")
def corrected(patient):
    segmentation = assign_lesions_to_lobes(assign_routes(patient.segmentation, patient.ia_side))
    cycles = [CycleSpect(1, 24.0, patient.sessions[0].spect[0].image, segmentation)]
    return (tumour_to_nontumour(cycles, calibration=site_calibration()),
            tumour_to_nontumour(cycles, occupancy="fractional"))


def _true_lobe_tn(patient, side: str) -> float:
    point = patient.truth.time_point(1, 24.0)
    lesions = [le for le in patient.truth.lesions if le.side == side]
    volumes = patient.truth.volumes_ml["cycle1"]
    activity = sum(point.activity_mbq[le.lesion_id] for le in lesions)
    volume = sum(volumes[le.lesion_id] for le in lesions)
    return activity / volume * 1e6 / point.mean_bq_per_ml[f"nontumour_{side}"]


def test_corrected_lesion_lobe_and_ratio_against_truth(patient, corrected):
    result, plain = corrected
    point = patient.truth.time_point(1, 24.0)
    lesions = {r["lesion_id"]: r for r in result.rows if r["role"] == "lesion"}
    for lesion in patient.truth.lesions:
        row, true = lesions[lesion.lesion_id], point.tn_ratio[lesion.lesion_id]
        if lesion.diameter_mm["cycle1"] >= 20.0:
            assert row["tn_mean_corrected"] == pytest.approx(true, rel=0.10), lesion.lesion_id
            assert row["tn_mean"] < 0.85 * true  # partial volume: measured well below the truth
            assert row["tn_mean_corrected_ci95_low"] < true < row["tn_mean_corrected_ci95_high"]
        assert row["recovery_extrapolated"] == (row["segmentation_volume_ml"] < 0.5236)
    for row in result.rows:
        if row["role"] == "non-tumour":
            assert row["mean_bq_per_ml"] == pytest.approx(point.mean_bq_per_ml[f"nontumour_{row['side']}"], rel=0.02)
            assert "effective FWHM" in row["nontumour_margin_rule"] and row["nontumour_margin_mm"] >= 20.0
    ratio = result.ratio_rows[0]
    true_ratio = _true_lobe_tn(patient, patient.ia_side) / _true_lobe_tn(patient, patient.iv_side)
    assert ratio["tn_mean_corrected_ia_over_iv"] == pytest.approx(true_ratio, rel=0.05)
    assert abs(plain.ratio_rows[0]["tn_mean_ia_over_iv"] / true_ratio - 1) > 0.08  # uncorrected is biased
    assert set(result.rows[0]) == set(TN_COLUMNS) | set(CORRECTED_COLUMNS)
    assert all(r["calibration"] == site_calibration().label for r in result.rows)


def test_trial_targets_are_the_largest_lesions_over_30_mm(patient, corrected):
    result, _ = corrected
    targets = {r["lesion_id"]: r["target_rank"] for r in result.rows if r["role"] == "lesion" and r["target_lesion"]}
    expected = {}
    for side in ("right", "left"):
        big = sorted((le for le in patient.truth.lesions if le.side == side and le.diameter_mm["cycle1"] > 30.0),
                     key=lambda le: -le.diameter_mm["cycle1"])[:3]
        expected |= {le.lesion_id: rank for rank, le in enumerate(big, start=1)}
    assert targets == expected and len(expected) >= 2
    lobes = {r["side"]: r for r in result.trial_rows}
    assert set(result.trial_rows[0]) == set(TRIAL_COLUMNS)
    for side, row in lobes.items():
        values = [r["tn_mean"] for r in result.rows if r["role"] == "lesion" and r["side"] == side
                  and r["target_lesion"]]
        assert row["n_targets"] == len(values)
        assert row["tn_mean_targets"] == pytest.approx(sum(values) / len(values) if values else math.nan,
                                                       nan_ok=True)
    ratio = result.trial_ratio_rows[0]
    assert ratio["tn_mean_targets_ia_over_iv"] == pytest.approx(
        ratio["tn_mean_targets_ia"] / ratio["tn_mean_targets_iv"], rel=1e-12)
