"""Bring CT-defined segments onto a SPECT grid: nearest neighbour or fractional occupancy.

Segments are drawn on CT (about 1 mm voxels); activity is measured on SPECT
(about 4-5 mm voxels). Two ways to carry a segment over:

* nearest neighbour (:func:`segmentation_on_grid`): a SPECT voxel belongs to the
  segment when its centre lies in it. Fast and what Slicer's labelmap export does,
  but a small lesion can gain or lose a large share of its volume, or vanish.
* fractional occupancy (:func:`segment_occupancy`): each SPECT voxel gets the share
  of its volume inside the segment, estimated by supersampling: the voxel is cut
  into ``s x s x s`` sub-voxels and the segment label is looked up at each sub-voxel
  centre (one SimpleITK nearest-neighbour resample of the label layer onto a grid
  ``s`` times finer than the SPECT grid, restricted to the segment's bounding box).
  The sub-voxel counts are then summed per SPECT voxel with np.unique.

Grids must describe the same patient space: both are checked for overlap, for a
common DICOM frame of reference when both carry one, and for equal orientation
(unless ``allow_rotation=True``: a rotated grid is legal but on one scanner usually
means the wrong series).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..grid import GridGeometry, check_grid_compatibility, same_grid, voxel_box_corners, voxel_positions_lps
from ..regionstats import Region
from .model import Segmentation

log = logging.getLogger(__name__)

_MAX_SUPERSAMPLED_VOXELS = 200_000_000
_COVERAGE_SAMPLES = 200_000
# Shares of a segment inside an image's field of view below which it is refused, or flagged. A liver
# cut by a few mm at the edge of the axial field of view costs a few % and leaves concentrations and
# T/N meaningful; below 95 % the images are usually not registered (a shift), or the scan missed the organ.
COVERAGE_REFUSED = 0.95
COVERAGE_FLAGGED = 0.995


def segmentation_on_grid(segmentation: Segmentation, reference: sitk.Image, *, allow_rotation: bool = False,
                         allow_empty: bool = False) -> Segmentation:
    """Nearest-neighbour copy of ``segmentation`` on the grid of ``reference`` (e.g. the SPECT).

    Every layer is resampled once (SimpleITK, nearest neighbour at voxel centres);
    segments and tags are copied. A segment left without voxels raises a ValueError
    naming it (use :func:`segment_occupancy` for small lesions), unless ``allow_empty``.
    The input is not modified.
    """
    if same_grid(segmentation.reference, reference):
        return segmentation.copy()
    check_grid_compatibility(segmentation.reference, reference, allow_rotation=allow_rotation)
    resampler = sitk.ResampleImageFilter()
    resampler.SetReferenceImage(reference)
    resampler.SetInterpolator(sitk.sitkNearestNeighbor)
    resampler.SetDefaultPixelValue(0)
    layers = []
    for layer in segmentation.layers:
        resampler.SetOutputPixelType(layer.GetPixelID())
        layers.append(resampler.Execute(layer))
    result = Segmentation(layers, copy.deepcopy(segmentation.segments))
    if not allow_empty:
        lost = []
        for index, layer in enumerate(layers):
            present = np.bincount(sitk.GetArrayViewFromImage(layer).ravel().astype(np.int64))
            lost += [seg for seg in result.segments if seg.layer == index
                     and (seg.label_value >= present.size or present[seg.label_value] == 0)]
        if lost:
            raise ValueError(f"segments {[s.name for s in lost]} have no voxel centre on the target grid "
                             f"({GridGeometry.from_image(reference).describe()}); they are too small for "
                             "nearest-neighbour resampling: use fractional occupancy (segment_occupancy)")
    return result


def fraction_inside(segmentation: Segmentation, reference: sitk.Image,
                    segment_ids: Iterable[str] | None = None) -> dict[str, float]:
    """Share of each segment's voxels (by count) whose centre lies inside the field of view of ``reference``.

    The field of view is the box of ``reference``'s voxels (their outer faces), in its own index
    space, so any orientation is handled. A segmentation shifted against the SPECT, or a SPECT
    that does not cover an organ, shows as a fraction below 1. Empty segments give 0. Large
    segments are sampled at evenly spaced voxels (at most :data:`_COVERAGE_SAMPLES`; the share
    is then known to about 1/sqrt(samples), 0.2 %).
    """
    size = np.asarray(reference.GetSize(), dtype=float)
    steps = np.asarray(reference.GetDirection()).reshape(3, 3) * np.asarray(reference.GetSpacing())
    to_index = np.linalg.inv(steps)
    origin = np.asarray(reference.GetOrigin())
    fractions = {}
    for seg in _segments(segmentation, segment_ids):
        flat = np.flatnonzero(segmentation.mask_array(seg.segment_id))
        if not flat.size:
            fractions[seg.segment_id] = 0.0
            continue
        flat = flat[::-(-flat.size // _COVERAGE_SAMPLES)]
        index = (voxel_positions_lps(segmentation.reference, flat) - origin) @ to_index.T
        inside = np.all((index >= -0.5) & (index <= size - 0.5), axis=1)
        fractions[seg.segment_id] = float(np.count_nonzero(inside)) / flat.size
    return fractions


def check_coverage(segmentation: Segmentation, reference: sitk.Image, roles: Iterable[str], *,
                   segmentation_name: str, image_name: str) -> list[str]:
    """Refuse (ValueError) or flag segments of ``roles`` that lie partly outside the image's field of view.

    A segment with less than :data:`COVERAGE_REFUSED` of its voxels inside the image is refused
    (the two are not registered, or the scan misses the organ: every number would describe a
    part); below :data:`COVERAGE_FLAGGED` it is flagged. Returns the warnings (also logged).
    """
    chosen = [seg.segment_id for seg in segmentation.segments if seg.tags.role in set(roles)]
    fractions = fraction_inside(segmentation, reference, chosen)
    if not fractions:
        return []
    worst = min(fractions, key=fractions.get)
    listing = ", ".join(f"{segmentation.segment(sid).name} {100 * f:.0f} %" for sid, f in sorted(
        fractions.items(), key=lambda item: item[1]) if f < COVERAGE_FLAGGED)
    if fractions[worst] < COVERAGE_REFUSED:
        raise ValueError(f"{segmentation_name} overlaps {image_name} only partly: inside its field of view lie "
                         f"{listing}; register the segmentation to the image (same frame of reference) or give "
                         "an image that covers these structures")
    if fractions[worst] < COVERAGE_FLAGGED:
        text = f"{segmentation_name} lies partly outside {image_name}: inside lie {listing}"
        log.warning(text)
        return [text]
    return []


def segment_regions(segmentation: Segmentation,
                    segment_ids: Iterable[str] | None = None) -> dict[str, Region]:
    """Voxels of each segment on the segmentation's own grid, as :class:`Region` (flat indices).

    One ``scipy.ndimage.find_objects`` pass per layer finds each label's bounding
    box; a segment's voxels are then read inside its box only.
    """
    wanted = _segments(segmentation, segment_ids)
    shape = segmentation.reference.GetSize()[::-1]
    regions = {}
    for index in sorted({seg.layer for seg in wanted}):
        labels = sitk.GetArrayViewFromImage(segmentation.layers[index])
        in_layer = [seg for seg in wanted if seg.layer == index]
        boxes = ndimage.find_objects(labels, max_label=max(seg.label_value for seg in in_layer))
        for seg in in_layer:
            box = boxes[seg.label_value - 1]
            if box is None:
                regions[seg.segment_id] = Region(np.zeros(0, dtype=np.int64))
                continue
            local = np.nonzero(labels[box] == seg.label_value)
            voxels = np.ravel_multi_index(tuple(i + s.start for i, s in zip(local, box, strict=True)), shape)
            regions[seg.segment_id] = Region(voxels)
    return {seg.segment_id: regions[seg.segment_id] for seg in wanted}


def segment_occupancy(segmentation: Segmentation, reference: sitk.Image, *,
                      segment_ids: Iterable[str] | None = None, supersampling: int = 5,
                      allow_rotation: bool = False) -> dict[str, Region]:
    """Fractional occupancy of each segment on the grid of ``reference``.

    Parameters
    ----------
    segmentation : Segmentation
        Segments on their own (CT) grid.
    reference : SimpleITK.Image
        Target grid (the SPECT).
    segment_ids : iterable of str, optional
        Segments to carry over; all by default.
    supersampling : int
        Sub-voxels per axis (``s**3`` sample points per target voxel). The volume
        error of a smooth segment shrinks roughly as 1/s; 5 keeps a 1 cm lesion on a
        4.8 mm grid within 1 % of its CT volume.
    allow_rotation : bool
        Accept a target grid with a different orientation.

    Returns
    -------
    dict of str to Region
        For each segment the target voxels it touches (flat indices) with their
        occupancy in (0, 1]. The input is not modified.
    """
    if supersampling < 1 or int(supersampling) != supersampling:
        raise ValueError(f"supersampling must be a positive integer, got {supersampling}")
    factor = int(supersampling)
    wanted = _segments(segmentation, segment_ids)
    check_grid_compatibility(segmentation.reference, reference, allow_rotation=allow_rotation)
    target_shape = np.asarray(reference.GetSize()[::-1])
    n_target = int(np.prod(target_shape))
    regions: dict[str, Region] = {}
    for index in sorted({seg.layer for seg in wanted}):
        in_layer = [seg for seg in wanted if seg.layer == index]
        regions.update(_layer_occupancy(segmentation.layers[index], in_layer, reference, factor,
                                        target_shape, n_target))
    return {seg.segment_id: regions[seg.segment_id] for seg in wanted}


def _layer_occupancy(layer: sitk.Image, segments: list, reference: sitk.Image, factor: int,
                     target_shape: np.ndarray, n_target: int) -> dict[str, Region]:
    labels = sitk.GetArrayViewFromImage(layer)
    empty = {seg.segment_id: Region(np.zeros(0, np.int64), np.zeros(0)) for seg in segments}
    boxes = [box for box in ndimage.find_objects(labels, max_label=max(s.label_value for s in segments))]
    boxes = [boxes[seg.label_value - 1] for seg in segments if boxes[seg.label_value - 1] is not None]
    if not boxes:
        return empty
    low_zyx = np.min([[s.start for s in box] for box in boxes], axis=0)
    high_zyx = np.max([[s.stop - 1 for s in box] for box in boxes], axis=0)
    corners = voxel_box_corners(layer, low_zyx[::-1].astype(float), high_zyx[::-1].astype(float))
    target_index = np.array([reference.TransformPhysicalPointToContinuousIndex(tuple(map(float, c)))
                             for c in corners])[:, ::-1]  # (z, y, x)
    low = np.clip(np.floor(target_index.min(axis=0) + 0.5).astype(int) - 1, 0, target_shape)
    high = np.clip(np.ceil(target_index.max(axis=0) + 0.5).astype(int) + 1, 0, target_shape)
    if np.any(high <= low):
        return empty
    box_shape = high - low
    if int(np.prod(box_shape)) * factor ** 3 > _MAX_SUPERSAMPLED_VOXELS:
        raise ValueError(f"supersampling {factor} of a {box_shape.tolist()} voxel box needs more than "
                         f"{_MAX_SUPERSAMPLED_VOXELS} samples; lower the supersampling")
    # The fine grid: s times finer, its first sample at the centre of the first
    # sub-voxel of target voxel `low`; sub-voxel (k) lies in target voxel k // s.
    spacing = np.asarray(reference.GetSpacing()) / factor
    first = (low[::-1] - 0.5 + 0.5 / factor).astype(float)
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(n) for n in box_shape[::-1] * factor])
    resampler.SetOutputSpacing(tuple(float(v) for v in spacing))
    resampler.SetOutputDirection(reference.GetDirection())
    resampler.SetOutputOrigin(reference.TransformContinuousIndexToPhysicalPoint(tuple(first)))
    resampler.SetInterpolator(sitk.sitkNearestNeighbor)
    resampler.SetDefaultPixelValue(0)
    resampler.SetOutputPixelType(layer.GetPixelID())
    fine_image = resampler.Execute(layer)  # keep a reference: the array below is a view into it
    fine = sitk.GetArrayViewFromImage(fine_image)
    # Sized for every requested label too: an empty segment may carry the layer's highest label value.
    position = np.full(max(int(labels.max()), *(seg.label_value for seg in segments)) + 1, -1, dtype=np.int64)
    position[[seg.label_value for seg in segments]] = np.arange(len(segments))
    which = position[fine]
    z, y, x = np.nonzero(which >= 0)
    coarse = np.ravel_multi_index((z // factor + low[0], y // factor + low[1], x // factor + low[2]),
                                  tuple(target_shape))
    keys, counts = np.unique(which[z, y, x] * n_target + coarse, return_counts=True)
    owner = keys // n_target
    bounds = np.searchsorted(owner, np.arange(len(segments) + 1))
    regions = {}
    for k, seg in enumerate(segments):
        part = slice(bounds[k], bounds[k + 1])
        regions[seg.segment_id] = Region(keys[part] % n_target, counts[part] / factor ** 3)
    return regions


def _segments(segmentation: Segmentation, segment_ids: Iterable[str] | None) -> list:
    if segment_ids is None:
        return list(segmentation.segments)
    known = {seg.segment_id: seg for seg in segmentation.segments}
    unknown = [segment_id for segment_id in segment_ids if segment_id not in known]
    if unknown:
        raise ValueError(f"no segment with id {unknown}; the segmentation has {sorted(known)}")
    return [known[segment_id] for segment_id in segment_ids]
