"""Recovery-corrected T/N with a site calibration: every corrected number next to the measured one.

With a :class:`luprrt.calibration.SiteCalibration`, :func:`luprrt.liver.tumour_to_nontumour`
adds to its rows (:data:`CORRECTED_COLUMNS`, after :data:`luprrt.liver.TN_COLUMNS`):

* lesions: the segmentation volume, the contrast recovery used (volume and the lesion's own
  contrast, interpolated between the calibrated sphere-to-background ratios, and which curve),
  the recovery-corrected mean concentration and T/N (:mod:`luprrt.calibration.correction`),
  whether the lesion is smaller than the smallest calibrated sphere (the curve is then
  extrapolated: flagged, never silently), and 95 % intervals with the standard uncertainty of
  each source (counting noise, recovery curve, segmentation boundary +-1 voxel, calibration factor);
* tumour (lobe) rows: the lobe T/N pooled from the corrected lesions;
* non-tumour rows: which spill-in margin built them (from the calibration's effective resolution
  unless given) and their counting uncertainty;
* every row: the correction and the calibration used, and ``tn_max_note`` when max-based T/N is
  not recommended (resolution-recovered OSEM or edge overshoot seen in the calibration spheres).

The IA/IV ratio rows gain the corrected lobe T/N and ratio with their intervals.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

from ..calibration import (
    COVERAGE_FACTOR_95,
    LesionMeasurement,
    SiteCalibration,
    correct_lesions,
    estimate_noise,
    shift_boundary,
)
from ..grid import image_on_grid
from ..segments import SIDES, Segment, Segmentation

log = logging.getLogger(__name__)

CORRECTED_COLUMNS = (
    "segmentation_volume_ml", "nontumour_margin_mm", "nontumour_margin_rule", "corrected_mean_bq_per_ml",
    "corrected_mean_bq_per_ml_sd", "corrected_mean_bq_per_ml_ci95_low", "corrected_mean_bq_per_ml_ci95_high",
    "tn_mean_corrected", "tn_mean_corrected_sd", "tn_mean_corrected_ci95_low", "tn_mean_corrected_ci95_high",
    "tn_mean_corrected_sd_counting", "tn_mean_corrected_sd_recovery", "tn_mean_corrected_sd_segmentation",
    "contrast_recovery", "contrast_recovery_sd", "recovery_curve", "recovery_extrapolated", "correction",
    "calibration", "tn_max_note")
CORRECTED_RATIO_COLUMNS = (
    "tn_mean_corrected_ia", "tn_mean_corrected_iv", "tn_mean_corrected_ia_over_iv",
    "tn_mean_corrected_ia_over_iv_sd", "tn_mean_corrected_ia_over_iv_ci95_low",
    "tn_mean_corrected_ia_over_iv_ci95_high", "tn_mean_corrected_ia_over_iv_sd_counting",
    "tn_mean_corrected_ia_over_iv_sd_recovery", "tn_mean_corrected_ia_over_iv_sd_segmentation", "calibration")
MAX_NOTE = "not recommended: max-based T/N is biased by edge overshoot and noise in resolution-recovered OSEM"
LESION_CORRECTION = "recovery curve (contrast recovery of the mean) at the lesion's segmentation volume and contrast"
LOBE_CORRECTION = "lesions recovery-corrected, then pooled (volume-weighted)"


@dataclass
class CorrectionContext:
    """What the correction of one segmentation on one SPECT grid needs besides each SPECT.

    ``shifted`` maps +1 / -1 to the T/N regions built with every lesion's outline moved one voxel
    out / in; ``volumes`` maps (lesion segment id, shift) to the lesion's segmentation volume (mL).
    """

    calibration: SiteCalibration
    margin_rule: str
    shifted: dict = field(default_factory=dict)
    volumes: dict = field(default_factory=dict)


def lesion_volumes(segmentation: Segmentation, lesions: tuple[Segment, ...], shift: int = 0) -> dict[str, float]:
    """Segmentation volume (mL) of each lesion on the segmentation's own grid, outline moved ``shift`` voxels."""
    voxel_ml = float(np.prod(segmentation.reference.GetSpacing())) / 1000.0
    return {lesion.segment_id: float(shift_boundary(segmentation.mask_array(lesion.segment_id), shift).sum())
            * voxel_ml for lesion in lesions}


def with_shifted_lesions(segmentation: Segmentation, shift: int) -> Segmentation:
    """A copy whose lesions are moved ``shift`` voxels out (> 0) or in (< 0), all in one new label layer.

    One layer keeps the moved lesions disjoint (where two grow into the same voxel, the later
    lesion keeps it); the other segments are unchanged.
    """
    lesions = segmentation.find(role="lesion")
    ids = {lesion.segment_id for lesion in lesions}
    kept = segmentation.without(ids)
    labels = np.zeros(segmentation.reference.GetSize()[::-1], dtype=np.uint16)
    moved = []
    for value, lesion in enumerate(lesions, start=1):
        labels[shift_boundary(segmentation.mask_array(lesion.segment_id), shift)] = value
    for value, lesion in enumerate(lesions, start=1):
        moved.append(Segment(lesion.segment_id, lesion.name, lesion.tags, len(kept.layers), value, lesion.color))
    layer = image_on_grid(labels, segmentation.reference)
    return Segmentation([*kept.layers, layer], [*kept.segments, *moved])


def corrected_cycle_rows(spect: sitk.Image, regions, rows: list[dict], context: CorrectionContext,
                         shifted_means: dict[int, dict[str, float]]) -> tuple[list[dict], dict]:
    """The cycle's rows with :data:`CORRECTED_COLUMNS`, and the corrected columns of its IA/IV ratio row.

    Parameters
    ----------
    spect : SimpleITK.Image
        The cycle's SPECT (Bq/mL).
    regions : luprrt.liver.tn.LobeRegions
        Its T/N regions.
    rows : list of dict
        Its T/N rows (:data:`luprrt.liver.TN_COLUMNS`).
    context : CorrectionContext
    shifted_means : {+1 or -1: {lesion segment id: mean Bq/mL}}
        Lesion means with the outlines moved (empty: no boundary uncertainty).
    """
    calibration = context.calibration
    values = sitk.GetArrayViewFromImage(spect)
    shape = values.shape
    nontumour = {side: regions.masks.region(f"nontumour:{side}") for side in SIDES}
    union = np.zeros(shape, dtype=bool)
    for region in nontumour.values():
        union.ravel()[region.voxels] = True
    noise = estimate_noise(values, union, spect.GetSpacing()[::-1], exponent=calibration.noise_exponent)
    lesion_rows = {row["region"]: row for row in rows if row["role"] == "lesion"}
    background = {}
    for side in SIDES:
        row = next(r for r in rows if r["role"] == "non-tumour" and r["side"] == side)
        mean = row["mean_bq_per_ml"]
        background[side] = (mean, noise.sd_of_region_mean(nontumour[side].voxels, None, shape, mean))
    measurements = []
    for lesion in regions.lesions:
        row = lesion_rows[lesion.name]
        region = regions.masks.region(f"lesion:{lesion.segment_id}")
        mean = row["mean_bq_per_ml"]
        plus, minus = shifted_means.get(1, {}), shifted_means.get(-1, {})
        measurements.append(LesionMeasurement(
            lesion.segment_id, lesion.tags.side, context.volumes[(lesion.segment_id, 0)], mean,
            noise.sd_of_region_mean(region.voxels, region.weights, shape, mean),
            context.volumes.get((lesion.segment_id, 1)), plus.get(lesion.segment_id),
            context.volumes.get((lesion.segment_id, -1)), minus.get(lesion.segment_id)))
    routes = {side: regions.lobes[side].tags.route for side in SIDES}
    ia_side = next((side for side, route in routes.items() if route == "IA"), None)
    result = correct_lesions(measurements, background, calibration, sides=SIDES, ia_side=ia_side)
    note = MAX_NOTE if calibration.max_not_recommended else ""
    common = {"nontumour_margin_mm": regions.margin_mm, "nontumour_margin_rule": context.margin_rule,
              "calibration": calibration.label, "tn_max_note": "", "recovery_extrapolated": False}
    out = []
    index = {m.key: i for i, m in enumerate(measurements)}
    for row in rows:
        extra = dict(common)
        if row["role"] == "lesion":
            lesion = next(le for le in regions.lesions if le.name == row["region"])
            i = index[lesion.segment_id]
            recovery = result.recovery[i]
            below = bool(recovery is not None and recovery.below_smallest_sphere)
            curve = recovery.curve if recovery is not None else "not corrected"
            if below:
                curve += (f"; volume {measurements[i].volume_ml:.3g} mL below the smallest calibrated sphere "
                          f"({calibration.smallest_sphere_ml:.3g} mL): curve extrapolated")
            extra |= {"segmentation_volume_ml": measurements[i].volume_ml,
                      "corrected_mean_bq_per_ml": float(result.lesion_concentration[i]),
                      "tn_mean_corrected": float(result.lesion_tn[i]),
                      "contrast_recovery": recovery.value if recovery is not None else math.nan,
                      "contrast_recovery_sd": recovery.sd if recovery is not None else math.nan,
                      "recovery_curve": curve, "recovery_extrapolated": below, "correction": LESION_CORRECTION,
                      "tn_max_note": note} | result.lesion_columns(i)
        elif row["role"] == "tumour":
            extra |= {"tn_mean_corrected": result.lobe_tn[row["side"]], "correction": LOBE_CORRECTION,
                      "tn_max_note": note} | result.lobe_columns(row["side"])
        elif row["role"] == "non-tumour":
            mean, sd = background[row["side"]]
            extra |= {"corrected_mean_bq_per_ml": mean, "corrected_mean_bq_per_ml_sd": sd,
                      "corrected_mean_bq_per_ml_ci95_low": mean - COVERAGE_FACTOR_95 * sd,
                      "corrected_mean_bq_per_ml_ci95_high": mean + COVERAGE_FACTOR_95 * sd,
                      "correction": "none: voxels beyond the spill-in margin"}
        out.append(row | {column: extra.get(column) for column in CORRECTED_COLUMNS})
    ratio_extra = {}
    if ia_side is not None:
        iv_side = next(s for s in SIDES if s != ia_side)
        ratio_extra = {"tn_mean_corrected_ia": result.lobe_tn[ia_side], "tn_mean_corrected_iv": result.lobe_tn[iv_side],
                       "tn_mean_corrected_ia_over_iv": result.ratio, "calibration": calibration.label}
        ratio_extra |= result.ratio_columns()
        ratio_extra = {column: ratio_extra.get(column) for column in CORRECTED_RATIO_COLUMNS}
    return out, ratio_extra
