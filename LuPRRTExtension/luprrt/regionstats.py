"""Statistics of many image regions in one pass over the voxels.

Two entry points:

* :func:`region_statistics` for a single label map (one label per voxel), e.g. the
  lesions of one layer, or a label map with fractional occupancy weights.
* :class:`RegionMasks` for named regions that may overlap (a lesion inside a lobe,
  the non-tumour liver of a lobe) or occupy voxels fractionally. It is built once
  per image grid and then gives the statistics of every region for each image on
  that grid (every cycle's SPECT) with one pass over the voxels.

How overlapping regions are reduced in one pass (label algebra): the grid is cut
into *atoms*, the sets of voxels that belong to exactly the same regions. Every
voxel has one atom, so the per-atom count, sum, centred sum of squares, minimum
and maximum come from one pass; a region's statistics then combine the statistics
of its atoms (sums add, minima and maxima reduce, centred sums of squares merge
with the parallel-variance formula of Chan, Golub and LeVeque, Am Stat 1983;37:242).

The one-pass reduction. With numba available (it is optional: Slicer does not ship
it) a compiled kernel walks the voxels in runs of equal label, which is how label
maps look in memory (long runs along x). Each run is reduced in registers with a
vectorisable inner loop (shifted sums: values minus the run's first value, so the
centred sum of squares does not cancel), then merged into its label with Chan's
formula. This beats scatter-adds (np.bincount, np.maximum.at) that touch a label's
accumulator for every voxel, and a sort-based np.maximum.reduceat that needs an
O(N log N) argsort first. The measured speed against SimpleITK's
LabelStatisticsImageFilter, a per-label mask loop and a plain ``image.sum()`` is printed
by ``make bench`` (Testing/benchmarks/bench_regionstats.py) and kept in the README's
speed table. Without numba the same numbers come from
np.bincount (two passes: sum, then the sum of squared deviations from the label
mean) and np.minimum.at / np.maximum.at (several times slower).

Many overlapping regions are cheapest as unions of the pieces of one partition of
the grid (:meth:`RegionMasks.from_partition`): the caller labels each voxel once
(e.g. lesion index x lobe x non-tumour flag, as :mod:`luprrt.liver.tn` does).

Conventions
-----------
* ``std`` is the population standard deviation (ddof = 0): the voxels of a region
  are all of it, not a sample.
* Empty regions (no voxel) have ``voxel_count`` 0, ``volume_ml`` 0, ``sum`` 0 and
  NaN ``mean``, ``std``, ``min`` and ``max``.
* Fractional occupancy w in (0, 1] (share of the voxel inside the region):
  volume = sum(w) * voxel volume, sum = sum(w v), mean = sum(w v) / sum(w),
  std = sqrt(sum(w (v - mean)^2) / sum(w)); ``voxel_count`` counts voxels with
  w > 0; ``min`` and ``max`` are taken over voxels with w > 0.5 (mostly inside the
  region, so partial-volume voxels at the rim do not set them) or, for a region
  without such a voxel, over its voxels of largest w.
* ``total_mbq`` = sum * voxel volume [mL] / 1e6 when the image is an activity
  concentration in Bq/mL (``unit="Bq/mL"``), else None.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from .grid import GridGeometry

log = logging.getLogger(__name__)

ENGINES = ("auto", "numba", "numpy")
# Longest run reduced in registers. The shifted sums of a run are exact up to
# eps * run length in the worst case (first value an extreme outlier), so runs are
# split to keep that bound below 1e-12.
_MAX_RUN = 4096
# Label maps with labels up to this value are reduced with a lookup table (label ->
# output row); larger or negative labels are first renumbered with np.unique.
_MAX_LUT_LABEL = 1 << 24
_OCCUPANCY_EXTREMA_THRESHOLD = 0.5


@dataclass(frozen=True)
class Region:
    """Voxels of one region on a grid, as flat (C-order, z-y-x) indices.

    ``weights`` is the fractional occupancy of each voxel in (0, 1]; None means
    every listed voxel is wholly inside the region.
    """

    voxels: np.ndarray
    weights: np.ndarray | None = None

    def __post_init__(self):
        voxels = np.asarray(self.voxels, dtype=np.int64).ravel()
        object.__setattr__(self, "voxels", voxels)
        if self.weights is not None:
            weights = np.asarray(self.weights, dtype=np.float64).ravel()
            if weights.shape != voxels.shape:
                raise ValueError(f"region has {voxels.size} voxels but {weights.size} weights")
            if weights.size and (weights.min() <= 0 or weights.max() > 1 + 1e-12):
                raise ValueError("fractional occupancy weights must lie in (0, 1]; "
                                 f"got range [{weights.min()}, {weights.max()}]")
            object.__setattr__(self, "weights", weights)


@dataclass(frozen=True)
class RegionStatistics:
    """Per-region statistics of one image; one array entry per region.

    ``label`` holds the label values (from :func:`region_statistics`) or the region
    names (from :meth:`RegionMasks.statistics`). Values are in the image ``unit``,
    ``sum`` in unit x voxels, ``volume_ml`` in mL, ``total_mbq`` in MBq (None
    unless the unit is Bq/mL).
    """

    label: np.ndarray
    voxel_count: np.ndarray
    volume_ml: np.ndarray
    sum: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    min: np.ndarray
    max: np.ndarray
    total_mbq: np.ndarray | None
    unit: str

    def __len__(self) -> int:
        return len(self.label)

    def index(self, label) -> int:
        """Position of ``label`` (a label value or a region name)."""
        hits = np.flatnonzero(self.label == label)
        if hits.size == 0:
            raise KeyError(f"no region {label!r}; have {self.label.tolist()}")
        return int(hits[0])

    def rows(self) -> list[dict]:
        """One dict per region; value columns carry the image unit in their names."""
        suffix = _unit_suffix(self.unit)
        rows = []
        for i in range(len(self)):
            label = self.label[i]
            row = {
                "label": label.item() if isinstance(label, np.generic) else label,
                "voxel_count": int(self.voxel_count[i]),
                "volume_ml": float(self.volume_ml[i]),
                f"sum{suffix}": float(self.sum[i]),
                f"mean{suffix}": float(self.mean[i]),
                f"std{suffix}": float(self.std[i]),
                f"min{suffix}": float(self.min[i]),
                f"max{suffix}": float(self.max[i]),
            }
            if self.total_mbq is not None:
                row["total_mbq"] = float(self.total_mbq[i])
            rows.append(row)
        return rows

    def row(self, label) -> dict:
        """The row of one region."""
        return self.rows()[self.index(label)]


def region_statistics(image, labels, *, voxel_volume_ml: float | None = None, weights=None,
                      label_values: Iterable[int] | None = None, unit: str = "Bq/mL",
                      engine: str = "auto") -> RegionStatistics:
    """Count, volume, sum, mean, std, min, max (and MBq) of every label, in one pass.

    Parameters
    ----------
    image : SimpleITK.Image or numpy.ndarray
        Scalar image, e.g. a SPECT in Bq/mL.
    labels : SimpleITK.Image or numpy.ndarray
        Integer label map on the same grid (same shape; same geometry for images).
    voxel_volume_ml : float, optional
        Voxel volume in mL. Taken from the spacing of ``image`` (or ``labels``) when
        either is a SimpleITK image; required for two arrays.
    weights : array_like, optional
        Fractional occupancy in [0, 1] of each voxel in its label (0 = not counted);
        see the module notes for the weighted statistics.
    label_values : iterable of int, optional
        Labels to report, in this order (absent labels give empty rows). Default:
        every label present except 0 (background), ascending.
    unit : str
        Unit of the image values; ``"Bq/mL"`` adds ``total_mbq``.
    engine : {"auto", "numba", "numpy"}
        Reduction kernel; "auto" uses numba when it is installed. Weighted
        statistics always use the np.bincount path.

    Returns
    -------
    RegionStatistics
    """
    engine = _check_engine(engine)
    geometry = _shared_geometry(image, labels)
    values = _as_array(image, "image")
    label_array = _as_array(labels, "labels")
    if values.shape != label_array.shape:
        raise ValueError(f"image shape {values.shape} differs from label map shape {label_array.shape}")
    if not np.issubdtype(label_array.dtype, np.integer):
        raise ValueError(f"label map must be integer-valued, got dtype {label_array.dtype}")
    voxel_volume_ml = _voxel_volume(voxel_volume_ml, geometry)
    values = _flat_values(values)
    flat_labels = label_array.ravel()

    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != label_array.shape:
            raise ValueError(f"weights shape {weights.shape} differs from label map shape "
                             f"{label_array.shape}")
        if weights.size and (weights.min() < 0 or weights.max() > 1 + 1e-12):
            raise ValueError(f"occupancy weights must lie in [0, 1]; got [{weights.min()}, {weights.max()}]")

    explicit = label_values is not None
    if explicit:
        wanted = np.asarray(list(label_values), dtype=np.int64)
        if np.unique(wanted).size != wanted.size:
            raise ValueError(f"label_values contains duplicates: {wanted.tolist()}")
    index, n_bins, present = _label_index(flat_labels, wanted if explicit else None)
    if weights is not None:
        keep = weights.ravel() > 0
        bins = index(flat_labels[keep]) if callable(index) else index[flat_labels[keep]]
        ok = bins >= 0
        reduced = _weighted_reduce(values[keep][ok], bins[ok], weights.ravel()[keep][ok], n_bins)
    else:
        reduced = _reduce(values, flat_labels, index, n_bins, engine)
    if not explicit:
        rows = np.flatnonzero(reduced.count > 0)
        rows = rows[present[rows] != 0]
        reduced = reduced.take(rows)
        wanted = present[rows]
    return reduced.as_statistics(wanted, voxel_volume_ml, unit)


class RegionMasks:
    """Named regions on one grid, built once and reused for every image on that grid.

    Parameters
    ----------
    reference : SimpleITK.Image or tuple of int
        The grid: an image on it (its geometry is checked against every image
        passed to :meth:`statistics`), or an array shape (z, y, x) with
        ``voxel_volume_ml``.
    regions : mapping of str to mask
        Each region as a boolean array (z, y, x), a SimpleITK mask image on the grid
        (nonzero = inside), a floating array of fractional occupancy in [0, 1], or a
        :class:`Region` (flat voxel indices, optional weights). Regions may overlap.
    voxel_volume_ml : float, optional
        Needed when ``reference`` is a shape.

    Notes
    -----
    Whole-voxel regions are reduced through atoms (see the module notes): one pass
    over the voxels per image, whatever the number of regions and overlaps.
    Fractional regions are reduced from their (voxel, region, weight) triplets, a
    pass over their voxels only.
    """

    def __init__(self, reference, regions: Mapping[str, object], *, voxel_volume_ml: float | None = None):
        self._set_grid(reference, voxel_volume_ml)
        if not regions:
            raise ValueError("no regions given")
        self.names = tuple(regions)
        n_voxels = math.prod(self.shape)
        hard: dict[int, object] = {}
        fractional: dict[int, Region] = {}
        for position, (name, region) in enumerate(regions.items()):
            converted = self._convert(name, region, n_voxels)
            if isinstance(converted, Region) and converted.weights is not None:
                fractional[position] = converted
            else:
                hard[position] = converted
        self._hard_positions = np.fromiter(hard, dtype=np.int64, count=len(hard))
        self._build_atoms(list(hard.values()), n_voxels)
        self._fractional_positions = np.fromiter(fractional, dtype=np.int64, count=len(fractional))
        self._frac_voxels = np.concatenate([r.voxels for r in fractional.values()] or [np.zeros(0, np.int64)])
        self._frac_weights = np.concatenate([r.weights for r in fractional.values()] or [np.zeros(0)])
        self._frac_region = np.repeat(np.arange(len(fractional)),
                                      [r.voxels.size for r in fractional.values()]).astype(np.int64)

    @classmethod
    def from_partition(cls, reference, voxels: np.ndarray, pieces: np.ndarray,
                       regions: Mapping[str, Iterable[int]], *,
                       voxel_volume_ml: float | None = None) -> RegionMasks:
        """Regions that are unions of the pieces of a partition (label algebra done by the caller).

        Parameters
        ----------
        reference : SimpleITK.Image or tuple of int
            The grid, as in the constructor.
        voxels : numpy.ndarray
            Flat indices of the voxels that belong to some piece (each once; ascending
            order keeps runs long).
        pieces : numpy.ndarray
            Piece label (> 0) of each of those voxels.
        regions : mapping of str to iterable of int
            Each region as the piece labels it is made of. Pieces may be shared.

        Notes
        -----
        The cheapest way to build many overlapping regions: one vectorised labelling
        of the grid (e.g. lesion index x lobe x non-tumour flag) instead of one mask
        per region.
        """
        self = cls.__new__(cls)
        self._set_grid(reference, voxel_volume_ml)
        if not regions:
            raise ValueError("no regions given")
        voxels = np.asarray(voxels, dtype=np.int64).ravel()
        pieces = np.asarray(pieces).ravel()
        if voxels.shape != pieces.shape:
            raise ValueError(f"{voxels.size} voxels but {pieces.size} piece labels")
        if voxels.size and (voxels.min() < 0 or voxels.max() >= math.prod(self.shape)):
            raise ValueError("partition voxel indices lie outside the grid")
        if pieces.size and pieces.min() <= 0:
            raise ValueError("piece labels must be positive")
        self.names = tuple(regions)
        counts = _piece_counts(pieces)
        used = np.flatnonzero(counts)
        renumber = np.full(counts.size, -1, dtype=np.int32)
        renumber[used] = np.arange(used.size, dtype=np.int32)
        # All (region, piece) memberships in one array, de-duplicated and ordered region-major by one
        # np.unique of a combined key instead of one per region (there are hundreds of lesion regions).
        member_lists = [np.asarray(members if isinstance(members, np.ndarray) else list(members),
                                   dtype=np.int64).ravel() for members in regions.values()]
        members = np.concatenate(member_lists)
        region_of_member = np.repeat(np.arange(len(member_lists)), [m.size for m in member_lists])
        known = (members > 0) & (members < counts.size)
        atoms = renumber[members[known]]
        region_of_member = region_of_member[known]
        used_atom = atoms >= 0
        key = np.unique(region_of_member[used_atom] * max(used.size, 1) + atoms[used_atom])
        pairs = np.divmod(key, max(used.size, 1))  # (region, atom)
        self._hard_positions = np.arange(len(self.names))
        self._support, self._atoms = voxels, renumber.take(pieces)  # take: faster than renumber[pieces]
        self._pairs = (pairs[1], pairs[0])
        self._n_atoms, self._atom_counts = used.size, counts[used].astype(np.float64)
        self._fractional_positions = np.zeros(0, dtype=np.int64)
        self._frac_voxels = np.zeros(0, dtype=np.int64)
        self._frac_weights = np.zeros(0)
        self._frac_region = np.zeros(0, dtype=np.int64)
        return self

    def _set_grid(self, reference, voxel_volume_ml: float | None) -> None:
        if isinstance(reference, sitk.Image):
            self.geometry: GridGeometry | None = GridGeometry.from_image(reference)
            self.shape = self.geometry.shape
            self.voxel_volume_ml = self.geometry.voxel_volume_ml
        else:
            self.geometry = None
            self.shape = tuple(int(n) for n in reference)
            if len(self.shape) != 3:
                raise ValueError(f"reference shape must be (z, y, x), got {reference}")
            if voxel_volume_ml is None or voxel_volume_ml <= 0:
                raise ValueError("voxel_volume_ml (> 0) is needed when the reference is an array shape")
            self.voxel_volume_ml = float(voxel_volume_ml)

    def __repr__(self) -> str:
        return (f"RegionMasks({len(self.names)} regions, grid {self.shape}, "
                f"{self._n_atoms} atoms, {self._frac_voxels.size} fractional voxels)")

    def volume_ml(self) -> dict[str, float]:
        """Volume of every region in mL (sum of occupancies times the voxel volume)."""
        volumes = np.zeros(len(self.names))
        atom, region = self._pairs
        volumes[self._hard_positions] = np.bincount(region, self._atom_counts[atom],
                                                    minlength=self._hard_positions.size)
        if self._fractional_positions.size:
            volumes[self._fractional_positions] = np.bincount(
                self._frac_region, self._frac_weights, minlength=self._fractional_positions.size)
        return {name: float(v) for name, v in zip(self.names, volumes * self.voxel_volume_ml, strict=True)}

    def region(self, name: str) -> Region:
        """The voxels (and fractional weights) of one region, as given or as the atoms it is made of."""
        if name not in self.names:
            raise KeyError(f"no region {name!r}; have {list(self.names)}")
        position = self.names.index(name)
        fractional = np.flatnonzero(self._fractional_positions == position)
        if fractional.size:
            chosen = self._frac_region == fractional[0]
            return Region(self._frac_voxels[chosen], self._frac_weights[chosen])
        column = int(np.flatnonzero(self._hard_positions == position)[0])
        atom, region = self._pairs
        inside = np.isin(self._atoms, atom[region == column])
        return Region(self._support[inside] if self._support is not None else np.flatnonzero(inside))

    def statistics(self, image, *, unit: str = "Bq/mL", engine: str = "auto") -> RegionStatistics:
        """Statistics of every region of ``image`` (one pass over its voxels)."""
        engine = _check_engine(engine)
        if isinstance(image, sitk.Image):
            geometry = GridGeometry.from_image(image)
            if self.geometry is not None and not self.geometry.matches(geometry):
                raise ValueError(f"image grid ({geometry.describe()}) differs from the region grid "
                                 f"({self.geometry.describe()}); resample the segmentation to the image grid "
                                 "(luprrt.segments.on_grid) and build the regions there")
        values = _as_array(image, "image")
        if values.shape != self.shape:
            raise ValueError(f"image shape {values.shape} differs from the region grid shape {self.shape}")
        flat = _flat_values(values)
        n = len(self.names)
        result = _Reduced.empty(n)
        if self._hard_positions.size:
            atom_values = flat if self._support is None else flat.take(self._support)  # take: faster gather
            atoms = _reduce(atom_values, self._atoms, None, self._n_atoms, engine)
            result.put(self._hard_positions, atoms.merge(*self._pairs, self._hard_positions.size))
        if self._fractional_positions.size:
            frac = _weighted_reduce(flat[self._frac_voxels], self._frac_region, self._frac_weights,
                                    self._fractional_positions.size)
            result.put(self._fractional_positions, frac)
        return result.as_statistics(np.asarray(self.names, dtype=object), self.voxel_volume_ml, unit)

    def _convert(self, name: str, region, n_voxels: int):
        """A region as a dense boolean array, or a :class:`Region` (sparse or fractional)."""
        if isinstance(region, Region):
            if region.voxels.size and (region.voxels.min() < 0 or region.voxels.max() >= n_voxels):
                raise ValueError(f"region {name!r} has voxel indices outside the grid of {n_voxels} voxels")
            if region.weights is not None and np.unique(region.voxels).size != region.voxels.size:
                raise ValueError(f"fractional region {name!r} lists a voxel more than once")
            return region
        if isinstance(region, sitk.Image):
            if self.geometry is not None and not self.geometry.matches(GridGeometry.from_image(region)):
                raise ValueError(f"mask of region {name!r} is not on the region grid; resample it first")
            region = sitk.GetArrayViewFromImage(region) != 0
        array = np.asarray(region)
        if array.shape != self.shape:
            raise ValueError(f"mask of region {name!r} has shape {array.shape}, grid is {self.shape}")
        if array.dtype == bool:
            return array
        if np.issubdtype(array.dtype, np.floating):
            if array.size and (array.min() < 0 or array.max() > 1 + 1e-12):
                raise ValueError(f"occupancy of region {name!r} must lie in [0, 1]")
            voxels = np.flatnonzero(array)
            return Region(voxels, array.ravel()[voxels])
        return array != 0

    def _build_atoms(self, hard: list, n_voxels: int) -> None:
        """Cut the grid into atoms: voxels that belong to exactly the same whole-voxel regions.

        Each region splits the atoms it touches in two (inside, outside); only the
        region's own voxels are relabelled, so sparse regions cost their size only.
        """
        atoms = np.zeros(n_voxels, dtype=np.int32)
        regions_of_atom: list[tuple[int, ...]] = [()]  # atom 0: in no region
        for column, region in enumerate(hard):
            # Repeated voxel indices are harmless here: they get the same new atom.
            voxels = np.flatnonzero(region) if isinstance(region, np.ndarray) else region.voxels
            old = atoms[voxels]
            touched = np.flatnonzero(np.bincount(old, minlength=len(regions_of_atom)))
            relabel = np.arange(len(regions_of_atom), dtype=np.int32)
            relabel[touched] = np.arange(len(regions_of_atom), len(regions_of_atom) + touched.size)
            atoms[voxels] = relabel[old]
            regions_of_atom += [(*regions_of_atom[t], column) for t in touched]
        # Drop atoms emptied by later splits; atom 0 (outside every region) is not reduced.
        counts = np.bincount(atoms, minlength=len(regions_of_atom))
        used = np.flatnonzero(counts)
        used = used[used != 0]
        renumber = np.full(len(regions_of_atom), -1, dtype=np.int32)
        renumber[used] = np.arange(used.size, dtype=np.int32)
        inside = np.flatnonzero(atoms) if 2 * (n_voxels - counts[0]) < n_voxels else None
        if inside is None:
            self._support = None
            self._atoms = renumber[atoms]  # -1 outside every region
        else:
            self._support = inside
            self._atoms = renumber[atoms[inside]]
        members = [regions_of_atom[a] for a in used]
        self._pairs = (np.repeat(np.arange(used.size), [len(m) for m in members]).astype(np.int64),
                       np.fromiter((r for m in members for r in m), dtype=np.int64))
        self._n_atoms, self._atom_counts = used.size, counts[used].astype(np.float64)


@dataclass
class _Reduced:
    """Per-bin count, weight sum, value sum, centred sum of squares, min and max."""

    count: np.ndarray
    weight: np.ndarray
    total: np.ndarray
    m2: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def empty(cls, n: int) -> _Reduced:
        return cls(np.zeros(n, np.int64), np.zeros(n), np.zeros(n), np.zeros(n),
                   np.full(n, np.nan), np.full(n, np.nan))

    def take(self, rows: np.ndarray) -> _Reduced:
        return _Reduced(*(getattr(self, f)[rows] for f in ("count", "weight", "total", "m2", "low", "high")))

    def put(self, rows: np.ndarray, other: _Reduced) -> None:
        for name in ("count", "weight", "total", "m2", "low", "high"):
            getattr(self, name)[rows] = getattr(other, name)

    def merge(self, atom: np.ndarray, region: np.ndarray, n_regions: int) -> _Reduced:
        """Combine atom statistics into region statistics; (atom[k], region[k]) = atom in region."""
        count = np.bincount(region, self.count[atom], minlength=n_regions).round().astype(np.int64)
        total = np.bincount(region, self.total[atom], minlength=n_regions)
        atom_mean = self.total / np.maximum(self.count, 1)
        region_mean = total / np.maximum(count, 1)
        # Chan et al.: M2 of a union = sum of M2 + sum n_a (mean_a - mean)^2.
        spread = self.count[atom] * (atom_mean[atom] - region_mean[region]) ** 2
        m2 = np.bincount(region, self.m2[atom] + spread, minlength=n_regions)
        low = np.full(n_regions, np.inf)
        high = np.full(n_regions, -np.inf)
        np.minimum.at(low, region, self.low[atom])
        np.maximum.at(high, region, self.high[atom])
        empty = count == 0
        return _Reduced(count, count.astype(np.float64), total, m2,
                        np.where(empty, np.nan, low), np.where(empty, np.nan, high))

    def as_statistics(self, labels: np.ndarray, voxel_volume_ml: float, unit: str) -> RegionStatistics:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(self.weight > 0, self.total / self.weight, np.nan)
            std = np.where(self.weight > 0, np.sqrt(np.maximum(self.m2, 0.0) / self.weight), np.nan)
        empty = self.count == 0
        volume_ml = self.weight * voxel_volume_ml
        total_mbq = self.total * voxel_volume_ml / 1e6 if unit == "Bq/mL" else None
        return RegionStatistics(
            label=labels, voxel_count=self.count.copy(), volume_ml=volume_ml, sum=self.total.copy(),
            mean=mean, std=std, min=np.where(empty, np.nan, self.low), max=np.where(empty, np.nan, self.high),
            total_mbq=total_mbq, unit=unit)


def _reduce(values: np.ndarray, labels: np.ndarray, index, n_bins: int, engine: str) -> _Reduced:
    """Reduce ``values`` by bin; ``index`` maps labels to bins (lookup array, callable, or None = as is)."""
    if engine in ("auto", "numba"):
        kernel = _numba_kernel()
        if kernel is None and engine == "numba":
            raise ValueError("engine 'numba' requested but numba is not installed")
        if kernel is not None and not callable(index):
            lut = np.arange(n_bins, dtype=np.int64) if index is None else index
            if labels.dtype not in (np.int32, np.int64):
                # Few label dtypes = few compiled kernel variants; index-based labels are < 2**24.
                labels = labels.astype(np.int32)
            count, total, m2, low, high = kernel(values, labels, lut, n_bins, _MAX_RUN)
            return _finish(count, total, m2, low, high)
    if index is None:
        bins = labels.astype(np.int64, copy=False)
    elif callable(index):
        bins = index(labels)
    else:
        bins = index[labels]
    keep = bins >= 0
    if not keep.all():
        values, bins = values[keep], bins[keep]
    return _weighted_reduce(values, bins, None, n_bins)


def _piece_counts(pieces: np.ndarray) -> np.ndarray:
    """Voxel count of every piece label (np.bincount), counted per run of equal labels.

    Partition voxels in ascending order come in long runs of one piece (along x), where
    np.bincount would increment the same counter voxel after voxel; counting the runs'
    lengths is about twice as fast.
    """
    if not pieces.size:
        return np.zeros(1, dtype=np.int64)
    starts = np.flatnonzero(pieces[1:] != pieces[:-1]) + 1
    starts = np.concatenate(([0], starts))
    lengths = np.diff(starts, append=pieces.size)
    return np.bincount(pieces[starts], lengths).astype(np.int64)


def _finish(count, total, m2, low, high) -> _Reduced:
    empty = count == 0
    return _Reduced(count, count.astype(np.float64), total, m2,
                    np.where(empty, np.nan, low), np.where(empty, np.nan, high))


def _weighted_reduce(values: np.ndarray, bins: np.ndarray, weights: np.ndarray | None,
                     n_bins: int) -> _Reduced:
    """Bin statistics with np.bincount (two-pass centred sum of squares); weights = occupancy."""
    values = np.asarray(values, dtype=np.float64)
    count = np.bincount(bins, minlength=n_bins)
    weight = count.astype(np.float64) if weights is None else np.bincount(bins, weights, minlength=n_bins)
    total = np.bincount(bins, values if weights is None else weights * values, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(weight > 0, total / np.where(weight > 0, weight, 1.0), 0.0)
    deviation = values - mean[bins]
    squared = deviation * deviation
    m2 = np.bincount(bins, squared if weights is None else weights * squared, minlength=n_bins)
    if weights is None:
        eligible = slice(None)
    else:
        largest = np.zeros(n_bins)
        np.maximum.at(largest, bins, weights)
        eligible = (weights > _OCCUPANCY_EXTREMA_THRESHOLD) | (weights >= largest[bins])
    low = np.full(n_bins, np.inf)
    high = np.full(n_bins, -np.inf)
    np.minimum.at(low, bins[eligible], values[eligible])
    np.maximum.at(high, bins[eligible], values[eligible])
    empty = count == 0
    return _Reduced(count, weight, total, m2, np.where(empty, np.nan, low), np.where(empty, np.nan, high))


def _label_index(flat_labels: np.ndarray, wanted: np.ndarray | None):
    """(index, n_bins, bin_label): how labels map to output bins.

    ``index`` is a lookup array (label -> bin, -1 = ignored) for small non-negative
    labels, else a callable doing the same through np.searchsorted.
    """
    if flat_labels.size == 0:
        raise ValueError("label map is empty")
    low, high = _label_range(flat_labels)
    if wanted is None:
        if low >= 0 and high < _MAX_LUT_LABEL:
            lut = np.arange(high + 1, dtype=np.int64)
            lut[0] = -1  # background is not reported: skip its voxels
            return lut, high + 1, np.arange(high + 1, dtype=np.int64)
        present = np.unique(flat_labels).astype(np.int64)
        return _searchsorted_index(present, np.arange(present.size)), present.size, present
    if low >= 0 and high < _MAX_LUT_LABEL:
        lut = np.full(high + 1, -1, dtype=np.int64)
        inside = (wanted >= 0) & (wanted <= high)
        lut[wanted[inside]] = np.flatnonzero(inside)
        return lut, wanted.size, wanted
    order = np.argsort(wanted)
    return _searchsorted_index(wanted[order], order), wanted.size, wanted


def _label_range(flat_labels: np.ndarray) -> tuple[int, int]:
    """(min, max) of the labels; one pass with numba, two without."""
    kernel = _numba_range_kernel() if flat_labels.dtype in (np.int32, np.int64) else None
    if kernel is None:
        return int(flat_labels.min()), int(flat_labels.max())
    low, high = kernel(flat_labels)
    return int(low), int(high)


def _searchsorted_index(sorted_labels: np.ndarray, bins: np.ndarray):
    def index(labels: np.ndarray) -> np.ndarray:
        position = np.clip(np.searchsorted(sorted_labels, labels), 0, sorted_labels.size - 1)
        return np.where(sorted_labels[position] == labels, bins[position], -1)
    return index


def _check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
    return engine


def _as_array(image, what: str) -> np.ndarray:
    if isinstance(image, sitk.Image):
        if image.GetNumberOfComponentsPerPixel() != 1:
            raise ValueError(f"{what} must be a scalar image, got {image.GetNumberOfComponentsPerPixel()} "
                             "components per voxel")
        return sitk.GetArrayViewFromImage(image)
    array = np.asarray(image)
    if array.ndim != 3:
        raise ValueError(f"{what} must be a 3D array (z, y, x), got shape {array.shape}")
    return array


def _flat_values(values: np.ndarray) -> np.ndarray:
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    return np.ascontiguousarray(values).ravel()


def _shared_geometry(image, labels) -> GridGeometry | None:
    geometries = [GridGeometry.from_image(x) for x in (image, labels) if isinstance(x, sitk.Image)]
    if len(geometries) == 2 and not geometries[0].matches(geometries[1]):
        raise ValueError(f"image grid ({geometries[0].describe()}) differs from the label map grid "
                         f"({geometries[1].describe()}); resample the labels first")
    return geometries[0] if geometries else None


def _voxel_volume(voxel_volume_ml: float | None, geometry: GridGeometry | None) -> float:
    if voxel_volume_ml is None:
        if geometry is None:
            raise ValueError("voxel_volume_ml is needed when neither image nor labels is a SimpleITK image")
        return geometry.voxel_volume_ml
    if not voxel_volume_ml > 0:
        raise ValueError(f"voxel_volume_ml must be positive, got {voxel_volume_ml}")
    return float(voxel_volume_ml)


def _unit_suffix(unit: str) -> str:
    slug = unit.strip().lower().replace("/", "_per_").replace(" ", "_")
    return f"_{slug}" if slug else ""


def _run_kernel(values, labels, lut, n_bins, max_run):  # pragma: no cover, compiled by numba: no mutate block
    """Per-bin count, sum, centred sum of squares, min, max; labels walked in runs.

    Each run of equal labels (at most ``max_run`` long) is reduced with sums shifted
    by its first value, then merged into its bin with Chan's formula.
    """
    n_voxels = values.size
    count = np.zeros(n_bins, np.int64)
    total = np.zeros(n_bins)
    mean = np.zeros(n_bins)
    m2 = np.zeros(n_bins)
    low = np.full(n_bins, np.inf)
    high = np.full(n_bins, -np.inf)
    i = 0
    while i < n_voxels:
        label = labels[i]
        stop = min(n_voxels, i + max_run)
        j = i + 1
        # Find the end of the run 16 labels at a time (a vectorisable OR of XORs).
        while j + 16 <= stop:
            differs = 0
            for k in range(j, j + 16):
                differs |= labels[k] ^ label
            if differs != 0:
                break
            j += 16
        while j < stop and labels[j] == label:
            j += 1
        row = lut[label] if 0 <= label < lut.size else -1
        if row >= 0:
            shift = np.float64(values[i])
            s = 0.0
            ss = 0.0
            lo = values[i]
            hi = values[i]
            for k in range(i, j):
                x = values[k]
                d = np.float64(x) - shift
                s += d
                ss += d * d
                lo = x if x < lo else lo
                hi = x if x > hi else hi
            m = j - i
            run_offset = s / m
            n_old = count[row]
            n_new = n_old + m
            delta = shift + run_offset - mean[row]
            mean[row] += delta * m / n_new
            m2[row] += ss - s * run_offset + delta * delta * (n_old * m / n_new)
            count[row] = n_new
            total[row] += shift * m + s
            low[row] = min(low[row], lo)
            high[row] = max(high[row], hi)
        i = j
    return count, total, m2, low, high


def _range_kernel(labels):  # pragma: no cover, compiled by numba: no mutate block
    low = labels[0]
    high = labels[0]
    for k in range(labels.size):
        x = labels[k]
        low = x if x < low else low
        high = x if x > high else high
    return low, high


@functools.cache
def _numba_range_kernel():
    """The compiled one-pass label range, or None without numba."""
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(nogil=True, cache=True)(_range_kernel)


@functools.cache
def _numba_kernel():
    """The compiled run kernel, or None without numba (compiled once per dtype, cached on disk)."""
    try:
        import numba
    except ImportError:
        log.info("numba not installed; region statistics use the numpy (np.bincount) path")
        return None
    # Reassociation lets LLVM vectorise the run sums; NaN semantics are kept.
    return numba.njit(nogil=True, cache=True, fastmath={"reassoc", "nsz"})(_run_kernel)
