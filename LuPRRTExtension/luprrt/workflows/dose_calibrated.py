"""Dosimetry of one cycle with a site calibration: recovery-corrected activities and dose uncertainty.

With a :class:`luprrt.calibration.SiteCalibration` (``DosimetryOptions.site_calibration``):

* **Lesions** are corrected by the recovery curve at each scan: the lesion's occupancy-weighted
  mean concentration M and the non-tumour liver B of its lobe (beyond a spill-in margin of
  ``margin_fwhm`` x the effective FWHM, at least 10 mm, and one FWHM inside the liver outline)
  give the corrected concentration B x T/N (:func:`luprrt.calibration.corrected_ratio`, the
  lesion's own contrast and segmentation volume), times the segmentation volume = activity.
* **Organs** (kidneys, spleen, liver, marrow) are corrected at organ level by the geometric
  transfer matrix (:mod:`.dose_regions`) with the Gaussian PSF whose FWHM reproduces the
  calibration's measured recovery of the largest spheres at the highest contrast
  (:attr:`luprrt.calibration.SiteCalibration.organ_psf_fwhm_mm`; never a camera's nominal FWHM).

Region-TIA dose rows then carry the uncorrected TIA and dose beside the corrected ones, the
correction and calibration used, and the dose's standard uncertainty by source with its 95 %
interval (:data:`CALIBRATED_DOSE_COLUMNS`), propagated through the time-activity fit (Gear et al.,
Eur J Nucl Med Mol Imaging 2018;45:2456-2474; :mod:`luprrt.calibration.uncertainty`):

* counting noise of every scan (independent between scans; lesions: of M and B through the
  correction; organs: of every piece's mean through the inverse transfer matrix);
* calibration factor (scales every activity of the cycle alike);
* recovery: the curves' parameters along their principal axes (the same perturbation at every
  scan), or the effective FWHM +-1 SD for the transfer matrix;
* segmentation: every lesion and organ outline moved one voxel out and in (regions rebuilt), mass
  and activity together, half the range over sqrt(3).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import SimpleITK as sitk

from ..calibration import (
    BOUNDARY_RECTANGULAR_FACTOR,
    DEFAULT_EDGE_MARGIN_FWHM,
    DEFAULT_MARGIN_FWHM,
    MINIMUM_CONTRAST_RECOVERY,
    SiteCalibration,
    UncertaintyBudget,
    corrected_ratio,
    estimate_noise,
    shift_boundary,
)
from ..grid import image_on_grid
from ..liver import nontumour_mask
from ..physics import BQ_PER_MBQ
from ..segments import Segment, Segmentation
from .dose_regions import CycleRegions, build_cycle_regions, transfer_matrix
from .dose_tac import TAC_MODELS, fit_region_tac, single_scan_estimates

log = logging.getLogger(__name__)

CALIBRATED_DOSE_COLUMNS = ("uncorrected_tia_mbq_h", "uncorrected_dose_gy", "dose_gy_u", "dose_gy_ci95_low",
                           "dose_gy_ci95_high", "dose_gy_u_counting", "dose_gy_u_calibration", "dose_gy_u_recovery",
                           "dose_gy_u_segmentation", "correction", "calibration")
LESION_CORRECTION = "recovery curve (contrast recovery) at the segmentation volume and the lesion's contrast"
ORGAN_CORRECTION = "geometric transfer matrix, Gaussian PSF of FWHM {fwhm:.2f} mm reproducing the calibration's recovery"
SHIFTED_ROLES = ("lesion", "kidney", "spleen")
_LARGE_REGION_VOXELS = 60000


@dataclass
class CalibratedActivities:
    """Corrected activities of every region at every scan and what their uncertainty needs.

    ``activity_mbq`` / ``uncorrected_mbq``: (regions, scans). ``counting_sd_mbq``: independent
    counting SD of each activity. ``recovery``: alternative activity matrices (one per
    perturbation). ``segmentation``: {+1, -1: (activity matrix, mass per region)}.
    ``correction``: what corrected each region.
    """

    activity_mbq: np.ndarray
    uncorrected_mbq: np.ndarray
    counting_sd_mbq: np.ndarray
    recovery: list[np.ndarray] = field(default_factory=list)
    segmentation: dict = field(default_factory=dict)
    correction: list[str] = field(default_factory=list)
    margin_mm: float = math.nan


def calibrated_regions(segmentation: Segmentation, ct: sitk.Image | None, grid: sitk.Image,
                       calibration: SiteCalibration, *, pvc_fwhm_mm: float | None = None, supersampling: int = 3,
                       density_calibration=None) -> CycleRegions:
    """The cycle's regions with the transfer matrix of the calibration's effective FWHM (or ``pvc_fwhm_mm``)."""
    fwhm = pvc_fwhm_mm if pvc_fwhm_mm is not None else calibration.organ_psf_fwhm_mm
    if fwhm is None:
        raise ValueError(f"{calibration.label} has no effective resolution: the organ-level correction needs the "
                         "FWHM that reproduces the measured recovery (an IEC phantom calibration)")
    return build_cycle_regions(segmentation, ct, grid, pvc_fwhm_mm=fwhm, supersampling=supersampling,
                               calibration=density_calibration)


def with_shifted_structures(segmentation: Segmentation, shift, roles=SHIFTED_ROLES) -> Segmentation:
    """A copy with every segment of ``roles`` moved out/in, all of them in one new layer.

    ``shift``: voxels for all of them, or a mapping segment id -> voxels (missing ids: 0).
    """
    def move(segment_id: str, mask: np.ndarray) -> np.ndarray:
        return shift_boundary(mask, shift.get(segment_id, 0) if isinstance(shift, dict) else shift)

    return with_moved_structures(segmentation, move, roles)


def with_moved_structures(segmentation: Segmentation, move: Callable[[str, np.ndarray], np.ndarray],
                          roles=SHIFTED_ROLES) -> Segmentation:
    """A copy with every segment of ``roles`` replaced by ``move(segment id, mask)``, all in one new layer.

    Organs are moved first, lesions last (``move`` is called in that order).
    """
    moved_segments = [s for s in segmentation.segments if s.tags.role in roles]
    kept = segmentation.without([s.segment_id for s in moved_segments])
    labels = np.zeros(segmentation.reference.GetSize()[::-1], dtype=np.uint16)
    # Organs first, lesions last: where a grown lesion meets a grown organ, the lesion keeps the voxel.
    order = sorted(moved_segments, key=lambda s: s.tags.role == "lesion")
    for value, segment in enumerate(order, start=1):
        labels[move(segment.segment_id, segmentation.mask_array(segment.segment_id))] = value
    present = set(np.unique(labels).tolist())
    moved = [Segment(s.segment_id, s.name, s.tags, len(kept.layers), value, s.color)
             for value, s in enumerate(order, start=1) if value in present]
    return Segmentation([*kept.layers, image_on_grid(labels, segmentation.reference)], [*kept.segments, *moved])


def calibrated_activities(regions: CycleRegions, images: list[sitk.Image], calibration: SiteCalibration, *,
                          segmentation: Segmentation, ct: sitk.Image | None, supersampling: int = 3,
                          density_calibration=None, margin_fwhm: float = DEFAULT_MARGIN_FWHM,
                          edge_margin_fwhm: float = DEFAULT_EDGE_MARGIN_FWHM,
                          boundary_uncertainty: bool = True) -> CalibratedActivities:
    """Recovery-corrected lesion activities, GTM organ activities, and the perturbations of their uncertainty."""
    n_regions, n_scans = len(regions.regions), len(images)
    margin_mm, _ = calibration.nontumour_margin(margin_fwhm)
    edge_mm = edge_margin_fwhm * (calibration.effective_fwhm_mm or 0.0)
    lesions = [r for r, region in enumerate(regions.regions) if region.role == "lesion"]
    activity = np.zeros((n_regions, n_scans))
    uncorrected = np.zeros((n_regions, n_scans))
    counting = np.zeros((n_regions, n_scans))
    recovery_sets = calibration.recovery_perturbations()
    recovery = [np.zeros((n_regions, n_scans)) for _ in recovery_sets]
    fwhm_sd = calibration.organ_psf_fwhm_sd_mm or 0.0
    organ_transfers = [transfer_matrix(regions, regions.pvc_fwhm_mm + sign * fwhm_sd) for sign in (1, -1)] \
        if fwhm_sd > 0 and regions.pvc_fwhm_mm is not None else []
    organ_recovery = [np.zeros((n_regions, n_scans)) for _ in organ_transfers]
    background_mask = _background_masks(regions, margin_mm, edge_mm)
    lesion_volume = regions.volume_ml
    for k, image in enumerate(images):
        values = sitk.GetArrayViewFromImage(image)
        measured = regions.activity(image)
        activity[:, k] = measured.activity_mbq
        uncorrected[:, k] = measured.uncorrected_mbq
        noise = estimate_noise(values, np.logical_or.reduce(list(background_mask.values())),
                               image.GetSpacing()[::-1], exponent=calibration.noise_exponent)
        stats = regions.masks.statistics(image, unit="Bq/mL")
        piece_mean = np.nan_to_num(stats.mean)
        piece_sd = np.array([_piece_sd(noise, regions, j, piece_mean[j], values.shape)
                             for j in range(len(regions.piece_segments))])
        counting[:, k] = _organ_counting_sd(regions, piece_sd)
        for alternative, transfer in zip(organ_recovery, organ_transfers, strict=True):
            alternative[:, k] = replace(regions, transfer=transfer).activity(image).activity_mbq
        backgrounds = {side: (float(values[mask].mean()), noise.sd_of_region_mean(np.flatnonzero(mask), None,
                                                                                 values.shape, float(values[mask].mean())))
                       for side, mask in background_mask.items()}
        for r in lesions:
            region = regions.regions[r]
            piece = region.pieces[0]
            mean, mean_sd = piece_mean[piece], piece_sd[piece]
            b, b_sd = backgrounds.get(region.side) or backgrounds[None]
            volume = float(lesion_volume[r])

            def corrected(m, bg, vol=volume, curves=None):
                return corrected_ratio(m / bg, vol, calibration, curves)[0] * bg * vol / BQ_PER_MBQ

            activity[r, k] = corrected(mean, b)
            counting[r, k] = math.hypot(_half_difference(corrected(mean + mean_sd, b), corrected(mean - mean_sd, b)),
                                        _half_difference(corrected(mean, b + b_sd), corrected(mean, b - b_sd)))
            for alternative, curves in zip(recovery, recovery_sets, strict=True):
                alternative[r, k] = corrected(mean, b, curves=curves)
    correction = [ORGAN_CORRECTION.format(fwhm=regions.pvc_fwhm_mm)] * n_regions
    smallest = calibration.smallest_sphere_ml
    for r in lesions:
        if not np.all(np.isfinite(activity[r])):
            # The curve cannot correct this lesion at some scan (recovery below the minimum): leave the
            # whole curve uncorrected rather than mix corrected and uncorrected scans.
            activity[r] = uncorrected[r]
            counting[r] = 0.0
            correction[r] = (f"not corrected: contrast recovery below {MINIMUM_CONTRAST_RECOVERY:g} at "
                             f"{lesion_volume[r]:.3g} mL (smaller than the calibration supports)")
            for alternative in recovery:
                alternative[r] = activity[r]
            continue
        correction[r] = LESION_CORRECTION + (
            f"; {lesion_volume[r]:.3g} mL below the smallest calibrated sphere ({smallest:.3g} mL): curve "
            "extrapolated" if lesion_volume[r] < smallest else "")
    for alternative in recovery:
        for r in range(n_regions):
            if r not in lesions:
                alternative[r] = activity[r]
    for alternative in organ_recovery:
        alternative[lesions] = activity[lesions]
    result = CalibratedActivities(activity, uncorrected, counting, recovery + organ_recovery,
                                  correction=correction, margin_mm=margin_mm)
    if boundary_uncertainty:
        for shift in (1, -1):
            shifted = calibrated_regions(with_shifted_structures(segmentation, shift), ct, regions.grid, calibration,
                                         pvc_fwhm_mm=regions.pvc_fwhm_mm, supersampling=supersampling,
                                         density_calibration=density_calibration)
            result.segmentation[shift] = _shifted_activities(shifted, regions, images, calibration, background_mask,
                                                             activity, uncorrected, lesions)
    return result


def _half_difference(up: float, down: float) -> float:
    if math.isnan(up) or math.isnan(down):
        return 0.0
    return abs(up - down) / 2.0


def _background_masks(regions: CycleRegions, margin_mm: float, edge_mm: float) -> dict:
    """Non-tumour liver beyond the margin from every lesion and the edge margin from the liver outline.

    Keyed by lobe side (None: all of it); from the pieces on the SPECT grid (nearest neighbour).
    """
    labels = regions.piece_labels_grid
    roles = np.array([""] + [("lesion" if s.tags.role == "lesion" else
                              "non-tumour" if s.tags.role in ("lobe", "liver", "non-tumour") else "other")
                             for s in regions.piece_segments], dtype=object)
    sides = np.array([None] + [s.tags.side for s in regions.piece_segments], dtype=object)
    role = roles[labels]
    lesion = role == "lesion"
    liver = role == "non-tumour"
    spacing = regions.grid.GetSpacing()[::-1]
    nontumour = nontumour_mask(liver, lesion, spacing, margin_mm)
    if edge_mm > 0:
        from scipy import ndimage

        nontumour &= ndimage.distance_transform_edt(liver | lesion, sampling=spacing) > edge_mm
    if nontumour.sum() < 50:
        raise ValueError(f"fewer than 50 non-tumour liver voxels lie {margin_mm:.3g} mm from every lesion and "
                         f"{edge_mm:.3g} mm inside the liver: the recovery correction has no background; "
                         "check the liver segment, or use a smaller margin")
    masks = {None: nontumour}
    side = sides[labels]
    for name in ("right", "left"):
        mask = nontumour & (side == name)
        if mask.sum() >= 50:
            masks[name] = mask
    return masks


def _piece_sd(noise, regions: CycleRegions, piece: int, level: float, shape) -> float:
    """Counting SD of a piece's mean; large pieces by the correlation-volume formula."""
    region = regions.masks.region(regions.masks.names[piece])
    if region.voxels.size == 0:
        return 0.0
    if region.voxels.size > _LARGE_REGION_VOXELS:
        weights = np.ones(region.voxels.size) if region.weights is None else region.weights
        effective = weights.sum() ** 2 / np.sum(weights**2)
        return noise.voxel_sd_at(level) * math.sqrt(noise.correlation_volume_voxels / effective)
    return noise.sd_of_region_mean(region.voxels, region.weights, shape, level)


def _organ_counting_sd(regions: CycleRegions, piece_sd: np.ndarray) -> np.ndarray:
    """Counting SD (MBq) of every region's activity from the SDs of the piece means.

    With a transfer matrix W the piece concentrations are W^-1 t, so a piece mean's noise reaches
    every region through W^-1 (independent pieces); without one a region's activity is its mean
    times its occupied volume.
    """
    if regions.transfer is None:
        occupied = np.fromiter(regions.masks.volume_ml().values(), dtype=float)
        sensitivity = np.diag(occupied)
    else:
        valid = np.any(regions.transfer != 0, axis=0)
        inverse = np.zeros_like(regions.transfer)
        inverse[np.ix_(valid, valid)] = np.linalg.inv(regions.transfer[np.ix_(valid, valid)])
        sensitivity = regions.piece_volume_ml[:, None] * inverse
    per_region = regions.membership @ sensitivity / BQ_PER_MBQ
    return np.sqrt((per_region**2) @ (piece_sd**2))


def _shifted_activities(shifted: CycleRegions, regions: CycleRegions, images, calibration, background_mask,
                        activity: np.ndarray, uncorrected: np.ndarray,
                        lesions: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(activities, masses) of every region with the outlines moved; regions matched by name."""
    out = activity.copy()
    mass = regions.mass_g.copy()
    names = {region.name: r for r, region in enumerate(shifted.regions)}
    volumes = shifted.volume_ml
    for k, image in enumerate(images):
        values = sitk.GetArrayViewFromImage(image)
        measured = shifted.activity(image)
        stats = shifted.masks.statistics(image, unit="Bq/mL")
        for r, region in enumerate(regions.regions):
            s = names.get(region.name)
            if s is None:
                continue
            mass[r] = shifted.mass_g[s]
            if r in lesions and np.array_equal(activity[r], uncorrected[r]):
                out[r, k] = measured.uncorrected_mbq[s]
            elif r in lesions:
                mask = background_mask.get(region.side, background_mask[None])
                b = float(values[mask].mean())
                mean = float(stats.mean[shifted.regions[s].pieces[0]])
                out[r, k] = corrected_ratio(mean / b, float(volumes[s]), calibration)[0] * b * float(volumes[s]) \
                    / BQ_PER_MBQ
            else:
                out[r, k] = measured.activity_mbq[s]
    return out, mass


def tia_function(times_h: np.ndarray, model: str, reference_fit=None, population=None):
    """Function mapping an activity vector (MBq) at ``times_h`` (h) to its TIA (MBq h).

    The TAC model is fixed (the primary estimate's); ``population``: :class:`.dose_tac.PopulationUptake`
    of the constrained bi-exponentials.
    """
    times = np.asarray(times_h, dtype=float)
    if times.size >= 2:
        fixed = model if model in TAC_MODELS else "auto"

        def tia(activity: np.ndarray) -> float:
            try:
                return float(fit_region_tac(times, np.maximum(activity, 0.0), fixed, population).tia_mbq_h)
            except ValueError:
                return math.nan

        return tia

    def single(activity: np.ndarray) -> float:
        estimates = single_scan_estimates(times[0], float(activity[0]), reference_fit)
        return next(e.tia_mbq_h for e in estimates if e.primary)

    return single


def dose_budget(activities: CalibratedActivities, region: int, tia, dose_of, mass_g: float,
                calibration_relative_sd: float) -> UncertaintyBudget:
    """Uncertainty budget of one region's dose: ``dose_of(tia, mass)`` from ``tia(activity vector)``."""
    base_activity = activities.activity_mbq[region]
    value = dose_of(tia(base_activity), mass_g)
    budget = UncertaintyBudget(np.array([value]))

    def evaluate(state) -> np.ndarray:
        vector, mass = state
        return np.array([dose_of(tia(vector), mass)])

    for k, sd in enumerate(activities.counting_sd_mbq[region]):
        if sd > 0:
            plus, minus = base_activity.copy(), base_activity.copy()
            plus[k] += sd
            minus[k] -= sd
            budget.central("counting", evaluate, (plus, mass_g), (minus, mass_g))
    budget.relative("calibration", calibration_relative_sd)
    for alternative in activities.recovery:
        if not np.array_equal(alternative[region], base_activity):
            budget.add("recovery", evaluate((alternative[region], mass_g)) - budget.values)
    if activities.segmentation:
        (up, up_mass), (down, down_mass) = activities.segmentation[1], activities.segmentation[-1]
        budget.central("segmentation", evaluate, (up[region], up_mass[region]), (down[region], down_mass[region]),
                       BOUNDARY_RECTANGULAR_FACTOR)
    return budget

