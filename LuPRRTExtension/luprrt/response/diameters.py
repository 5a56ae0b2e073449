"""Longest axial diameter and perpendicular short axis of a lesion (RECIST 1.1 measurements).

RECIST 1.1 measures a lesion by its longest diameter in the axial plane; a lymph node by
its short axis, the longest diameter perpendicular to the long axis in the same plane
(Eisenhauer et al., Eur J Cancer 2009;45:228-247, sections 3.1-3.2 and 4.2).

Conventions used here
---------------------
* **Axial** = planes perpendicular to the patient S axis (DICOM LPS). The image index axis
  closest to S is the slicing axis; an image whose slicing axis is more than
  ``max_obliquity_deg`` from S (an oblique or non-axial acquisition) is refused with a
  ``ValueError``; resample it to an axial grid first. Within the tolerance the image's own
  slice plane is used as the axial plane.
* **Voxel corners.** A voxel is the physical cell of +-half a voxel around its centre
  (ITK: the index is the voxel centre). A slice's cross-section is the union of its
  foreground cells; its convex hull is the hull of the cell corners, and only the first and
  last foreground cell of every row contribute (all other corners lie inside). The diameter
  of a grid-aligned rectangle of n x m voxels is then exactly the diagonal of the n*dx by
  m*dy rectangle, for any anisotropic spacing (voxel centres would lose one pixel). A
  digitised disk of radius r measures within 2r +- one pixel diagonal; rim cells protrude by
  up to half a diagonal at each end, so it is typically 2r + ~1.2 pixels.
* **Longest diameter** = maximum distance between two points of the hull, found exactly by
  rotating calipers over the antipodal vertex pairs (Shamos 1978; Preparata & Shamos,
  Computational Geometry, 1985, section 4.2.3).
* **Short axis** = the longest chord of the hull perpendicular to the long axis, in the same
  slice. The chord length is a concave piecewise-linear function of the position along the
  long axis, so its maximum lies on a line through a hull vertex; all are evaluated at once.
* The measurement slice is the one with the longest diameter (``select_slice_by=
  "longest_diameter"``, for non-nodal lesions) or the one with the longest short axis
  (``"short_axis"``, the usual choice for lymph nodes).
* A manual line (e.g. a Slicer markups line) overrides the segment-derived value and is
  recorded with ``source="manual"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy.spatial import ConvexHull, QhullError

from ..segments import Segmentation

SOURCES = ("segment", "manual")
SLICE_SELECTIONS = ("longest_diameter", "short_axis")

# Default angle between the image slicing axis (or a manual line's plane) and the axial plane
# that is still measured as axial. 5 deg changes a 100 mm diameter by < 0.4 mm (1 - cos 5 deg).
DEFAULT_MAX_OBLIQUITY_DEG = 5.0


@dataclass(frozen=True)
class LesionDiameters:
    """Axial diameters of one lesion.

    Attributes
    ----------
    longest_diameter_mm : longest axial diameter, mm
    short_axis_mm : longest diameter perpendicular to the long axis in the same slice, mm
        (None for a manual line without a short-axis line)
    slice_index : index along the image's slicing axis of the measured slice (None for manual
        lines and contours)
    long_axis_endpoints_lps_mm : (2, 3) end points of the long axis, LPS mm
    short_axis_endpoints_lps_mm : (2, 3) end points of the short axis, LPS mm, or None
    source : ``"segment"`` (computed from a mask or contour) or ``"manual"`` (a drawn line)
    """

    longest_diameter_mm: float
    short_axis_mm: float | None
    slice_index: int | None
    long_axis_endpoints_lps_mm: np.ndarray
    short_axis_endpoints_lps_mm: np.ndarray | None
    source: str

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"unknown diameter source {self.source!r}; expected one of {SOURCES}")

    @classmethod
    def from_line(cls, p1_lps_mm, p2_lps_mm, short_axis_lps_mm=None,
                  max_obliquity_deg: float = DEFAULT_MAX_OBLIQUITY_DEG) -> LesionDiameters:
        """A manual measurement: a line drawn by the reader (LPS mm), recorded as ``"manual"``.

        Parameters
        ----------
        p1_lps_mm, p2_lps_mm : end points of the long axis, LPS mm
        short_axis_lps_mm : optional (2, 3) end points of a drawn short axis, LPS mm
        max_obliquity_deg : largest angle between a line and the axial plane, deg
        """
        long_axis = _manual_line(np.stack([_point3(p1_lps_mm, "p1_lps_mm"), _point3(p2_lps_mm, "p2_lps_mm")]),
                                 "long axis", max_obliquity_deg)
        short_axis = None
        if short_axis_lps_mm is not None:
            short_axis = _manual_line(np.asarray(short_axis_lps_mm, dtype=float), "short axis",
                                      max_obliquity_deg)
        short_axis_mm = None if short_axis is None else float(np.linalg.norm(short_axis[1] - short_axis[0]))
        return cls(longest_diameter_mm=float(np.linalg.norm(long_axis[1] - long_axis[0])),
                   short_axis_mm=short_axis_mm, slice_index=None, long_axis_endpoints_lps_mm=long_axis,
                   short_axis_endpoints_lps_mm=short_axis, source="manual")


def lesion_diameters(mask: sitk.Image, label: int | None = None, *,
                     select_slice_by: str = "longest_diameter",
                     max_obliquity_deg: float = DEFAULT_MAX_OBLIQUITY_DEG) -> LesionDiameters:
    """Longest axial diameter and short axis of a lesion mask.

    Parameters
    ----------
    mask : 3D SimpleITK image; the lesion is its non-zero voxels (or ``== label``)
    label : label value of the lesion in a label image; None = any non-zero voxel
    select_slice_by : ``"longest_diameter"`` (default) or ``"short_axis"`` (lymph nodes)
    max_obliquity_deg : largest angle between the image slicing axis and patient S, deg

    Returns
    -------
    LesionDiameters with ``source="segment"``.

    References
    ----------
    Eisenhauer EA et al. New response evaluation criteria in solid tumours: revised RECIST
    guideline (version 1.1). Eur J Cancer 2009;45:228-247.
    """
    geometry = _AxialGeometry.of(mask, max_obliquity_deg)
    array = sitk.GetArrayViewFromImage(mask)
    foreground = array != 0 if label is None else array == label
    if not foreground.any():
        what = "no non-zero voxel" if label is None else f"no voxel with label {label}"
        raise ValueError(f"lesion mask is empty: {what}")
    return geometry.diameters(foreground, np.zeros(3, dtype=int), select_slice_by)


def segment_diameters(segmentation: Segmentation, *,
                      manual_lines: Mapping[str, tuple] | None = None,
                      node_lesion_ids: set[str] | frozenset[str] = frozenset(),
                      max_obliquity_deg: float = DEFAULT_MAX_OBLIQUITY_DEG) -> dict[str, LesionDiameters]:
    """Diameters of every lesion segment (role ``"lesion"``), keyed by lesion tracking id.

    Parameters
    ----------
    segmentation : tagged segmentation; every lesion segment needs a ``lesion_id`` tag
    manual_lines : ``{lesion_id: (p1_lps_mm, p2_lps_mm)}`` reader-drawn long axes; they win
        over the segment and are recorded as ``source="manual"``
    node_lesion_ids : lesion ids that are lymph nodes (measured in the slice with the
        longest short axis)
    max_obliquity_deg : largest angle between the image slicing axis and patient S, deg
    """
    manual_lines = dict(manual_lines or {})
    lesions = segmentation.find(role="lesion")
    ids = [seg.tags.lesion_id for seg in lesions]
    if any(lesion_id is None for lesion_id in ids):
        missing = [seg.segment_id for seg in lesions if seg.tags.lesion_id is None]
        raise ValueError(f"lesion segments without a lesion_id tag: {missing}")
    unknown = sorted(set(manual_lines) - set(ids))
    if unknown:
        raise ValueError(f"manual lines given for unknown lesion ids {unknown}; lesions are {sorted(ids)}")
    geometry = _AxialGeometry.of(segmentation.reference, max_obliquity_deg)
    results: dict[str, LesionDiameters] = {}
    for layer_index, layer in enumerate(segmentation.layers):
        in_layer = [seg for seg in lesions if seg.layer == layer_index]
        if not in_layer:
            continue
        # One pass over the layer for all bounding boxes; then each lesion is cropped.
        shapes = sitk.LabelShapeStatisticsImageFilter()
        shapes.Execute(layer)
        labels = sitk.GetArrayViewFromImage(layer)
        for seg in in_layer:
            lesion_id = seg.tags.lesion_id
            if lesion_id in manual_lines:
                p1, p2 = manual_lines[lesion_id]
                results[lesion_id] = LesionDiameters.from_line(p1, p2, max_obliquity_deg=max_obliquity_deg)
                continue
            if not shapes.HasLabel(seg.label_value):
                raise ValueError(f"lesion segment {seg.segment_id!r} (lesion {lesion_id}) is empty")
            x0, y0, z0, nx, ny, nz = shapes.GetBoundingBox(seg.label_value)
            crop = labels[z0:z0 + nz, y0:y0 + ny, x0:x0 + nx] == seg.label_value
            by = "short_axis" if lesion_id in node_lesion_ids else "longest_diameter"
            results[lesion_id] = geometry.diameters(crop, np.array([x0, y0, z0]), by)
    return results


def contour_diameters(points_mm, plane_tolerance_mm: float = 0.01) -> LesionDiameters:
    """Diameters of a closed in-plane contour (polygon vertices), exact for the polygon.

    Parameters
    ----------
    points_mm : (N, 2) in-plane coordinates in mm (end points are returned with S = 0), or
        (N, 3) LPS points of one axial plane, mm
    plane_tolerance_mm : largest spread of S among (N, 3) points, mm
    """
    points = np.asarray(points_mm, dtype=float)
    if points.ndim != 2 or points.shape[1] not in (2, 3) or len(points) < 3:
        raise ValueError(f"contour must be an (N, 2) or (N, 3) array with N >= 3 points; "
                         f"got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("contour has non-finite coordinates")
    s_mm = 0.0
    if points.shape[1] == 3:
        spread = np.ptp(points[:, 2])
        if spread > plane_tolerance_mm:
            raise ValueError(f"contour is not in one axial plane: S spans {spread:.3f} mm "
                             f"(tolerance {plane_tolerance_mm} mm)")
        s_mm = float(points[:, 2].mean())
    try:
        hull = _hull(points[:, :2])
    except QhullError as error:
        raise ValueError("contour is degenerate (all points on one line); "
                         "use LesionDiameters.from_line") from error
    long_2d, short_2d = _hull_axes(hull)

    def lift(p2):
        return np.column_stack([p2, np.full(2, s_mm)])

    return LesionDiameters(float(np.linalg.norm(long_2d[1] - long_2d[0])),
                           float(np.linalg.norm(short_2d[1] - short_2d[0])), None,
                           lift(long_2d), lift(short_2d), "segment")


@dataclass(frozen=True)
class _AxialGeometry:
    """Index-to-physical mapping of a grid, split into an axial slicing axis and its plane."""

    origin: np.ndarray        # (3,) LPS mm
    steps: np.ndarray         # (3, 3) columns = physical step of index axes i, j, k (mm)
    slice_axis: int           # index axis (0=i, 1=j, 2=k) closest to patient S
    col_axis: int
    row_axis: int
    plane_basis: np.ndarray   # (3, 2) orthonormal basis of the slice plane
    plane_steps: np.ndarray   # (2, 2) in-plane coordinates of the col/row steps (columns)

    @classmethod
    def of(cls, image: sitk.Image, max_obliquity_deg: float) -> _AxialGeometry:
        if image.GetDimension() != 3:
            raise ValueError(f"lesion mask must be 3D; got a {image.GetDimension()}D image")
        direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
        steps = direction * np.asarray(image.GetSpacing(), dtype=float)
        # |cos| of the angle between each index axis and patient S (LPS z).
        cos_s = np.abs(direction[2]) / np.linalg.norm(direction, axis=0)
        slice_axis = int(np.argmax(cos_s))
        obliquity = math.degrees(math.acos(min(1.0, float(cos_s[slice_axis]))))
        if obliquity > max_obliquity_deg:
            raise ValueError(f"image is not axial: its slicing axis is {obliquity:.1f} deg from the patient "
                             f"S axis (tolerance {max_obliquity_deg} deg); "
                             "resample it to an axial grid first")
        col_axis, row_axis = (axis for axis in range(3) if axis != slice_axis)
        in_plane = steps[:, [col_axis, row_axis]]
        basis, _ = np.linalg.qr(in_plane)
        return cls(np.asarray(image.GetOrigin(), dtype=float), steps, slice_axis, col_axis, row_axis,
                   basis, basis.T @ in_plane)

    def diameters(self, foreground: np.ndarray, offset_ijk: np.ndarray,
                  select_slice_by: str) -> LesionDiameters:
        """Diameters of a boolean (z, y, x) crop whose first voxel has index ``offset_ijk``."""
        if select_slice_by not in SLICE_SELECTIONS:
            raise ValueError(f"unknown select_slice_by {select_slice_by!r}; "
                             f"expected one of {SLICE_SELECTIONS}")
        # numpy axis of index axis m is 2 - m; reorder to (slice, row, col).
        cube = np.transpose(foreground, (2 - self.slice_axis, 2 - self.row_axis, 2 - self.col_axis))
        n_col = cube.shape[2]
        has_row = cube.any(axis=2)
        first = np.argmax(cube, axis=2)
        last = n_col - 1 - np.argmax(cube[..., ::-1], axis=2)
        slices, rows = np.nonzero(has_row)
        first, last = first[slices, rows], last[slices, rows]
        # Four cell corners of the first and last foreground cell of every row (index units).
        col = np.stack([first - 0.5, first - 0.5, last + 0.5, last + 0.5], axis=1).ravel()
        row = np.repeat(rows, 4) + np.tile([-0.5, 0.5, -0.5, 0.5], len(rows))
        col = col + offset_ijk[self.col_axis]
        row = row + offset_ijk[self.row_axis]
        points = np.column_stack([col, row]) @ self.plane_steps.T
        slice_of_point = np.repeat(slices, 4) + offset_ijk[self.slice_axis]
        slice_ids, starts = np.unique(slice_of_point, return_index=True)
        per_slice = np.split(points, starts[1:])

        hulls = [_hull(p) for p in per_slice]
        if select_slice_by == "longest_diameter":
            long_axes = [_calipers(h) for h in hulls]
            lengths = [np.linalg.norm(a[1] - a[0]) for a in long_axes]
            best = int(np.argmax(lengths))
            short_axis = _perpendicular_chord(hulls[best], long_axes[best])
            long_axis = long_axes[best]
        else:
            axes = [_hull_axes(h) for h in hulls]
            best = int(np.argmax([np.linalg.norm(s[1] - s[0]) for _, s in axes]))
            long_axis, short_axis = axes[best]
        slice_index = int(slice_ids[best])
        return LesionDiameters(float(np.linalg.norm(long_axis[1] - long_axis[0])),
                               float(np.linalg.norm(short_axis[1] - short_axis[0])), slice_index,
                               self.to_lps(long_axis, slice_index), self.to_lps(short_axis, slice_index),
                               "segment")

    def to_lps(self, points_2d: np.ndarray, slice_index: int) -> np.ndarray:
        """In-plane coordinates (mm) of slice ``slice_index`` -> LPS points (mm)."""
        slice_origin = self.origin + self.steps[:, self.slice_axis] * slice_index
        return slice_origin + points_2d @ self.plane_basis.T


def _hull(points: np.ndarray) -> np.ndarray:
    """Vertices of the 2D convex hull, counter-clockwise."""
    return points[ConvexHull(points).vertices]


def _hull_axes(hull: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    long_axis = _calipers(hull)
    return long_axis, _perpendicular_chord(hull, long_axis)


def _calipers(hull: np.ndarray) -> np.ndarray:
    """End points (2, 2) of the diameter of a convex polygon, by rotating calipers.

    For each edge (i, i+1) the vertex j farthest from its supporting line is advanced
    monotonically; the diameter is attained at one of the antipodal pairs so visited.
    Ties (parallel edges) also test j+1, so the candidate set always contains the true pair.
    """
    n = len(hull)
    scale = float(np.ptp(hull, axis=0).max()) ** 2
    tolerance = 1e-12 * scale

    def twice_area(a: int, b: int, c: int) -> float:
        (ax, ay), (bx, by), (cx, cy) = hull[a], hull[b], hull[c]
        return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)

    best, pair = -1.0, (0, 1)
    j = 1
    for i in range(n):
        i_next = (i + 1) % n
        while twice_area(i, i_next, (j + 1) % n) > twice_area(i, i_next, j) + tolerance:
            j = (j + 1) % n
        for a, b in ((i, j), (i_next, j), (i, (j + 1) % n), (i_next, (j + 1) % n)):
            d2 = float(np.sum((hull[a] - hull[b]) ** 2))
            if d2 > best:
                best, pair = d2, (a, b)
    return hull[list(pair)]


def _perpendicular_chord(hull: np.ndarray, long_axis: np.ndarray) -> np.ndarray:
    """End points (2, 2) of the longest chord of a convex polygon perpendicular to ``long_axis``.

    Every line through a vertex perpendicular to the long axis is intersected with every edge
    at once (vertices x edges); the chord is the span of the intersections on that line.
    """
    along = (long_axis[1] - long_axis[0]) / np.linalg.norm(long_axis[1] - long_axis[0])
    across = np.array([-along[1], along[0]])
    t, s = hull @ along, hull @ across
    t_next, s_next = np.roll(t, -1), np.roll(s, -1)
    dt = t_next - t
    tolerance = 1e-12 * max(1.0, float(np.ptp(t)))
    crossing = np.abs(dt) > tolerance
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = (t[:, None] - t[None, :]) / np.where(crossing, dt, 1.0)[None, :]
    hits = crossing[None, :] & (fraction >= -1e-12) & (fraction <= 1.0 + 1e-12)
    s_hit = np.where(hits, s[None, :] + fraction * (s_next - s)[None, :], np.nan)
    s_hit = np.column_stack([s_hit, s])  # the vertex itself lies on its line
    s_low, s_high = np.nanmin(s_hit, axis=1), np.nanmax(s_hit, axis=1)
    k = int(np.argmax(s_high - s_low))
    return np.stack([t[k] * along + s_low[k] * across, t[k] * along + s_high[k] * across])


def _point3(point, name: str) -> np.ndarray:
    array = np.asarray(point, dtype=float)
    if array.shape != (3,) or not np.isfinite(array).all():
        raise ValueError(f"{name} must be 3 finite LPS coordinates in mm; got {point!r}")
    return array


def _manual_line(points: np.ndarray, what: str, max_obliquity_deg: float) -> np.ndarray:
    if points.shape != (2, 3) or not np.isfinite(points).all():
        raise ValueError(f"manual {what} must be two finite LPS points (2, 3) in mm; "
                         f"got shape {points.shape}")
    vector = points[1] - points[0]
    length = float(np.linalg.norm(vector))
    if length == 0.0:
        raise ValueError(f"manual {what} has zero length: both end points are {points[0].tolist()}")
    elevation = math.degrees(math.asin(min(1.0, abs(vector[2]) / length)))
    if elevation > max_obliquity_deg:
        raise ValueError(f"manual {what} is not axial: it leaves the axial plane at {elevation:.1f} deg "
                         f"(S changes by {vector[2]:.2f} mm; tolerance {max_obliquity_deg} deg)")
    return points.copy()
