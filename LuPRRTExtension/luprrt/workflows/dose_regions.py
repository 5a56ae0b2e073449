"""Dosimetry regions of one treatment cycle, and their activity on the SPECT grid.

From a tagged segmentation drawn on the CT to region activities (MBq) at every SPECT time point:

1. **Pieces.** Every CT voxel goes to the most specific segment covering it, by role priority
   :data:`PIECE_PRIORITY` (lesion > blood > marrow > kidney > spleen > non-tumour > lobe >
   liver > body), in one vectorised pass per label layer (a lookup table from label value to
   priority rank, then the maximum over layers). Pieces are disjoint: a lobe's piece is its
   non-tumour liver, the body's piece is the rest of the body. Without a body segment the
   CT's body outline (:func:`luprrt.registration.body_mask`) stands in, so that activity
   outside the segmented organs is part of the model too.
2. **Reported regions** (:class:`DoseRegion`): lesions, kidneys, spleen, marrow and
   non-tumour liver are their own piece (a lobe is reported as the non-tumour liver of that
   lobe, a liver segment's voxels outside lobes and lesions as non-tumour liver); the liver
   is the union of the pieces lying mostly (> 50 % of their CT voxels) in the liver segment:
   its non-tumour liver and its lesions. Body and blood pieces are modelled but not reported.
3. **Occupancy.** Each piece's share of every SPECT voxel
   (:func:`luprrt.segments.on_grid.segment_occupancy`, supersampled), so that one pass over an image
   on that grid gives every piece's statistics (:class:`luprrt.regionstats.RegionMasks`).
4. **Partial-volume correction** (optional): the geometric transfer matrix (GTM; Rousset,
   Ma & Evans, J Nucl Med 1998;39:904-911). With a Gaussian system resolution of FWHM ``f``,
   ``W[i, j]`` is the occupancy-weighted mean over piece ``i`` of piece ``j``'s occupancy
   blurred by the resolution; the measured piece means ``t`` then solve ``W c = t`` for the
   mean concentrations ``c`` of uniform pieces, and a piece's activity is ``c`` times its CT
   volume. Without the correction a piece's activity is the SPECT activity inside its
   occupancy (activity spilled out of it is lost, activity spilled into it is counted).

Masses are CT volumes times the mean density from the CT numbers
(:class:`luprrt.dosimetry.HuDensityCalibration`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..dosimetry import HuDensityCalibration, region_dose_statistics
from ..grid import same_grid
from ..physics import BQ_PER_MBQ, SOFT_TISSUE_DENSITY_G_PER_ML
from ..regionstats import RegionMasks
from ..registration import body_mask, resample_to
from ..segments import Segment, Segmentation, SegmentTags, segment_occupancy, segmentation_on_grid

log = logging.getLogger(__name__)

# Which segment owns a voxel covered by several (later = more specific = wins).
PIECE_PRIORITY = ("body", "liver", "lobe", "non-tumour", "spleen", "kidney", "marrow", "blood", "lesion")
REPORTED_ROLES = ("lesion", "kidney", "spleen", "liver", "non-tumour", "marrow")
# Segments that give a reported region (a lobe gives its non-tumour liver).
_SOURCE_ROLES = (*REPORTED_ROLES, "lobe")
# Gaussian: FWHM = 2 sqrt(2 ln 2) sigma; kernels cut at 4 sigma (scipy.ndimage's default).
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_TRUNCATE_SIGMA = 4.0
# A piece belongs to a union region (the liver) when more than this share of it lies inside.
_MAJORITY = 0.5
# Condition number of the GTM above which the correction amplifies noise badly.
_GTM_CONDITION_WARNING = 1e6


@dataclass(frozen=True)
class DoseRegion:
    """A reported region: unique name, tags, source segment and the pieces it is made of.

    ``name`` is the lesion's tracking id for lesions, else role and side
    (``kidney_right``, ``nontumour_left``, ``liver``): the same name in every cycle.
    """

    name: str
    role: str
    side: str | None
    route: str | None
    lesion_id: str | None
    segment_id: str
    pieces: tuple[int, ...]

    def tags(self) -> dict:
        """Identification columns of a table row."""
        return {"region": self.name, "role": self.role, "side": self.side, "route": self.route,
                "lesion_id": self.lesion_id}


@dataclass(frozen=True)
class RegionActivity:
    """Activities (MBq) of every region at one time point.

    ``activity_mbq`` is partial-volume corrected when the regions have a transfer matrix
    (else equal to ``uncorrected_mbq``, the activity inside the region's occupancy);
    ``clipped_pieces`` names pieces whose corrected concentration came out negative (noise in
    small pieces) and was set to 0.
    """

    activity_mbq: np.ndarray
    uncorrected_mbq: np.ndarray
    clipped_pieces: tuple[str, ...]


@dataclass
class CycleRegions:
    """The regions of one cycle on its SPECT grid (built by :func:`build_cycle_regions`)."""

    grid: sitk.Image
    piece_segments: list[Segment]
    piece_volume_ml: np.ndarray
    piece_density_g_per_ml: np.ndarray
    piece_labels_ct: sitk.Image
    piece_labels_grid: np.ndarray
    masks: RegionMasks
    regions: list[DoseRegion]
    membership: np.ndarray
    transfer: np.ndarray | None
    pvc_fwhm_mm: float | None

    @property
    def volume_ml(self) -> np.ndarray:
        """CT volume of every region (mL)."""
        return self.membership @ self.piece_volume_ml

    @property
    def mass_g(self) -> np.ndarray:
        """Mass of every region (g): CT volume x mean CT density of each piece."""
        return self.membership @ (self.piece_volume_ml * self.piece_density_g_per_ml)

    @property
    def density_g_per_ml(self) -> np.ndarray:
        """Mean density of every region (g/mL)."""
        return self.mass_g / self.volume_ml

    @property
    def occupied_volume_ml(self) -> np.ndarray:
        """Volume of every region on the SPECT grid (mL): its occupancy summed over the voxels."""
        return self.membership @ np.fromiter(self.masks.volume_ml().values(), dtype=float)

    def index(self, name: str) -> int:
        """Position of region ``name``."""
        for position, region in enumerate(self.regions):
            if region.name == name:
                return position
        raise KeyError(f"no region {name!r}; have {[r.name for r in self.regions]}")

    def activity(self, spect_bq_per_ml: sitk.Image) -> RegionActivity:
        """Activity (MBq) of every region in a SPECT on this grid: one pass over its voxels."""
        stats = self.masks.statistics(spect_bq_per_ml, unit="Bq/mL")
        uncorrected = np.nan_to_num(stats.total_mbq)
        clipped: tuple[str, ...] = ()
        if self.transfer is None:
            pieces = uncorrected
        else:
            valid = stats.volume_ml > 0
            concentration = np.full(valid.size, np.nan)
            concentration[valid] = np.linalg.solve(self.transfer[np.ix_(valid, valid)], stats.mean[valid])
            negative = concentration < 0
            clipped = tuple(self.piece_segments[i].name for i in np.flatnonzero(negative))
            pieces = np.nan_to_num(np.where(negative, 0.0, concentration)) * self.piece_volume_ml / BQ_PER_MBQ
        return RegionActivity(self.membership @ pieces, self.membership @ uncorrected, clipped)

    def mean(self, image: sitk.Image) -> np.ndarray:
        """Occupancy-weighted mean of ``image`` over every region (NaN for a region without voxels)."""
        stats = self.masks.statistics(image, unit="")
        weight = stats.volume_ml / self.masks.voxel_volume_ml
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.membership @ stats.sum) / (self.membership @ weight)

    def dose_percentiles(self, dose_gy: sitk.Image) -> dict[str, np.ndarray]:
        """D2, D50 and D98 (Gy) of every region from the voxels whose centre lies in it (NaN if none)."""
        result = {key: np.full(len(self.regions), np.nan) for key in ("d2_gy", "d50_gy", "d98_gy")}
        labels = self.piece_labels_grid
        if not labels.any():
            return result
        dose = sitk.GetArrayViewFromImage(dose_gy)
        per_piece = region_dose_statistics(dose, labels)
        position = {int(label) - 1: k for k, label in enumerate(per_piece.labels)}
        for r, region in enumerate(self.regions):
            if len(region.pieces) == 1:
                if region.pieces[0] not in position:
                    continue
                k = position[region.pieces[0]]
                values = (per_piece.d2_gy[k], per_piece.d50_gy[k], per_piece.d98_gy[k])
            else:
                inside = np.zeros(len(self.piece_segments) + 1, dtype=np.uint8)
                inside[np.asarray(region.pieces) + 1] = 1
                union = inside[labels]
                if not union.any():
                    continue
                stats = region_dose_statistics(dose, union)
                values = (stats.d2_gy[0], stats.d50_gy[0], stats.d98_gy[0])
            for key, value in zip(("d2_gy", "d50_gy", "d98_gy"), values, strict=True):
                result[key][r] = float(value)
        return result


def build_cycle_regions(segmentation: Segmentation, ct_hu: sitk.Image | None, grid: sitk.Image, *,
                        pvc_fwhm_mm: float | None = None, supersampling: int = 3,
                        calibration: HuDensityCalibration | None = None) -> CycleRegions:
    """Pieces, reported regions, masses, SPECT-grid occupancy and (optionally) the GTM of one cycle.

    Parameters
    ----------
    segmentation : Segmentation
        Tagged segments of the cycle (on the CT grid, or resampled onto it by nearest neighbour).
    ct_hu : SimpleITK.Image or None
        The cycle's CT (HU): masses and, without a body segment, the body outline. Without a CT
        the pieces are made on the segmentation's grid, at soft-tissue density (1.03 g/mL), and only
        the segments themselves are modelled.
    grid : SimpleITK.Image
        The SPECT grid the activities are measured on.
    pvc_fwhm_mm : float, optional
        System resolution (FWHM, mm) for the GTM partial-volume correction; None = no correction.
    supersampling : int
        Sub-voxels per axis for the fractional occupancy of the pieces on the SPECT grid.
    calibration : HuDensityCalibration, optional
        CT number to density; default air-water-bone.

    Raises
    ------
    ValueError
        No reportable segment, a non-positive FWHM, or grids that do not overlap.
    """
    if pvc_fwhm_mm is not None and not (math.isfinite(pvc_fwhm_mm) and pvc_fwhm_mm > 0):
        raise ValueError(f"partial-volume correction FWHM must be positive, got {pvc_fwhm_mm} mm")
    if not any(s.tags.role in _SOURCE_ROLES for s in segmentation.segments):
        raise ValueError(f"segmentation has no segment to report a dose for (roles {REPORTED_ROLES}); it has "
                         f"{sorted({s.tags.role for s in segmentation.segments})}")
    calibration = calibration or HuDensityCalibration()
    if ct_hu is None:
        on_ct = segmentation.copy()
    else:
        on_ct = segmentation.copy() if same_grid(segmentation.reference, ct_hu) else segmentation_on_grid(
            segmentation, ct_hu, allow_empty=True)
        if not on_ct.find(role="body"):
            on_ct.add_segment(body_mask(ct_hu), SegmentTags("body"), name="body outline (CT)",
                              segment_id="body_outline_ct")
    reference = on_ct.reference
    pieces, piece_segments = _partition(on_ct)
    counts = np.bincount(pieces.ravel(), minlength=len(piece_segments) + 1)[1:]
    if ct_hu is None:
        density_sum = counts * SOFT_TISSUE_DENSITY_G_PER_ML
    else:
        density = calibration.density(sitk.GetArrayViewFromImage(ct_hu)).ravel()
        density_sum = np.bincount(pieces.ravel(), weights=density, minlength=len(piece_segments) + 1)[1:]
    ct_voxel_ml = float(np.prod(reference.GetSpacing())) / 1000.0
    labels_ct = sitk.GetImageFromArray(pieces.astype(np.uint16 if len(piece_segments) > 255 else np.uint8))
    labels_ct.CopyInformation(reference)

    piece_layer = Segmentation([labels_ct], [Segment(f"piece{i + 1}", s.name, s.tags, 0, i + 1)
                                             for i, s in enumerate(piece_segments)])
    occupancy = segment_occupancy(piece_layer, grid, supersampling=supersampling)
    masks = RegionMasks(grid, occupancy)
    labels_grid = sitk.GetArrayFromImage(resample_to(labels_ct, grid, interpolator="nearest"))
    regions = _reported_regions(on_ct, pieces, piece_segments, counts)
    membership = np.zeros((len(regions), len(piece_segments)))
    for r, region in enumerate(regions):
        membership[r, list(region.pieces)] = 1.0
    transfer = None
    if pvc_fwhm_mm is not None:
        transfer = _transfer_matrix(masks, list(occupancy.values()), grid, pvc_fwhm_mm)
    return CycleRegions(grid, piece_segments, counts * ct_voxel_ml, density_sum / np.maximum(counts, 1),
                        labels_ct, labels_grid, masks, regions, membership, transfer, pvc_fwhm_mm)


def transfer_matrix(regions: CycleRegions, fwhm_mm: float) -> np.ndarray:
    """The geometric transfer matrix of ``regions``' pieces for a Gaussian PSF of ``fwhm_mm``."""
    if not (math.isfinite(fwhm_mm) and fwhm_mm > 0):
        raise ValueError(f"partial-volume correction FWHM must be positive, got {fwhm_mm} mm")
    occupancy = [regions.masks.region(name) for name in regions.masks.names]
    return _transfer_matrix(regions.masks, occupancy, regions.grid, fwhm_mm)


def _partition(segmentation: Segmentation) -> tuple[np.ndarray, list[Segment]]:
    """Piece label (1..n, 0 = no segment) of every voxel and the segment owning each piece."""
    segments = segmentation.segments
    priority = {role: rank for rank, role in enumerate(PIECE_PRIORITY)}
    order = sorted(range(len(segments)), key=lambda k: (priority.get(segments[k].tags.role, -1), k))
    rank = np.empty(len(segments), dtype=np.int32)
    rank[order] = np.arange(1, len(segments) + 1, dtype=np.int32)
    best = np.zeros(segmentation.reference.GetSize()[::-1], dtype=np.int32)
    for layer_index, layer in enumerate(segmentation.layers):
        in_layer = [k for k, s in enumerate(segments) if s.layer == layer_index]
        if not in_layer:
            continue
        labels = sitk.GetArrayViewFromImage(layer)
        top = max(int(labels.max()), *(segments[k].label_value for k in in_layer))
        lut = np.zeros(top + 1, dtype=np.int32)
        lut[[segments[k].label_value for k in in_layer]] = rank[in_layer]
        np.maximum(best, lut[labels], out=best)
    present = np.flatnonzero(np.bincount(best.ravel(), minlength=len(segments) + 1)[1:]) + 1
    renumber = np.zeros(len(segments) + 1, dtype=np.int32)
    renumber[present] = np.arange(1, present.size + 1, dtype=np.int32)
    return renumber[best], [segments[order[r - 1]] for r in present]


def _reported_regions(segmentation: Segmentation, pieces: np.ndarray, piece_segments: list[Segment],
                      counts: np.ndarray) -> list[DoseRegion]:
    regions = []
    for index, segment in enumerate(piece_segments):
        # A lobe's (or a liver's without lobes) own piece is its non-tumour liver; the liver as a
        # whole is reported below as a union of pieces.
        role = "non-tumour" if segment.tags.role in ("lobe", "liver") else segment.tags.role
        if role in REPORTED_ROLES:
            regions.append((segment, role, (index,)))
    for liver in segmentation.find(role="liver"):
        inside = np.bincount(pieces[segmentation.mask_array(liver.segment_id)],
                             minlength=len(piece_segments) + 1)[1:]
        members = tuple(int(i) for i in np.flatnonzero(inside > _MAJORITY * counts))
        if members:
            regions.append((liver, "liver", members))
    covered = {id(segment) for segment, _, _ in regions}
    for segment in segmentation.segments:
        if segment.tags.role in _SOURCE_ROLES and id(segment) not in covered:
            log.warning("segment %r (%s) owns no voxel once more specific segments are taken out; not "
                        "reported", segment.segment_id, segment.name)
    names: dict[str, int] = {}
    for segment, role, _ in regions:
        name = _region_name(segment, role)
        names[name] = names.get(name, 0) + 1
    result = []
    for segment, role, members in regions:
        name = _region_name(segment, role)
        if names[name] > 1:
            name = f"{name}_{segment.segment_id}"
        tags = segment.tags
        result.append(DoseRegion(name, role, tags.side, tags.route, tags.lesion_id, segment.segment_id,
                                 members))
    return result


def _region_name(segment: Segment, role: str) -> str:
    if role == "lesion":
        return segment.tags.lesion_id or segment.segment_id
    base = "nontumour" if role == "non-tumour" else role
    return f"{base}_{segment.tags.side}" if segment.tags.side else base


def _transfer_matrix(masks: RegionMasks, occupancy: list, grid: sitk.Image, fwhm_mm: float) -> np.ndarray:
    """GTM: column j = piece means of piece j's occupancy blurred by the Gaussian resolution.

    One blur per piece, once per cycle (the pieces do not change between its time points).
    """
    shape = grid.GetSize()[::-1]
    sigma_vox = fwhm_mm / FWHM_PER_SIGMA / np.asarray(grid.GetSpacing()[::-1])
    transfer = np.zeros((len(occupancy), len(occupancy)))
    dense = np.zeros(int(np.prod(shape)))
    for j, region in enumerate(occupancy):
        if region.voxels.size == 0:
            continue
        dense[:] = 0.0
        dense[region.voxels] = region.weights
        blurred = ndimage.gaussian_filter(dense.reshape(shape), sigma_vox, mode="constant",
                                          truncate=_TRUNCATE_SIGMA)
        transfer[:, j] = np.nan_to_num(masks.statistics(blurred, unit="").mean)
    valid = np.any(transfer != 0, axis=0)
    condition = np.linalg.cond(transfer[np.ix_(valid, valid)]) if valid.any() else math.inf
    if condition > _GTM_CONDITION_WARNING:
        log.warning("geometric transfer matrix is ill-conditioned (condition number %.3g): the "
                    "partial-volume correction amplifies noise; consider a smaller FWHM or merging tiny "
                    "segments", condition)
    return transfer
