"""Baseline imaging features of every tracked lesion: FDG and 68Ga PET uptake, MRI ADC, volume.

The predictive-imaging study relates, lesion by lesion, the baseline 18F-FDG SUV,
68Ga-octreotate SUV and MRI apparent diffusion coefficient to the lesion's outcome.
Lesions are segments tagged ``role="lesion"`` with a tracking ``lesion_id`` on the
reference CT grid (the segmentation's grid). PET and MR grids differ from the CT's,
so every image is brought onto the CT grid:

* A transform per image maps reference (CT) points to that image's points (ITK's
  convention, as returned by :func:`luprrt.registration.register_rigid` with the CT as
  the fixed image, e.g. the reference CT against the PET/CT's own CT). Without one, the
  image is taken to lie in the reference CT's patient space already.
* Values are sampled at the CT voxel centres of the lesions by trilinear interpolation
  (:func:`luprrt.registration.resample_to`), on a crop of the CT grid to the lesions'
  bounding box. Linear interpolation reproduces a linearly varying image exactly and
  does not spread a masked (NaN) voxel beyond its neighbours.
* SUVmax and SUVmean: maximum and mean of the interpolated SUV over the lesion's CT
  voxels. SUVpeak (PERCIST: 1 mL sphere, :mod:`luprrt.features.suv`): the 1 mL sphere mean is
  computed on the PET's own grid (one convolution, no interpolation blur inside the
  sphere), interpolated to the CT grid, and maximised over the lesion's CT voxels,
  i.e. over sphere centres inside the lesion.
* ADC mean and minimum over the lesion's CT voxels that have a value (voxels masked in
  the fit, NaN, are skipped).
* A lesion not wholly inside an image's field of view gets NaN for that image's
  features (a warning names it): part of it was not seen.

Statistics of all lesions of one image come from one pass over the cropped grid
(:func:`luprrt.regionstats.region_statistics` on a lesion label map).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np
import SimpleITK as sitk

from ..grid import covered_by
from ..io import QuantitativeImage
from ..provenance import ProgressCallback, no_progress
from ..regionstats import region_statistics
from ..segments import Segmentation, segment_regions
from .adc import AdcFit, adc_map
from .suv import sphere_mean_image, suv_image

logger = logging.getLogger(__name__)

MODALITIES = ("fdg", "ga68", "adc")
LESION_FEATURE_COLUMNS = ("lesion_id", "fdg_suvmax", "fdg_suvpeak", "fdg_suvmean", "ga68_suvmax", "ga68_suvpeak",
                          "ga68_suvmean", "adc_mean_mm2_per_s", "adc_min_mm2_per_s", "volume_ml")


def lesion_features(segmentation: Segmentation, *, fdg: QuantitativeImage | None = None,
                    ga68: QuantitativeImage | None = None,
                    adc: sitk.Image | QuantitativeImage | AdcFit | None = None,
                    transforms: Mapping[str, sitk.Transform] | None = None, patient_id: str | None = None,
                    progress: ProgressCallback | None = None) -> list[dict]:
    """SUVmax/SUVpeak/SUVmean of FDG and 68Ga PET, ADC mean/min and volume of every lesion.

    Parameters
    ----------
    segmentation : Segmentation
        Lesion segments (``role="lesion"``, each with a ``lesion_id``) on the reference CT grid.
    fdg, ga68 : QuantitativeImage, optional
        PET in Bq/mL with its header values (converted by :func:`luprrt.features.suv.suv_image`),
        or already in SUVbw (``units="SUVbw"``).
    adc : SimpleITK.Image, QuantitativeImage or AdcFit, optional
        ADC in mm2/s (convert scaled scanner maps with :func:`luprrt.features.adc.adc_map` first).
    transforms : mapping {"fdg", "ga68", "adc"} -> SimpleITK.Transform, optional
        Reference-CT points to image points, per image; missing = identity.
    patient_id : str, optional
        Added as the first column when given.
    progress : callable(fraction, message), optional

    Returns
    -------
    list of dict
        One row per lesion in segment order, columns :data:`LESION_FEATURE_COLUMNS`
        (preceded by ``patient_id`` when given); SUVs in g/mL, ADC in mm2/s, volume in
        mL; NaN for an image not given or not covering the lesion.

    Raises
    ------
    ValueError
        No lesion segment; a lesion without ``lesion_id``, with a duplicate id, empty, or
        overlapping another lesion; an unknown transform key; a PET not in Bq/mL or SUVbw.
    """
    progress = progress or no_progress
    transforms = dict(transforms or {})
    unknown = sorted(set(transforms) - set(MODALITIES))
    if unknown:
        raise ValueError(f"transforms has unknown keys {unknown}; expected a subset of {MODALITIES}")
    for key, transform in transforms.items():
        if not isinstance(transform, sitk.Transform):
            raise ValueError(f"transforms[{key!r}] must be a SimpleITK transform, got {type(transform).__name__}")
    lesions = _lesion_segments(segmentation)
    crop, labels, counts = _lesion_label_map(segmentation, lesions)
    voxel_ml = float(np.prod(crop.GetSpacing())) / 1000.0
    rows = [({"patient_id": patient_id} if patient_id is not None else {})
            | {column: math.nan for column in LESION_FEATURE_COLUMNS}
            | {"lesion_id": seg.tags.lesion_id, "volume_ml": float(counts[k] * voxel_ml)}
            for k, seg in enumerate(lesions)]
    ids = [seg.tags.lesion_id for seg in lesions]
    inputs = {name: image for name, image in (("fdg", fdg), ("ga68", ga68), ("adc", adc)) if image is not None}
    for step, (name, given) in enumerate(inputs.items()):
        progress(step / max(len(inputs), 1), f"lesion features: {name}")
        transform = transforms.get(name)
        if name == "adc":
            image = _adc_image(given)
            values, covered = _on_grid(image, crop, transform)
            stats = _lesion_statistics(values, covered, labels, ids, name, voxel_ml)
            for k, row in enumerate(rows):
                row["adc_mean_mm2_per_s"] = float(stats.mean[k])
                row["adc_min_mm2_per_s"] = float(stats.min[k])
            continue
        suv = _suv(given, name)
        values, covered = _on_grid(suv, crop, transform)
        stats = _lesion_statistics(values, covered, labels, ids, name, voxel_ml)
        peak_values, _ = _on_grid(sphere_mean_image(suv), crop, transform)
        peaks = _lesion_statistics(peak_values, covered, labels, ids, name, voxel_ml, report=False)
        for k, row in enumerate(rows):
            row[f"{name}_suvmax"] = float(stats.max[k])
            row[f"{name}_suvmean"] = float(stats.mean[k])
            row[f"{name}_suvpeak"] = float(peaks.max[k])
    progress(1.0, "lesion features")
    logger.info("lesion features of %d lesions from %s", len(rows), ", ".join(inputs) or "no images")
    return rows


def _lesion_segments(segmentation: Segmentation) -> list:
    lesions = segmentation.find(role="lesion")
    if not lesions:
        raise ValueError("the segmentation has no lesion segment (role='lesion')")
    missing = [seg.segment_id for seg in lesions if not seg.tags.lesion_id]
    if missing:
        raise ValueError(f"lesion segments {missing} have no lesion_id (tracking id); tag them first")
    ids = [seg.tags.lesion_id for seg in lesions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"lesion ids {duplicates} are used by more than one segment")
    return lesions


def _lesion_label_map(segmentation: Segmentation, lesions: list) -> tuple[sitk.Image, np.ndarray, np.ndarray]:
    """The CT grid cropped to the lesions, their label map there (1..n) and voxel counts."""
    regions = segment_regions(segmentation, [seg.segment_id for seg in lesions])
    empty = [seg.segment_id for seg in lesions if regions[seg.segment_id].voxels.size == 0]
    if empty:
        raise ValueError(f"lesion segments {empty} are empty")
    shape = segmentation.reference.GetSize()[::-1]
    voxels = np.concatenate([regions[seg.segment_id].voxels for seg in lesions])
    owner = np.repeat(np.arange(1, len(lesions) + 1), [regions[seg.segment_id].voxels.size for seg in lesions])
    zyx = np.stack(np.unravel_index(voxels, shape))
    low, high = zyx.min(axis=1), zyx.max(axis=1) + 1
    box_shape = tuple(int(n) for n in high - low)
    local = np.ravel_multi_index(tuple(zyx - low[:, None]), box_shape)
    hits = np.bincount(local, minlength=int(np.prod(box_shape)))
    if (hits > 1).any():
        shared = np.isin(local, np.flatnonzero(hits > 1))
        names = sorted({lesions[k - 1].segment_id for k in np.unique(owner[shared])})
        raise ValueError(f"lesion segments {names} overlap; each voxel may belong to one lesion only")
    labels = np.zeros(box_shape, dtype=np.int32)
    labels.reshape(-1)[local] = owner
    crop = segmentation.reference[int(low[2]):int(high[2]), int(low[1]):int(high[1]), int(low[0]):int(high[0])]
    return crop, labels, np.bincount(owner, minlength=len(lesions) + 1)[1:]


def _suv(given, name: str) -> sitk.Image:
    if not isinstance(given, QuantitativeImage):
        raise ValueError(f"{name}: pass the PET as a QuantitativeImage (Bq/mL with its header, or SUVbw), "
                         f"got {type(given).__name__}")
    if given.units == "SUVbw":
        return sitk.Cast(given.image, sitk.sitkFloat64)
    if given.units != "Bq/mL":
        raise ValueError(f"{name} PET {given.source or ''} is in {given.units!r}; expected Bq/mL or SUVbw")
    return suv_image(given)


def _adc_image(given) -> sitk.Image:
    if isinstance(given, AdcFit):
        given = given.adc_mm2_per_s
    return adc_map(given, None if isinstance(given, QuantitativeImage) else "mm2/s")


def _on_grid(image: sitk.Image, crop: sitk.Image, transform: sitk.Transform | None) -> tuple[np.ndarray, np.ndarray]:
    """Linear samples of ``image`` at the crop's voxel centres and where the image covers them.

    Centres on the image's outer edge take the edge voxel's value (nearest-neighbour
    extrapolation) and count as covered (:func:`luprrt.grid.covered_by`), so that a lesion on
    a slice that shares the PET's edge plane is measured the same way in every run.
    """
    image = sitk.Cast(image, sitk.sitkFloat64)
    values = sitk.GetArrayFromImage(sitk.Resample(
        image, crop, transform or sitk.Transform(3, sitk.sitkIdentity), sitk.sitkLinear, math.nan,
        sitk.sitkFloat64, True))
    covered = covered_by(crop, image, transform)
    return values, covered


def _lesion_statistics(values: np.ndarray, covered: np.ndarray, labels: np.ndarray, ids: list[str], name: str,
                       voxel_ml: float, report: bool = True):
    """Per-lesion statistics over voxels with a finite value; NaN for lesions not wholly covered."""
    n = len(ids)
    finite = covered & np.isfinite(values)
    weights = finite.astype(np.float64)
    stats = region_statistics(np.where(finite, values, 0.0), labels, voxel_volume_ml=voxel_ml, weights=weights,
                              label_values=range(1, n + 1), unit="")
    inside = labels > 0
    total = np.bincount(labels[inside], minlength=n + 1)[1:]
    seen = np.bincount(labels[inside & covered], minlength=n + 1)[1:]
    outside = seen < total
    if report:
        for k in np.flatnonzero(outside):
            logger.warning("lesion %s: %.0f %% of its voxels lie outside the %s field of view; its %s "
                           "features are NaN", ids[k], 100.0 * (1.0 - seen[k] / total[k]), name, name)
        for k in np.flatnonzero((stats.voxel_count < seen) & ~outside):
            logger.warning("lesion %s: %d of %d voxels have no %s value (masked); they are skipped", ids[k],
                           int(seen[k] - stats.voxel_count[k]), int(seen[k]), name)
    for field_name in ("mean", "min", "max"):
        getattr(stats, field_name)[outside] = np.nan
    return stats
