"""Lobe split by plane, Couinaud segments and vessel territories; IA/IV route labels."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.grid import voxel_positions_lps
from luprrt.liver import (
    assign_routes,
    lobes_from_couinaud,
    lobes_from_vessel_territories,
    plane_from_cantlie_points,
    split_liver_by_plane,
)
from luprrt.segments import Segmentation, SegmentTags


def liver_image(direction=None) -> sitk.Image:
    """An ellipsoidal liver mask on an anisotropic grid (optionally re-oriented)."""
    shape = (18, 22, 26)  # z, y, x
    z, y, x = np.indices(shape)
    mask = ((x - 12.5) / 11) ** 2 + ((y - 10.5) / 9) ** 2 + ((z - 8.5) / 7.5) ** 2 <= 1
    image = sitk.GetImageFromArray(mask.astype(np.uint8))
    image.SetSpacing((3.0, 2.5, 4.0))
    image.SetOrigin((-40.0, 10.0, -300.0))
    if direction is not None:
        image.SetDirection(direction)
    return image


def lobe_voxels(seg: Segmentation, side: str) -> np.ndarray:
    return np.flatnonzero(seg.mask_array(seg.find_one("lobe", side=side).segment_id))


# x axis flipped and y/z swapped: voxel index order no longer follows LPS x.
ODD_DIRECTION = (-1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0)


@pytest.mark.parametrize("direction", [None, ODD_DIRECTION])
def test_plane_split_follows_the_sign_of_the_plane_distance(direction):
    liver = liver_image(direction)
    voxels = np.flatnonzero(sitk.GetArrayViewFromImage(liver))
    positions = voxel_positions_lps(liver, voxels)
    point = positions.mean(axis=0) + np.array([4.0, -3.0, 2.0])
    normal = np.array([1.0, 0.3, -0.2])
    seg = split_liver_by_plane(liver, point, normal)
    signed = (positions - point) @ normal
    # +x in LPS is the patient's left: the half the +x-leaning normal points to is the left lobe.
    np.testing.assert_array_equal(lobe_voxels(seg, "left"), voxels[signed >= 0])
    np.testing.assert_array_equal(lobe_voxels(seg, "right"), voxels[signed < 0])
    # The normal's sign does not decide the side (only voxels exactly on the plane change half).
    flipped = split_liver_by_plane(liver, point, -normal)
    np.testing.assert_array_equal(lobe_voxels(flipped, "left"), voxels[signed > 0])
    np.testing.assert_array_equal(lobe_voxels(flipped, "right"), voxels[signed <= 0])
    assert seg.find_one("liver").tags.role == "liver"


def test_plane_split_voxel_positions_match_sitk():
    liver = liver_image(ODD_DIRECTION)
    flat = np.array([0, 17, 5000, liver.GetNumberOfPixels() - 1])
    z, y, x = np.unravel_index(flat, liver.GetSize()[::-1])
    expected = [liver.TransformIndexToPhysicalPoint((int(i), int(j), int(k)))
                for i, j, k in zip(x, y, z, strict=True)]
    np.testing.assert_allclose(voxel_positions_lps(liver, flat), expected, atol=1e-9)


def test_cantlie_plane_contains_the_three_landmarks():
    gb, mhv, ivc = (10.0, -60.0, -80.0), (25.0, -20.0, -20.0), (30.0, 10.0, -40.0)
    point, normal = plane_from_cantlie_points(gb, mhv, ivc)
    assert np.linalg.norm(normal) == pytest.approx(1.0)
    assert normal[0] > 0
    for landmark in (gb, mhv, ivc):
        assert (np.asarray(landmark) - point) @ normal == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="collinear"):
        plane_from_cantlie_points((0, 0, 0), (1, 1, 1), (2, 2, 2))


def test_couinaud_segments_map_to_lobes():
    labels = np.zeros((4, 6, 10), dtype=np.uint8)
    for n in range(1, 9):
        labels[:, :, n] = n  # column n holds Couinaud segment n
    image = sitk.GetImageFromArray(labels)
    expected = {"left": {2, 3, 4}, "right": {5, 6, 7, 8}}
    for caudate, extra in (("left", {"left": {1}}), ("right", {"right": {1}}), ("exclude", {})):
        seg = lobes_from_couinaud(image, caudate=caudate)
        for side in ("left", "right"):
            got = set(np.unique(labels[seg.mask_array(seg.find_one("lobe", side=side).segment_id)]).tolist())
            assert got == expected[side] | extra.get(side, set()), (caudate, side)
        assert seg.mask_array(seg.find_one("liver").segment_id).sum() == 4 * 6 * 8
    renumbered = sitk.GetImageFromArray(np.where(labels > 0, labels + 10, 0).astype(np.uint8))
    seg = lobes_from_couinaud(renumbered, segment_labels={n: n + 10 for n in range(1, 9)})
    assert seg.mask_array(seg.find_one("lobe", side="left").segment_id).sum() == 4 * 6 * 4
    with pytest.raises(ValueError, match="caudate must be one of"):
        lobes_from_couinaud(image, caudate="middle")
    with pytest.raises(ValueError, match="no voxel of the left lobe"):
        lobes_from_couinaud(sitk.GetImageFromArray(np.where(labels >= 5, labels, 0).astype(np.uint8)),
                            caudate="exclude")


def test_vessel_territories_equal_brute_force_nearest_seed():
    liver = liver_image()
    voxels = np.flatnonzero(sitk.GetArrayViewFromImage(liver))
    positions = voxel_positions_lps(liver, voxels)
    rng = np.random.default_rng(11)
    centre = positions.mean(axis=0)
    right = centre + rng.normal(0, 12, size=(7, 3)) - [15, 0, 0]
    left = centre + rng.normal(0, 12, size=(5, 3)) + [15, 0, 0]
    seg = lobes_from_vessel_territories(liver, right, left)
    distance = np.linalg.norm(positions[:, None, :] - np.vstack([right, left])[None, :, :], axis=2)
    nearest_is_right = distance.argmin(axis=1) < len(right)
    np.testing.assert_array_equal(lobe_voxels(seg, "right"), voxels[nearest_is_right])
    np.testing.assert_array_equal(lobe_voxels(seg, "left"), voxels[~nearest_is_right])
    with pytest.raises(ValueError, match=r"left vessel points must be a non-empty \(n, 3\) array"):
        lobes_from_vessel_territories(liver, right, np.zeros((0, 3)))


def test_split_replaces_old_lobes_and_keeps_the_input():
    liver = liver_image()
    first = split_liver_by_plane(liver, voxel_positions_lps(liver, [0]).ravel() + 40, (1, 0, 0))
    lesion = np.zeros(liver.GetSize()[::-1], dtype=bool)
    lesion[8, 10, 12] = True
    first.add_segment(lesion, SegmentTags("lesion", lesion_id="L01"))
    before = [(s.segment_id, s.tags) for s in first.segments]
    second = split_liver_by_plane(first, voxel_positions_lps(liver, [0]).ravel() + 60, (1, 0, 0))
    assert [(s.segment_id, s.tags) for s in first.segments] == before
    assert len(second.find(role="lobe")) == 2
    assert second.find_one("lesion", lesion_id="L01")
    assert lobe_voxels(second, "right").size > lobe_voxels(first, "right").size


def test_assign_routes_labels_ia_and_iv():
    liver = liver_image()
    seg = split_liver_by_plane(liver, voxel_positions_lps(liver, [0]).ravel() + 40, (1, 0, 0))
    lesion = np.zeros(liver.GetSize()[::-1], dtype=bool)
    lesion[8, 10, 20] = True
    seg.add_segment(lesion, SegmentTags("lesion", side="left", lesion_id="L01"))
    for ia_side, iv_side in (("right", "left"), ("left", "right")):
        routed = assign_routes(seg, ia_side)
        assert routed.find_one("lobe", side=ia_side).tags.route == "IA"
        assert routed.find_one("lobe", side=iv_side).tags.route == "IV"
        assert routed.find_one("lesion").tags.route == ("IA" if ia_side == "left" else "IV")
        assert routed.find_one("lobe", side=ia_side).name == f"{ia_side} lobe (IA)"
    assert all(s.tags.route is None for s in seg.segments)  # input untouched
    for bad in (None, "middle"):
        with pytest.raises(ValueError, match="ia_side"):
            assign_routes(seg, bad)
    liver_only = Segmentation.empty_like(liver)
    liver_only.add_segment(sitk.GetArrayFromImage(liver) > 0, SegmentTags("liver"))
    with pytest.raises(ValueError, match="no segment tagged role=lobe, side=right"):
        assign_routes(liver_only, "right")


def test_split_errors():
    liver = liver_image()
    far = voxel_positions_lps(liver, [0]).ravel() - 1000
    with pytest.raises(ValueError, match="does not cut the liver"):
        split_liver_by_plane(liver, far, (1, 0, 0))
    empty = sitk.Image(liver.GetSize(), sitk.sitkUInt8)
    with pytest.raises(ValueError, match="liver segment is empty"):
        split_liver_by_plane(empty, (0, 0, 0), (1, 0, 0))
    with pytest.raises(ValueError, match="zero vector"):
        split_liver_by_plane(liver, (0, 0, 0), (0, 0, 0))
    with pytest.raises(ValueError, match="needs the grid"):
        split_liver_by_plane(np.ones((3, 3, 3)), (0, 0, 0), (1, 0, 0))
