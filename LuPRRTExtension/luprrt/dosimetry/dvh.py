"""Dose-volume histograms and dose statistics for many regions in one pass.

Regions are the non-zero values of an integer label image (one label layer of a
segmentation). Everything is vectorised over regions: one ``np.lexsort`` (dose within
region) for the percentile doses and ``np.bincount`` for counts, means and histograms; no
per-region mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..physics import ML_PER_MM3


@dataclass(frozen=True)
class RegionDoseStatistics:
    """Dose statistics per region (arrays aligned with ``labels``).

    ``d2_gy``, ``d50_gy``, ``d98_gy``: minimum dose to the hottest 2 %, 50 %, 98 % of the
    region's volume, i.e. the 98th, 50th and 2nd percentile of the voxel doses (linear
    interpolation between order statistics, as ``numpy.percentile``).
    """

    labels: np.ndarray
    voxel_count: np.ndarray
    volume_ml: np.ndarray
    mean_gy: np.ndarray
    min_gy: np.ndarray
    max_gy: np.ndarray
    d2_gy: np.ndarray
    d50_gy: np.ndarray
    d98_gy: np.ndarray

    def rows(self) -> list[dict]:
        """One dict per region (for tables), columns named with their units."""
        columns = ("labels", "voxel_count", "volume_ml", "mean_gy", "min_gy", "max_gy", "d2_gy", "d50_gy",
                   "d98_gy")
        names = {"labels": "label"}
        return [{names.get(c, c): getattr(self, c)[i].item() for c in columns}
                for i in range(self.labels.size)]


@dataclass(frozen=True)
class CumulativeDoseVolumeHistograms:
    """Cumulative dose-volume histograms of labelled regions.

    ``volume_fraction[r, j]`` is the share (0-1) of region ``labels[r]`` receiving at least
    ``dose_gy[j]`` Gy (so column 0, at 0 Gy, is 1).
    """

    labels: np.ndarray
    dose_gy: np.ndarray
    volume_fraction: np.ndarray


def region_dose_statistics(dose_gy, labels) -> RegionDoseStatistics:
    """Mean, min, max, D2, D50, D98 and volume of every labelled region.

    Parameters
    ----------
    dose_gy : SimpleITK.Image or numpy.ndarray
        Absorbed dose (Gy).
    labels : SimpleITK.Image or numpy.ndarray
        Integer labels on the same grid; 0 is background.

    Returns
    -------
    RegionDoseStatistics
        Regions in increasing label order. Volumes need images (voxel spacing); for plain
        arrays ``volume_ml`` is NaN.
    """
    dose, label, voxel_ml = _flatten(dose_gy, labels)
    values, index = _region_index(label)
    order = np.lexsort((dose, index))
    sorted_dose = dose[order]
    counts = np.bincount(index, minlength=values.size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def percentile(fraction: float) -> np.ndarray:
        position = starts + fraction * (counts - 1)
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, starts + counts - 1)
        weight = position - low
        return sorted_dose[low] * (1.0 - weight) + sorted_dose[high] * weight

    return RegionDoseStatistics(
        labels=values,
        voxel_count=counts,
        volume_ml=counts * voxel_ml,
        mean_gy=np.bincount(index, dose, minlength=values.size) / counts,
        min_gy=sorted_dose[starts],
        max_gy=sorted_dose[starts + counts - 1],
        d2_gy=percentile(0.98),
        d50_gy=percentile(0.50),
        d98_gy=percentile(0.02),
    )


def cumulative_dose_volume_histograms(dose_gy, labels, bin_width_gy: float | None = None,
                                      n_bins: int = 200) -> CumulativeDoseVolumeHistograms:
    """Cumulative DVH of every labelled region on a common dose axis.

    The dose axis runs from 0 Gy in steps of ``bin_width_gy`` (default: the maximum
    labelled dose / ``n_bins``). Negative doses count as 0 Gy.

    Parameters
    ----------
    dose_gy : SimpleITK.Image or array_like
        Absorbed dose (Gy).
    labels : SimpleITK.Image or array_like
        Non-negative integer labels on the dose grid; 0 is background.
    bin_width_gy : float, optional
        Width of the dose bins (Gy).
    n_bins : int
        Number of bins up to the maximum dose when ``bin_width_gy`` is not given.

    Returns
    -------
    CumulativeDoseVolumeHistograms
        Labels present, dose axis (Gy) and volume fraction (0-1) per label and dose.

    Raises
    ------
    ValueError
        Grids or shapes that differ, non-integer or negative labels, no labelled voxel, or a
        non-positive bin width.
    """
    dose, label, _ = _flatten(dose_gy, labels)
    values, index = _region_index(label)
    dose = np.maximum(dose, 0.0)
    top = float(dose.max())
    if bin_width_gy is None:
        bin_width_gy = top / n_bins if top > 0 else 1.0
    if not (np.isfinite(bin_width_gy) and bin_width_gy > 0):
        raise ValueError(f"DVH bin width must be positive, got {bin_width_gy} Gy")
    n = int(np.floor(top / bin_width_gy)) + 1
    bins = np.minimum(np.floor(dose / bin_width_gy).astype(np.int64), n - 1)
    histogram = np.bincount(index * n + bins, minlength=values.size * n).reshape(values.size, n)
    at_least = np.cumsum(histogram[:, ::-1], axis=1)[:, ::-1]
    return CumulativeDoseVolumeHistograms(values, np.arange(n) * bin_width_gy,
                                          at_least / histogram.sum(axis=1, keepdims=True))


def _region_index(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label values present and each voxel's region index 0..n-1 (bincount, no sort)."""
    present = np.bincount(label)
    values = np.flatnonzero(present)
    lookup = np.zeros(present.size, dtype=np.int64)
    lookup[values] = np.arange(values.size)
    return values, lookup[label]


def _flatten(dose_gy, labels) -> tuple[np.ndarray, np.ndarray, float]:
    voxel_ml = float("nan")
    if isinstance(dose_gy, sitk.Image):
        if isinstance(labels, sitk.Image) and (labels.GetSize() != dose_gy.GetSize()
                                               or not np.allclose(labels.GetSpacing(), dose_gy.GetSpacing())):
            raise ValueError(f"label image grid (size {labels.GetSize()}, spacing {labels.GetSpacing()}) "
                             f"differs from the dose grid (size {dose_gy.GetSize()}, spacing "
                             f"{dose_gy.GetSpacing()})")
        voxel_ml = float(np.prod(dose_gy.GetSpacing())) * ML_PER_MM3
        dose_gy = sitk.GetArrayViewFromImage(dose_gy)
    if isinstance(labels, sitk.Image):
        labels = sitk.GetArrayViewFromImage(labels)
    dose, label = np.asarray(dose_gy), np.asarray(labels)
    if dose.shape != label.shape:
        raise ValueError(f"label array shape {label.shape} differs from the dose shape {dose.shape}")
    if not np.issubdtype(label.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {label.dtype}")
    if label.size and label.min() < 0:
        raise ValueError(f"labels must be non-negative, got minimum {label.min()}")
    inside = label.ravel() != 0
    if not inside.any():
        raise ValueError("label image has no labelled voxel (all 0)")
    return dose.ravel()[inside].astype(np.float64), label.ravel()[inside], voxel_ml
