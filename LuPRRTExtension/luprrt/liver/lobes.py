"""Split the liver into right and left lobes, and label them by administration route.

Three ways to split, for what a site has at hand:

* a plane, e.g. Cantlie's line through the gallbladder fossa, the middle hepatic
  vein and the inferior vena cava (:func:`plane_from_cantlie_points`,
  :func:`split_liver_by_plane`);
* Couinaud segments, e.g. TotalSegmentator's ``liver_segments`` task (labels 1-8 =
  Couinaud I-VIII): II-IV form the left lobe, V-VIII the right lobe, the caudate
  lobe (I) is assigned as asked (:func:`lobes_from_couinaud`);
* arterial (or portal) territories: each liver voxel goes to the lobe of its nearest
  vessel point, e.g. centreline points of the right and left hepatic arteries
  (:func:`lobes_from_vessel_territories`), the nearest-neighbour idea Slicer-Liver
  uses for vascular territories, here one vectorised k-d tree query.

Which half is the *right* lobe is decided by anatomy, never by the sign of a normal:
in DICOM patient coordinates (LPS) +x points to the patient's left, so the part with
the smaller mean x is the right lobe.

In the IA-vs-IV study the lobe whose hepatic artery receives the injection is the
intra-arterial (IA) arm, the other lobe the intravenous (IV) arm (second pass):
:func:`assign_routes`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import SimpleITK as sitk
from scipy.spatial import cKDTree

from ..grid import voxel_positions_lps
from ..segments import SIDES, Segmentation, SegmentTags

log = logging.getLogger(__name__)

# Couinaud segment numbers per lobe (Couinaud 1957; Bismuth, World J Surg 1982;6:3).
LEFT_COUINAUD = (2, 3, 4)
RIGHT_COUINAUD = (5, 6, 7, 8)
CAUDATE_COUINAUD = 1
CAUDATE_OPTIONS = ("left", "right", "exclude")


def plane_from_cantlie_points(gallbladder_fossa, middle_hepatic_vein, ivc) -> tuple[np.ndarray, np.ndarray]:
    """Cantlie's plane through three landmarks (LPS, mm).

    Returns
    -------
    point_lps_mm : numpy.ndarray
        The centroid of the three landmarks.
    normal_lps : numpy.ndarray
        Unit normal, oriented towards the patient's left (+x in LPS) for a
        reproducible result (the lobe sides do not depend on it).
    """
    points = np.asarray([gallbladder_fossa, middle_hepatic_vein, ivc], dtype=float)
    if points.shape != (3, 3) or not np.isfinite(points).all():
        raise ValueError(f"Cantlie landmarks must be three finite LPS points (mm), got {points.tolist()}")
    normal = np.cross(points[1] - points[0], points[2] - points[0])
    scale = max(np.linalg.norm(points[1] - points[0]) * np.linalg.norm(points[2] - points[0]), 1e-12)
    if np.linalg.norm(normal) <= 1e-6 * scale:
        raise ValueError("Cantlie landmarks (gallbladder fossa, middle hepatic vein, IVC) are collinear "
                         f"or coincide: {points.tolist()}; they do not define a plane")
    normal /= np.linalg.norm(normal)
    if normal[0] < 0:
        normal = -normal
    return points.mean(axis=0), normal


def split_liver_by_plane(liver, point_lps_mm, normal_lps, *,
                         reference: sitk.Image | None = None) -> Segmentation:
    """Right and left lobe segments from a plane through the liver.

    Parameters
    ----------
    liver : Segmentation, SimpleITK.Image or numpy.ndarray
        A segmentation with one segment tagged ``role="liver"``, or a liver mask
        image (nonzero = liver), or a boolean array (z, y, x) with ``reference``.
    point_lps_mm : array_like
        A point on the plane (LPS, mm).
    normal_lps : array_like
        The plane normal (LPS); its sign does not matter.
    reference : SimpleITK.Image, optional
        The grid of an array mask.

    Returns
    -------
    Segmentation
        A copy of the input segmentation (or a new one holding the liver) with
        lobe segments tagged ``SegmentTags("lobe", side=...)``; previous lobe
        segments are replaced. Voxels whose centre lies on the plane join the half
        the normal points to.
    """
    point = _point(point_lps_mm, "plane point")
    normal = _point(normal_lps, "plane normal")
    if np.linalg.norm(normal) == 0:
        raise ValueError("plane normal is the zero vector")
    normal = normal / np.linalg.norm(normal)
    mask, grid, base = _liver_input(liver, reference)
    voxels = np.flatnonzero(mask)
    positions = voxel_positions_lps(grid, voxels)
    front = (positions - point) @ normal >= 0
    if front.all() or not front.any():
        raise ValueError(f"the plane through {point.round(1).tolist()} mm with normal "
                         f"{normal.round(3).tolist()} does not cut the liver: all {voxels.size} liver voxels "
                         "lie on one side")
    return _with_lobes(base, voxels, front, positions)


def lobes_from_couinaud(couinaud_labels: sitk.Image, caudate: str = "left", *,
                        segment_labels: Mapping[int, int] | None = None) -> Segmentation:
    """Lobes from Couinaud segments: II-IV left, V-VIII right, caudate (I) as asked.

    Parameters
    ----------
    couinaud_labels : SimpleITK.Image
        Label map of the Couinaud segments, e.g. TotalSegmentator ``liver_segments``
        (label n = Couinaud segment n, n = 1..8).
    caudate : {"left", "right", "exclude"}
        Lobe that receives the caudate lobe (segment I), or leave it out of both.
    segment_labels : mapping of int to int, optional
        Couinaud segment number (1-8) -> label value, when they differ.

    Returns
    -------
    Segmentation
        On the label map's grid: the liver (all eight segments) and the two lobes.
    """
    if caudate not in CAUDATE_OPTIONS:
        raise ValueError(f"caudate must be one of {CAUDATE_OPTIONS}, got {caudate!r}")
    if not isinstance(couinaud_labels, sitk.Image):
        raise ValueError("couinaud_labels must be a SimpleITK label image (it carries the grid geometry)")
    mapping = {n: n for n in range(1, 9)} if segment_labels is None else dict(segment_labels)
    if sorted(mapping) != list(range(1, 9)):
        raise ValueError("segment_labels must map each Couinaud segment 1..8 to a label, got keys "
                         f"{sorted(mapping)}")
    labels = sitk.GetArrayFromImage(couinaud_labels).astype(np.int64)
    if labels.min() < 0:
        raise ValueError("Couinaud label map has negative labels")
    lobe_of_label = np.zeros(max(int(labels.max()), *mapping.values()) + 1, dtype=np.int8)  # 1 right, 2 left
    right = RIGHT_COUINAUD + ((CAUDATE_COUINAUD,) if caudate == "right" else ())
    left = LEFT_COUINAUD + ((CAUDATE_COUINAUD,) if caudate == "left" else ())
    lobe_of_label[[mapping[n] for n in right]] = 1
    lobe_of_label[[mapping[n] for n in left]] = 2
    present = np.bincount(labels.ravel(), minlength=lobe_of_label.size)
    missing = [n for n in range(1, 9) if present[mapping[n]] == 0]
    if missing:
        log.warning("Couinaud segments %s are absent from the label map", missing)
    lobe = lobe_of_label[labels]
    liver = np.isin(labels, list(mapping.values()))
    if not liver.any():
        raise ValueError(f"Couinaud label map holds none of the labels {sorted(mapping.values())}")
    result = Segmentation.empty_like(couinaud_labels)
    result.add_segment(liver, SegmentTags("liver"))
    for code, side in ((1, "right"), (2, "left")):
        if not (lobe == code).any():
            raise ValueError(f"no voxel of the {side} lobe: Couinaud segments "
                             f"{right if side == 'right' else left} are all absent")
        result.add_segment(lobe == code, SegmentTags("lobe", side=side))
    return result


def lobes_from_vessel_territories(liver, right_points_lps_mm, left_points_lps_mm, *,
                                  reference: sitk.Image | None = None) -> Segmentation:
    """Lobes as vascular territories: each liver voxel joins the lobe of its nearest vessel point.

    Parameters
    ----------
    liver : Segmentation, SimpleITK.Image or numpy.ndarray
        As in :func:`split_liver_by_plane`.
    right_points_lps_mm, left_points_lps_mm : array_like, shape (n, 3)
        Points (LPS, mm) of the vessels feeding the right and left lobe, e.g.
        centreline points of the right and left hepatic arteries.
    reference : SimpleITK.Image, optional
        The grid of an array mask.

    Returns
    -------
    Segmentation
        As in :func:`split_liver_by_plane`. Sides are the territories' own (right
        points -> right lobe); a voxel equidistant to both goes to either.
    """
    right = _points(right_points_lps_mm, "right vessel points")
    left = _points(left_points_lps_mm, "left vessel points")
    mask, grid, base = _liver_input(liver, reference)
    voxels = np.flatnonzero(mask)
    positions = voxel_positions_lps(grid, voxels)
    _, nearest = cKDTree(np.vstack([right, left])).query(positions)
    is_right = nearest < len(right)
    for side, members in (("right", is_right), ("left", ~is_right)):
        if not members.any():
            raise ValueError(f"no liver voxel is closer to the {side} vessel points than to the other side's")
    return _add_lobes(base, {"right": voxels[is_right], "left": voxels[~is_right]})


def assign_routes(segmentation: Segmentation, ia_side: str | None) -> Segmentation:
    """Tag the lobe injected intra-arterially ``IA`` and the other lobe ``IV``.

    Lesions and non-tumour liver that carry a lobe side get the route of their lobe.
    The input is not modified; a tagged copy is returned.

    Parameters
    ----------
    ia_side : {"right", "left"}
        Side of the hepatic artery that received the injection.
    """
    if ia_side not in SIDES:
        raise ValueError(f"ia_side (the lobe whose hepatic artery received 177Lu-dotatate) must be one of "
                         f"{SIDES}, got {ia_side!r}")
    for side in SIDES:
        segmentation.find_one("lobe", side=side)  # raises naming the missing lobe
    result = segmentation.copy()
    for seg in result.segments:
        if seg.tags.role in ("lobe", "lesion", "non-tumour") and seg.tags.side is not None:
            had_default_name = seg.name == seg.tags.default_name()
            result.retag(seg.segment_id, route="IA" if seg.tags.side == ia_side else "IV")
            if had_default_name:  # keep names a user gave; update generated ones ("right lobe (IA)")
                seg.name = seg.tags.default_name()
    return result


def _with_lobes(base: Segmentation, voxels: np.ndarray, part: np.ndarray,
                positions: np.ndarray) -> Segmentation:
    """Name the two parts by anatomy: the one with the smaller mean LPS x is the right lobe."""
    part_is_right = positions[part, 0].mean() < positions[~part, 0].mean()
    right = part if part_is_right else ~part
    return _add_lobes(base, {"right": voxels[right], "left": voxels[~right]})


def _add_lobes(base: Segmentation, lobe_voxels: dict[str, np.ndarray]) -> Segmentation:
    shape = base.reference.GetSize()[::-1]
    for side, voxels in lobe_voxels.items():
        mask = np.zeros(shape, dtype=bool)
        mask.ravel()[voxels] = True
        base.add_segment(mask, SegmentTags("lobe", side=side))
    return base


def _liver_input(liver, reference: sitk.Image | None) -> tuple[np.ndarray, sitk.Image, Segmentation]:
    """(liver mask (z, y, x), grid, segmentation copy to add lobes to, without old lobes)."""
    if isinstance(liver, Segmentation):
        seg = liver.find_one("liver")
        mask = liver.mask_array(seg.segment_id)
        old_lobes = [s.segment_id for s in liver.find(role="lobe")]
        if old_lobes:
            log.info("replacing lobe segments %s", old_lobes)
        base = liver.without(old_lobes)
        grid = liver.reference
    else:
        if isinstance(liver, sitk.Image):
            grid = liver
            mask = sitk.GetArrayFromImage(liver) != 0
        else:
            if reference is None:
                raise ValueError("a liver mask given as an array needs the grid: "
                                 "pass reference=<SimpleITK image>")
            grid = reference
            mask = np.asarray(liver).astype(bool)
            if mask.shape != reference.GetSize()[::-1]:
                raise ValueError(f"liver mask shape {mask.shape} differs from the reference grid "
                                 f"{reference.GetSize()[::-1]} (z, y, x)")
        base = Segmentation.empty_like(grid)
        if mask.any():
            base.add_segment(mask, SegmentTags("liver"))
    if not mask.any():
        raise ValueError("the liver segment is empty")
    return mask, grid, base


def _point(value, what: str) -> np.ndarray:
    point = np.asarray(value, dtype=float).ravel()
    if point.shape != (3,) or not np.isfinite(point).all():
        raise ValueError(f"{what} must be three finite LPS coordinates, got {value!r}")
    return point


def _points(value, what: str) -> np.ndarray:
    points = np.asarray(value, dtype=float)
    if points.ndim == 1 and points.size == 3:
        points = points[None, :]
    if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] == 0 or not np.isfinite(points).all():
        raise ValueError(f"{what} must be a non-empty (n, 3) array of finite LPS points (mm), "
                         f"got shape {points.shape}")
    return points
