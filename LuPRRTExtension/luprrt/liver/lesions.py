"""Liver lesions: assign them to lobes, propose new ones from SPECT, keep their tracking ids.

* :func:`assign_lesions_to_lobes`: each lesion segment joins the lobe holding most
  of its volume (its side and route tags follow that lobe). A lesion mostly outside
  the liver is an error that names it: it cannot count for a lobe's T/N.
* :func:`detect_lesion_candidates`: hot connected components inside the liver on a
  SPECT, above a multiple of the non-tumour level or above a fraction of their
  local maximum (as in fixed-threshold and percent-of-maximum PET/SPECT
  delineation, e.g. Erdi et al., Cancer 1997;80:2505), each with a proposed tracking
  id, volume and maximum; :func:`accept_lesion_candidates` adds the ones a user
  keeps.
* Tracking ids ("L01", "L02", ...) are persistent: a candidate overlapping a known
  lesion keeps that lesion's id; new lesions get numbers above the highest id ever
  used (:func:`luprrt.segments.next_lesion_ids`), so a lesion that disappeared never lends its id to
  a new one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..grid import GridGeometry, same_grid
from ..regionstats import region_statistics
from ..segments import Segmentation, SegmentTags, next_lesion_ids, segment_regions

log = logging.getLogger(__name__)

THRESHOLD_MODES = ("relative_to_nontumour", "percent_of_local_max")
# 26-connectivity: voxels touching by a face, edge or corner form one component.
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class LesionCandidate:
    """A hot component found on a SPECT, with the tracking id it would get.

    ``is_existing`` is True when the id was taken over from an existing lesion it
    overlaps (accepting it then updates that lesion's outline).
    """

    lesion_id: str
    voxel_count: int
    volume_ml: float
    max_bq_per_ml: float
    mean_bq_per_ml: float
    centroid_lps_mm: tuple[float, float, float]
    side: str | None
    is_existing: bool
    voxels: np.ndarray = field(repr=False, compare=False)
    grid: GridGeometry = field(repr=False, compare=False)


def assign_lesions_to_lobes(segmentation: Segmentation, *, min_inside_fraction: float = 0.5) -> Segmentation:
    """Tag each lesion with the side (and route) of the lobe that holds most of its volume.

    Parameters
    ----------
    segmentation : Segmentation
        Lobes (``role="lobe"`` with sides), lesions (``role="lesion"``) and
        optionally the liver, on one grid.
    min_inside_fraction : float
        Least share of a lesion's voxels inside the liver (liver segment or any
        lobe); a lesion below it raises a ValueError naming it.

    Returns
    -------
    Segmentation
        A copy with updated lesion tags; the input is not modified.
    """
    if not 0 < min_inside_fraction <= 1:
        raise ValueError(f"min_inside_fraction must lie in (0, 1], got {min_inside_fraction}")
    lobes = segmentation.find(role="lobe")
    if not lobes:
        raise ValueError("segmentation has no lobe segments; split the liver into lobes first (luprrt.liver.lobes)")
    lesions = segmentation.find(role="lesion")
    lobe_map, liver = _lobe_map(segmentation, lobes)
    regions = segment_regions(segmentation, [seg.segment_id for seg in lesions])
    result = segmentation.copy()
    outside = []
    for lesion in lesions:
        voxels = regions[lesion.segment_id].voxels
        if voxels.size == 0:
            raise ValueError(f"lesion segment {lesion.name!r} ({lesion.segment_id}) is empty")
        inside = np.count_nonzero(liver.ravel()[voxels]) / voxels.size
        if inside < min_inside_fraction:
            outside.append(f"{lesion.name!r} ({100 * inside:.1f} % inside)")
            continue
        overlap = np.bincount(lobe_map.ravel()[voxels], minlength=len(lobes) + 1)[1:]
        if overlap.max() == 0:
            raise ValueError(f"lesion {lesion.name!r} lies in the liver but in no lobe "
                             "(caudate lobe excluded from both lobes?)")
        lobe = lobes[int(np.argmax(overlap))]
        result.retag(lesion.segment_id, side=lobe.tags.side, route=lobe.tags.route)
    if outside:
        raise ValueError(f"lesions outside the liver (less than {100 * min_inside_fraction:.0f} % of their "
                         f"volume inside): {', '.join(outside)}")
    return result


def detect_lesion_candidates(spect: sitk.Image, regions: Segmentation, *,
                             threshold_mode: str = "relative_to_nontumour", factor: float = 3.0,
                             min_volume_ml: float = 1.0, seed_factor: float = 2.0) -> list[LesionCandidate]:
    """Connected hot components inside the liver of a SPECT, as lesion candidates.

    Parameters
    ----------
    spect : SimpleITK.Image
        Activity concentration (Bq/mL).
    regions : Segmentation
        On the SPECT grid: the liver (``role="liver"``) and/or its lobes, plus any
        known lesions (their ids are kept, and they are left out of the non-tumour
        level).
    threshold_mode : {"relative_to_nontumour", "percent_of_local_max"}
        ``relative_to_nontumour``: voxels above ``factor`` x the non-tumour level.
        ``percent_of_local_max``: components above ``seed_factor`` x the non-tumour
        level are found first; each keeps its voxels at or above ``factor`` (a
        fraction in (0, 1], e.g. 0.4 for 40 %) of its own maximum.
    factor : float
        See ``threshold_mode``.
    min_volume_ml : float
        Smaller components are dropped (mL).
    seed_factor : float
        Seed level of ``percent_of_local_max`` (multiple of the non-tumour level).

    Returns
    -------
    list of LesionCandidate
        Sorted by tracking id. The non-tumour level is the median concentration of
        liver voxels outside known lesions (robust to the hot lesions themselves).
        Components are 26-connected.
    """
    if threshold_mode not in THRESHOLD_MODES:
        raise ValueError(f"unknown threshold_mode {threshold_mode!r}; expected one of {THRESHOLD_MODES}")
    if threshold_mode == "percent_of_local_max" and not 0 < factor <= 1:
        raise ValueError(f"factor is a fraction of the local maximum in (0, 1] (e.g. 0.4 for 40 %), "
                         f"got {factor}")
    if not factor > 0 or not seed_factor > 0 or min_volume_ml < 0:
        raise ValueError(f"factor ({factor}) and seed_factor ({seed_factor}) must be positive and "
                         f"min_volume_ml ({min_volume_ml}) non-negative")
    if not same_grid(regions.reference, spect):
        raise ValueError("the segmentation is not on the SPECT grid; resample it first "
                         "(luprrt.segments.on_grid.segmentation_on_grid)")
    values = sitk.GetArrayViewFromImage(spect)
    lobes = regions.find(role="lobe")
    lobe_map, liver = _lobe_map(regions, lobes)
    known = regions.find(role="lesion")
    known_map = np.zeros(liver.shape, dtype=np.int32)
    for k, (_, region) in enumerate(segment_regions(regions, [s.segment_id for s in known]).items(), start=1):
        known_map.ravel()[region.voxels] = k
    background = values[liver & (known_map == 0)]
    if background.size == 0:
        raise ValueError("no liver voxel outside known lesions: cannot estimate the non-tumour level")
    nontumour = float(np.median(background))
    if not nontumour > 0:
        raise ValueError(f"non-tumour liver level is {nontumour} Bq/mL; the SPECT has no liver uptake")

    if threshold_mode == "relative_to_nontumour":
        hot = liver & (values > factor * nontumour)
    else:
        seeds, n_seeds = ndimage.label(liver & (values > seed_factor * nontumour), structure=_CONNECTIVITY)
        peak = np.zeros(n_seeds + 1)
        if n_seeds:
            peak[1:] = ndimage.maximum(values, seeds, index=np.arange(1, n_seeds + 1))
        hot = (seeds > 0) & (values >= factor * peak[seeds])
    components, n = ndimage.label(hot, structure=_CONNECTIVITY)
    if n == 0:
        return []
    stats = region_statistics(spect, components, label_values=range(1, n + 1))
    kept = np.flatnonzero(stats.volume_ml >= min_volume_ml) + 1
    boxes = ndimage.find_objects(components)
    centroids = ndimage.center_of_mass(hot, components, kept) if kept.size else []
    found = []
    for label, centroid in zip(kept, centroids, strict=True):
        box = boxes[label - 1]
        local = np.nonzero(components[box] == label)
        origin = [s.start for s in box]
        voxels = np.ravel_multi_index(tuple(i + o for i, o in zip(local, origin, strict=True)), liver.shape)
        found.append((label, voxels, centroid))
    ids, existing = _tracking_ids([v for _, v, _ in found], known_map, known,
                                  [stats.max[label - 1] for label, _, _ in found])
    grid = GridGeometry.from_image(spect)
    candidates = []
    for (label, voxels, centroid), lesion_id, is_existing in zip(found, ids, existing, strict=True):
        overlap = np.bincount(lobe_map.ravel()[voxels], minlength=len(lobes) + 1)[1:]
        side = lobes[int(np.argmax(overlap))].tags.side if overlap.size and overlap.max() > 0 else None
        position = spect.TransformContinuousIndexToPhysicalPoint(tuple(float(c) for c in centroid[::-1]))
        i = label - 1
        candidates.append(LesionCandidate(
            lesion_id=lesion_id, voxel_count=int(stats.voxel_count[i]), volume_ml=float(stats.volume_ml[i]),
            max_bq_per_ml=float(stats.max[i]), mean_bq_per_ml=float(stats.mean[i]),
            centroid_lps_mm=tuple(float(p) for p in position), side=side, is_existing=is_existing,
            voxels=voxels, grid=grid))
    log.info("found %d lesion candidates (%s, factor %g, non-tumour level %.4g Bq/mL)",
             len(candidates), threshold_mode, factor, nontumour)
    return sorted(candidates, key=lambda c: (len(c.lesion_id), c.lesion_id))


def accept_lesion_candidates(segmentation: Segmentation, candidates: Iterable[LesionCandidate], *,
                             accept: Iterable[str] | None = None, drop: Iterable[str] = ()) -> Segmentation:
    """Add the kept candidates to a copy of ``segmentation`` as lesion segments.

    Parameters
    ----------
    segmentation : Segmentation
        The segmentation the candidates were detected with (same grid).
    candidates : iterable of LesionCandidate
    accept : iterable of str, optional
        Tracking ids to keep; default all candidates not in ``drop``.
    drop : iterable of str
        Tracking ids to discard.

    Returns
    -------
    Segmentation
        New lesions tagged ``SegmentTags("lesion", side, route of that lobe, id)``; a
        candidate with an existing id replaces that lesion's outline (same segment
        id and name). The input is not modified.
    """
    candidates = {c.lesion_id: c for c in candidates}
    drop = set(drop)
    accept = set(candidates) - drop if accept is None else set(accept)
    unknown = (accept | drop) - set(candidates)
    if unknown:
        raise ValueError(f"no candidates with ids {sorted(unknown)}; candidates are {sorted(candidates)}")
    if accept & drop:
        raise ValueError(f"candidates {sorted(accept & drop)} are both accepted and dropped")
    grid = GridGeometry.from_image(segmentation.reference)
    chosen = [candidates[i] for i in sorted(accept - drop)]
    for candidate in chosen:
        if not candidate.grid.matches(grid):
            raise ValueError(f"candidate {candidate.lesion_id} was detected on another grid "
                             f"({candidate.grid.describe()}) than the segmentation's ({grid.describe()})")
    replaced = {c.lesion_id: segmentation.find_one("lesion", lesion_id=c.lesion_id)
                for c in chosen if c.is_existing}
    result = segmentation.without([seg.segment_id for seg in replaced.values()])
    routes = {lobe.tags.side: lobe.tags.route for lobe in segmentation.find(role="lobe")}
    for candidate in chosen:
        mask = np.zeros(grid.shape, dtype=bool)
        mask.ravel()[candidate.voxels] = True
        tags = SegmentTags("lesion", side=candidate.side, route=routes.get(candidate.side),
                           lesion_id=candidate.lesion_id)
        old = replaced.get(candidate.lesion_id)
        if old is None:
            result.add_segment(mask, tags)
        else:
            result.add_segment(mask, replace(old.tags, side=tags.side, route=tags.route), name=old.name,
                               segment_id=old.segment_id, color=old.color)
    return result


def _lobe_map(segmentation: Segmentation, lobes: list) -> tuple[np.ndarray, np.ndarray]:
    """(lobe index map: 0 none, k = lobes[k-1]; liver mask = liver segment or any lobe)."""
    shape = segmentation.reference.GetSize()[::-1]
    lobe_map = np.zeros(shape, dtype=np.int16)
    for k, lobe in enumerate(lobes, start=1):
        lobe_map[segmentation.mask_array(lobe.segment_id)] = k
    liver = lobe_map > 0
    for seg in segmentation.find(role="liver"):
        liver |= segmentation.mask_array(seg.segment_id)
    if not liver.any():
        raise ValueError("segmentation has no liver: it needs a segment tagged role=liver or lobe segments")
    return lobe_map, liver


def _tracking_ids(found: list[np.ndarray], known_map: np.ndarray, known: list,
                  peaks: list[float]) -> tuple[list[str], list[bool]]:
    """Ids for candidates: an overlapped known lesion's id (largest overlap first), else new ones."""
    pairs = []
    for i, voxels in enumerate(found):
        overlap = np.bincount(known_map.ravel()[voxels], minlength=len(known) + 1)
        pairs += [(int(overlap[k]), i, k - 1) for k in np.flatnonzero(overlap[1:]) + 1]
    ids: list[str | None] = [None] * len(found)
    taken: set[int] = set()
    for _, i, k in sorted(pairs, reverse=True):
        if ids[i] is None and k not in taken and known[k].tags.lesion_id:
            ids[i] = known[k].tags.lesion_id
            taken.add(k)
    existing = [i is not None for i in ids]
    unnamed = sorted((i for i, v in enumerate(ids) if v is None), key=lambda i: -peaks[i])  # hottest first
    for i, new in zip(unnamed, next_lesion_ids([s.tags.lesion_id for s in known], len(unnamed)), strict=True):
        ids[i] = new
    return ids, existing
