"""The lobe-split registry: every method reachable by name, validation from the registry, extension."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.liver import (
    LOBE_SPLIT_METHODS,
    LobeSplit,
    LobeSplitMethod,
    register_lobe_split_method,
    split_lobes,
)
from luprrt.liver import lobe_split as lobe_split_module
from luprrt.segments import Segmentation, SegmentTags

SHAPE = (6, 8, 10)  # z, y, x


def _liver() -> Segmentation:
    reference = sitk.Image(SHAPE[::-1], sitk.sitkUInt8)
    reference.SetSpacing((2.0, 2.0, 2.0))
    segmentation = Segmentation.empty_like(reference)
    mask = np.zeros(SHAPE, dtype=bool)
    mask[1:5, 2:6, 1:9] = True  # 4 x 4 x 8 voxels, x from 2 to 16 mm (centres)
    segmentation.add_segment(mask, SegmentTags("liver"))
    return segmentation


def test_registry_lists_the_four_methods_with_their_required_inputs():
    assert list(LOBE_SPLIT_METHODS) == ["plane", "cantlie", "couinaud", "vessels"]
    assert LOBE_SPLIT_METHODS["plane"].required == ("point_lps_mm", "normal_lps")
    assert LOBE_SPLIT_METHODS["vessels"].required == ("right_points_lps_mm", "left_points_lps_mm")
    assert all(m.title and m.description for m in LOBE_SPLIT_METHODS.values())


def test_plane_and_cantlie_entries_give_the_same_lobes_for_the_same_plane():
    # Plane x = 9 mm (between voxel centres 8 and 10 mm): x < 9 is one side, x > 9 the other.
    by_plane = split_lobes(_liver(), LobeSplit.plane((9.0, 0.0, 0.0), (1.0, 0.0, 0.0)))
    by_cantlie = split_lobes(_liver(), LobeSplit.cantlie((9.0, 0.0, 0.0), (9.0, 10.0, 0.0), (9.0, 0.0, 10.0)))
    for side in ("right", "left"):
        plane_mask = by_plane.mask_array(by_plane.find_one("lobe", side=side).segment_id)
        cantlie_mask = by_cantlie.mask_array(by_cantlie.find_one("lobe", side=side).segment_id)
        np.testing.assert_array_equal(plane_mask, cantlie_mask)
        assert plane_mask.sum() == 4 * 4 * 4  # the plane halves the 8 voxels along x


def test_unknown_method_and_missing_inputs_are_named():
    with pytest.raises(ValueError, match=r"unknown lobe split method 'atlas'.*'plane', 'cantlie'"):
        LobeSplit("atlas")
    with pytest.raises(ValueError, match="lobe split 'vessels' needs right_points_lps_mm, left_points_lps_mm"):
        LobeSplit("vessels")


def test_a_registered_method_is_usable_by_name(monkeypatch):
    monkeypatch.setattr(lobe_split_module, "LOBE_SPLIT_METHODS", dict(LOBE_SPLIT_METHODS))

    def by_x_halves(segmentation, split):
        mid = SHAPE[2] // 2
        result = segmentation.copy()
        liver = segmentation.mask_array(segmentation.find_one("liver").segment_id)
        right, left = liver.copy(), liver.copy()
        right[:, :, mid:] = False
        left[:, :, :mid] = False
        result.add_segment(right, SegmentTags("lobe", side="right"))
        result.add_segment(left, SegmentTags("lobe", side="left"))
        return result

    register_lobe_split_method(LobeSplitMethod("halves", "Halves", "cut at the middle column", (), by_x_halves))
    with pytest.raises(ValueError, match="already registered"):
        register_lobe_split_method(LobeSplitMethod("halves", "Halves", "again", (), by_x_halves))
    lobes = split_lobes(_liver(), LobeSplit("halves"))
    right = lobes.mask_array(lobes.find_one("lobe", side="right").segment_id)
    assert right.sum() == 4 * 4 * 4 and not right[:, :, 5:].any()
