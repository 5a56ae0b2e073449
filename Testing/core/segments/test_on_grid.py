"""CT segments on a SPECT grid: nearest neighbour, fractional occupancy, geometry checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.segments import (
    Segment,
    Segmentation,
    SegmentTags,
    segment_occupancy,
    segment_regions,
    segmentation_on_grid,
)


def make_grid(size, spacing, origin, direction=None) -> sitk.Image:
    image = sitk.Image([int(n) for n in size], sitk.sitkFloat32)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetOrigin(tuple(float(o) for o in origin))
    if direction is not None:
        image.SetDirection(direction)
    return image


def centres_mm(grid: sitk.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, y, x) LPS coordinates of voxel centres of an axis-aligned grid, broadcastable."""
    axes = [grid.GetOrigin()[a] + grid.GetSpacing()[a] * np.arange(grid.GetSize()[a]) for a in range(3)]
    return axes[2][:, None, None], axes[1][None, :, None], axes[0][None, None, :]


def sphere_segmentation(ct: sitk.Image, centre, radius_mm: float) -> Segmentation:
    z, y, x = centres_mm(ct)
    mask = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= radius_mm ** 2
    seg = Segmentation.empty_like(ct)
    seg.add_segment(mask, SegmentTags("lesion", lesion_id="L01"))
    return seg


def test_fractional_occupancy_recovers_a_small_sphere_volume_where_nearest_neighbour_fails():
    ct = make_grid((100, 100, 100), (0.8, 0.8, 0.8), (-40, -40, -40))
    spect = make_grid((24, 24, 24), (4.42, 4.42, 4.42), (-50, -50, -50))
    radius = 6.0
    seg = sphere_segmentation(ct, (3.3, -1.1, 2.7), radius)
    truth_ml = 4 / 3 * math.pi * radius ** 3 / 1000
    voxel_ml = 4.42 ** 3 / 1000
    occupancy = segment_occupancy(seg, spect, supersampling=5)["lesion_L01"]
    fractional_ml = occupancy.weights.sum() * voxel_ml
    nearest_ml = segmentation_on_grid(seg, spect).mask_array("lesion_L01").sum() * voxel_ml
    fractional_error = abs(fractional_ml / truth_ml - 1)
    nearest_error = abs(nearest_ml / truth_ml - 1)
    assert fractional_error < 0.01
    assert nearest_error > 2 * fractional_error
    assert occupancy.weights.max() == pytest.approx(1.0)  # the sphere's core voxels are wholly inside
    assert (occupancy.weights > 0).all() and (occupancy.weights <= 1).all()


def test_occupancy_on_nested_grids_equals_the_share_of_ct_voxels_per_spect_voxel():
    # SPECT voxels of 4 mm are exactly 4x4x4 CT voxels of 1 mm; with supersampling 4 each
    # sample point is a CT voxel centre, so the occupancy is the exact CT voxel share.
    spect = make_grid((10, 9, 8), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0))
    ct = make_grid((40, 36, 32), (1.0, 1.0, 1.0), (-1.5, -1.5, -1.5))
    rng = np.random.default_rng(7)
    blob = np.zeros((32, 36, 40), dtype=bool)
    blob[5:27, 4:30, 9:35] = rng.random((22, 26, 26)) < 0.6
    seg = Segmentation.empty_like(ct)
    seg.add_segment(blob, SegmentTags("liver"))
    region = segment_occupancy(seg, spect, supersampling=4)["liver"]
    expected = blob.reshape(8, 4, 9, 4, 10, 4).mean(axis=(1, 3, 5)).ravel()
    got = np.zeros(expected.size)
    got[region.voxels] = region.weights
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_occupancy_of_an_empty_segment_with_the_highest_label_is_empty():
    # A segment read from a file may have no voxel; when it carries the layer's highest label
    # value the label lookup must still cover it (this raised IndexError).
    spect = make_grid((10, 9, 8), (4.0, 4.0, 4.0), (0.0, 0.0, 0.0))
    ct = make_grid((40, 36, 32), (1.0, 1.0, 1.0), (-1.5, -1.5, -1.5))
    labels = np.zeros((32, 36, 40), dtype=np.uint8)
    labels[8:16, 8:16, 8:16] = 1  # exactly 2x2x2 SPECT voxels
    layer = sitk.GetImageFromArray(labels)
    layer.CopyInformation(ct)
    seg = Segmentation([layer], [Segment("full", "full", SegmentTags("lesion"), 0, 1),
                                 Segment("empty", "empty", SegmentTags("lesion"), 0, 2)])
    regions = segment_occupancy(seg, spect, supersampling=4)
    assert regions["empty"].voxels.size == 0
    assert regions["full"].voxels.size == 8
    np.testing.assert_allclose(regions["full"].weights, 1.0, rtol=0, atol=1e-12)


def test_nearest_neighbour_takes_the_label_at_each_spect_voxel_centre():
    ct = make_grid((60, 50, 40), (1.0, 1.0, 1.5), (-30.0, -25.0, -30.0))
    spect = make_grid((12, 10, 12), (4.5, 4.5, 4.7), (-28.8, -23.8, -28.0))
    seg = sphere_segmentation(ct, (1.0, 2.0, -3.0), 14.0)
    result = segmentation_on_grid(seg, spect)
    z, y, x = centres_mm(spect)
    # CT voxel holding each SPECT centre (rounding = nearest CT voxel centre).
    ix = np.rint((x - ct.GetOrigin()[0]) / 1.0).astype(int)
    iy = np.rint((y - ct.GetOrigin()[1]) / 1.0).astype(int)
    iz = np.rint((z - ct.GetOrigin()[2]) / 1.5).astype(int)
    ct_mask = seg.mask_array("lesion_L01")
    expected = ct_mask[np.broadcast_arrays(iz, iy, ix)]
    assert 20 < expected.sum() < expected.size / 2
    np.testing.assert_array_equal(result.mask_array("lesion_L01"), expected)
    assert result.segments[0].tags == seg.segments[0].tags
    assert seg.reference.GetSize() == (60, 50, 40)  # input untouched


def test_segment_regions_list_each_segments_voxels():
    grid = make_grid((20, 20, 20), (2.0, 2.0, 2.0), (0, 0, 0))
    seg = Segmentation.empty_like(grid)
    a = np.zeros((20, 20, 20), dtype=bool)
    a[2:9, 3:7, 1:15] = True
    b = np.zeros_like(a)
    b[5:6, 4:18, 12:19] = True  # overlaps a: goes to a second layer
    seg.add_segment(a, SegmentTags("lobe", side="right"))
    seg.add_segment(b, SegmentTags("lesion", lesion_id="L02"))
    regions = segment_regions(seg)
    np.testing.assert_array_equal(regions["lobe_right"].voxels, np.flatnonzero(a))
    np.testing.assert_array_equal(regions["lesion_L02"].voxels, np.flatnonzero(b))
    assert regions["lesion_L02"].weights is None


def test_geometry_mismatch_errors_name_the_problem():
    ct = make_grid((20, 20, 20), (1.0, 1.0, 1.0), (0, 0, 0))
    seg = sphere_segmentation(ct, (10, 10, 10), 5)
    far = make_grid((10, 10, 10), (4.0, 4.0, 4.0), (500, 0, 0))
    with pytest.raises(ValueError, match="does not overlap"):
        segmentation_on_grid(seg, far)
    with pytest.raises(ValueError, match="does not overlap"):
        segment_occupancy(seg, far)
    rotated = make_grid((10, 10, 10), (4.0, 4.0, 4.0), (0, 0, 0), direction=(0, 1, 0, 1, 0, 0, 0, 0, 1))
    with pytest.raises(ValueError, match="orientation"):
        segmentation_on_grid(seg, rotated)


def test_lesion_lost_by_nearest_neighbour_is_named():
    ct = make_grid((40, 40, 40), (0.5, 0.5, 0.5), (0, 0, 0))
    seg = sphere_segmentation(ct, (9.5, 9.5, 9.5), 1.0)  # 2 mm sphere between SPECT voxel centres
    spect = make_grid((5, 5, 5), (5.0, 5.0, 5.0), (2.5, 2.5, 2.5))
    with pytest.raises(ValueError, match=r"\['lesion L01'\] have no voxel centre.*fractional occupancy"):
        segmentation_on_grid(seg, spect)
    kept = segment_occupancy(seg, spect, supersampling=5)["lesion_L01"]
    assert kept.weights.sum() > 0


def test_bad_arguments():
    ct = make_grid((10, 10, 10), (1.0, 1.0, 1.0), (0, 0, 0))
    seg = sphere_segmentation(ct, (5, 5, 5), 3)
    with pytest.raises(ValueError, match="supersampling must be a positive integer"):
        segment_occupancy(seg, ct, supersampling=0)
    with pytest.raises(ValueError, match=r"no segment with id \['nope'\]"):
        segment_regions(seg, ["nope"])

