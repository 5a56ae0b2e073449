"""The tagged segmentation model: layers, label values, tags, lookup by tags, copies and removal.

Masks are index boxes on a 10 x 8 x 6 grid, so the layer and label value every segment must
get (first layer it does not overlap, next free label value there) are worked out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.segments import ROLES, ROUTES, SIDES, TYPE_CODES, Code, Segmentation, SegmentTags

SIZE_XYZ = (10, 8, 6)


def grid(spacing=(1.0, 1.0, 1.0), direction=None) -> sitk.Image:
    image = sitk.Image(SIZE_XYZ, sitk.sitkFloat32)
    image.SetSpacing(spacing)
    image.SetOrigin((-4.0, 7.5, 100.0))
    if direction is not None:
        image.SetDirection(direction)
    return image


def box(x, y, z) -> np.ndarray:
    mask = np.zeros(SIZE_XYZ[::-1], bool)
    mask[z[0]:z[1] + 1, y[0]:y[1] + 1, x[0]:x[1] + 1] = True
    return mask


LIVER = box((1, 8), (1, 6), (1, 4))
RIGHT = box((1, 4), (1, 6), (1, 4))
LEFT = box((5, 8), (1, 6), (1, 4))
LESION_1 = box((2, 3), (2, 3), (2, 3))
LESION_2 = box((6, 7), (2, 4), (2, 2))
LESION_3 = box((3, 3), (3, 4), (3, 3))  # overlaps lesion 1 at (3, 3, 3)
KIDNEY = box((0, 0), (0, 7), (0, 5))  # outside the liver


def liver_with_lesions() -> Segmentation:
    segmentation = Segmentation.empty_like(grid())
    segmentation.add_segment(LIVER, SegmentTags("liver"))
    segmentation.add_segment(RIGHT, SegmentTags("lobe", side="right", route="IA"))
    segmentation.add_segment(LEFT, SegmentTags("lobe", side="left", route="IV"))
    segmentation.add_segment(LESION_1, SegmentTags("lesion", side="right", route="IA", lesion_id="L01"))
    segmentation.add_segment(LESION_2, SegmentTags("lesion", side="left", route="IV", lesion_id="L02"))
    segmentation.add_segment(LESION_3, SegmentTags("lesion", side="right", route="IA", lesion_id="L03"))
    segmentation.add_segment(KIDNEY, SegmentTags("kidney", side="right"))
    return segmentation


def test_segments_go_to_the_first_layer_they_do_not_overlap_with_the_next_label_value():
    segmentation = liver_with_lesions()
    assert [(s.segment_id, s.layer, s.label_value) for s in segmentation.segments] == [
        ("liver", 0, 1), ("lobe_right", 1, 1), ("lobe_left", 1, 2), ("lesion_right_L01", 2, 1),
        ("lesion_left_L02", 2, 2), ("lesion_right_L03", 3, 1), ("kidney_right", 0, 2)]
    expected_layers = [LIVER * 1 + KIDNEY * 2, RIGHT * 1 + LEFT * 2, LESION_1 * 1 + LESION_2 * 2, LESION_3 * 1]
    assert len(segmentation.layers) == 4
    for k, expected in enumerate(expected_layers):
        np.testing.assert_array_equal(segmentation.layer_array(k), expected)
        assert segmentation.layers[k].GetOrigin() == (-4.0, 7.5, 100.0)
    for mask, segment_id in ((LESION_3, "lesion_right_L03"), (KIDNEY, "kidney_right"), (LIVER, "liver")):
        np.testing.assert_array_equal(segmentation.mask_array(segment_id), mask)
    assert segmentation.reference is segmentation.layers[0]


def test_ids_names_and_colours_follow_the_tags():
    segmentation = liver_with_lesions()
    assert [s.name for s in segmentation.segments] == [
        "liver", "right lobe (IA)", "left lobe (IV)", "lesion L01", "lesion L02", "lesion L03", "right kidney"]
    assert segmentation.segment("lesion_right_L01").color == (0.95, 0.85, 0.2)
    # A second segment with the same tags gets a numbered id; given ids, names and colours are kept.
    again = segmentation.add_segment(box((9, 9), (7, 7), (5, 5)), SegmentTags("kidney", side="right"))
    assert again.segment_id == "kidney_right_2"
    named = segmentation.add_segment(box((9, 9), (0, 0), (0, 0)), SegmentTags("non-tumour", side="left"),
                                     name="NT left", segment_id="nt", color=(0.1, 0.2, 0.3))
    assert (named.segment_id, named.name, named.color) == ("nt", "NT left", (0.1, 0.2, 0.3))
    assert SegmentTags("non-tumour").default_name() == "non-tumour liver"
    assert SegmentTags("non-tumour", side="right").default_name() == "non-tumour right lobe"
    assert SegmentTags("kidney").default_name() == "kidneys"
    assert SegmentTags("spleen", route="IA").default_name() == "spleen"


def test_tags_are_validated_and_coded():
    for role in ROLES:
        assert SegmentTags(role).role == role
    assert SIDES == ("right", "left") and ROUTES == ("IA", "IV")
    with pytest.raises(ValueError, match=r"unknown segment role 'tumor'"):
        SegmentTags("tumor")
    with pytest.raises(ValueError, match=r"unknown side 'middle' for role 'lobe'"):
        SegmentTags("lobe", side="middle")
    with pytest.raises(ValueError, match=r"unknown route 'oral' for role 'lobe'"):
        SegmentTags("lobe", route="oral")
    # SNOMED CT codes of the structure; the side as a DICOM CID 244 laterality modifier of the type
    # (lobes, kidneys) or of the anatomic region, the liver (lesions, non-tumour liver parenchyma).
    left, right = Code("SCT", "7771000", "Left"), Code("SCT", "24028007", "Right")
    lobe = SegmentTags("lobe", side="left")
    assert (lobe.type_code(), lobe.type_modifier()) == (Code("SCT", "10200004", "Liver"), left)
    kidney = SegmentTags("kidney", side="right")
    assert (kidney.type_code(), kidney.type_modifier()) == (Code("SCT", "64033007", "Kidney"), right)
    assert SegmentTags("kidney").type_modifier() is None
    lesion = SegmentTags("lesion", side="right")
    assert lesion.type_code() == Code("SCT", "52988006", "Lesion") and lesion.type_modifier() is None
    assert (lesion.anatomic_region(), lesion.anatomic_region_modifier()) == (TYPE_CODES["liver"], right)
    assert SegmentTags("non-tumour").type_code() == Code("SCT", "91772007", "Parenchyma")
    assert SegmentTags("liver").anatomic_region() is None
    assert SegmentTags("lesion").category_code().value == "49755003"  # Morphologically Altered Structure
    assert SegmentTags("blood").category_code().value == "91720002"  # Body Substance
    assert SegmentTags("marrow").category_code().value == "123037004"  # Anatomical Structure
    assert Code("SCT", "10200004", "Liver").slicer_string() == "SCT^10200004^Liver"


def test_find_by_tags_never_by_order_or_name():
    segmentation = liver_with_lesions()
    assert [s.segment_id for s in segmentation.find(role="lesion", side="right")] == [
        "lesion_right_L01", "lesion_right_L03"]
    assert [s.segment_id for s in segmentation.find(route="IV")] == ["lobe_left", "lesion_left_L02"]
    assert len(segmentation.find()) == 7
    assert segmentation.find(role="spleen") == []
    assert segmentation.find_one("lesion", lesion_id="L02").segment_id == "lesion_left_L02"
    with pytest.raises(ValueError, match="segmentation has no segment tagged role=spleen"):
        segmentation.find_one("spleen")
    with pytest.raises(ValueError, match=r"has 2 segments tagged role=lesion, side=right: "
                                         r"\['lesion_right_L01', 'lesion_right_L03'\]"):
        segmentation.find_one("lesion", side="right")
    with pytest.raises(KeyError, match="no segment with id 'L01'"):
        segmentation.segment("L01")


def test_without_and_copy_leave_the_original_untouched():
    segmentation = liver_with_lesions()
    layers_before = [segmentation.layer_array(k) for k in range(4)]
    smaller = segmentation.without(["lesion_right_L01", "lobe_left"])
    assert [s.segment_id for s in smaller.segments] == [
        "liver", "lobe_right", "lesion_left_L02", "lesion_right_L03", "kidney_right"]
    np.testing.assert_array_equal(smaller.layer_array(1), RIGHT * 1)
    np.testing.assert_array_equal(smaller.layer_array(2), LESION_2 * 2)
    for k, before in enumerate(layers_before):
        np.testing.assert_array_equal(segmentation.layer_array(k), before)
    with pytest.raises(ValueError, match=r"no segments \['nope'\] in the segmentation"):
        segmentation.without(["nope", "liver"])

    copy = segmentation.copy()
    copy.retag("lobe_right", route="IV")
    copy.add_segment(box((9, 9), (7, 7), (5, 5)), SegmentTags("spleen"))
    assert segmentation.segment("lobe_right").tags.route == "IA"
    assert copy.segment("lobe_right").tags == SegmentTags("lobe", side="right", route="IV")
    assert len(segmentation.segments) == 7 and segmentation.layer_array(0)[5, 7, 9] == 0


def test_a_layer_widens_to_16_bit_for_its_256th_segment():
    segmentation = Segmentation.empty_like(grid())
    flat = np.arange(300)
    for n in flat:
        mask = np.zeros(SIZE_XYZ[::-1], bool)
        mask.flat[n] = True
        segmentation.add_segment(mask, SegmentTags("lesion", lesion_id=f"L{n + 1:03d}"))
    assert len(segmentation.layers) == 1
    labels = segmentation.layer_array(0)
    assert labels.dtype == np.uint16
    np.testing.assert_array_equal(labels.flat[flat], flat + 1)
    assert segmentation.segment("lesion_L256").label_value == 256
    assert segmentation.mask_array("lesion_L300").flat[299]


def test_bad_masks_are_refused_with_the_reason():
    segmentation = liver_with_lesions()
    with pytest.raises(ValueError, match="segment 'lesion L09' is empty"):
        segmentation.add_segment(np.zeros(SIZE_XYZ[::-1], bool), SegmentTags("lesion", lesion_id="L09"))
    with pytest.raises(ValueError, match=r"mask shape \(6, 8, 9\) differs from the segmentation grid \(6, 8, 10\)"):
        segmentation.add_segment(np.ones((6, 8, 9), bool), SegmentTags("spleen"))
    with pytest.raises(ValueError, match="segment id 'liver' already exists"):
        segmentation.add_segment(KIDNEY, SegmentTags("liver"), segment_id="liver")
    assert len(segmentation.segments) == 7


def test_mask_image_on_another_grid_is_refused_by_add_segment():
    # Same size and origin but another spacing or direction: the mask covers other tissue.
    segmentation = Segmentation.empty_like(grid())
    other_spacing = sitk.Cast(grid(spacing=(2.0, 1.0, 1.0)), sitk.sitkUInt8) + 1
    with pytest.raises(ValueError, match=r"mask image geometry \(spacing\) differs from the segmentation grid"):
        segmentation.add_segment(other_spacing, SegmentTags("liver"))
    flipped = sitk.Cast(grid(direction=(-1, 0, 0, 0, -1, 0, 0, 0, 1)), sitk.sitkUInt8) + 1
    with pytest.raises(ValueError, match=r"mask image geometry \(direction\) differs"):
        segmentation.add_segment(flipped, SegmentTags("liver"))
    same = sitk.Cast(grid(), sitk.sitkUInt8) + 1
    assert segmentation.add_segment(same, SegmentTags("liver")).label_value == 1
    assert segmentation.mask_array("liver").all()
