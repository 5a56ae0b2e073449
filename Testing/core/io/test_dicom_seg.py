"""DICOM SEG written with highdicom and read back: codes, tracking UIDs, masks, and bad input.

A small CT (20 x 16 x 12 voxels, 4 x 5 x 6 mm, origin off every axis) carries a liver with
two lobes, two lesions overlapping them, two kidneys and the non-tumour liver of one lobe;
every mask is a box at a different place, so a flipped or swapped axis moves it.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from luprrt.io import read_dicom_seg, read_segmentation_file, tracking_uid, write_dicom_seg
from luprrt.io.dicom_seg import TRACKING_NAMESPACE
from luprrt.io.dicom_write import DicomPatient, new_uid, write_ct_series
from luprrt.segments import Segmentation, SegmentTags

pytest.importorskip("highdicom", reason="highdicom (the `dicom` extra) is not installed")

PATIENT = DicomPatient(patient_id="LUPRRT-SEG-01")
SIZE_XYZ = (20, 16, 12)


def ct_image() -> sitk.Image:
    image = sitk.GetImageFromArray(np.zeros(SIZE_XYZ[::-1], dtype=np.float32))
    image.SetSpacing((4.0, 5.0, 6.0))
    image.SetOrigin((-37.0, -41.5, 12.25))
    return image


def box(z0, z1, y0, y1, x0, x1) -> np.ndarray:
    mask = np.zeros(SIZE_XYZ[::-1], dtype=bool)
    mask[z0:z1, y0:y1, x0:x1] = True
    return mask


def tagged(reference: sitk.Image) -> Segmentation:
    seg = Segmentation.empty_like(reference)
    seg.add_segment(box(1, 10, 2, 12, 2, 18), SegmentTags("liver"))
    seg.add_segment(box(1, 10, 2, 12, 2, 10), SegmentTags("lobe", side="right", route="IA"))
    seg.add_segment(box(1, 10, 2, 12, 10, 18), SegmentTags("lobe", side="left", route="IV"))
    seg.add_segment(box(3, 5, 4, 7, 3, 6), SegmentTags("lesion", side="right", route="IA", lesion_id="L01"))
    seg.add_segment(box(6, 9, 8, 11, 12, 14), SegmentTags("lesion", side="left", route="IV", lesion_id="L02"))
    seg.add_segment(box(2, 6, 13, 15, 1, 4), SegmentTags("kidney", side="right"))
    seg.add_segment(box(2, 6, 13, 15, 15, 19), SegmentTags("kidney", side="left"))
    seg.add_segment(box(1, 10, 2, 12, 2, 10) & ~box(3, 5, 4, 7, 3, 6), SegmentTags("non-tumour", side="right",
                                                                                     route="IA"))
    return seg


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seg")
    frame = new_uid()
    write_ct_series(ct_image(), folder / "ct", patient=PATIENT, study_uid=new_uid(), frame_of_reference_uid=frame,
                    acquisition_datetime=datetime(2024, 5, 6, 10, 0))
    segmentation = tagged(ct_image())
    path = write_dicom_seg(segmentation, folder / "ct", folder / "seg.dcm")
    return folder, segmentation, path, frame


def test_segments_round_trip_with_their_tags_and_masks(written):
    folder, segmentation, path, _ = written
    back = read_segmentation_file(path, folder / "ct")
    assert [s.tags for s in back.segments] == [s.tags for s in segmentation.segments]
    for original, read in zip(segmentation.segments, back.segments, strict=True):
        assert np.array_equal(back.mask_array(read.segment_id), segmentation.mask_array(original.segment_id)), \
            original.segment_id
    # Without the CT, the grid is the SEG's own frames: slices 1-9 of the CT (empty ones are not
    # stored), in CT order, so the first is one 6 mm slice above the CT's origin.
    alone = read_dicom_seg(path)
    assert np.allclose(alone.reference.GetOrigin(), (-37.0, -41.5, 12.25 + 6.0), atol=1e-4)
    assert np.array_equal(alone.mask_array(alone.segments[3].segment_id), box(3, 5, 4, 7, 3, 6)[1:10])


def test_codes_follow_dicom_laterality_route_and_region_conventions(written):
    _, _, path, frame = written
    ds = pydicom.dcmread(path)
    assert ds.FrameOfReferenceUID == frame
    items = {int(item.SegmentNumber): item for item in ds.SegmentSequence}
    right_lobe = items[2].SegmentedPropertyTypeCodeSequence[0]
    assert (right_lobe.CodeValue, right_lobe.CodeMeaning) == ("10200004", "Liver")
    assert [m.CodeValue for m in right_lobe.SegmentedPropertyTypeModifierCodeSequence] == ["24028007", "58100008"]
    lesion = items[5]
    assert lesion.SegmentedPropertyTypeCodeSequence[0].CodeValue == "52988006"
    assert lesion.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert lesion.AnatomicRegionSequence[0].CodeValue == "10200004"
    assert lesion.AnatomicRegionSequence[0].AnatomicRegionModifierSequence[0].CodeValue == "7771000"  # left
    assert lesion.TrackingID == "L02"
    non_tumour = items[8].SegmentedPropertyTypeCodeSequence[0]
    assert non_tumour.CodeValue == "91772007"


def test_tracking_uid_is_the_uuid5_of_patient_and_lesion_in_the_luprrt_namespace(written):
    _, _, path, _ = written
    lesion = pydicom.dcmread(path).SegmentSequence[3]
    expected = "2.25." + str(uuid.uuid5(TRACKING_NAMESPACE, "LUPRRT-SEG-01/L01").int)
    assert lesion.TrackingUID == expected == tracking_uid("LUPRRT-SEG-01", "L01")
    assert len(expected) <= 64  # UI value limit
    assert tracking_uid("LUPRRT-SEG-01", "L02") != expected
    assert tracking_uid("LUPRRT-SEG-02", "L01") != expected


def test_seg_on_another_frame_of_reference_is_refused(written):
    _, _, path, _ = written
    with pytest.raises(ValueError, match=r"on frame of reference .* the CT on 1\.2\.3\.4: it was drawn on another scan"):
        read_dicom_seg(path, frame_of_reference_uid="1.2.3.4")


def test_unknown_segment_code_names_the_segment_or_takes_the_role_given(written, tmp_path):
    _, _, path, _ = written
    ds = pydicom.dcmread(path)
    item = ds.SegmentSequence[5]  # right kidney
    item.SegmentedPropertyTypeCodeSequence[0].CodeValue = "41216001"
    item.SegmentedPropertyTypeCodeSequence[0].CodeMeaning = "Prostate"
    odd = tmp_path / "odd.dcm"
    ds.save_as(odd)
    with pytest.raises(ValueError, match=r"segment 6 \('right kidney'\) has type 'Prostate' \(SCT 41216001\), "
                                         r"which is no LuPRRT role"):
        read_dicom_seg(odd)
    back = read_dicom_seg(odd, roles={6: SegmentTags("spleen")})
    assert back.segments[5].tags == SegmentTags("spleen")


def test_segmentation_on_another_grid_than_the_ct_is_not_written(written, tmp_path):
    folder, segmentation, _, _ = written
    shifted = ct_image()
    shifted.SetOrigin((0.0, 0.0, 0.0))
    moved = Segmentation.empty_like(shifted)
    moved.add_segment(box(1, 3, 1, 3, 1, 3), SegmentTags("spleen"))
    with pytest.raises(ValueError, match="differs from the CT's"):
        write_dicom_seg(moved, folder / "ct", tmp_path / "moved.dcm")
    with pytest.raises(FileExistsError):
        write_dicom_seg(segmentation, folder / "ct", folder / "seg.dcm")
