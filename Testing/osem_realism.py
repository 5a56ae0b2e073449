"""How LuPRRT's uncorrected numbers err on OSEM-reconstructed SPECT (the committed fixture) vs the Gaussian model.

Reads ``Testing/data/osem`` (made by ``make sim-data``), rebuilds the patient's CT, segmentation
and truth with :func:`luprrt.phantom.make_patient` from the stored arguments (no torch), and
measures with the project's own LobeQuant and dosimetry code, without any calibration-curve or
recovery correction: lobe and lesion T/N, lesion max, kidney and lesion dose, and the spill-in
of lesion activity into non-tumour liver by distance from the nearest lesion. The same numbers
on the fast Gaussian + Poisson SPECT of the same patient are measured beside them.

``python -m Testing.osem_realism`` prints the table; ``Testing/core/phantom/test_osem_realism.py``
asserts it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from luprrt.dosimetry import HuDensityCalibration, organ_s_value_dose_gy, sphere_s_value_dose_gy
from luprrt.io import QuantitativeImage, read_volume
from luprrt.liver import CycleSpect, tumour_to_nontumour
from luprrt.phantom import SyntheticPatient, make_patient
from luprrt.phantom.anatomy import KIDNEY, TISSUE_HU
from luprrt.phantom.truth import LESION_LABEL_OFFSET, REGION_LABEL
from luprrt.workflows.dose import run_patient_dosimetry
from luprrt.workflows.dose_inputs import CycleData, PatientData, TimePoint

log = logging.getLogger(__name__)

FIXTURE_DIR = Path(__file__).resolve().parent / "data" / "osem"
DISTANCE_BANDS_MM = ((0.0, 5.0), (5.0, 10.0), (10.0, 20.0), (20.0, np.inf))
# Non-tumour voxels nearer than this to the liver surface are left out of the spill-in bands, so
# the liver's own edge (spill-out to the surroundings) does not pose as lesion spill-in.
LIVER_EDGE_MARGIN_MM = 15.0
DENSITY = HuDensityCalibration()


@dataclass
class Realism:
    """Errors of uncorrected quantification (measured / truth - 1, or ratios) on one set of SPECTs."""

    label: str
    ia_iv_ratio_error: dict[float, float] = field(default_factory=dict)  # per hour
    lesion_tn_error: dict[str, float] = field(default_factory=dict)  # 24 h, per lesion id
    lesion_max_over_truth: dict[str, float] = field(default_factory=dict)  # 24 h, per lesion id
    kidney_dose_error: dict[str, float] = field(default_factory=dict)
    lesion_dose_error: dict[str, float] = field(default_factory=dict)  # lesions >= 20 mm
    spill_in: dict[str, float] = field(default_factory=dict)  # band -> non-tumour mean / truth, 24 h
    diameters_mm: dict[str, float] = field(default_factory=dict)


@lru_cache(maxsize=1)
def fixture() -> dict:
    path = FIXTURE_DIR / "fixture.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; build it with `make sim-data`")
    return json.loads(path.read_text())


@lru_cache(maxsize=1)
def fixture_patient() -> SyntheticPatient:
    """The fixture's patient (CT, segmentation, truth, Gaussian SPECTs) rebuilt from its stored arguments."""
    return make_patient(**fixture()["patient"]["make_patient"])


def osem_spects() -> dict[float, sitk.Image]:
    return {scan["hours_post_injection"]: read_volume(FIXTURE_DIR / scan["file"], "Bq/mL").image
            for scan in fixture()["patient"]["scans"]}


def gaussian_spects(patient: SyntheticPatient) -> dict[float, sitk.Image]:
    return {acq.hours_post_injection: acq.image for acq in patient.session("cycle1").spect}


def _truth_lobe_tn(patient: SyntheticPatient, hours: float, side: str) -> float:
    """True lobe T/N: all lesions of the lobe pooled (activity / volume) over its non-tumour liver."""
    point = patient.truth.time_point(1, hours)
    volumes = patient.truth.volumes_ml["cycle1"]
    lesions = [le.lesion_id for le in patient.truth.lesions if le.side == side]
    pooled = sum(point.activity_mbq[i] for i in lesions) / sum(volumes[i] for i in lesions) * 1e6
    return pooled / point.mean_bq_per_ml[f"nontumour_{side}"]


def _spill_in(patient: SyntheticPatient, spect: sitk.Image, hours: float) -> dict[str, float]:
    """Mean non-tumour liver / true non-tumour concentration, by distance band from the nearest lesion surface."""
    session = patient.session("cycle1")
    labels = sitk.GetArrayViewFromImage(session.region_labels)
    spacing_zyx = session.ct.GetSpacing()[::-1]
    lesion = labels >= LESION_LABEL_OFFSET
    liver = lesion | np.isin(labels, [REGION_LABEL["nontumour_right"], REGION_LABEL["nontumour_left"]])
    to_lesion = ndimage.distance_transform_edt(~lesion, sampling=spacing_zyx)
    depth = ndimage.distance_transform_edt(liver, sampling=spacing_zyx)
    # Sample the CT-grid maps at each SPECT voxel centre (nearest neighbour).
    def on_spect(values: np.ndarray) -> np.ndarray:
        image = sitk.GetImageFromArray(values.astype(np.float32))
        image.CopyInformation(session.ct)
        return sitk.GetArrayFromImage(sitk.Resample(image, spect, sitk.Transform(), sitk.sitkNearestNeighbor,
                                                    -1.0))
    nontumour = on_spect((liver & ~lesion).astype(np.float32)) > 0.5
    distance = on_spect(to_lesion)
    deep = on_spect(depth) >= LIVER_EDGE_MARGIN_MM
    values = sitk.GetArrayViewFromImage(spect)
    truth = patient.truth.time_point(1, hours).mean_bq_per_ml["nontumour_right"]
    out = {}
    for lo, hi in DISTANCE_BANDS_MM:
        band = nontumour & deep & (distance > lo) & (distance <= hi)
        out[f"{lo:g}-{hi:g} mm"] = float(values[band].mean() / truth)
    return out


def measure(patient: SyntheticPatient, spects: dict[float, sitk.Image], label: str) -> Realism:
    """All realism numbers of one set of cycle-1 SPECTs (Bq/mL) of ``patient``."""
    result = Realism(label)
    segmentation = patient.segmentation
    ia, iv = patient.ia_side, patient.iv_side
    cycles = [CycleSpect(1, h, image) for h, image in sorted(spects.items())]
    tn = tumour_to_nontumour(cycles, segmentation)
    for row in tn.ratio_rows:
        h = row["hours_post_injection"]
        truth = _truth_lobe_tn(patient, h, ia) / _truth_lobe_tn(patient, h, iv)
        result.ia_iv_ratio_error[h] = row["tn_mean_ia_over_iv"] / truth - 1.0
    point = patient.truth.time_point(1, 24.0)
    for row in tn.rows:
        if row["role"] != "lesion" or row["hours_post_injection"] != 24.0:
            continue
        lesion_id = row["lesion_id"]
        result.lesion_tn_error[lesion_id] = row["tn_mean"] / point.tn_ratio[lesion_id] - 1.0
        true_concentration = point.activity_mbq[lesion_id] / patient.truth.volumes_ml["cycle1"][lesion_id] * 1e6
        result.lesion_max_over_truth[lesion_id] = row["max_bq_per_ml"] / true_concentration
    for lesion in patient.truth.lesions:
        result.diameters_mm[lesion.lesion_id] = lesion.diameter_mm["cycle1"]

    time_points = [TimePoint(QuantitativeImage(image, "Bq/mL", source=f"{label} {h:g} h"), h)
                   for h, image in sorted(spects.items())]
    data = PatientData(patient.patient_id, [CycleData(1, patient.administrations[0].activity_mbq, patient.ct,
                                                      segmentation, time_points)])
    run = run_patient_dosimetry(data, voxel_dose=False, registration="none")
    truth = patient.truth.cycle(1)
    for side in ("right", "left"):
        name = f"kidney_{side}"
        mass = patient.truth.volumes_ml["cycle1"][name] * float(DENSITY.density(TISSUE_HU[KIDNEY]))
        expected = float(organ_s_value_dose_gy(truth.tia_mbq_h[name], "kidney", "AM", mass))
        result.kidney_dose_error[name] = run.dose(1, name, "organ_s_value")["dose_gy"] / expected - 1.0
    for lesion in patient.truth.lesions:
        if lesion.diameter_mm["cycle1"] < 20.0:
            continue
        volume = patient.truth.volumes_ml["cycle1"][lesion.lesion_id]
        expected = float(sphere_s_value_dose_gy(truth.tia_mbq_h[lesion.lesion_id], volume,
                                                float(DENSITY.density(lesion.hu))))
        got = run.dose(1, lesion.lesion_id, "sphere_s_value")["dose_gy"]
        result.lesion_dose_error[lesion.lesion_id] = got / expected - 1.0
    result.spill_in = _spill_in(patient, spects[24.0], 24.0)
    return result


def table(results: list[Realism]) -> str:
    """Side-by-side text table of several :class:`Realism` results."""
    first = results[0]
    lines = [f"{'quantity':44s}" + "".join(f"{r.label:>18s}" for r in results)]

    def row(name, values):
        lines.append(f"{name:44s}" + "".join(f"{v:>18s}" for v in values))

    for h in sorted(first.ia_iv_ratio_error):
        row(f"IA/IV lobe T/N ratio error, {h:g} h", [f"{100 * r.ia_iv_ratio_error[h]:+.1f} %" for r in results])
    for lesion_id in sorted(first.lesion_tn_error, key=lambda i: -first.diameters_mm[i]):
        d = first.diameters_mm[lesion_id]
        row(f"lesion {lesion_id} ({d:.0f} mm) T/N error, 24 h",
            [f"{100 * r.lesion_tn_error[lesion_id]:+.1f} %" for r in results])
    for lesion_id in sorted(first.lesion_max_over_truth, key=lambda i: -first.diameters_mm[i]):
        d = first.diameters_mm[lesion_id]
        row(f"lesion {lesion_id} ({d:.0f} mm) max / true conc., 24 h",
            [f"{r.lesion_max_over_truth[lesion_id]:.2f}x" for r in results])
    for name in first.kidney_dose_error:
        row(f"{name} dose error", [f"{100 * r.kidney_dose_error[name]:+.1f} %" for r in results])
    for lesion_id in first.lesion_dose_error:
        d = first.diameters_mm[lesion_id]
        row(f"lesion {lesion_id} ({d:.0f} mm) dose error", [f"{100 * r.lesion_dose_error[lesion_id]:+.1f} %"
                                                            for r in results])
    for band in first.spill_in:
        row(f"non-tumour liver {band} from a lesion / truth", [f"{r.spill_in[band]:.2f}x" for r in results])
    return "\n".join(lines)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    patient = fixture_patient()
    meta = fixture()
    counts = {s["hours_post_injection"]: s["total_counts"] for s in meta["patient"]["scans"]}
    print(f"OSEM fixture: patient seed {meta['seeds']['patient_seed']}, counts per scan "
          + ", ".join(f"{h:g} h {c / 1e6:.2f} M" for h, c in counts.items())
          + f"; calibration factor {meta['calibration']['calibration_factor_cps_per_mbq']:.2f} cps/MBq")
    print(table([measure(patient, osem_spects(), "OSEM fixture"),
                 measure(patient, gaussian_spects(patient), "Gaussian+Poisson")]))


if __name__ == "__main__":
    main()
