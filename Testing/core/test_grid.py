"""The voxel grid: geometry value object, same-grid checks, compatibility, extent and voxel positions.

The oblique grid is rotated 45 deg about z with in-plane spacing sqrt(2) mm, so one voxel step
along i is (1, 1, 0) mm and along j is (-1, 1, 0) mm in LPS, and along k (0, 0, 3) mm: the
centre of voxel (i, j, k) is at (10 + i - j, -5 + i + j, 7 + 3 k) mm, and every position and
extent below follows from that by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.grid import (
    GridGeometry,
    check_grid_compatibility,
    covered_by,
    image_on_grid,
    physical_extent,
    require_same_grid,
    same_grid,
    voxel_box_corners,
    voxel_positions_lps,
)

C = 1.0 / math.sqrt(2.0)
OBLIQUE = (C, -C, 0.0, C, C, 0.0, 0.0, 0.0, 1.0)  # row-major; columns are the i, j, k axes


def oblique(size=(4, 2, 3), origin=(10.0, -5.0, 7.0)) -> sitk.Image:
    image = sitk.Image(size, sitk.sitkFloat32)
    image.SetSpacing((math.sqrt(2.0), math.sqrt(2.0), 3.0))
    image.SetOrigin(origin)
    image.SetDirection(OBLIQUE)
    return image


def centre(i, j, k) -> tuple[float, float, float]:
    return (10.0 + i - j, -5.0 + i + j, 7.0 + 3.0 * k)


def test_physical_extent_of_an_oblique_grid_is_the_box_around_its_voxel_corners():
    low, high = physical_extent(oblique())
    # Outer corners at i in {-0.5, 3.5}, j in {-0.5, 1.5}, k in {-0.5, 2.5}:
    # x = 10 + i - j in [8, 14], y = -5 + i + j in [-6, 0], z = 7 + 3k in [5.5, 14.5].
    np.testing.assert_allclose(low, (8.0, -6.0, 5.5), rtol=0, atol=1e-12)
    np.testing.assert_allclose(high, (14.0, 0.0, 14.5), rtol=0, atol=1e-12)


def test_voxel_positions_and_box_corners_by_hand():
    grid = oblique()
    # Flat (z, y, x) index of voxel (i, j, k) is k * 8 + j * 4 + i on this 4 x 2 x 3 grid.
    flat = [0, 5, 23, 11]
    expected = [centre(0, 0, 0), centre(1, 1, 0), centre(3, 1, 2), centre(3, 0, 1)]
    np.testing.assert_allclose(voxel_positions_lps(grid, np.array(flat)), expected, rtol=0, atol=1e-12)
    assert voxel_positions_lps(grid, np.array([], int)).shape == (0, 3)

    corners = voxel_box_corners(grid, np.array([1, 0, 0]), np.array([2, 1, 0]))
    expected_corners = {centre(i, j, k) for i in (0.5, 2.5) for j in (-0.5, 1.5) for k in (-0.5, 0.5)}
    assert corners.shape == (8, 3)
    assert {tuple(np.round(c, 9) + 0.0) for c in corners} == {tuple(np.round(c, 9) + 0.0)
                                                               for c in expected_corners}


def test_grid_geometry_value_object():
    grid = GridGeometry.from_image(oblique())
    assert grid.size == (4, 2, 3) and grid.shape == (3, 2, 4)
    assert grid.origin == (10.0, -5.0, 7.0) and grid.direction == pytest.approx(OBLIQUE, abs=1e-15)
    assert grid.voxel_volume_ml == pytest.approx(2.0 * 3.0 / 1000.0, rel=1e-12)  # sqrt(2)^2 * 3 mm^3
    assert grid.describe() == "size (4, 2, 3), origin (10.0, -5.0, 7.0) mm, spacing (1.4142, 1.4142, 3.0) mm"
    assert grid.matches(GridGeometry.from_image(oblique(origin=(10.0005, -5.0, 7.0))))
    assert not grid.matches(GridGeometry.from_image(oblique(origin=(10.0005, -5.0, 7.0))), tolerance=1e-4)
    assert not grid.matches(GridGeometry.from_image(oblique(size=(4, 2, 4))))
    with pytest.raises(ValueError, match="expected a 3D image, got 2D"):
        GridGeometry.from_image(sitk.Image(4, 4, sitk.sitkUInt8))


def test_same_grid_tolerates_rounding_but_not_a_shift():
    grid = oblique()
    assert same_grid(grid, oblique())
    assert same_grid(grid, oblique(origin=(10.0, -5.0, 7.0009)))
    assert not same_grid(grid, oblique(origin=(10.0, -5.0, 7.002)))
    turned = oblique()
    turned.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    assert not same_grid(grid, turned)


@pytest.mark.parametrize(("change", "attribute"), [
    (lambda image: sitk.Image([5, 2, 3], sitk.sitkFloat32), "size"),
    (lambda image: image.SetSpacing((1.5, 1.5, 3.0)), "spacing"),
    (lambda image: image.SetOrigin((10.0, -5.0, 7.01)), "origin"),
    (lambda image: image.SetDirection((0, -1, 0, 1, 0, 0, 0, 0, 1)), "direction"),
])
def test_require_same_grid_names_the_attribute_that_differs(change, attribute):
    reference = oblique()
    image = oblique()
    image = change(image) or image
    with pytest.raises(ValueError) as error:
        require_same_grid(image, reference, "SPECT", "CT", "resample the SPECT onto the CT")
    got = getattr(image, f"Get{attribute.capitalize()}")()
    expected = getattr(reference, f"Get{attribute.capitalize()}")()
    assert str(error.value) == (f"SPECT {attribute} {got} differs from CT {attribute} {expected}; "
                                "resample the SPECT onto the CT")
    require_same_grid(oblique(origin=(10.00005, -5.0, 7.0)), reference, "SPECT", "CT", "")  # within 1e-4 mm


def test_compatibility_checks_frame_orientation_and_overlap():
    reference = oblique()
    check_grid_compatibility(oblique(origin=(13.0, -5.0, 7.0)), reference)  # partly overlapping
    # Shifted by the full extent along z (9 mm): the boxes only touch, nothing overlaps.
    apart = oblique(origin=(10.0, -5.0, 16.0))
    with pytest.raises(ValueError, match=r"lesions grid \(LPS extent \[8\.0, -6\.0, 14\.5\] \.\. "
                                         r"\[14\.0, 0\.0, 23\.5\] mm\) does not overlap the target grid "
                                         r"\(\[8\.0, -6\.0, 5\.5\] \.\. \[14\.0, 0\.0, 14\.5\] mm\)"):
        check_grid_compatibility(apart, reference, what="lesions")
    check_grid_compatibility(oblique(origin=(10.0, -5.0, 15.9)), reference)

    axial = oblique()
    axial.SetDirection((1, 0, 0, 0, 1, 0, 0, 0, 1))
    with pytest.raises(ValueError, match=r"segmentation orientation \(direction \[1\.0, 0\.0, .*\) differs "
                                         r"from the target grid's .*pass allow_rotation=True"):
        check_grid_compatibility(axial, reference)
    check_grid_compatibility(axial, reference, allow_rotation=True)

    moving, target = oblique(), oblique()
    moving.SetMetaData("0020|0052", "1.2.3.5 ")
    check_grid_compatibility(moving, target)  # only one image knows its frame of reference
    target.SetMetaData("0020|0052", "1.2.3.4")
    with pytest.raises(ValueError, match=r"segmentation frame of reference '1\.2\.3\.5' differs from the "
                                         r"target grid's '1\.2\.3\.4': the images are not registered"):
        check_grid_compatibility(moving, target)
    target.SetMetaData("0020|0052", "1.2.3.5")
    check_grid_compatibility(moving, target)


def test_image_on_grid_takes_the_array_and_the_reference_geometry():
    reference = oblique()
    values = np.arange(24, dtype=np.int16).reshape(3, 2, 4)
    image = image_on_grid(values, reference)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), values)
    assert (image.GetOrigin(), image.GetSpacing(), image.GetDirection()) == (
        reference.GetOrigin(), reference.GetSpacing(), reference.GetDirection())
    assert image.GetPixelID() == sitk.sitkInt16 and reference.GetPixelID() == sitk.sitkFloat32


def test_covered_by_counts_centres_on_the_edge_plane_in_every_run():
    """CT slices that share the PET's outer edge plane are covered (a lesion there is measured, not dropped)."""
    ct = sitk.Image((20, 20, 20), sitk.sitkInt16)
    ct.SetSpacing((2.5, 2.5, 2.5))
    pet = sitk.Image((10, 10, 5), sitk.sitkFloat32)
    pet.SetSpacing((5.0, 5.0, 5.0))
    # PET voxel 0 spans -2.5 .. 2.5 mm along z when its origin is 0: put the CT's first plane on -2.5.
    ct.SetOrigin((-1.25, -1.25, -2.5))
    covered = covered_by(ct, pet)
    # z planes at -2.5, 0, ..., 22.5 mm lie within [-2.5, 22.5]: exactly the first 11 planes.
    assert covered[:, :, :].any(axis=(1, 2)).tolist() == [True] * 11 + [False] * 9
    # 1 micrometre further out is outside; a translation that moves the grid in covers it again.
    ct.SetOrigin((-1.25, -1.25, -2.5 - 1e-3))
    assert not covered_by(ct, pet)[0].any()
    shifted = covered_by(ct, pet, sitk.TranslationTransform(3, (0.0, 0.0, 1e-3)))
    assert shifted[0].all() and not shifted[11].any()
    # Oblique: an image one voxel further along i, (1, 1, 0) mm, leaves the grid's first column uncovered.
    covered = covered_by(oblique(), oblique(origin=(11.0, -4.0, 7.0)))
    assert not covered[:, :, 0].any() and covered[:, :, 1:].all()
