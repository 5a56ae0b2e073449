"""Tumour-to-non-tumour (T/N) activity-concentration ratios per lobe and per lesion.

The primary endpoint of the IA-vs-IV study (LUTIA; Ebbers et al., EJNMMI 2024) is
the T/N ratio on post-treatment SPECT/CT in the intra-arterially treated lobe versus
the other lobe, after cycle 1 (cycles 2-4 secondary). The published analysis used
the mean-uptake T/N of up to three target lesions per lobe: the per-lesion rows
below give exactly those numbers; the lobe rows pool all lesions of a lobe.

Definitions used here
---------------------
* Non-tumour liver of a lobe = lobe AND NOT any lesion, minus a safety margin:
  voxels whose centre lies within ``margin_mm`` (inclusive, Euclidean, voxel spacing
  honoured) of the centre of a lesion voxel are removed too (:func:`near_lesions`:
  a dilation by the ball of voxel offsets, or a distance transform for large
  margins), so spill-in from the lesions' blurred edges does not raise the
  reference level. Default margin: one SPECT voxel (the largest spacing).
* Lesion T/N: lesion mean (or max) concentration / mean of the non-tumour liver of
  the lesion's lobe. ``tn_max`` = lesion max / non-tumour *mean* (a max over a
  noisy non-tumour region would be a biased reference).
* Lobe T/N: all lesions of the lobe pooled into one region (a voxel-weighted mean,
  so large lesions weigh more) versus the lobe's non-tumour liver.
* IA/IV ratio: lobe T/N of the IA lobe / lobe T/N of the IV lobe, per cycle.

Rows (one list for all cycles; columns :data:`TN_COLUMNS`) come in four kinds
(``role``): ``"lobe"`` (the whole lobe), ``"non-tumour"`` (its non-tumour liver and
its volume), ``"tumour"`` (the lobe's lesions pooled: **the lobe T/N**) and
``"lesion"``. In every row ``tn_mean = mean_bq_per_ml / nontumour_mean_bq_per_ml``
and ``tn_max = max_bq_per_ml / nontumour_mean_bq_per_ml``; they are NaN for the
lobe and non-tumour rows.

Lesion rows also say whether the lesion is one of its lobe's target lesions of the trial's
endpoint (:mod:`luprrt.liver.targets`, :data:`TARGET_COLUMNS`); the endpoint itself is in
``TNResult.trial_rows``. With a site calibration every row gains the recovery-corrected values
and their 95 % intervals (:mod:`luprrt.liver.tn_corrected`).

All regions of one SPECT grid are built once (:func:`build_lobe_regions`) and reduced
with one pass over each cycle's SPECT (:class:`luprrt.regionstats.RegionMasks`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..calibration import DEFAULT_EDGE_MARGIN_FWHM, DEFAULT_MARGIN_FWHM, SiteCalibration
from ..grid import GridGeometry, same_grid
from ..provenance import ProgressCallback, no_progress
from ..regionstats import Region, RegionMasks
from ..segments import SIDES, Segment, Segmentation, segment_occupancy, segmentation_on_grid
from .targets import (
    TARGET_COLUMNS,
    TRIAL_MIN_DIAMETER_MM,
    TRIAL_TARGETS_PER_LOBE,
    lesion_longest_diameters_mm,
    select_target_lesions,
    trial_definition,
    trial_endpoint_rows,
)
from .tn_corrected import CorrectionContext, corrected_cycle_rows, lesion_volumes, with_shifted_lesions

log = logging.getLogger(__name__)

TN_COLUMNS = ("cycle", "hours_post_injection", "region", "role", "side", "route", "lesion_id", "volume_ml",
              "mean_bq_per_ml", "max_bq_per_ml", "total_mbq", "nontumour_mean_bq_per_ml", "tn_mean", "tn_max",
              *TARGET_COLUMNS)
RATIO_COLUMNS = ("cycle", "hours_post_injection", "ia_side", "tn_mean_ia", "tn_mean_iv", "tn_mean_ia_over_iv",
                 "tn_max_ia", "tn_max_iv", "tn_max_ia_over_iv")
OCCUPANCY_MODES = ("nearest", "fractional")
# Up to this many voxel offsets in the margin ball, shifted ORs beat the distance transform.
_MAX_DILATION_OFFSETS = 33


@dataclass(frozen=True)
class CycleSpect:
    """One quantitative SPECT of a treatment cycle.

    spect : activity concentration in Bq/mL (not decay-corrected: at scan time)
    hours_post_injection : scan time after the administration (h)
    segmentation : the cycle's own segmentation (e.g. on its CT); None = the shared one
    administered_activity_mbq : activity given in this cycle (MBq), for uptake in %
    """

    cycle: int
    hours_post_injection: float
    spect: sitk.Image
    segmentation: Segmentation | None = None
    administered_activity_mbq: float | None = None


@dataclass(frozen=True)
class LobeRegions:
    """The T/N regions of one SPECT grid, reused for every cycle imaged on it."""

    masks: RegionMasks
    lobes: dict[str, Segment]
    lesions: tuple[Segment, ...]
    margin_mm: float
    nontumour_volume_ml: dict[str, float]
    grid: GridGeometry
    edge_margin_mm: float = 0.0


@dataclass(frozen=True)
class TNResult:
    """T/N rows of all cycles (:data:`TN_COLUMNS`), IA/IV ratio rows and the parameters used.

    ``trial_rows`` / ``trial_ratio_rows``: the trial's endpoint (target lesions per lobe and their
    mean T/N, :mod:`luprrt.liver.targets`: :data:`TRIAL_COLUMNS`, :data:`TRIAL_RATIO_COLUMNS`).
    """

    rows: list[dict]
    ratio_rows: list[dict]
    parameters: dict = field(default_factory=dict)
    trial_rows: list[dict] = field(default_factory=list)
    trial_ratio_rows: list[dict] = field(default_factory=list)

    def lobe_tn(self, cycle: int, side: str) -> tuple[float, float]:
        """(tn_mean, tn_max) of one lobe in one cycle."""
        for row in self.rows:
            if row["cycle"] == cycle and row["role"] == "tumour" and row["side"] == side:
                return row["tn_mean"], row["tn_max"]
        raise KeyError(f"no lobe T/N for cycle {cycle}, side {side!r}")


def nontumour_mask(lobe_mask: np.ndarray, lesion_mask: np.ndarray, spacing_zyx_mm,
                   margin_mm: float) -> np.ndarray:
    """Lobe voxels that are not lesion and lie more than ``margin_mm`` from every lesion voxel.

    Distances are between voxel centres (mm, Euclidean, anisotropic spacing honoured);
    a voxel at exactly ``margin_mm`` is removed. The work is done inside the lobe's
    bounding box grown by the margin (see :func:`near_lesions` for the method).
    """
    if margin_mm < 0:
        raise ValueError(f"non-tumour margin must be >= 0 mm, got {margin_mm}")
    lobe_mask = np.asarray(lobe_mask, dtype=bool)
    lesion_mask = np.asarray(lesion_mask, dtype=bool)
    spacing = np.asarray(spacing_zyx_mm, dtype=float)
    result = np.zeros_like(lobe_mask)
    box = ndimage.find_objects(lobe_mask.astype(np.uint8))
    if not box:
        return result
    grow = np.ceil(margin_mm / spacing).astype(int) + 1
    crop = tuple(slice(max(s.start - g, 0), min(s.stop + g, n))
                 for s, g, n in zip(box[0], grow, lobe_mask.shape, strict=True))
    result[crop] = lobe_mask[crop] & ~near_lesions(lesion_mask[crop], spacing, margin_mm)
    return result


def near_lesions(lesion_mask: np.ndarray, spacing_zyx_mm, margin_mm: float) -> np.ndarray:
    """Voxels whose centre lies within ``margin_mm`` (inclusive) of a lesion voxel's centre.

    Small margins (a ball of at most :data:`_MAX_DILATION_OFFSETS` voxel offsets)
    dilate the lesions with that ball (ORs of shifted copies); larger ones threshold
    a Euclidean distance transform (scipy.ndimage.distance_transform_edt with the
    voxel spacing). Both give the same voxels. Lesion voxels beyond the array edge
    are not seen: pass an array grown by the margin.
    """
    lesion = np.asarray(lesion_mask, dtype=bool)
    spacing = np.asarray(spacing_zyx_mm, dtype=float)
    if not lesion.any():
        return lesion.copy()
    # Inclusive margin; the tolerance absorbs rounding of sqrt(sum (k s)^2) at exactly d.
    limit = margin_mm * (1 + 1e-9) + 1e-9
    reach = np.floor(limit / spacing).astype(int)
    offsets = np.indices(2 * reach + 1).reshape(3, -1).T - reach
    ball = np.linalg.norm(offsets * spacing, axis=1) <= limit
    if ball.sum() <= _MAX_DILATION_OFFSETS:
        return _dilate(lesion, offsets[ball])
    return ndimage.distance_transform_edt(~lesion, sampling=spacing) <= limit


def _dilate(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Binary dilation by a small set of voxel offsets, as ORs of shifted copies (no border wrap)."""
    result = mask.copy()
    for offset in offsets:
        target = tuple(slice(max(o, 0), n + min(o, 0)) for o, n in zip(offset, mask.shape, strict=True))
        source = tuple(slice(max(-o, 0), n - max(o, 0)) for o, n in zip(offset, mask.shape, strict=True))
        result[target] |= mask[source]
    return result


def build_lobe_regions(segmentation: Segmentation, reference: sitk.Image, *, margin_mm: float | None = None,
                       occupancy: str = "nearest", supersampling: int = 5,
                       edge_margin_mm: float = 0.0) -> LobeRegions:
    """All T/N regions on the grid of ``reference``: lobes, lesions, pooled tumour, non-tumour.

    Parameters
    ----------
    segmentation : Segmentation
        Lobes with sides (routes optional) and lesions tagged with their lobe side
        (:func:`luprrt.liver.lesions.assign_lesions_to_lobes`), on any grid.
    reference : SimpleITK.Image
        The SPECT (grid).
    margin_mm : float, optional
        Non-tumour safety margin around lesions (mm); default one SPECT voxel.
    occupancy : {"nearest", "fractional"}
        How lobes and lesions reach the SPECT grid (see :mod:`luprrt.segments.on_grid`).
        With "fractional" the non-tumour liver is still whole voxels: voxels of the
        nearest-neighbour lobe touched by no lesion, outside the margin around every
        voxel a lesion touches.
    supersampling : int
        Sub-voxels per axis for "fractional".
    edge_margin_mm : float
        Also leave out of the non-tumour liver the voxels within this distance of the liver's
        outline (lobes and lesions together): there the reconstruction spills liver activity out
        of the organ and the lower activity around it in (0 = keep them).

    Notes
    -----
    With "nearest" the regions are built by label algebra on one partition of the
    liver's bounding box, piece = (lesion index x 3 + lobe code) x 2 + non-tumour
    flag, so every region is a union of pieces (:meth:`RegionMasks.from_partition`);
    lesions must then be disjoint on the SPECT grid (overlapping lesions raise a
    ValueError naming them), as must the two lobes.
    """
    if occupancy not in OCCUPANCY_MODES:
        raise ValueError(f"unknown occupancy {occupancy!r}; expected one of {OCCUPANCY_MODES}")
    grid = GridGeometry.from_image(reference)
    margin_mm = max(grid.spacing) if margin_mm is None else float(margin_mm)
    if not margin_mm >= 0:
        raise ValueError(f"non-tumour margin must be >= 0 mm, got {margin_mm}")
    if not edge_margin_mm >= 0:
        raise ValueError(f"liver-edge margin must be >= 0 mm, got {edge_margin_mm}")
    lobes = {side: segmentation.find_one("lobe", side=side) for side in SIDES}
    lesions = tuple(segmentation.find(role="lesion"))
    for lesion in lesions:
        if lesion.tags.side not in lobes:
            raise ValueError(f"lesion {lesion.name!r} has no lobe side tag; assign lesions to lobes first "
                             "(luprrt.liver.lesions.assign_lesions_to_lobes)")
    on_grid = (segmentation if same_grid(segmentation.reference, reference)
               else segmentation_on_grid(segmentation, reference, allow_empty=occupancy == "fractional"))
    # Label algebra inside the bounding box of lobes and lesions, grown by the margin: the work
    # scales with the liver, not with the SPECT field of view.
    layers = sorted({seg.layer for seg in (*lobes.values(), *lesions)})
    box = _occupied_box(on_grid, layers, grid, max(margin_mm, edge_margin_mm))
    lobe_code = _codes_in_box(on_grid, [lobes[side] for side in SIDES], box, "lobes")  # 1 right, 2 left
    if occupancy == "nearest":
        lesion_code = _codes_in_box(on_grid, list(lesions), box, "lesions")  # lesion k -> k + 1
        nontumour = _nontumour_in_box(lobe_code, lesion_code > 0, grid, margin_mm, edge_margin_mm)
        # One labelling of the box (see Notes), in the smallest integer type that holds every piece
        # label: the box passes below are memory-bound.
        n_pieces = 6 * (len(lesions) + 1)
        piece = lesion_code.astype(np.uint16 if n_pieces <= 1 << 16 else np.int64)
        piece *= 3
        piece += lobe_code
        piece *= 2
        piece += nontumour
        region_masks = _partition_regions(reference, box, piece, lesions)
        # Emptiness checks from the region volumes (a region is empty iff its volume is 0), so the
        # box needs no histogram of its own.
        volumes = region_masks.volume_ml()
        _check_not_empty([volumes[f"lobe:{side}"] for side in SIDES], [lobes[side] for side in SIDES], grid)
        _check_not_empty([volumes[f"lesion:{seg.segment_id}"] for seg in lesions], lesions, grid)
        _check_nontumour([volumes[f"nontumour:{side}"] for side in SIDES], margin_mm)
    else:
        _check_not_empty(np.bincount(lobe_code.ravel(), minlength=3)[1:], [lobes[side] for side in SIDES],
                         grid)
        regions = segment_occupancy(segmentation, reference, segment_ids=[lobes[s].segment_id for s in SIDES]
                                    + [seg.segment_id for seg in lesions], supersampling=supersampling)
        _check_not_empty([regions[seg.segment_id].voxels.size for seg in lesions], lesions, grid)
        lesion_in_box = _grid_to_box([regions[seg.segment_id].voxels for seg in lesions], box, grid.shape)
        nontumour = _nontumour_in_box(lobe_code, lesion_in_box, grid, margin_mm, edge_margin_mm)
        _check_nontumour([np.count_nonzero(nontumour & (lobe_code == code)) for code in (1, 2)], margin_mm)
        masks: dict[str, Region] = {}
        for code, side in enumerate(SIDES, start=1):
            masks[f"lobe:{side}"] = regions[lobes[side].segment_id]
            in_lobe = nontumour & (lobe_code == code)
            masks[f"nontumour:{side}"] = Region(_box_to_grid(np.flatnonzero(in_lobe), box, grid.shape))
            masks[f"tumour:{side}"] = _pooled([regions[s.segment_id] for s in lesions if s.tags.side == side])
        for seg in lesions:
            masks[f"lesion:{seg.segment_id}"] = regions[seg.segment_id]
        region_masks = RegionMasks(reference, masks)
        volumes = region_masks.volume_ml()
    return LobeRegions(region_masks, lobes, lesions, margin_mm,
                       {side: volumes[f"nontumour:{side}"] for side in SIDES}, grid, float(edge_margin_mm))


def tumour_to_nontumour(cycles: Sequence[CycleSpect], segmentation: Segmentation | None = None, *,
                        margin_mm: float | None = None, occupancy: str = "nearest", supersampling: int = 5,
                        calibration: SiteCalibration | None = None, margin_fwhm: float = DEFAULT_MARGIN_FWHM,
                        edge_margin_mm: float | None = None, edge_margin_fwhm: float = DEFAULT_EDGE_MARGIN_FWHM,
                        boundary_uncertainty: bool = True, target_lesions: int = TRIAL_TARGETS_PER_LOBE,
                        target_min_diameter_mm: float = TRIAL_MIN_DIAMETER_MM,
                        progress: ProgressCallback | None = None) -> TNResult:
    """Lobe and lesion T/N for every cycle, and the IA/IV ratio of the lobe T/N.

    Parameters
    ----------
    cycles : sequence of CycleSpect
        Any number of SPECTs (Bq/mL), each with its cycle number and hours after
        injection, optionally its own segmentation.
    segmentation : Segmentation, optional
        Used for cycles without their own segmentation.
    margin_mm, occupancy, supersampling
        See :func:`build_lobe_regions`. With a calibration and no ``margin_mm``, the margin is
        ``margin_fwhm`` x the calibration's effective FWHM, at least 10 mm.
    calibration : SiteCalibration, optional
        Adds recovery-corrected values with 95 % intervals to every row
        (:mod:`luprrt.liver.tn_corrected`, :data:`CORRECTED_COLUMNS`). Regions then use
        fractional occupancy, the definition of a mean the recovery curves were measured with.
    margin_fwhm : float
        Spill-in margin in units of the effective FWHM (with a calibration).
    edge_margin_mm, edge_margin_fwhm : float
        Distance of the non-tumour liver from the liver's outline (:func:`build_lobe_regions`);
        default 0 without a calibration, ``edge_margin_fwhm`` x the effective FWHM with one.
    boundary_uncertainty : bool
        With a calibration: include the segmentation-boundary (+-1 voxel) uncertainty (two more
        region builds per grid).
    target_lesions, target_min_diameter_mm
        The trial endpoint's target lesions: up to this many per lobe, longest axial diameter
        above this (:mod:`luprrt.liver.targets`); lesion rows say which are targets.
    progress : callable(fraction, message), optional

    Returns
    -------
    TNResult
        ``rows`` (:data:`TN_COLUMNS`, four row kinds, see the module notes; plus
        :data:`CORRECTED_COLUMNS` with a calibration) and ``ratio_rows`` (:data:`RATIO_COLUMNS`,
        plus :data:`CORRECTED_RATIO_COLUMNS`; only when both lobes carry routes).
    """
    if not cycles:
        raise ValueError("no SPECT cycles given")
    progress = progress or no_progress
    margin_rule = (f"{margin_mm:g} mm (given)" if margin_mm is not None
                   else "one SPECT voxel (default without a calibration)")
    if calibration is not None:
        if not calibration.has_recovery:
            raise ValueError(f"{calibration.label} has no recovery curve; T/N correction needs an IEC phantom "
                             "calibration or a recovery table")
        if margin_mm is None:
            margin_mm, margin_rule = calibration.nontumour_margin(margin_fwhm)
        if edge_margin_mm is None and calibration.effective_fwhm_mm is not None:
            edge_margin_mm = edge_margin_fwhm * calibration.effective_fwhm_mm
        if occupancy != "fractional":
            # The recovery curves hold occupancy-weighted means over the spheres' true volumes; a lesion
            # mean over nearest-neighbour voxels (a different volume) would not match them.
            log.info("recovery correction uses fractional occupancy (the calibration's definition of a mean)")
            occupancy = "fractional"
        if calibration.max_not_recommended:
            log.warning("max-based T/N is not recommended with %s: resolution-recovered OSEM overshoots at edges "
                        "(use the mean-based, recovery-corrected T/N)", calibration.label)
    edge_margin_mm = edge_margin_mm or 0.0
    if edge_margin_mm > 0:
        margin_rule += f"; {edge_margin_mm:.3g} mm from the liver outline"
    definition = trial_definition(target_lesions, target_min_diameter_mm)
    targets: dict[int, tuple[dict, dict]] = {}
    built: dict[tuple[int, GridGeometry], LobeRegions] = {}
    contexts: dict[tuple[int, GridGeometry], CorrectionContext] = {}
    rows: list[dict] = []
    ratio_rows: list[dict] = []
    for n, cycle in enumerate(cycles):
        seg = cycle.segmentation or segmentation
        if seg is None:
            raise ValueError(f"cycle {cycle.cycle} has no segmentation and no shared one was given")
        if not math.isfinite(cycle.hours_post_injection) or cycle.hours_post_injection < 0:
            raise ValueError(f"cycle {cycle.cycle}: hours_post_injection must be >= 0, got "
                             f"{cycle.hours_post_injection}")
        key = (id(seg), GridGeometry.from_image(cycle.spect))
        if key not in built:
            built[key] = build_lobe_regions(seg, cycle.spect, margin_mm=margin_mm, occupancy=occupancy,
                                            supersampling=supersampling, edge_margin_mm=edge_margin_mm)
            if calibration is not None:
                contexts[key] = _correction_context(seg, cycle.spect, built[key], calibration, margin_rule,
                                                    occupancy, supersampling, boundary_uncertainty)
        regions = built[key]
        if id(seg) not in targets:
            diameters = lesion_longest_diameters_mm(seg, regions.lesions)
            targets[id(seg)] = (diameters, select_target_lesions(
                [(le.segment_id, le.tags.side, diameters[le.segment_id]) for le in regions.lesions],
                max_per_lobe=target_lesions, min_diameter_mm=target_min_diameter_mm))
        cycle_rows = _cycle_rows(cycle, regions, *targets[id(seg)])
        ratio = _ratio_row(cycle, regions, cycle_rows)
        if calibration is not None:
            context = contexts[key]
            shifted = {shift: _lesion_means(cycle.spect, shifted_regions)
                       for shift, shifted_regions in context.shifted.items()}
            cycle_rows, ratio_extra = corrected_cycle_rows(cycle.spect, regions, cycle_rows, context, shifted)
            if ratio is not None:
                ratio |= ratio_extra
        rows += cycle_rows
        if ratio is not None:
            ratio_rows.append(ratio)
        progress((n + 1) / len(cycles), f"T/N of cycle {cycle.cycle}")
    if not ratio_rows:
        log.info("lobes carry no IA/IV routes; no IA/IV ratio computed (luprrt.liver.lobes.assign_routes)")
    margins = sorted({r.margin_mm for r in built.values()})
    parameters = {"margin_mm": margins[0] if len(margins) == 1 else margins, "margin_rule": margin_rule,
                  "edge_margin_mm": edge_margin_mm,
                  "occupancy": occupancy, "supersampling": supersampling if occupancy == "fractional" else None,
                  "calibration": calibration.label if calibration is not None else None}
    parameters |= {"target_lesions_per_lobe": target_lesions, "target_min_diameter_mm": target_min_diameter_mm,
                   "trial_definition": definition}
    trial_rows, trial_ratio_rows = trial_endpoint_rows(rows, definition)
    return TNResult(rows, ratio_rows, parameters, trial_rows, trial_ratio_rows)


def _correction_context(segmentation: Segmentation, spect: sitk.Image, regions: LobeRegions,
                        calibration: SiteCalibration, margin_rule: str, occupancy: str, supersampling: int,
                        boundary_uncertainty: bool) -> CorrectionContext:
    """Lesion volumes and (for the boundary uncertainty) the regions with every lesion moved one voxel."""
    context = CorrectionContext(calibration, margin_rule)
    shifts = (0, 1, -1) if boundary_uncertainty else (0,)
    for shift in shifts:
        for segment_id, volume in lesion_volumes(segmentation, regions.lesions, shift).items():
            context.volumes[(segment_id, shift)] = volume
        if shift:
            context.shifted[shift] = build_lobe_regions(with_shifted_lesions(segmentation, shift), spect,
                                                        margin_mm=regions.margin_mm, occupancy=occupancy,
                                                        supersampling=supersampling,
                                                        edge_margin_mm=regions.edge_margin_mm)
    return context


def _lesion_means(spect: sitk.Image, regions: LobeRegions) -> dict[str, float]:
    stats = regions.masks.statistics(spect, unit="Bq/mL")
    return {name.split(":", 1)[1]: float(mean) for name, mean in zip(stats.label, stats.mean, strict=True)
            if name.startswith("lesion:")}


def _occupied_box(on_grid: Segmentation, layers: list[int], grid: GridGeometry,
                  margin_mm: float) -> tuple[slice, ...]:
    """Bounding box of the nonzero voxels of the given layers, grown by the margin and one voxel."""
    low = np.array(grid.shape)
    high = np.zeros(3, dtype=int)
    for layer in layers:
        labels = sitk.GetArrayViewFromImage(on_grid.layers[layer])
        # OR-reductions over whole planes (z) or across planes (y, x) run as long vectorised loops; a
        # reduction along the short x rows (.any(axis=2)) is about ten times slower.
        z = np.flatnonzero(np.bitwise_or.reduce(labels.reshape(labels.shape[0], -1), axis=1))
        if not z.size:
            continue
        plane = np.bitwise_or.reduce(labels[z[0]:z[-1] + 1], axis=0)  # (y, x): the slab seen along z
        y, x = np.flatnonzero(plane.any(axis=1)), np.flatnonzero(plane.any(axis=0))
        for axis, hits in enumerate((z, y, x)):
            low[axis], high[axis] = min(low[axis], hits[0]), max(high[axis], hits[-1] + 1)
    grow = np.ceil(margin_mm / np.asarray(grid.spacing[::-1])).astype(int) + 1
    return tuple(slice(max(int(low[a] - grow[a]), 0), min(int(high[a] + grow[a]), grid.shape[a]))
                 for a in range(3))


def _codes_in_box(on_grid: Segmentation, segments: Sequence[Segment], box: tuple[slice, ...],
                  what: str) -> np.ndarray:
    """Inside ``box``: 0, or k + 1 where segment k is; overlapping segments raise a ValueError.

    The codes are unsigned and read-only (possibly a view of a label layer).
    """
    code_type = np.min_scalar_type(len(segments))
    codes = None
    for layer in sorted({seg.layer for seg in segments}):
        labels = sitk.GetArrayViewFromImage(on_grid.layers[layer])[box]
        top = int(labels.max(initial=0))
        lut = np.zeros(top + 1, dtype=code_type)
        for k, seg in enumerate(segments):
            if seg.layer == layer and seg.label_value < lut.size:
                lut[seg.label_value] = k + 1
        small = labels.dtype.kind == "u" and labels.dtype.itemsize <= 2  # codes stay small and unsigned
        if small and np.array_equal(lut, np.arange(top + 1)):
            # Labels already are the codes (segments added to a layer in order get labels 1, 2, ...):
            # use the layer itself and spare the table lookup, the slowest pass of the region build.
            layer_codes = labels
        else:
            layer_codes = lut.take(labels)  # about twice as fast as lut[labels] for small integer labels
        if codes is None:
            codes = layer_codes
            continue
        clash = (codes > 0) & (layer_codes > 0)
        if clash.any():
            first = tuple(np.argwhere(clash)[0])
            names = [segments[codes[first] - 1].name, segments[layer_codes[first] - 1].name]
            raise ValueError(f"{what} {names} overlap in {int(clash.sum())} voxels of the SPECT grid; "
                             "T/N needs disjoint segments")
        codes = np.maximum(codes, layer_codes)  # a new array: ``codes`` may be a view of a layer
    return codes if codes is not None else np.zeros(tuple(s.stop - s.start for s in box), dtype=code_type)


def _nontumour_in_box(lobe_code: np.ndarray, lesion_in_box: np.ndarray, grid: GridGeometry,
                      margin_mm: float, edge_margin_mm: float = 0.0) -> np.ndarray:
    """Lobe voxels farther than the margin from every lesion voxel: one margin computation for the liver.

    The box is grown by the margin, so every lesion voxel that matters is in it.
    """
    nontumour = near_lesions(lesion_in_box, grid.spacing[::-1], margin_mm)
    np.logical_not(nontumour, out=nontumour)
    nontumour &= lobe_code > 0
    if edge_margin_mm > 0:
        liver = (lobe_code > 0) | lesion_in_box
        nontumour &= ndimage.distance_transform_edt(liver, sampling=grid.spacing[::-1]) > edge_margin_mm
    return nontumour


def _check_not_empty(voxel_counts, segments: Sequence[Segment], grid: GridGeometry) -> None:
    for seg, count in zip(segments, voxel_counts, strict=True):
        if count == 0:
            raise ValueError(f"segment {seg.name!r} ({seg.segment_id}) is empty on the SPECT grid "
                             f"({grid.describe()})")


def _check_nontumour(voxel_counts, margin_mm: float) -> None:
    for side, count in zip(SIDES, voxel_counts, strict=True):
        if count == 0:
            raise ValueError(f"no non-tumour liver left in the {side} lobe after removing lesions and a "
                             f"{margin_mm:g} mm margin; use a smaller margin")


def _partition_regions(reference: sitk.Image, box: tuple[slice, ...], piece: np.ndarray,
                       lesions: tuple[Segment, ...]) -> RegionMasks:
    """Whole-voxel T/N regions as unions of pieces: piece = (lesion x 3 + lobe) x 2 + non-tumour flag."""
    local = np.flatnonzero(piece != 0)  # a boolean mask: np.flatnonzero of the piece labels is 5x slower
    labels = np.arange(6 * (len(lesions) + 1))
    lesion_of, lobe_of, nontumour_of = labels // 6, (labels // 2) % 3, labels % 2
    side_of_lesion = np.array([None] + [seg.tags.side for seg in lesions], dtype=object)
    regions = {}
    for code, side in enumerate(SIDES, start=1):
        regions[f"lobe:{side}"] = labels[lobe_of == code]
        regions[f"nontumour:{side}"] = labels[(lobe_of == code) & (nontumour_of == 1)]
        regions[f"tumour:{side}"] = labels[side_of_lesion[lesion_of] == side]
    pieces_of_lesion = labels.reshape(-1, 6)  # row k: the six pieces of lesion k (no mask per lesion)
    for k, seg in enumerate(lesions, start=1):
        regions[f"lesion:{seg.segment_id}"] = pieces_of_lesion[k]
    shape = GridGeometry.from_image(reference).shape
    return RegionMasks.from_partition(reference, _box_to_grid(local, box, shape), piece.ravel().take(local),
                                      regions)


def _grid_to_box(voxel_lists: list[np.ndarray], box: tuple[slice, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Boolean mask inside ``box`` of the given flat grid voxels (those outside the box are ignored)."""
    mask = np.zeros(tuple(s.stop - s.start for s in box), dtype=bool)
    if voxel_lists:
        index = np.unravel_index(np.concatenate(voxel_lists), shape)
        local = [i - s.start for i, s in zip(index, box, strict=True)]
        inside = np.all([(k >= 0) & (k < n) for k, n in zip(local, mask.shape, strict=True)], axis=0)
        mask[tuple(k[inside] for k in local)] = True
    return mask


def _box_to_grid(local: np.ndarray, box: tuple[slice, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Flat grid indices of ascending flat indices inside ``box`` (C order, z-y-x); stays ascending.

    Along one x row of the box, grid and box indices differ by a constant: each voxel gets its row's
    offset, rows found by a binary search of the row starts (no index array over the whole box).
    """
    rows_z = np.arange(box[0].start, box[0].stop)
    rows_y = np.arange(box[1].start, box[1].stop)
    row_in_grid = ((rows_z[:, None] * shape[1] + rows_y[None, :]) * shape[2] + box[2].start).ravel()
    row_in_box = np.arange(row_in_grid.size) * (box[2].stop - box[2].start)
    per_row = np.diff(np.searchsorted(local, row_in_box), append=local.size)
    return local + np.repeat(row_in_grid - row_in_box, per_row)


def _pooled(parts: list[Region]) -> Region:
    """Union of lesion regions; fractional occupancies add up (capped at 1 where lesions touch)."""
    if not parts:
        return Region(np.zeros(0, dtype=np.int64))
    voxels = np.concatenate([p.voxels for p in parts])
    if all(p.weights is None for p in parts):
        return Region(np.unique(voxels))
    weights = np.concatenate([np.ones(p.voxels.size) if p.weights is None else p.weights for p in parts])
    unique, position = np.unique(voxels, return_inverse=True)
    return Region(unique, np.minimum(np.bincount(position, weights), 1.0))


def _cycle_rows(cycle: CycleSpect, regions: LobeRegions, diameters: dict[str, float],
                targets: dict[str, int]) -> list[dict]:
    stats = regions.masks.statistics(cycle.spect, unit="Bq/mL")
    at = {name: i for i, name in enumerate(stats.label)}
    # Python floats converted once per column, not one numpy scalar at a time (hundreds of lesion rows).
    means, maxima, volumes, totals = (column.tolist() for column in
                                      (stats.mean, stats.max, stats.volume_ml, stats.total_mbq))
    nontumour_mean = {side: means[at[f"nontumour:{side}"]] for side in SIDES}
    for side, reference in nontumour_mean.items():
        if not reference > 0:
            raise ValueError(f"the non-tumour liver of the {side} lobe has a mean of {reference:g} Bq/mL on the "
                             f"SPECT of cycle {cycle.cycle} at {cycle.hours_post_injection:g} h: T/N divides by "
                             "it; check that the SPECT holds activity there and is registered to the segmentation")

    def row(name: str, region: str, role: str, side: str, route: str | None, lesion_id: str | None,
            with_tn: bool) -> dict:
        i = at[name]
        mean, peak, reference = means[i], maxima[i], nontumour_mean[side]
        return {
            "cycle": cycle.cycle, "hours_post_injection": float(cycle.hours_post_injection), "region": region,
            "role": role, "side": side, "route": route, "lesion_id": lesion_id,
            "volume_ml": volumes[i], "mean_bq_per_ml": mean, "max_bq_per_ml": peak,
            "total_mbq": totals[i], "nontumour_mean_bq_per_ml": reference,
            "tn_mean": mean / reference if with_tn else math.nan,
            "tn_max": peak / reference if with_tn else math.nan,
            "longest_diameter_mm": None, "target_lesion": False, "target_rank": None,
        }

    rows = []
    for side in SIDES:
        lobe = regions.lobes[side]
        route = lobe.tags.route
        rows.append(row(f"lobe:{side}", f"{side} lobe", "lobe", side, route, None, False))
        rows.append(row(f"nontumour:{side}", f"non-tumour {side} lobe", "non-tumour", side, route, None,
                        False))
        rows.append(row(f"tumour:{side}", f"tumour {side} lobe", "tumour", side, route, None, True))
    for lesion in regions.lesions:
        side = lesion.tags.side
        route = lesion.tags.route or regions.lobes[side].tags.route
        rows.append(row(f"lesion:{lesion.segment_id}", lesion.name, "lesion", side, route,
                        lesion.tags.lesion_id, True)
                    | {"longest_diameter_mm": diameters[lesion.segment_id],
                       "target_lesion": lesion.segment_id in targets,
                       "target_rank": targets.get(lesion.segment_id)})
    return rows


def _ratio_row(cycle: CycleSpect, regions: LobeRegions, rows: list[dict]) -> dict | None:
    routes = {side: regions.lobes[side].tags.route for side in SIDES}
    if sorted(filter(None, routes.values())) != ["IA", "IV"]:
        return None
    tumour = {row["route"]: row for row in rows if row["role"] == "tumour"}
    ia, iv = tumour["IA"], tumour["IV"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "cycle": cycle.cycle, "hours_post_injection": float(cycle.hours_post_injection),
            "ia_side": ia["side"],
            "tn_mean_ia": ia["tn_mean"], "tn_mean_iv": iv["tn_mean"],
            "tn_mean_ia_over_iv": float(np.float64(ia["tn_mean"]) / iv["tn_mean"]),
            "tn_max_ia": ia["tn_max"], "tn_max_iv": iv["tn_max"],
            "tn_max_ia_over_iv": float(np.float64(ia["tn_max"]) / iv["tn_max"]),
        }
