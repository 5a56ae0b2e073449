"""Why the recovery-corrected IA/IV ratio misses 5 % on the OSEM fixture: per lesion and per lobe, against truth.

For every lesion and time point of the fixture's patient (or of a realisation folder) this prints

* the segmentation volume and the true volume (mL), the measured and true non-tumour background B of
  its lobe (Bq/mL), the measured ratio m = M / B, the true T/N and the corrected T/N;
* the contrast recovery CR the method used (``SiteCalibration.contrast_recovery`` at the fixed point),
  the CR that would give the true T/N with the measured B, (m - 1) / (T/N - 1), and with the true B;
* the same as an equivalent Gaussian FWHM (mm): the FWHM whose blurred sphere of the lesion's volume
  recovers that contrast (:func:`luprrt.calibration.recovery.gaussian_sphere_recovery`);

then the calibration spheres (measured CR and equivalent FWHM per sphere and sphere-to-background
ratio), and the IA/IV ratio decomposed: as measured, with each lobe's true background in place of
the measured one (lesions corrected by the same calibration), and the part of the error that the
two backgrounds alone explain, (B_left / B_left,true) / (B_right / B_right,true) - 1 for IA right.

``python -m Testing.osem_recovery_diagnosis [FOLDER]`` (default: the committed fixture).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from osem_acceptance import (
    FIXTURE_DIR,
    fixture_patient,
    patient_spects,
    prepared_segmentation,
    site_calibration,
    truth_lobe_tn,
)
from scipy import optimize

from luprrt.calibration import corrected_ratio
from luprrt.calibration.recovery import gaussian_sphere_recovery
from luprrt.liver import CycleSpect, tumour_to_nontumour

_FWHM_SEARCH_MM = (0.3, 60.0)


def equivalent_fwhm_mm(volume_ml: float, contrast_recovery: float) -> float:
    """FWHM (mm) of the Gaussian whose blurred sphere of ``volume_ml`` recovers ``contrast_recovery`` (NaN: none)."""
    def excess(fwhm_mm: float) -> float:
        return float(gaussian_sphere_recovery(volume_ml, fwhm_mm)[0][0]) - contrast_recovery

    try:
        return float(optimize.brentq(excess, *_FWHM_SEARCH_MM))
    except ValueError:
        return math.nan


def _pooled(items: list[tuple[float, float]]) -> float:
    """Volume-weighted T/N of (volume mL, T/N) pairs, finite ones only."""
    kept = [(v, t) for v, t in items if math.isfinite(t)]
    return sum(v * t for v, t in kept) / sum(v for v, _ in kept) if kept else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=FIXTURE_DIR,
                        help="folder with patient_cycle1_<h>h_bq_per_ml.nrrd (default: the committed fixture)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        calibration = site_calibration(FIXTURE_DIR, Path(out))
    patient = fixture_patient()
    segmentation = prepared_segmentation(patient)
    cycles = [CycleSpect(1, h, image, segmentation) for h, image in sorted(patient_spects(args.folder).items())]
    result = tumour_to_nontumour(cycles, calibration=calibration, boundary_uncertainty=False)
    true_volume = patient.truth.volumes_ml["cycle1"]
    measured_b = {(r["side"], r["hours_post_injection"]): r["mean_bq_per_ml"]
                  for r in result.rows if r["role"] == "non-tumour"}
    print(f"effective FWHM {calibration.effective_fwhm_mm:.2f} mm; B in Bq/mL; CR: contrast recovery; "
          "fw: equivalent Gaussian FWHM (mm)")
    print(f"{'lesion':7s}{'side':6s}{'h':>5s}{'V_seg':>7s}{'V_true':>7s}{'B':>9s}{'B_true':>9s}{'m':>7s}"
          f"{'T/N':>7s}{'T/N_c':>7s}{'err %':>7s}{'CR used':>8s}{'CR need':>8s}{'need|B_t':>9s}"
          f"{'fw used':>8s}{'fw need':>8s}")
    lobes: dict[tuple[str, float], list[tuple[float, float]]] = {}
    for row in result.rows:
        if row["role"] != "lesion":
            continue
        hours, lesion, side = row["hours_post_injection"], row["lesion_id"], row["side"]
        point = patient.truth.time_point(1, hours)
        truth, b_true = point.tn_ratio[lesion], point.mean_bq_per_ml[f"nontumour_{side}"]
        volume, ratio = row["segmentation_volume_ml"], row["tn_mean"]
        need = (ratio - 1.0) / (truth - 1.0)
        need_true_b = (row["mean_bq_per_ml"] / b_true - 1.0) / (truth - 1.0)
        lobes.setdefault((side, hours), []).append(
            (volume, corrected_ratio(row["mean_bq_per_ml"] / b_true, volume, calibration)[0]))
        print(f"{lesion:7s}{side:6s}{hours:5.0f}{volume:7.2f}{true_volume[lesion]:7.2f}"
              f"{measured_b[(side, hours)]:9.0f}{b_true:9.0f}{ratio:7.2f}{truth:7.2f}{row['tn_mean_corrected']:7.2f}"
              f"{100 * (row['tn_mean_corrected'] / truth - 1):7.1f}{row['contrast_recovery']:8.3f}{need:8.3f}"
              f"{need_true_b:9.3f}{equivalent_fwhm_mm(volume, row['contrast_recovery']):8.1f}"
              f"{equivalent_fwhm_mm(volume, need):8.1f}")
    print("\ncalibration spheres: CR +- SD (equivalent FWHM mm) by sphere-to-background ratio")
    for diameter in sorted({s["diameter_mm"] for s in calibration.spheres}):
        cells = [f"{s['sphere_to_background']:g}:1 {s['contrast_recovery']:.3f}+-{s['contrast_recovery_sd']:.3f} "
                 f"({equivalent_fwhm_mm(s['volume_ml'], s['contrast_recovery']):.1f})"
                 for s in calibration.spheres if s["diameter_mm"] == diameter]
        print(f"{diameter:4.0f} mm  " + "  ".join(cells))
    ia, iv = patient.ia_side, patient.iv_side
    print(f"\nIA/IV ratio error (IA {ia}): as measured | lesions corrected against the true B | "
          "the two measured B alone")
    for row in result.ratio_rows:
        hours = row["hours_post_injection"]
        truth = truth_lobe_tn(patient, hours, ia) / truth_lobe_tn(patient, hours, iv)
        true_b = _pooled(lobes[(ia, hours)]) / _pooled(lobes[(iv, hours)])
        point = patient.truth.time_point(1, hours)
        b_bias = {side: measured_b[(side, hours)] / point.mean_bq_per_ml[f"nontumour_{side}"] for side in (ia, iv)}
        print(f"{hours:5.0f} h  {100 * (row['tn_mean_corrected_ia_over_iv'] / truth - 1):+6.1f} %"
              f"  {100 * (true_b / truth - 1):+6.1f} %  {100 * (b_bias[iv] / b_bias[ia] - 1):+6.1f} %")


if __name__ == "__main__":
    main()
