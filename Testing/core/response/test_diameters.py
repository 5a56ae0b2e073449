"""Longest axial diameter and short axis against closed-form and independent brute-force truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial import ConvexHull

from luprrt.response.diameters import LesionDiameters, contour_diameters, lesion_diameters, segment_diameters
from luprrt.segments import Segmentation, SegmentTags

EXACT_MM = 1e-6  # well inside the 0.1 mm acceptance tolerance


def mask_image(array: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0),
               direction=None) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.uint8))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    if direction is not None:
        image.SetDirection(np.asarray(direction, dtype=float).ravel().tolist())
    return image


def rotation_about_s(angle_deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def pixel_corners_mm(plane: np.ndarray, spacing_xy) -> np.ndarray:
    """All four corners of every foreground pixel of a 2D (y, x) mask, in mm (x, y)."""
    y, x = np.nonzero(plane)
    offsets = np.array([[-0.5, -0.5], [-0.5, 0.5], [0.5, -0.5], [0.5, 0.5]])
    corners = (np.column_stack([x, y])[:, None, :] + offsets[None]).reshape(-1, 2)
    return corners * np.asarray(spacing_xy)


def brute_force_diameter(points: np.ndarray) -> float:
    diff = points[:, None, :] - points[None, :, :]
    return float(np.sqrt((diff ** 2).sum(axis=2)).max())


def brute_force_perpendicular_chord(points: np.ndarray, along: np.ndarray) -> float:
    """Longest chord of the hull perpendicular to ``along``, by half-plane clipping.

    Independent of the library's edge-intersection method: lines through every point,
    clipped by all hull facets (a.x + b <= 0).
    """
    equations = ConvexHull(points).equations
    across = np.array([-along[1], along[0]])
    rate = equations[:, :2] @ across                       # a.n per facet
    offset = points @ equations[:, :2].T + equations[:, 2]  # a.c + b per (point, facet)
    with np.errstate(divide="ignore"):
        bound = -offset / rate
    upper = np.where(rate > 1e-12, bound, np.inf).min(axis=1)
    lower = np.where(rate < -1e-12, bound, -np.inf).max(axis=1)
    return float((upper - lower).max())


def test_ellipse_polygon_gives_both_axes_exactly():
    a_mm, b_mm = 23.7, 11.2
    angles = np.deg2rad(np.arange(0.0, 360.0, 0.5))  # includes 0, 90, 180 and 270 deg vertices
    rotation = rotation_about_s(31.0)[:2, :2]
    points = np.column_stack([a_mm * np.cos(angles), b_mm * np.sin(angles)]) @ rotation.T + [12.0, -40.0]
    result = contour_diameters(points)
    assert result.longest_diameter_mm == pytest.approx(2 * a_mm, abs=EXACT_MM)
    assert result.short_axis_mm == pytest.approx(2 * b_mm, abs=EXACT_MM)
    long_dir = np.diff(result.long_axis_endpoints_lps_mm, axis=0)[0]
    short_dir = np.diff(result.short_axis_endpoints_lps_mm, axis=0)[0]
    assert abs(np.dot(long_dir, short_dir)) / (np.linalg.norm(long_dir) * np.linalg.norm(short_dir)) < 1e-6
    # The long axis runs along the ellipse's major axis (31 deg).
    assert abs(abs(long_dir[1] / long_dir[0]) - math.tan(math.radians(31.0))) < 1e-9
    assert result.source == "segment"


def test_contour_in_an_axial_lps_plane_keeps_its_s_coordinate():
    angles = np.deg2rad(np.arange(0.0, 360.0, 1.0))
    points = np.column_stack([15 * np.cos(angles), 6 * np.sin(angles), np.full(angles.size, 42.5)])
    result = contour_diameters(points)
    assert result.longest_diameter_mm == pytest.approx(30.0, abs=EXACT_MM)
    np.testing.assert_allclose(result.long_axis_endpoints_lps_mm[:, 2], 42.5)
    tilted = points.copy()
    tilted[:, 2] += 0.1 * points[:, 0]
    with pytest.raises(ValueError, match="not in one axial plane"):
        contour_diameters(tilted)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_rotating_calipers_equal_brute_force_on_random_points(seed):
    points = np.random.default_rng(seed).normal(size=(300, 2)) * [30.0, 12.0]
    expected = brute_force_diameter(points)
    assert contour_diameters(points).longest_diameter_mm == pytest.approx(expected, abs=1e-9)


def test_grid_aligned_rectangle_with_anisotropic_spacing_is_exact():
    spacing = (0.7, 1.3, 2.5)
    array = np.zeros((5, 40, 50), dtype=bool)
    array[2, 10:25, 5:40] = True  # 35 x 15 pixels -> 24.5 mm x 19.5 mm
    result = lesion_diameters(mask_image(array, spacing))
    width, height = 35 * 0.7, 15 * 1.3
    diagonal = math.hypot(width, height)
    # For a W x H rectangle (W >= H) the longest chord perpendicular to the diagonal runs
    # from a corner to the opposite long side: H * diagonal / W.
    assert result.longest_diameter_mm == pytest.approx(diagonal, abs=EXACT_MM)
    assert result.short_axis_mm == pytest.approx(height * diagonal / width, abs=EXACT_MM)
    assert result.slice_index == 2
    # Corner convention: the long axis joins opposite outer pixel corners.
    ends = sorted(map(tuple, np.round(result.long_axis_endpoints_lps_mm, 9)))
    assert ends in ([(3.15, 12.35, 5.0), (27.65, 31.85, 5.0)], [(3.15, 31.85, 5.0), (27.65, 12.35, 5.0)])


@pytest.mark.parametrize("angle_deg", [17.0, 30.0, 62.0])
def test_rotated_rectangle_equals_exact_diameter_of_its_rasterisation(angle_deg):
    spacing = (0.6, 0.9)
    ny, nx = 90, 120
    y, x = np.mgrid[:ny, :nx]
    px, py = (x - 60.3) * spacing[0], (y - 44.8) * spacing[1]
    rotation = rotation_about_s(angle_deg)[:2, :2]
    u, v = rotation.T @ np.stack([px.ravel(), py.ravel()])
    plane = ((np.abs(u) <= 25.0) & (np.abs(v) <= 9.0)).reshape(ny, nx)
    result = lesion_diameters(mask_image(plane[None], (*spacing, 3.0)))

    corners = pixel_corners_mm(plane, spacing)
    corners = corners[ConvexHull(corners).vertices]
    assert result.longest_diameter_mm == pytest.approx(brute_force_diameter(corners), abs=EXACT_MM)
    ends = result.long_axis_endpoints_lps_mm[:, :2]
    along = (ends[1] - ends[0]) / np.linalg.norm(ends[1] - ends[0])
    expected_short_mm = brute_force_perpendicular_chord(corners, along)
    assert result.short_axis_mm == pytest.approx(expected_short_mm, abs=EXACT_MM)
    short = np.diff(result.short_axis_endpoints_lps_mm, axis=0)[0]
    assert abs(np.dot(short / np.linalg.norm(short), np.append(along, 0.0))) < 1e-6
    # And the rasterised value is within one pixel diagonal of the continuous rectangle's diagonal.
    assert abs(result.longest_diameter_mm - 2 * math.hypot(25.0, 9.0)) < math.hypot(*spacing)


@pytest.mark.parametrize("radius_mm", [5.3, 10.0, 14.1])
def test_disk_diameter_is_2r_within_half_a_pixel_diagonal_per_end(radius_mm):
    # Every cell of the digitised disk lies within r + d/2 of the centre (d = pixel diagonal),
    # and the cells contain the disk of radius r - d/2: so |LD - 2r| <= d.
    spacing = 0.8
    y, x = np.mgrid[:81, :81]
    plane = ((x - 40.3) ** 2 + (y - 39.8) ** 2) * spacing ** 2 <= radius_mm ** 2
    result = lesion_diameters(mask_image(plane[None], (spacing, spacing, 1.0)))
    assert abs(result.longest_diameter_mm - 2 * radius_mm) <= math.sqrt(2) * spacing
    assert result.longest_diameter_mm > 2 * radius_mm - 0.5 * spacing  # not the centre-to-centre 2r - pixel


def test_rotated_direction_matrix_gives_the_same_physical_diameters():
    array = np.zeros((4, 30, 40), dtype=bool)
    array[1, 5:20, 8:33] = True
    spacing = (0.75, 1.1, 2.0)
    straight = lesion_diameters(mask_image(array, spacing))
    image = mask_image(array, spacing, origin=(-50.0, 20.0, 7.0), direction=rotation_about_s(40.0))
    rotated = lesion_diameters(image)
    assert rotated.longest_diameter_mm == pytest.approx(straight.longest_diameter_mm, abs=EXACT_MM)
    assert rotated.short_axis_mm == pytest.approx(straight.short_axis_mm, abs=EXACT_MM)
    # End points are real LPS points of the measured slice: same S, distance = LD.
    s_of_slice = image.TransformIndexToPhysicalPoint((0, 0, 1))[2]
    np.testing.assert_allclose(rotated.long_axis_endpoints_lps_mm[:, 2], s_of_slice)
    assert np.linalg.norm(np.diff(rotated.long_axis_endpoints_lps_mm, axis=0)) == pytest.approx(
        rotated.longest_diameter_mm, abs=1e-9)
    # ... and they are opposite outer pixel corners of one diagonal (pixels i 8..32, j 5..19).
    def corner(i, j):
        return image.TransformContinuousIndexToPhysicalPoint((i, j, 1.0))

    diagonals = [np.array([corner(7.5, 4.5), corner(32.5, 19.5)]),
                 np.array([corner(7.5, 19.5), corner(32.5, 4.5)])]
    ends = rotated.long_axis_endpoints_lps_mm
    assert any(np.allclose(ends, d, atol=1e-9) or np.allclose(ends[::-1], d, atol=1e-9) for d in diagonals)


def test_slice_axis_found_when_s_is_not_the_third_index_axis():
    # Same lesion stored with S along index axis j (e.g. a coronal acquisition): axial
    # planes are then the j = const planes.
    axial = np.zeros((6, 30, 40), dtype=bool)  # (k=S, j, i)
    axial[3, 4:22, 6:30] = True
    expected = lesion_diameters(mask_image(axial, (0.8, 1.2, 3.0)))
    permuted = np.transpose(axial, (1, 0, 2))  # numpy (z, y, x) = (j_old, k_old, i)
    direction = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])  # index j -> S
    result = lesion_diameters(mask_image(permuted, (0.8, 3.0, 1.2), direction=direction))
    assert result.longest_diameter_mm == pytest.approx(expected.longest_diameter_mm, abs=EXACT_MM)
    assert result.short_axis_mm == pytest.approx(expected.short_axis_mm, abs=EXACT_MM)
    assert result.slice_index == 3


def tilt_about_l(angle_deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def test_oblique_acquisition_beyond_tolerance_is_refused():
    array = np.zeros((3, 10, 10), dtype=bool)
    array[1, 2:6, 2:6] = True
    with pytest.raises(ValueError, match=r"not axial.*20\.0 deg.*tolerance 5"):
        lesion_diameters(mask_image(array, direction=tilt_about_l(20.0)))
    slightly = lesion_diameters(mask_image(array, (0.5, 0.5, 2.0), direction=tilt_about_l(3.0)))
    assert slightly.longest_diameter_mm == pytest.approx(math.hypot(2.0, 2.0), abs=EXACT_MM)


def test_measured_slice_is_the_one_with_the_longest_diameter_or_short_axis():
    array = np.zeros((5, 40, 40), dtype=bool)
    array[1, 5:35, 18:22] = True  # long thin: LD ~30 mm, SA ~4 mm
    array[3, 10:30, 10:30] = True  # square 20 mm: LD 28.3 mm, SA 28.3 mm
    by_ld = lesion_diameters(array_image := mask_image(array))
    assert by_ld.slice_index == 1
    assert by_ld.longest_diameter_mm == pytest.approx(math.hypot(30.0, 4.0), abs=EXACT_MM)
    by_sa = lesion_diameters(array_image, select_slice_by="short_axis")
    assert by_sa.slice_index == 3
    assert by_sa.short_axis_mm == pytest.approx(math.hypot(20.0, 20.0), abs=EXACT_MM)


def test_label_selects_one_lesion_of_a_label_image():
    array = np.zeros((3, 20, 20), dtype=np.uint8)
    array[1, 2:6, 2:12] = 1
    array[1, 10:18, 10:12] = 2
    assert lesion_diameters(mask_image(array), label=2).longest_diameter_mm == pytest.approx(math.hypot(8, 2))
    with pytest.raises(ValueError, match="empty: no voxel with label 3"):
        lesion_diameters(mask_image(array), label=3)


def test_manual_line_wins_and_is_recorded_as_manual():
    reference = mask_image(np.zeros((4, 30, 30), dtype=bool), (1.0, 1.0, 2.0))
    segmentation = Segmentation.empty_like(reference)
    first = np.zeros((4, 30, 30), dtype=bool)
    first[1, 3:13, 3:9] = True
    second = np.zeros((4, 30, 30), dtype=bool)
    second[2, 18:26, 15:27] = True
    segmentation.add_segment(first, SegmentTags("lesion", lesion_id="L1"))
    segmentation.add_segment(second, SegmentTags("lesion", lesion_id="L2"))
    line = ((10.0, 5.0, 2.0), (10.0, 35.0, 2.0))
    results = segment_diameters(segmentation, manual_lines={"L2": line})
    assert results["L1"].source == "segment"
    assert results["L1"].longest_diameter_mm == pytest.approx(math.hypot(10, 6), abs=EXACT_MM)
    assert results["L1"].slice_index == 1
    assert results["L2"].source == "manual"
    assert results["L2"].longest_diameter_mm == pytest.approx(30.0)
    assert results["L2"].short_axis_mm is None
    with pytest.raises(ValueError, match=r"unknown lesion ids \['L9'\]"):
        segment_diameters(segmentation, manual_lines={"L9": line})


def test_manual_line_errors_name_the_problem():
    with pytest.raises(ValueError, match="not axial"):
        LesionDiameters.from_line((0, 0, 0), (10, 0, 5))
    with pytest.raises(ValueError, match="zero length"):
        LesionDiameters.from_line((1, 2, 3), (1, 2, 3))
    with pytest.raises(ValueError, match="p2_lps_mm must be 3 finite"):
        LesionDiameters.from_line((1, 2, 3), (1, 2))
    with_short = LesionDiameters.from_line((0, 0, 0), (30, 0, 0), short_axis_lps_mm=((15, -6, 0), (15, 6, 0)))
    assert with_short.short_axis_mm == pytest.approx(12.0)


def test_bad_masks_are_refused():
    with pytest.raises(ValueError, match="lesion mask is empty"):
        lesion_diameters(mask_image(np.zeros((2, 5, 5), dtype=bool)))
    with pytest.raises(ValueError, match="must be 3D"):
        lesion_diameters(sitk.Image(5, 5, sitk.sitkUInt8))
    with pytest.raises(ValueError, match="degenerate"):
        contour_diameters([[0, 0], [1, 1], [2, 2]])
    ones = np.ones((1, 3, 3), dtype=bool)
    with pytest.raises(ValueError, match="unknown select_slice_by"):
        lesion_diameters(mask_image(ones), select_slice_by="volume")
