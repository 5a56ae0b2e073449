"""Calibration factor of a SPECT system and reconstruction from a uniform cylinder of known activity.

The sensitivity of a reconstruction protocol is the reconstructed count rate per unit activity
(Dewaraja et al., MIRD Pamphlet 23, J Nucl Med 2012;53:1310-1325; Ljungberg et al., MIRD
Pamphlet 26, J Nucl Med 2016;57:151-162 for Lu-177): the counts of a volume of interest that
encloses the whole cylinder, grown by a few FWHM so that the activity the reconstruction
spreads beyond the wall is included, divided by the time and the activity at the scan
(dose-calibrator activity decay-corrected to the acquisition):

    K [cps/MBq] = counts in VOI / (t [s] x A [MBq]).

The time t is the one the counts are normalised by when a counts image is read: the frame
duration of one projection view, as :func:`luprrt.io.read_nm_spect` uses it (C [Bq/mL] =
counts / (t_view K) x 1e6 / V_voxel). A cylinder reconstructed in Bq/mL by the vendor gives
instead the scale that corrects those values: s = A / (activity in the VOI), applied as
C_true = s x C_image.

Uncertainty (standard, relative; combined in quadrature as in Gear et al., Eur J Nucl Med Mol
Imaging 2018;45:2456-2474): the dose-calibrator activity (the user's figure; ~2-3 % for a
calibrator traceable to a national standard), the counting statistics of the VOI (1/sqrt of
its counts, or, for a Bq/mL image, the voxel noise measured inside the cylinder), and the VOI
choice (half the change of the result when the VOI margin is halved or increased by half).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..physics import BQ_PER_MBQ, decay_factor
from .noise import estimate_noise

log = logging.getLogger(__name__)

DEFAULT_VOI_MARGIN_MM = 30.0
DEFAULT_ACTIVITY_SD_PERCENT = 2.5
CYLINDER_UNITS = ("counts", "Bq/mL")
# Activity in the image / stated activity outside this range means wrong units, activity or time.
_PLAUSIBLE_RECOVERY = (0.5, 2.0)
_MIN_CYLINDER_ML = 500.0


@dataclass(frozen=True)
class CylinderCalibration:
    """Result of a uniform-cylinder calibration.

    ``cps_per_mbq`` (counts images) or ``bq_per_ml_scale`` (Bq/mL images) is set, the other is
    None; ``relative_sd`` is the combined relative standard uncertainty and ``components`` its
    parts (relative).
    """

    cps_per_mbq: float | None
    bq_per_ml_scale: float | None
    relative_sd: float
    components: dict
    activity_mbq: float
    image_activity_mbq: float | None
    total_counts: float | None
    duration_s: float | None
    voi_ml: float
    voi_margin_mm: float
    units: str
    source: str = ""

    def to_json_dict(self) -> dict:
        """Plain JSON (keys with units)."""
        return {"cps_per_mbq": self.cps_per_mbq, "bq_per_ml_scale": self.bq_per_ml_scale,
                "relative_sd": self.relative_sd, "components_relative_sd": dict(self.components),
                "activity_mbq": self.activity_mbq, "image_activity_mbq": self.image_activity_mbq,
                "total_counts": self.total_counts, "duration_s": self.duration_s, "voi_ml": self.voi_ml,
                "voi_margin_mm": self.voi_margin_mm, "units": self.units, "source": self.source}


def cylinder_voi(values: np.ndarray, spacing_zyx_mm, margin_mm: float) -> np.ndarray:
    """The cylinder (largest region above half its median level) grown by ``margin_mm``."""
    smooth = ndimage.gaussian_filter(values, 1.0)
    top = float(smooth.max())
    if not top > 0:
        raise ValueError("the cylinder image is empty (no positive voxel)")
    level = float(np.median(smooth[smooth > 0.05 * top]))
    labels, n = ndimage.label(smooth > 0.5 * level)
    if n == 0:
        raise ValueError("no cylinder found in the image")
    body = labels == (int(np.argmax(np.bincount(labels.ravel())[1:])) + 1)
    if margin_mm <= 0:
        return body
    return ndimage.distance_transform_edt(~body, sampling=spacing_zyx_mm) <= margin_mm


def calibrate_from_cylinder(image: sitk.Image, units: str, activity_mbq: float, *,
                            duration_s: float | None = None, activity_hours_before_scan: float = 0.0,
                            activity_sd_percent: float = DEFAULT_ACTIVITY_SD_PERCENT,
                            voi_margin_mm: float = DEFAULT_VOI_MARGIN_MM, source: str = "") -> CylinderCalibration:
    """Calibration factor (counts image) or Bq/mL scale (Bq/mL image) from a uniform cylinder.

    Parameters
    ----------
    image : SimpleITK.Image
        Reconstructed cylinder: counts per voxel, or activity concentration in Bq/mL.
    units : {"counts", "Bq/mL"}
        Voxel unit of ``image``.
    activity_mbq : float
        Activity in the cylinder measured in the dose calibrator (MBq).
    duration_s : float, optional
        Counts images: the time the counts are normalised by (the frame duration of one view,
        s). Required for counts.
    activity_hours_before_scan : float
        Hours from the dose-calibrator measurement to the acquisition start (decay
        correction with the Lu-177 half-life; 0 = measured at the scan).
    activity_sd_percent : float
        Standard uncertainty of the dose-calibrator activity (%).
    voi_margin_mm : float
        How far the counting VOI extends beyond the cylinder (mm; a few FWHM).
    source : str
        Name recorded with the result.

    Raises
    ------
    ValueError
        Unknown units, missing or non-positive activity or duration, no cylinder, or an image
        whose activity is not within a factor 2 of the stated one (wrong units, activity or times).
    """
    if units not in CYLINDER_UNITS:
        raise ValueError(f"cylinder image units must be one of {CYLINDER_UNITS}, got {units!r}")
    if activity_mbq is None or not (math.isfinite(activity_mbq) and activity_mbq > 0):
        raise ValueError(f"the cylinder activity is missing or not positive ({activity_mbq} MBq); give the "
                         "dose-calibrator activity in MBq")
    if units == "counts" and (duration_s is None or not (math.isfinite(duration_s) and duration_s > 0)):
        raise ValueError(f"a counts image needs the acquisition time per view in s (got {duration_s}) to give "
                         "counts per second per MBq")
    if not (math.isfinite(activity_hours_before_scan) and activity_hours_before_scan >= 0):
        raise ValueError(f"hours from the activity measurement to the scan must be >= 0, got "
                         f"{activity_hours_before_scan}")
    if not activity_sd_percent >= 0:
        raise ValueError(f"activity uncertainty must be >= 0 %, got {activity_sd_percent}")
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    spacing_zyx = np.asarray(image.GetSpacing()[::-1], dtype=float)
    voxel_ml = float(np.prod(spacing_zyx)) / 1000.0
    voi = cylinder_voi(values, spacing_zyx, voi_margin_mm)
    cylinder = cylinder_voi(values, spacing_zyx, 0.0)
    if cylinder.sum() * voxel_ml < _MIN_CYLINDER_ML:
        raise ValueError(f"the cylinder covers {cylinder.sum() * voxel_ml:.0f} mL above half its level; a "
                         f"calibration cylinder holds litres: is this the cylinder scan?")
    activity_at_scan = activity_mbq * float(decay_factor(activity_hours_before_scan))

    def measured(mask: np.ndarray) -> float:
        total = float(values[mask].sum())
        return total / duration_s if units == "counts" else total * voxel_ml / BQ_PER_MBQ

    smaller = cylinder_voi(values, spacing_zyx, 0.5 * voi_margin_mm)
    larger = cylinder_voi(values, spacing_zyx, 1.5 * voi_margin_mm)
    rate = measured(voi)
    voi_sd = abs(measured(larger) - measured(smaller)) / 2.0 / rate
    if units == "counts":
        counting_sd = 1.0 / math.sqrt(max(float(values[voi].sum()), 1.0))
    else:
        interior = ndimage.binary_erosion(cylinder, iterations=3)
        noise = estimate_noise(values, interior if interior.sum() >= 50 else cylinder, spacing_zyx)
        counting_sd = noise.sd_of_mean(voi.astype(float), float(values[voi].mean())) * voi.sum() * voxel_ml \
            / BQ_PER_MBQ / rate
    components = {"dose_calibrator": activity_sd_percent / 100.0, "counting": counting_sd, "voi": voi_sd}
    relative_sd = math.sqrt(sum(v * v for v in components.values()))
    if units == "counts":
        factor, scale, image_activity = rate / activity_at_scan, None, None
    else:
        factor, scale, image_activity = None, activity_at_scan / rate, rate
        recovery = rate / activity_at_scan
        if not _PLAUSIBLE_RECOVERY[0] <= recovery <= _PLAUSIBLE_RECOVERY[1]:
            raise ValueError(f"the cylinder image holds {rate:.4g} MBq but {activity_at_scan:.4g} MBq was stated at "
                             "the scan: wrong image units (Bq/mL expected), activity or times")
    log.info("cylinder calibration %s: %s, relative SD %.3f (%s)", source,
             f"{factor:.4g} cps/MBq" if factor is not None else f"Bq/mL scale {scale:.4f}", relative_sd,
             ", ".join(f"{k} {v:.4f}" for k, v in components.items()))
    return CylinderCalibration(factor, scale, relative_sd, components, float(activity_at_scan), image_activity,
                               float(values[voi].sum()) if units == "counts" else None,
                               duration_s, float(voi.sum() * voxel_ml), float(voi_margin_mm), units, source)
