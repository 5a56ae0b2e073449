"""Slicer ``.seg.nrrd`` files: round trip of a multi-layer tagged segmentation, and the header itself.

The phantom is an oblique, anisotropic grid (14 x 11 x 9 voxels, rotated 23 deg about z and
11 deg about x) holding boxes whose index ranges are written out below, so the layer each
segment lands in, its label value, its extent and every header field can be stated by hand.
Slicer's own reading of these files is checked in ``Testing/slicer/test_mrml.py``.
"""

from __future__ import annotations

import math

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.io import read_seg_nrrd, write_seg_nrrd
from luprrt.segments import Segmentation, SegmentTags

SIZE_XYZ = (14, 11, 9)
SPACING_MM = (0.8, 1.25, 2.5)
ORIGIN_MM = (-20.5, 33.25, -101.0)
TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"


def rotation() -> np.ndarray:
    """23 deg about z after 11 deg about x (columns: the image axes in LPS)."""
    cz, sz = math.cos(math.radians(23.0)), math.sin(math.radians(23.0))
    cx, sx = math.cos(math.radians(11.0)), math.sin(math.radians(11.0))
    return np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])


def grid() -> sitk.Image:
    image = sitk.Image(SIZE_XYZ, sitk.sitkUInt8)
    image.SetSpacing(SPACING_MM)
    image.SetOrigin(ORIGIN_MM)
    image.SetDirection(tuple(rotation().ravel()))
    return image


def box(x: tuple[int, int], y: tuple[int, int], z: tuple[int, int]) -> np.ndarray:
    """Boolean (z, y, x) mask of the inclusive index box."""
    mask = np.zeros(SIZE_XYZ[::-1], bool)
    mask[z[0]:z[1] + 1, y[0]:y[1] + 1, x[0]:x[1] + 1] = True
    return mask


# segment id: (x range, y range, z range, tags, layer, label value). Layer and label follow from the
# overlaps: lobes lie in the liver (layer 1), lesions in the lobes (layer 2), L03 overlaps L01 at
# voxel (4, 5, 4) (layer 3); the kidney and the blood voxel touch nothing (layer 0 after the liver).
BOXES = {
    "liver": ((1, 12), (1, 9), (1, 7), SegmentTags("liver"), 0, 1),
    "lobe_right": ((1, 6), (1, 9), (1, 7), SegmentTags("lobe", side="right", route="IA"), 1, 1),
    "lobe_left": ((7, 12), (1, 9), (1, 7), SegmentTags("lobe", side="left", route="IV"), 1, 2),
    "lesion_right_L01": ((2, 4), (3, 5), (2, 4), SegmentTags("lesion", "right", "IA", "L01"), 2, 1),
    "lesion_left_L02": ((8, 10), (4, 7), (3, 6), SegmentTags("lesion", "left", "IV", "L02"), 2, 2),
    "lesion_right_L03": ((4, 5), (5, 6), (4, 5), SegmentTags("lesion", "right", "IA", "L03"), 3, 1),
    "kidney_right": ((0, 3), (10, 10), (8, 8), SegmentTags("kidney", side="right"), 0, 2),
    "blood": ((13, 13), (0, 0), (0, 0), SegmentTags("blood"), 0, 3),
}


def phantom() -> Segmentation:
    segmentation = Segmentation.empty_like(grid())
    for segment_id, (x, y, z, tags, _, _) in BOXES.items():
        name = "second right lesion" if segment_id.endswith("L03") else None
        segmentation.add_segment(box(x, y, z), tags, name=name)
    return segmentation


def test_round_trip_keeps_layers_labels_tags_names_colours_masks_and_geometry(tmp_path):
    segmentation = phantom()
    assert [(s.segment_id, s.layer, s.label_value) for s in segmentation.segments] == [
        (segment_id, layer, label) for segment_id, (*_, layer, label) in BOXES.items()]
    before = [sitk.GetArrayFromImage(layer) for layer in segmentation.layers]

    back = read_seg_nrrd(write_seg_nrrd(segmentation, tmp_path / "phantom.seg.nrrd"))

    for layer, array in zip(segmentation.layers, before, strict=True):  # the input is not modified
        np.testing.assert_array_equal(sitk.GetArrayFromImage(layer), array)
    assert len(back.layers) == 4
    for got, (segment_id, (x, y, z, tags, layer, label)) in zip(back.segments, BOXES.items(), strict=True):
        assert (got.segment_id, got.tags, got.layer, got.label_value) == (segment_id, tags, layer, label)
        np.testing.assert_array_equal(back.mask_array(segment_id), box(x, y, z))
    assert [s.name for s in back.segments] == [
        "liver", "right lobe (IA)", "left lobe (IV)", "lesion L01", "lesion L02", "second right lesion",
        "right kidney", "blood"]
    assert back.segment("liver").color == pytest.approx((0.86, 0.55, 0.47), abs=1e-12)
    assert back.segment("lesion_left_L02").color == pytest.approx((0.95, 0.85, 0.2), abs=1e-12)
    for layer in back.layers:
        assert layer.GetSize() == SIZE_XYZ
        np.testing.assert_allclose(layer.GetOrigin(), ORIGIN_MM, rtol=0, atol=1e-12)
        np.testing.assert_allclose(layer.GetSpacing(), SPACING_MM, rtol=1e-14)
        np.testing.assert_allclose(np.reshape(layer.GetDirection(), (3, 3)), rotation(), rtol=0, atol=1e-14)


def test_header_fields_are_the_ones_slicer_reads(tmp_path):
    path = write_seg_nrrd(phantom(), tmp_path / "phantom.seg.nrrd")
    data, header = nrrd.read(str(path), index_order="C")

    assert data.dtype == np.uint8
    assert header["dimension"] == 4
    assert header["kinds"] == ["list", "domain", "domain", "domain"]
    assert list(header["sizes"]) == [4, *SIZE_XYZ]
    assert header["space"] == "left-posterior-superior"
    # Rows of "space directions": the step in LPS mm of one voxel along i, j, k.
    steps = rotation().T * np.asarray(SPACING_MM)[:, None]
    assert np.isnan(header["space directions"][0]).all()
    np.testing.assert_allclose(header["space directions"][1:], steps, rtol=0, atol=1e-14)
    np.testing.assert_allclose(header["space origin"], ORIGIN_MM, rtol=0, atol=0)

    assert header["Segmentation_MasterRepresentation"] == "Binary labelmap"
    assert header["Segmentation_ContainedRepresentationNames"] == "Binary labelmap|"
    assert header["Segmentation_ReferenceImageExtentOffset"] == "0 0 0"
    # Slicer reads only '&'-terminated conversion parameters (vtkSegmentationConverter::
    # DeserializeConversionParameters); without the final '&' it loses the reference geometry.
    assert header["Segmentation_ConversionParameters"].endswith("&")
    name, value, description = header["Segmentation_ConversionParameters"][:-1].split("|")
    assert (name, description) == ("Reference image geometry",
                                   "Geometry of the labelmaps (IJK to RAS matrix; extent)")
    # Slicer's reference geometry: the IJK-to-RAS matrix row by row (RAS = LPS with x and y negated),
    # then the extent (first and last index of each axis).
    numbers = value.rstrip(";").split(";")
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, :3] = np.diag([-1.0, -1.0, 1.0]) @ steps.T
    ijk_to_ras[:3, 3] = (-ORIGIN_MM[0], -ORIGIN_MM[1], ORIGIN_MM[2])
    np.testing.assert_allclose(np.array(numbers[:16], float).reshape(4, 4), ijk_to_ras, rtol=0, atol=1e-14)
    assert numbers[16:] == ["0", "13", "0", "10", "0", "8"]

    for n, (segment_id, (x, y, z, _, layer, label)) in enumerate(BOXES.items()):
        assert header[f"Segment{n}_ID"] == segment_id
        assert header[f"Segment{n}_Layer"] == str(layer)
        assert header[f"Segment{n}_LabelValue"] == str(label)
        assert header[f"Segment{n}_Extent"] == f"{x[0]} {x[1]} {y[0]} {y[1]} {z[0]} {z[1]}"
        assert header[f"Segment{n}_NameAutoGenerated"] == header[f"Segment{n}_ColorAutoGenerated"] == "0"
    assert header["Segment0_Name"] == "liver"
    assert header["Segment0_Color"] == "0.86 0.55 0.47"
    assert header["Segment0_Tags"] == (
        f"TerminologyEntry:{TERMINOLOGY_CONTEXT}~SCT^123037004^Anatomical Structure~SCT^10200004^Liver~^^"
        f"~{ANATOMIC_CONTEXT}~^^~^^|LuPRRT.Role:liver|")
    assert header["Segment1_Tags"] == (
        f"TerminologyEntry:{TERMINOLOGY_CONTEXT}~SCT^123037004^Anatomical Structure"
        f"~SCT^10200004^Liver~SCT^24028007^Right~{ANATOMIC_CONTEXT}~^^~^^"
        "|LuPRRT.Role:lobe|LuPRRT.Side:right|LuPRRT.Route:IA|")
    assert header["Segment3_Tags"] == (
        f"TerminologyEntry:{TERMINOLOGY_CONTEXT}~SCT^49755003^Morphologically Altered Structure"
        f"~SCT^52988006^Lesion~^^~{ANATOMIC_CONTEXT}~SCT^10200004^Liver~SCT^24028007^Right"
        "|LuPRRT.Role:lesion|LuPRRT.Side:right|LuPRRT.Route:IA|LuPRRT.LesionId:L01|")
    assert header["Segment7_Tags"] == (
        f"TerminologyEntry:{TERMINOLOGY_CONTEXT}~SCT^91720002^Body Substance~SCT^87612001^Blood~^^"
        f"~{ANATOMIC_CONTEXT}~^^~^^|LuPRRT.Role:blood|")
    assert "Segment8_ID" not in header


def test_one_layer_is_a_3d_file_and_many_labels_a_16_bit_one(tmp_path):
    single = Segmentation.empty_like(grid())
    single.add_segment(box((1, 12), (1, 9), (1, 7)), SegmentTags("liver"))
    header = nrrd.read_header(str(write_seg_nrrd(single, tmp_path / "liver.seg.nrrd")))
    assert (header["dimension"], header["kinds"]) == (3, ["domain", "domain", "domain"])
    np.testing.assert_allclose(header["space directions"], rotation().T * np.asarray(SPACING_MM)[:, None],
                               rtol=0, atol=1e-14)
    back = read_seg_nrrd(tmp_path / "liver.seg.nrrd")
    assert len(back.layers) == 1
    np.testing.assert_array_equal(back.mask_array("liver"), box((1, 12), (1, 9), (1, 7)))

    # 300 single-voxel lesions side by side share one layer with label values 1..300 (> uint8).
    many = Segmentation.empty_like(grid())
    voxels = list(zip(*np.unravel_index(np.arange(300), SIZE_XYZ[::-1]), strict=True))
    for n, (z, y, x) in enumerate(voxels, start=1):
        mask = np.zeros(SIZE_XYZ[::-1], bool)
        mask[z, y, x] = True
        many.add_segment(mask, SegmentTags("lesion", lesion_id=f"L{n:03d}"))
    path = write_seg_nrrd(many, tmp_path / "many.seg.nrrd")
    assert nrrd.read(str(path))[0].dtype == np.uint16
    back = read_seg_nrrd(path)
    labels = back.layer_array(0)
    assert labels[voxels[-1]] == 300 and back.segment("lesion_L300").label_value == 300
    assert labels.max() == 300 and np.count_nonzero(labels) == 300


def test_writer_refuses_overwrite_bad_names_and_empty_segmentations(tmp_path):
    path = write_seg_nrrd(phantom(), tmp_path / "phantom.seg.nrrd")
    written = path.read_bytes()
    single = Segmentation.empty_like(grid())
    single.add_segment(box((0, 1), (0, 1), (0, 1)), SegmentTags("spleen"))
    with pytest.raises(FileExistsError, match=r"output file exists: .*phantom\.seg\.nrrd; pass overwrite=True"):
        write_seg_nrrd(single, path)
    assert path.read_bytes() == written
    write_seg_nrrd(single, path, overwrite=True)
    assert [s.segment_id for s in read_seg_nrrd(path).segments] == ["spleen"]
    with pytest.raises(ValueError, match=r"must end with \.seg\.nrrd"):
        write_seg_nrrd(single, tmp_path / "spleen.nrrd")
    with pytest.raises(ValueError, match="no segments"):
        write_seg_nrrd(Segmentation.empty_like(grid()), tmp_path / "empty.seg.nrrd")
    assert not (tmp_path / "empty.seg.nrrd").exists()


def _rewrite_header(path, **fields):
    data, header = nrrd.read(str(path), index_order="C")
    header.update(fields)
    nrrd.write(str(path), data, header, index_order="C")


def test_segments_drawn_outside_luprrt_take_their_role_from_the_terminology(tmp_path):
    single = Segmentation.empty_like(grid())
    single.add_segment(box((0, 3), (0, 3), (0, 3)), SegmentTags("kidney", side="left"))
    path = write_seg_nrrd(single, tmp_path / "drawn.seg.nrrd")
    # As Slicer writes a segment picked from its general-anatomy list: status tag, no LuPRRT tags.
    slicer_tags = ("Segmentation.Status:inprogress|TerminologyEntry:Segmentation category and type - 3D Slicer "
                   "General Anatomy list~SCT^123037004^Anatomical Structure~SCT^18639004^Left kidney~^^"
                   "~Anatomic codes - DICOM master list~^^~^^|")
    _rewrite_header(path, Segment0_Tags=slicer_tags)
    assert read_seg_nrrd(path).segment("kidney_left").tags == SegmentTags("kidney", side="left")
    _rewrite_header(path, Segment0_Tags=slicer_tags.replace("SCT^18639004^Left kidney", "SCT^78961009^Spleen"))
    assert read_seg_nrrd(path).segments[0].tags == SegmentTags("spleen")
    _rewrite_header(path, Segment0_Tags=slicer_tags.replace("SCT^18639004^Left kidney", "SCT^39607008^Lung"))
    with pytest.raises(ValueError, match=r"drawn\.seg\.nrrd: segment 'kidney_left' has no LuPRRT\.Role tag"):
        read_seg_nrrd(path)
    _rewrite_header(path, Segment0_Tags="Segmentation.Status:inprogress|")
    with pytest.raises(ValueError, match=r"has no LuPRRT\.Role tag and its terminology type is not one"):
        read_seg_nrrd(path)


def test_a_file_in_ras_space_reads_onto_the_same_lps_grid(tmp_path):
    path = write_seg_nrrd(phantom(), tmp_path / "lps.seg.nrrd")
    data, header = nrrd.read(str(path), index_order="C")
    ras = np.array([-1.0, -1.0, 1.0])  # RAS = LPS with x and y negated
    header.update({"space": "right-anterior-superior", "space origin": header["space origin"] * ras,
                   "space directions": header["space directions"] * ras})
    nrrd.write(str(tmp_path / "ras.seg.nrrd"), data, header, index_order="C")

    back = read_seg_nrrd(tmp_path / "ras.seg.nrrd")

    np.testing.assert_allclose(back.reference.GetOrigin(), ORIGIN_MM, rtol=0, atol=1e-12)
    np.testing.assert_allclose(back.reference.GetSpacing(), SPACING_MM, rtol=1e-14)
    np.testing.assert_allclose(np.reshape(back.reference.GetDirection(), (3, 3)), rotation(), rtol=0, atol=1e-14)
    for segment_id, (x, y, z, *_) in BOXES.items():
        np.testing.assert_array_equal(back.mask_array(segment_id), box(x, y, z))


def test_segments_without_an_id_or_after_a_gap_are_kept_and_unreadable_files_named(tmp_path):
    two = Segmentation.empty_like(grid())
    two.add_segment(box((0, 3), (0, 3), (0, 3)), SegmentTags("spleen"))
    two.add_segment(box((5, 6), (5, 6), (5, 6)), SegmentTags("blood"))
    path = write_seg_nrrd(two, tmp_path / "edited.seg.nrrd")
    data, header = nrrd.read(str(path), index_order="C")
    del header["Segment0_ID"]
    for key in [key for key in header if key.startswith("Segment1_")]:  # numbering 0, 3 (a gap)
        header[key.replace("Segment1_", "Segment3_")] = header.pop(key)
    nrrd.write(str(path), data, header, index_order="C")
    spleen, blood = read_seg_nrrd(path).segments
    assert (spleen.segment_id, spleen.name, spleen.tags) == ("Segment_1", "spleen", SegmentTags("spleen"))
    assert (blood.segment_id, blood.tags, blood.label_value) == ("blood", SegmentTags("blood"), 2)

    with pytest.raises(FileNotFoundError, match=r"segmentation file not found: .*absent\.seg\.nrrd"):
        read_seg_nrrd(tmp_path / "absent.seg.nrrd")
    (tmp_path / "text.seg.nrrd").write_text("liver 1\nkidney 2\n")
    with pytest.raises(ValueError, match=r"text\.seg\.nrrd: not a NRRD segmentation file"):
        read_seg_nrrd(tmp_path / "text.seg.nrrd")
