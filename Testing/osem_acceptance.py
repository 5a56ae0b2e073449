"""Issue 10's acceptance on the OSEM fixture: recovery-corrected quantification with a site calibration.

The site calibration is made as a site makes it, from the fixture's own phantom scans
(``luprrt.workflows.run_calibration``: the uniform cylinder in counts, the IEC phantom at 4:1 and
10:1 in Bq/mL with their true concentrations from ``fixture.json``); the patient's cycle-1 SPECTs
(4, 24, 96, 168 h) are then quantified with it and compared with the patient's truth (rebuilt
without torch by ``make_patient``, see ``Testing/osem_realism.py``):

* IA/IV lobe T/N ratio at every time point (lesions pooled after correction);
* lesion T/N (every time point) and lesion dose (sphere S-values) of lesions >= 20 mm;
* kidney dose (OpenDose organ S-values, transfer matrix at the calibration's effective FWHM);
* non-tumour liver mean (beyond the spill-in margin) at every time point;
* whether each 95 % interval holds the truth (one noise realisation: coverage over realisations is
  ``Testing/osem_coverage.py``).

``python -m Testing.osem_acceptance`` prints the table; ``Testing/core/calibration/test_osem_acceptance.py``
asserts the issue's limits. ``LUPRRT_OSEM_FIXTURE`` points at another fixture folder.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from luprrt.calibration import SiteCalibration, SiteInfo
from luprrt.dosimetry import HuDensityCalibration, organ_s_value_dose_gy, sphere_s_value_dose_gy
from luprrt.io import QuantitativeImage, read_volume
from luprrt.liver import CycleSpect, assign_lesions_to_lobes, assign_routes, tumour_to_nontumour
from luprrt.phantom import SyntheticPatient, make_patient
from luprrt.phantom.anatomy import KIDNEY, TISSUE_HU
from luprrt.segments import Segmentation
from luprrt.workflows.calibrate import CylinderScan, IecScan, run_calibration
from luprrt.workflows.dose import run_patient_dosimetry
from luprrt.workflows.dose_cycle import DosimetryOptions
from luprrt.workflows.dose_inputs import CycleData, PatientData, TimePoint

log = logging.getLogger(__name__)

FIXTURE_DIR = Path(os.environ.get("LUPRRT_OSEM_FIXTURE", Path(__file__).resolve().parent / "data" / "osem"))
FIXTURE_FILES = ("fixture.json", "cylinder_counts.nrrd", "iec_4to1_bq_per_ml.nrrd", "iec_10to1_bq_per_ml.nrrd")
LARGE_LESION_MM = 20.0
DENSITY = HuDensityCalibration()


def missing_fixture(folder: Path = FIXTURE_DIR) -> str | None:
    """Why the fixture cannot be used (None when it can)."""
    missing = [name for name in FIXTURE_FILES if not (folder / name).is_file()]
    if not missing and not any(folder.glob("patient_cycle1_*h_bq_per_ml.nrrd")):
        missing.append("patient_cycle1_<h>h_bq_per_ml.nrrd")
    if missing:
        return f"OSEM fixture incomplete in {folder}: missing {', '.join(missing)} (build it with `make sim-data`)"
    return None


@lru_cache(maxsize=4)
def fixture(folder: Path = FIXTURE_DIR) -> dict:
    return json.loads((folder / "fixture.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=2)
def fixture_patient(folder: Path = FIXTURE_DIR) -> SyntheticPatient:
    """The fixture's patient (CT, segmentation, truth) rebuilt from its stored arguments."""
    return make_patient(**fixture(folder)["patient"]["make_patient"])


def patient_spects(folder: Path) -> dict[float, sitk.Image]:
    """The cycle-1 SPECTs (Bq/mL) of a fixture or realisation folder, by hours after injection."""
    return {scan["hours_post_injection"]: read_volume(folder / scan["file"], "Bq/mL").image
            for scan in fixture()["patient"]["scans"] if (folder / scan["file"]).is_file()}


def site_calibration(folder: Path, out_dir: Path) -> SiteCalibration:
    """The site calibration from the phantom scans in ``folder`` (the fixture's truths and protocol)."""
    meta = fixture()
    protocol = meta.get("protocol", {})
    calibration = meta["calibration"]
    cylinder = CylinderScan(folder / calibration["file"], calibration["activity_mbq"], units="counts",
                            frame_duration_s=calibration["acquisition_duration_s"])
    iec = [IecScan(folder / entry["file"], entry["sphere_bq_per_ml"], entry["background_bq_per_ml"], units="Bq/mL")
           for entry in meta["iec"] if (folder / entry["file"]).is_file()]
    info = SiteInfo(site="LuPRRT OSEM fixture", camera=str(protocol.get("camera", "simulated dual-head")),
                    collimator=str(protocol.get("collimator", "ME")),
                    reconstruction=str(protocol.get("reconstruction", "OSEM with attenuation and collimator response")),
                    resolution_recovery=True, performed_by="Testing/osem_acceptance.py")
    result, _ = run_calibration(out_dir, info=info, cylinder=cylinder, iec=iec, overwrite=True)
    return result


def truth_lobe_tn(patient: SyntheticPatient, hours: float, side: str) -> float:
    """True lobe T/N: all lesions of the lobe pooled (activity / volume) over its non-tumour liver."""
    point = patient.truth.time_point(1, hours)
    volumes = patient.truth.volumes_ml["cycle1"]
    lesions = [le.lesion_id for le in patient.truth.lesions if le.side == side]
    pooled = sum(point.activity_mbq[i] for i in lesions) / sum(volumes[i] for i in lesions) * 1e6
    return pooled / point.mean_bq_per_ml[f"nontumour_{side}"]


def truth_dose_gy(patient: SyntheticPatient, region: str, role: str) -> float:
    """True dose by the method of the row that is checked: organ S-value (kidney) or sphere S-value (lesion)."""
    truth = patient.truth.cycle(1)
    volume = patient.truth.volumes_ml["cycle1"][region]
    if role == "kidney":
        mass = volume * float(DENSITY.density(TISSUE_HU[KIDNEY]))
        return float(organ_s_value_dose_gy(truth.tia_mbq_h[region], "kidney", "AM", mass))
    lesion = patient.truth.lesion(region)
    return float(sphere_s_value_dose_gy(truth.tia_mbq_h[region], volume, float(DENSITY.density(lesion.hu))))


@dataclass
class Acceptance:
    """Errors (measured / truth - 1) of corrected and uncorrected quantification, and interval hits."""

    label: str
    calibration: dict = field(default_factory=dict)
    ia_iv_ratio_error: dict[float, float] = field(default_factory=dict)
    ia_iv_ratio_error_uncorrected: dict[float, float] = field(default_factory=dict)
    ia_iv_ratio_covered: dict[float, bool] = field(default_factory=dict)
    lesion_tn_error: dict[tuple[str, float], float] = field(default_factory=dict)  # lesions >= 20 mm
    lesion_tn_error_uncorrected: dict[tuple[str, float], float] = field(default_factory=dict)
    lesion_tn_covered: dict[tuple[str, float], bool] = field(default_factory=dict)
    nontumour_error: dict[tuple[str, float], float] = field(default_factory=dict)
    kidney_dose_error: dict[str, float] = field(default_factory=dict)
    kidney_dose_error_uncorrected: dict[str, float] = field(default_factory=dict)
    kidney_dose_covered: dict[str, bool] = field(default_factory=dict)
    lesion_dose_error: dict[str, float] = field(default_factory=dict)
    lesion_dose_error_uncorrected: dict[str, float] = field(default_factory=dict)
    lesion_dose_covered: dict[str, bool] = field(default_factory=dict)
    diameters_mm: dict[str, float] = field(default_factory=dict)
    # Every checked number with its 95 % interval and truth: {quantity, region, hours_post_injection,
    # measured, ci95_low, ci95_high, truth} (the coverage table, Testing/osem_coverage.py).
    records: list[dict] = field(default_factory=list)

    def record(self, quantity: str, region: str, hours: float, measured: float, low: float, high: float,
               truth: float) -> bool:
        """Keep one checked number; True when its interval holds the truth."""
        self.records.append({"quantity": quantity, "region": region, "hours_post_injection": hours,
                             "measured": float(measured), "ci95_low": float(low), "ci95_high": float(high),
                             "truth": float(truth)})
        return bool(low <= truth <= high)


def prepared_segmentation(patient: SyntheticPatient, segmentation: Segmentation | None = None) -> Segmentation:
    return assign_lesions_to_lobes(assign_routes(segmentation or patient.segmentation, patient.ia_side))


def measure(patient: SyntheticPatient, spects: dict[float, sitk.Image], calibration: SiteCalibration,
            label: str, segmentation: Segmentation | None = None, boundary_uncertainty: bool = True,
            dose: bool = True) -> Acceptance:
    """Every acceptance number of one set of cycle-1 SPECTs, quantified with ``calibration``.

    ``segmentation`` replaces the patient's own (e.g. with delineation errors, for coverage);
    ``dose=False`` skips the dosimetry (T/N only, e.g. of a subset of the time points).
    """
    result = Acceptance(label, {"effective_fwhm_mm": calibration.effective_fwhm_mm,
                                "organ_fwhm_mm": calibration.organ_psf_fwhm_mm,
                                "cps_per_mbq": calibration.cps_per_mbq, "noise_exponent": calibration.noise_exponent})
    segmentation = prepared_segmentation(patient, segmentation)
    large = {le.lesion_id for le in patient.truth.lesions if le.diameter_mm["cycle1"] >= LARGE_LESION_MM}
    result.diameters_mm = {le.lesion_id: le.diameter_mm["cycle1"] for le in patient.truth.lesions}
    cycles = [CycleSpect(1, h, image, segmentation) for h, image in sorted(spects.items())]
    tn = tumour_to_nontumour(cycles, calibration=calibration, boundary_uncertainty=boundary_uncertainty)
    for row in tn.ratio_rows:
        h = row["hours_post_injection"]
        truth = truth_lobe_tn(patient, h, patient.ia_side) / truth_lobe_tn(patient, h, patient.iv_side)
        result.ia_iv_ratio_error[h] = row["tn_mean_corrected_ia_over_iv"] / truth - 1.0
        result.ia_iv_ratio_error_uncorrected[h] = row["tn_mean_ia_over_iv"] / truth - 1.0
        result.ia_iv_ratio_covered[h] = result.record(
            "IA/IV ratio", "liver", h, row["tn_mean_corrected_ia_over_iv"],
            row["tn_mean_corrected_ia_over_iv_ci95_low"], row["tn_mean_corrected_ia_over_iv_ci95_high"], truth)
    for row in tn.rows:
        h = row["hours_post_injection"]
        point = patient.truth.time_point(1, h)
        if row["role"] == "non-tumour":
            truth = point.mean_bq_per_ml[f"nontumour_{row['side']}"]
            result.nontumour_error[(row["side"], h)] = row["mean_bq_per_ml"] / truth - 1.0
            result.record("non-tumour liver mean", f"nontumour_{row['side']}", h, row["mean_bq_per_ml"],
                          row["corrected_mean_bq_per_ml_ci95_low"], row["corrected_mean_bq_per_ml_ci95_high"], truth)
        if row["role"] == "lesion" and row["lesion_id"] in large:
            key, truth = (row["lesion_id"], h), point.tn_ratio[row["lesion_id"]]
            result.lesion_tn_error[key] = row["tn_mean_corrected"] / truth - 1.0
            result.lesion_tn_error_uncorrected[key] = row["tn_mean"] / truth - 1.0
            result.lesion_tn_covered[key] = result.record(
                "lesion T/N", row["lesion_id"], h, row["tn_mean_corrected"], row["tn_mean_corrected_ci95_low"],
                row["tn_mean_corrected_ci95_high"], truth)

    if not dose:
        return result
    points = [TimePoint(QuantitativeImage(image, "Bq/mL", source=f"{label} {h:g} h"), h)
              for h, image in sorted(spects.items())]
    data = PatientData(patient.patient_id, [CycleData(1, patient.administrations[0].activity_mbq, patient.ct,
                                                      segmentation, points)])
    options = DosimetryOptions(site_calibration=calibration, boundary_uncertainty=boundary_uncertainty)
    run = run_patient_dosimetry(data, voxel_dose=False, registration="none", options=options)
    for row in run.dose_rows:
        method = "organ_s_value" if row["role"] == "kidney" else "sphere_s_value"
        if row["method"] != method or not (row["role"] == "kidney" or row["region"] in large):
            continue
        truth = truth_dose_gy(patient, row["region"], row["role"])
        error, uncorrected = row["dose_gy"] / truth - 1.0, row["uncorrected_dose_gy"] / truth - 1.0
        covered = result.record(f"{row['role']} dose", row["region"], math.nan, row["dose_gy"],
                                row["dose_gy_ci95_low"], row["dose_gy_ci95_high"], truth)
        if row["role"] == "kidney":
            result.kidney_dose_error[row["region"]] = error
            result.kidney_dose_error_uncorrected[row["region"]] = uncorrected
            result.kidney_dose_covered[row["region"]] = covered
        else:
            result.lesion_dose_error[row["region"]] = error
            result.lesion_dose_error_uncorrected[row["region"]] = uncorrected
            result.lesion_dose_covered[row["region"]] = covered
    return result


def table(result: Acceptance) -> str:
    """The acceptance numbers as text: corrected and uncorrected error, whether the 95 % interval holds the truth."""
    lines = [f"{result.label}: calibration " + ", ".join(f"{k} {v:.4g}" for k, v in result.calibration.items()
                                                       if v is not None),
             f"{'quantity':48s}{'corrected':>12s}{'uncorrected':>13s}{'95 % CI holds truth':>21s}"]

    def row(name, corrected, uncorrected=None, covered=None):
        lines.append(f"{name:48s}{100 * corrected:>+11.1f}%"
                     + (f"{100 * uncorrected:>+12.1f}%" if uncorrected is not None else f"{'':>13s}")
                     + (f"{'yes' if covered else 'NO':>21s}" if covered is not None else ""))

    for h, error in sorted(result.ia_iv_ratio_error.items()):
        row(f"IA/IV lobe T/N ratio, {h:g} h", error, result.ia_iv_ratio_error_uncorrected[h],
            result.ia_iv_ratio_covered[h])
    for (lesion_id, h), error in sorted(result.lesion_tn_error.items(), key=lambda item: (
            -result.diameters_mm[item[0][0]], item[0][1])):
        row(f"lesion {lesion_id} ({result.diameters_mm[lesion_id]:.0f} mm) T/N, {h:g} h", error,
            result.lesion_tn_error_uncorrected[(lesion_id, h)], result.lesion_tn_covered[(lesion_id, h)])
    for (side, h), error in sorted(result.nontumour_error.items()):
        row(f"non-tumour liver mean, {side} lobe, {h:g} h", error)
    for name, error in result.kidney_dose_error.items():
        row(f"{name} dose", error, result.kidney_dose_error_uncorrected[name], result.kidney_dose_covered[name])
    for name, error in sorted(result.lesion_dose_error.items(), key=lambda item: -result.diameters_mm[item[0]]):
        row(f"lesion {name} ({result.diameters_mm[name]:.0f} mm) dose", error,
            result.lesion_dose_error_uncorrected[name], result.lesion_dose_covered[name])
    return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    reason = missing_fixture()
    if reason:
        raise SystemExit(reason)
    with tempfile.TemporaryDirectory() as out:
        calibration = site_calibration(FIXTURE_DIR, Path(out))
    patient = fixture_patient()
    print(table(measure(patient, patient_spects(FIXTURE_DIR), calibration, "OSEM fixture")))
    print(f"site calibration: {calibration.cps_per_mbq:.4g} cps/MBq (fixture: "
          f"{fixture()['calibration']['calibration_factor_cps_per_mbq']:.4g}); effective FWHM "
          f"{calibration.effective_fwhm_mm:.2f} +- {calibration.effective_fwhm_sd_mm:.2f} mm; "
          f"contrast recovery 4:1 {np.round(calibration.contrast_curves[0].values, 3).tolist()}")


if __name__ == "__main__":
    main()
