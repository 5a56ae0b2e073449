"""Lesions: assignment to lobes, candidate detection on SPECT, persistent tracking ids."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.liver import (
    accept_lesion_candidates,
    assign_lesions_to_lobes,
    detect_lesion_candidates,
)
from luprrt.segments import Segmentation, SegmentTags

SHAPE = (36, 40, 44)  # z, y, x
SPACING = (4.0, 4.0, 4.0)
VOXEL_ML = 0.064
BACKGROUND = 1000.0


def grid() -> sitk.Image:
    image = sitk.Image(SHAPE[::-1], sitk.sitkFloat32)
    image.SetSpacing(SPACING)
    image.SetOrigin((-80.0, -60.0, -200.0))
    return image


def ball(centre_zyx, radius_vox: float) -> np.ndarray:
    z, y, x = np.indices(SHAPE)
    return (z - centre_zyx[0]) ** 2 + (y - centre_zyx[1]) ** 2 + (x - centre_zyx[2]) ** 2 <= radius_vox ** 2


def lobes_segmentation(routes: bool = True) -> Segmentation:
    """Liver box 4..32 x 5..35 x 4..40; right lobe x < 22 (smaller LPS x), left lobe x >= 22."""
    seg = Segmentation.empty_like(grid())
    liver = np.zeros(SHAPE, dtype=bool)
    liver[4:32, 5:35, 4:40] = True
    seg.add_segment(liver, SegmentTags("liver"))
    right = liver.copy()
    right[:, :, 22:] = False
    seg.add_segment(right, SegmentTags("lobe", side="right", route="IA" if routes else None))
    seg.add_segment(liver & ~right, SegmentTags("lobe", side="left", route="IV" if routes else None))
    return seg


def spect_with(spheres: list[tuple[np.ndarray, float]]) -> sitk.Image:
    values = np.zeros(SHAPE, dtype=np.float32)
    values[4:32, 5:35, 4:40] = BACKGROUND
    for mask, concentration in spheres:
        values[mask] = concentration
    image = sitk.GetImageFromArray(values)
    image.CopyInformation(grid())
    return image


def test_lesion_joins_the_lobe_holding_most_of_it():
    seg = lobes_segmentation()
    straddling = np.zeros(SHAPE, dtype=bool)
    straddling[10:14, 10:14, 19:29] = True  # 3 columns right (x 19-21), 7 left (x 22-28)
    seg.add_segment(straddling, SegmentTags("lesion", lesion_id="L01"))
    seg.add_segment(ball((20, 20, 10), 3), SegmentTags("lesion", lesion_id="L02"))
    result = assign_lesions_to_lobes(seg)
    assert result.find_one("lesion", lesion_id="L01").tags.side == "left"
    assert result.find_one("lesion", lesion_id="L01").tags.route == "IV"
    assert result.find_one("lesion", lesion_id="L02").tags.side == "right"
    assert result.find_one("lesion", lesion_id="L02").tags.route == "IA"
    assert seg.find_one("lesion", lesion_id="L01").tags.side is None  # input untouched


def test_lesion_outside_the_liver_is_named():
    seg = lobes_segmentation()
    outside = np.zeros(SHAPE, dtype=bool)
    outside[28:36, 10:14, 10:14] = True  # 4 of 8 slices in the liver (z < 32): 50 % inside
    outside[33, 20, 20] = True  # one more voxel outside: 64/129 < 50 %
    seg.add_segment(outside, SegmentTags("lesion", lesion_id="L07"))
    with pytest.raises(ValueError, match=r"outside the liver.*'lesion L07' \(49.6 % inside\)"):
        assign_lesions_to_lobes(seg)
    tolerant = assign_lesions_to_lobes(seg, min_inside_fraction=0.4)
    assert tolerant.find_one("lesion", lesion_id="L07").tags.side == "right"
    with pytest.raises(ValueError, match="no lobe segments"):
        assign_lesions_to_lobes(Segmentation.empty_like(grid()))


def test_candidates_are_the_planted_hot_spheres():
    hot = ball((12, 15, 12), 3.0)  # right lobe
    warm = ball((20, 25, 30), 2.0)  # left lobe
    tiny = ball((26, 10, 33), 0.0)  # a single hot voxel, dropped by min_volume_ml
    spect = spect_with([(hot, 8000.0), (warm, 5000.0), (tiny, 9000.0)])
    seg = lobes_segmentation()
    found = detect_lesion_candidates(spect, seg, threshold_mode="relative_to_nontumour", factor=3.0,
                                     min_volume_ml=0.2)
    assert [c.lesion_id for c in found] == ["L01", "L02"]  # hottest first
    first, second = found
    np.testing.assert_array_equal(first.voxels, np.flatnonzero(hot))
    assert first.volume_ml == pytest.approx(hot.sum() * VOXEL_ML)
    assert (first.max_bq_per_ml, first.side, first.is_existing) == (8000.0, "right", False)
    np.testing.assert_array_equal(second.voxels, np.flatnonzero(warm))
    assert second.volume_ml == pytest.approx(warm.sum() * VOXEL_ML)
    assert (second.max_bq_per_ml, second.side) == (5000.0, "left")
    expected_centre = spect.TransformIndexToPhysicalPoint((12, 15, 12))
    np.testing.assert_allclose(first.centroid_lps_mm, expected_centre, atol=1e-9)

    by_percent = detect_lesion_candidates(spect, seg, threshold_mode="percent_of_local_max", factor=0.4,
                                          min_volume_ml=0.2)
    assert [c.voxel_count for c in by_percent] == [hot.sum(), warm.sum()]


def test_existing_lesions_keep_their_ids_and_new_ones_get_the_next_free_id():
    hot = ball((12, 15, 12), 3.0)
    warm = ball((20, 25, 30), 2.0)
    spect = spect_with([(hot, 8000.0), (warm, 5000.0)])
    seg = lobes_segmentation()
    seg.add_segment(ball((20, 25, 30), 1.0), SegmentTags("lesion", side="left", route="IV", lesion_id="L04"))
    found = {c.lesion_id: c for c in detect_lesion_candidates(spect, seg, factor=3.0, min_volume_ml=0.2)}
    assert sorted(found) == ["L04", "L05"]
    assert found["L04"].is_existing and found["L04"].voxel_count == warm.sum()
    assert not found["L05"].is_existing and found["L05"].voxel_count == hot.sum()

    only_new = accept_lesion_candidates(seg, found.values(), drop=["L04"])
    assert len(only_new.find(role="lesion")) == 2
    assert only_new.find_one("lesion", lesion_id="L04").tags.side == "left"
    added = only_new.find_one("lesion", lesion_id="L05")
    assert (added.tags.side, added.tags.route) == ("right", "IA")
    np.testing.assert_array_equal(only_new.mask_array(added.segment_id), hot)

    updated = accept_lesion_candidates(seg, found.values(), accept=["L04"])
    lesions = updated.find(role="lesion")
    assert [s.tags.lesion_id for s in lesions] == ["L04"]
    np.testing.assert_array_equal(updated.mask_array(lesions[0].segment_id), warm)  # outline updated
    assert seg.mask_array(seg.find_one("lesion").segment_id).sum() == ball((20, 25, 30), 1.0).sum()

    with pytest.raises(ValueError, match=r"no candidates with ids \['L09'\]"):
        accept_lesion_candidates(seg, found.values(), accept=["L09"])
    with pytest.raises(ValueError, match=r"both accepted and dropped"):
        accept_lesion_candidates(seg, found.values(), accept=["L05"], drop=["L05"])


def test_detection_errors():
    spect = spect_with([])
    seg = lobes_segmentation()
    with pytest.raises(ValueError, match="unknown threshold_mode 'otsu'"):
        detect_lesion_candidates(spect, seg, threshold_mode="otsu")
    with pytest.raises(ValueError, match=r"fraction of the local maximum"):
        detect_lesion_candidates(spect, seg, threshold_mode="percent_of_local_max", factor=40)
    other = sitk.Image((10, 10, 10), sitk.sitkFloat32)
    with pytest.raises(ValueError, match="not on the SPECT grid"):
        detect_lesion_candidates(other, seg)
    assert detect_lesion_candidates(spect, seg) == []
