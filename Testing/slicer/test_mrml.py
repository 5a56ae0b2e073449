"""luprrt.mrml on real MRML (headless Slicer host): volumes, segmentations, tables, plots, markups."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.segments import Segmentation, SegmentTags

SPHERE_RADIUS_MM = 20.0
SPHERE_ML = 4.0 / 3.0 * np.pi * SPHERE_RADIUS_MM**3 / 1000.0  # 33.51 mL


def _rotation(about_z_rad: float, about_x_rad: float) -> np.ndarray:
    cz, sz, cx, sx = np.cos(about_z_rad), np.sin(about_z_rad), np.cos(about_x_rad), np.sin(about_x_rad)
    return np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]) @ np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])


def _oblique_image(values: np.ndarray) -> sitk.Image:
    """Anisotropic, non-axis-aligned image (rotated 23 deg about z, 11 deg about x)."""
    image = sitk.GetImageFromArray(values)
    image.SetOrigin((12.5, -30.25, 101.125))
    image.SetSpacing((0.78125, 1.25, 3.3))
    image.SetDirection(tuple(_rotation(np.radians(23.0), np.radians(11.0)).ravel()))
    return image


def _segmentation(reference: sitk.Image) -> Segmentation:
    """Right/left lobe halves in layer 0 and two lesions inside them (overlapping: layer 1)."""
    z, y, x = np.indices(reference.GetSize()[::-1])
    segmentation = Segmentation.empty_like(reference)
    right = x < reference.GetSize()[0] // 2
    segmentation.add_segment(right, SegmentTags("lobe", side="right", route="IA"))
    segmentation.add_segment(~right, SegmentTags("lobe", side="left", route="IV"))
    segmentation.add_segment((x - 5) ** 2 + (y - 8) ** 2 + (z - 6) ** 2 <= 9,
                             SegmentTags("lesion", side="right", route="IA", lesion_id="L01"))
    segmentation.add_segment((x - 15) ** 2 + (y - 8) ** 2 + (z - 6) ** 2 <= 4,
                             SegmentTags("lesion", side="left", route="IV", lesion_id="L02"),
                             name="left lesion")
    return segmentation


def _assert_same_segmentation(actual: Segmentation, expected: Segmentation) -> None:
    assert [s.segment_id for s in actual.segments] == [s.segment_id for s in expected.segments]
    for got, want in zip(actual.segments, expected.segments, strict=True):
        assert (got.name, got.tags) == (want.name, want.tags)
        assert (got.layer, got.label_value) == (want.layer, want.label_value)
        np.testing.assert_allclose(got.color, want.color, atol=1e-6)
        np.testing.assert_array_equal(actual.mask_array(got.segment_id), expected.mask_array(want.segment_id))
    assert len(actual.layers) == len(expected.layers)
    for got, want in zip(actual.layers, expected.layers, strict=True):
        assert got.GetSize() == want.GetSize()
        np.testing.assert_allclose(got.GetOrigin(), want.GetOrigin(), atol=1e-9)
        np.testing.assert_allclose(got.GetSpacing(), want.GetSpacing(), atol=1e-12)
        np.testing.assert_allclose(got.GetDirection(), want.GetDirection(), atol=1e-12)


def _data_node_ids(scene) -> set[str]:
    """IDs of the scene's nodes except those MRML creates on demand (singletons, subject hierarchy)."""
    nodes = (scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes()))
    return {node.GetID() for node in nodes
            if not node.GetSingletonTag() and not node.IsA("vtkMRMLSubjectHierarchyNode")}


# -- volumes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_volume_round_trip_keeps_values_and_oblique_geometry_exactly(host, dtype):
    from luprrt import mrml

    values = (np.random.default_rng(1).normal(size=(7, 9, 11)) * 1000).astype(dtype)
    image = _oblique_image(values)
    node = mrml.volume_node_from_image(image, "spect", units="Bq/mL")
    back = mrml.image_from_volume_node(node)

    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), values)
    assert sitk.GetArrayFromImage(back).dtype == dtype
    assert back.GetOrigin() == image.GetOrigin()
    assert back.GetSpacing() == image.GetSpacing()
    assert back.GetDirection() == image.GetDirection()
    assert back.GetMetaData("luprrt_units") == "Bq/mL"
    assert not image.HasMetaDataKey("luprrt_units")  # the input image is untouched


def test_volume_node_places_voxels_in_ras(host):
    import slicer
    import vtk

    from luprrt import mrml

    image = _oblique_image(np.zeros((4, 5, 6), np.float32))
    node = mrml.volume_node_from_image(image, "ct", units="HU")
    ijk_to_ras = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(ijk_to_ras)
    matrix = slicer.util.arrayFromVTKMatrix(ijk_to_ras)
    for index in [(0, 0, 0), (5, 4, 3), (2, 1, 3)]:
        ras = matrix @ np.array([*index, 1.0])
        lps = np.array(image.TransformIndexToPhysicalPoint(index))
        np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-9)
    units = node.GetVoxelValueUnits()
    assert (units.GetCodingSchemeDesignator(), units.GetCodeValue()) == ("UCUM", "[hnsf'U]")
    assert node.GetVoxelValueQuantity().GetCodeMeaning() == "Attenuation Coefficient"
    assert mrml.voxel_units(node) == "HU"


def test_volume_under_linear_transform_is_read_where_slicer_shows_it(host):
    import slicer

    from luprrt import mrml

    image = _oblique_image(np.ones((3, 4, 5), np.float32))
    node = mrml.volume_node_from_image(image, "pet")
    transform = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    shift_ras = np.eye(4)
    shift_ras[:3, 3] = [10.0, -4.0, 2.5]
    transform.SetMatrixTransformToParent(slicer.util.vtkMatrixFromArray(shift_ras))
    node.SetAndObserveTransformNodeID(transform.GetID())

    moved = mrml.image_from_volume_node(node)
    np.testing.assert_allclose(np.array(moved.GetOrigin()) - image.GetOrigin(), [-10.0, 4.0, 2.5], atol=1e-9)
    np.testing.assert_allclose(moved.GetSpacing(), image.GetSpacing(), atol=1e-12)
    np.testing.assert_allclose(moved.GetDirection(), image.GetDirection(), atol=1e-12)


def test_volume_errors_name_the_problem(host):
    import slicer

    from luprrt import mrml

    with pytest.raises(ValueError, match="'flat' must be a 3D scalar image, got 2D"):
        mrml.volume_node_from_image(sitk.Image(4, 4, sitk.sitkFloat32), "flat")
    with pytest.raises(ValueError, match="needs a SimpleITK image, got ndarray"):
        mrml.volume_node_from_image(np.zeros((2, 2, 2)), "array")
    with pytest.raises(ValueError, match="expected a scalar volume node, got vtkMRMLSegmentationNode"):
        mrml.image_from_volume_node(slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode"))
    with pytest.raises(ValueError, match="volume 'empty' has no voxels"):
        mrml.image_from_volume_node(slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty"))


def test_update_volume_node_keeps_the_node_and_takes_values_geometry_and_units(host):
    import slicer

    from luprrt import mrml

    first = sitk.GetImageFromArray(np.full((4, 5, 6), 7.0, dtype=np.float32))
    node = mrml.volume_node_from_image(first, "dose", units="Gy")
    display_id = node.GetDisplayNodeID()
    before = _data_node_ids(node.GetScene())

    values = np.random.default_rng(3).normal(size=(7, 9, 11)).astype(np.float32)
    image = _oblique_image(values)
    assert mrml.update_volume_node_from_image(node, image, units="Bq/mL") is node
    assert _data_node_ids(node.GetScene()) == before
    assert node.GetDisplayNodeID() == display_id
    back = mrml.image_from_volume_node(node)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), values)
    assert (back.GetOrigin(), back.GetSpacing(), back.GetDirection()) == (
        image.GetOrigin(), image.GetSpacing(), image.GetDirection())
    assert mrml.voxel_units(node) == "Bq/mL"
    assert node.GetVoxelValueQuantity() is None  # "Absorbed Dose" of the Gy content is gone

    mrml.update_volume_node_from_image(node, first)  # no units given: the stale ones go
    assert mrml.voxel_units(node) is None
    np.testing.assert_array_equal(slicer.util.arrayFromVolume(node), 7.0)

    transform = node.GetScene().AddNewNodeByClass("vtkMRMLLinearTransformNode", "shift")
    node.SetAndObserveTransformNodeID(transform.GetID())
    with pytest.raises(ValueError, match="output volume 'dose' is under the transform 'shift'"):
        mrml.update_volume_node_from_image(node, first)
    table = mrml.table_node_from_rows({"a": [1.0]}, "t")
    with pytest.raises(ValueError, match="expected a scalar volume node to fill, got vtkMRMLTableNode"):
        mrml.update_volume_node_from_image(table, first)


# -- segmentations -----------------------------------------------------------------------------------
def test_segmentation_round_trip_keeps_overlaps_tags_and_geometry(host):
    from luprrt import mrml

    reference = _oblique_image(np.zeros((12, 16, 20), np.uint8))
    segmentation = _segmentation(reference)
    before = segmentation.copy()
    node = mrml.segmentation_node_from_segmentation(segmentation, "lobes and lesions")

    assert node.GetSegmentation().GetNumberOfSegments() == 4
    assert node.GetSegmentation().GetNumberOfLayers() == 2  # lesions overlap the lobes
    back = mrml.segmentation_from_segmentation_node(node)
    _assert_same_segmentation(back, segmentation)
    _assert_same_segmentation(segmentation, before)  # input not modified

    import vtk

    lesion = node.GetSegmentation().GetSegment("lesion_right_L01")
    value = vtk.reference("")
    assert lesion.GetTag("LuPRRT.LesionId", value) and str(value) == "L01"
    assert "SCT^52988006^Lesion" in lesion.GetTerminology()


def test_segment_without_role_tag_gets_role_from_terminology_or_a_clear_error(host):
    import slicer

    from luprrt import mrml

    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "drawn in Slicer")
    reference = mrml.volume_node_from_image(sitk.Image(8, 8, 8, sitk.sitkFloat32), "grid")
    node.SetReferenceImageGeometryParameterFromVolumeNode(reference)
    segmentation = node.GetSegmentation()
    segmentation.AddEmptySegment("kidney_a", "kidney")
    segmentation.GetSegment("kidney_a").SetTerminology(
        "Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure"
        "~SCT^64033007^Kidney~^^~Anatomic codes - DICOM master list~^^~^^")
    mask = np.zeros((8, 8, 8), np.uint8)
    mask[2:5, 2:5, 2:5] = 1
    slicer.util.updateSegmentBinaryLabelmapFromArray(mask, node, "kidney_a", reference)

    back = mrml.segmentation_from_segmentation_node(node)
    assert back.segment("kidney_a").tags == SegmentTags("kidney")
    assert int(back.mask_array("kidney_a").sum()) == 27

    segmentation.AddEmptySegment("blob", "blob")
    with pytest.raises(ValueError, match=r"segment 'blob' has no LuPRRT\.Role tag"):
        mrml.segmentation_from_segmentation_node(node)


def test_labelmap_on_grid_resamples_a_33_5_ml_sphere_to_the_spect_grid(host):
    import slicer

    from luprrt import mrml

    # CT grid: 1 mm voxels, 64^3, sphere of radius 20 mm (33.51 mL) at the centre.
    ct = sitk.Image([64, 64, 64], sitk.sitkUInt8)
    ct.SetOrigin((-31.5, -31.5, -31.5))
    z, y, x = np.indices((64, 64, 64)) - 31.5
    fine = x**2 + y**2 + z**2 <= SPHERE_RADIUS_MM**2
    sphere = Segmentation.empty_like(ct)
    sphere.add_segment(fine, SegmentTags("lesion", lesion_id="S"))
    seg_node = mrml.segmentation_node_from_segmentation(sphere, "sphere")
    seg_mtime = seg_node.GetMTime()

    # SPECT grids: 4.42 mm voxels, 18^3, at 16 seeded sub-voxel shifts.
    volumes_ml = []
    for shift in np.random.default_rng(7).random((16, 3)):
        spect = sitk.Image([18, 18, 18], sitk.sitkFloat32)
        spect.SetSpacing((4.42, 4.42, 4.42))
        spect.SetOrigin(tuple(-8.5 * 4.42 + 4.42 * shift))
        spect_node = mrml.volume_node_from_image(spect, "spect", units="Bq/mL")
        nodes_before = _data_node_ids(slicer.mrmlScene)

        labels = mrml.labelmap_on_grid(seg_node, ["lesion_S"], spect_node)

        assert _data_node_ids(slicer.mrmlScene) == nodes_before  # temporary nodes removed
        # Nearest neighbour: a SPECT voxel is in the sphere iff the CT voxel holding its centre is.
        centres = [-8.5 * 4.42 + 4.42 * s + 4.42 * np.arange(18) for s in shift]
        # CT voxel k spans [k - 32, k - 31) mm; centres outside the CT grid (index -1 or 64) read 0.
        ct_index = [np.clip(np.floor(c + 32.0).astype(int), -1, 64) + 1 for c in centres]
        expected = np.pad(fine, 1)[np.ix_(ct_index[2], ct_index[1], ct_index[0])]
        np.testing.assert_array_equal(labels, expected.astype(labels.dtype))
        volumes_ml.append(labels.sum() * 4.42**3 / 1000.0)
    # One grid misses or gains boundary voxels (~1.5 % here); over shifts the volume is unbiased.
    assert np.mean(volumes_ml) == pytest.approx(SPHERE_ML, rel=0.01)
    assert seg_node.GetMTime() == seg_mtime  # input not modified


def test_labelmap_on_grid_labels_follow_the_given_order(host):
    from luprrt import mrml

    reference = _oblique_image(np.zeros((12, 16, 20), np.uint8))
    segmentation = _segmentation(reference)
    node = mrml.segmentation_node_from_segmentation(segmentation, "s")
    grid = mrml.volume_node_from_image(sitk.Cast(reference, sitk.sitkFloat32), "grid")

    labels = mrml.labelmap_on_grid(node, ["lesion_left_L02", "lesion_right_L01"], grid)
    np.testing.assert_array_equal(labels == 1, segmentation.mask_array("lesion_left_L02"))
    np.testing.assert_array_equal(labels == 2, segmentation.mask_array("lesion_right_L01"))
    with pytest.raises(ValueError, match=r"has no segments \['liver'\]"):
        mrml.labelmap_on_grid(node, ["liver"], grid)


def test_seg_nrrd_from_segio_reads_in_slicer_and_back(host, tmp_path):
    import slicer

    from luprrt import mrml
    from luprrt.io import seg_nrrd as segio

    reference = _oblique_image(np.zeros((12, 16, 20), np.uint8))
    segmentation = _segmentation(reference)
    path = segio.write_seg_nrrd(segmentation, tmp_path / "lesions.seg.nrrd")

    node = slicer.util.loadSegmentation(str(path))  # Slicer's vtkMRMLSegmentationStorageNode
    assert node.GetSegmentation().GetNumberOfLayers() == 2
    _assert_same_segmentation(mrml.segmentation_from_segmentation_node(node), segmentation)

    written = tmp_path / "by_slicer.seg.nrrd"
    assert slicer.util.saveNode(node, str(written))
    _assert_same_segmentation(segio.read_seg_nrrd(written), segmentation)


def test_seg_nrrd_written_by_slicer_reads_with_segio(host, tmp_path):
    import slicer

    from luprrt import mrml
    from luprrt.io import seg_nrrd as segio

    reference = _oblique_image(np.zeros((10, 12, 14), np.uint8))
    segmentation = _segmentation(reference)
    node = mrml.segmentation_node_from_segmentation(segmentation, "made in Slicer")
    path = tmp_path / "slicer.seg.nrrd"
    assert slicer.util.saveNode(node, str(path))
    _assert_same_segmentation(segio.read_seg_nrrd(path), segmentation)



def test_seg_nrrd_keeps_its_grid_in_slicer_when_segments_fill_only_part_of_it(host, tmp_path):
    import slicer

    from luprrt import mrml
    from luprrt.io import seg_nrrd as segio

    # One small lesion: without the reference geometry Slicer would crop the grid to the lesion.
    reference = _oblique_image(np.zeros((12, 16, 20), np.uint8))
    z, y, x = np.indices(reference.GetSize()[::-1])
    segmentation = Segmentation.empty_like(reference)
    segmentation.add_segment((x - 5) ** 2 + (y - 8) ** 2 + (z - 6) ** 2 <= 9, SegmentTags("lesion", lesion_id="L01"))
    path = segio.write_seg_nrrd(segmentation, tmp_path / "lesion.seg.nrrd")

    node = slicer.util.loadSegmentation(str(path))

    assert node.GetSegmentation().GetConversionParameter("Reference image geometry")
    _assert_same_segmentation(mrml.segmentation_from_segmentation_node(node), segmentation)


def test_seg_nrrd_cropped_by_slicer_reads_where_slicer_drew_it(host, tmp_path):
    import slicer

    from luprrt import mrml
    from luprrt.io import seg_nrrd as segio

    # Slicer's "crop to minimum extent" save keeps only the voxels around the segments and records
    # their offset in the reference grid (Segmentation_ReferenceImageExtentOffset); the stored space
    # origin is the first kept voxel, so the cropped file must land on the same physical voxels.
    reference = _oblique_image(np.zeros((12, 16, 20), np.uint8))
    z, y, x = np.indices(reference.GetSize()[::-1])
    lesion = (x - 5) ** 2 + (y - 8) ** 2 + (z - 6) ** 2 <= 9
    segmentation = Segmentation.empty_like(reference)
    segmentation.add_segment(lesion, SegmentTags("lesion", lesion_id="L01"))
    node = mrml.segmentation_node_from_segmentation(segmentation, "drawn in Slicer")
    storage = slicer.mrmlScene.AddNode(slicer.vtkMRMLSegmentationStorageNode())
    storage.SetCropToMinimumExtent(True)
    storage.SetFileName(str(tmp_path / "cropped.seg.nrrd"))
    node.SetAndObserveStorageNodeID(storage.GetID())
    assert storage.WriteData(node)

    cropped = segio.read_seg_nrrd(tmp_path / "cropped.seg.nrrd")

    assert cropped.layers[0].GetSize() == (7, 7, 7)  # really cropped, from (20, 16, 12)
    on_reference = sitk.Resample(cropped.layers[0], reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(on_reference) > 0, lesion)


def test_seg_nrrd_with_a_16_bit_layer_reads_in_slicer(host, tmp_path):
    import slicer

    from luprrt import mrml
    from luprrt.io import seg_nrrd as segio

    # 300 single-voxel lesions side by side: one layer, label values up to 300 (uint16).
    segmentation = Segmentation.empty_like(sitk.Image([20, 15, 1], sitk.sitkUInt8))
    for n in range(300):
        mask = np.zeros((1, 15, 20), bool)
        mask.flat[n] = True
        segmentation.add_segment(mask, SegmentTags("lesion", lesion_id=f"L{n + 1:03d}"))
    path = segio.write_seg_nrrd(segmentation, tmp_path / "many.seg.nrrd")

    node = slicer.util.loadSegmentation(str(path))

    assert node.GetSegmentation().GetNumberOfLayers() == 1
    _assert_same_segmentation(mrml.segmentation_from_segmentation_node(node), segmentation)

# -- tables and plots --------------------------------------------------------------------------------
def test_table_columns_are_typed_and_carry_units(host):
    import vtk

    from luprrt import mrml

    rows = [{"lesion_id": "L01", "route": "IA", "tn": 11.5, "dose_gy": 12.25, "voxels": 140,
             "measurable": True},
            {"lesion_id": "L02", "route": "IV", "tn": 8.0, "dose_gy": None, "voxels": 12,
             "measurable": False}]
    node = mrml.table_node_from_rows(rows, "lesions", units={"tn": "1"})
    table = node.GetTable()
    kinds = {table.GetColumnName(i): table.GetColumn(i) for i in range(table.GetNumberOfColumns())}
    assert isinstance(kinds["lesion_id"], vtk.vtkStringArray)
    assert isinstance(kinds["voxels"], vtk.vtkIntArray)
    assert isinstance(kinds["dose_gy"], vtk.vtkDoubleArray)
    assert isinstance(kinds["measurable"], vtk.vtkBitArray)
    assert node.GetColumnUnitLabel("dose_gy") == "Gy"
    assert node.GetColumnUnitLabel("tn") == "1"
    assert node.GetColumnUnitLabel("route") == ""

    back = mrml.rows_from_table_node(node)
    assert back[0] == rows[0]
    assert np.isnan(back[1].pop("dose_gy"))
    assert back[1] == {k: v for k, v in rows[1].items() if k != "dose_gy"}


def test_table_from_columns_and_unit_suffixes(host):
    from luprrt import mrml

    node = mrml.table_node_from_rows({"time_h": [4.0, 24.0, 96.0], "activity_mbq": [900.0, 700.0, 250.0],
                                      "concentration_bq_per_ml": [1.0e5, 8.0e4, 3.0e4]}, "tac")
    assert [node.GetColumnUnitLabel(c) for c in ("time_h", "activity_mbq", "concentration_bq_per_ml")] == [
        "h", "MBq", "Bq/mL"]
    assert mrml.unit_from_column_name("tia_mbq_h") == "MBq h"
    assert mrml.unit_from_column_name("lesion") is None
    assert [r["time_h"] for r in mrml.rows_from_table_node(node)] == [4.0, 24.0, 96.0]


def test_table_errors_name_the_column_or_row(host):
    from luprrt import mrml

    with pytest.raises(ValueError, match=r"row 1 has columns \['a'\], row 0 has \['a', 'b'\]"):
        mrml.table_node_from_rows([{"a": 1, "b": 2}, {"a": 3}], "bad")
    with pytest.raises(ValueError, match="column 'a' mixes value types"):
        mrml.table_node_from_rows({"a": [1.0, "x"]}, "bad")
    with pytest.raises(ValueError, match="columns differ in length"):
        mrml.table_node_from_rows({"a": [1.0], "b": [1.0, 2.0]}, "bad")


def test_update_table_node_replaces_columns_and_units_in_place(host):
    from luprrt import mrml

    node = mrml.table_node_from_rows({"dose_gy": [1.0, 2.0], "region": ["L1", "L2"]}, "doses")
    node.SetAttribute("keep", "yes")
    before = _data_node_ids(node.GetScene())
    rows = [{"time_h": 4.0, "activity_mbq": 90.0, "count": 3}]
    assert mrml.update_table_node_from_rows(node, rows, units={"count": "1"}) is node
    assert _data_node_ids(node.GetScene()) == before
    assert (node.GetName(), node.GetAttribute("keep")) == ("doses", "yes")
    assert mrml.rows_from_table_node(node) == rows
    assert [node.GetColumnUnitLabel(c) for c in ("time_h", "activity_mbq", "count")] == ["h", "MBq", "1"]
    assert node.GetColumnUnitLabel("dose_gy") == ""  # old columns and their properties are gone

    mrml.update_table_node_from_rows(node, {"dose_gy": []})
    assert node.GetNumberOfRows() == 0
    assert node.GetColumnUnitLabel("dose_gy") == "Gy"
    with pytest.raises(ValueError, match="row 1 has columns"):
        mrml.update_table_node_from_rows(node, [{"a": 1, "b": 2}, {"a": 3}])
    assert [node.GetTable().GetColumnName(i) for i in range(node.GetNumberOfColumns())] == ["dose_gy"]


def test_plot_chart_has_one_series_per_column_or_group(host):
    import slicer

    from luprrt import mrml

    samples = ((4.0, 10.0, 0.1), (24.0, 8.0, 1.0), (96.0, 3.0, 2.0))
    rows = [{"lesion_id": lesion, "time_h": t, "activity_mbq": a, "dose_gy": d}
            for lesion in ("L01", "L02", "L03") for t, a, d in samples]
    table = mrml.table_node_from_rows(rows, "tac")

    chart = mrml.plot_chart(table, "time_h", ["activity_mbq", "dose_gy"], "both")
    assert chart.GetNumberOfPlotSeriesNodes() == 2
    series = chart.GetNthPlotSeriesNode(1)
    assert (series.GetXColumnName(), series.GetYColumnName()) == ("time_h", "dose_gy")
    assert chart.GetXAxisTitle() == "time_h [h]"

    grouped = mrml.plot_chart(table, "time_h", "activity_mbq", "per lesion", group_column="lesion_id",
                              plot_type="line")
    assert grouped.GetNumberOfPlotSeriesNodes() == 3
    assert [grouped.GetNthPlotSeriesNode(i).GetName() for i in range(3)] == ["L01", "L02", "L03"]
    first = grouped.GetNthPlotSeriesNode(0)
    assert first.GetPlotType() == slicer.vtkMRMLPlotSeriesNode.PlotTypeLine
    assert [r["activity_mbq"] for r in mrml.rows_from_table_node(first.GetTableNode())] == [10.0, 8.0, 3.0]
    assert len(mrml.rows_from_table_node(table)) == 9  # source table unchanged

    with pytest.raises(ValueError, match=r"lacks columns \['dose_mgy'\]"):
        mrml.plot_chart(table, "time_h", ["dose_mgy"], "bad")


def test_plot_chart_refill_replaces_series_and_leaves_nothing_behind(host):
    from luprrt import mrml

    def counts(scene):
        return {c: scene.GetNumberOfNodesByClass(c) for c in ("vtkMRMLTableNode", "vtkMRMLPlotSeriesNode",
                                                               "vtkMRMLPlotChartNode")}

    rows = [{"lesion_id": lesion, "time_h": t, "activity_mbq": a * scale}
            for lesion, scale in (("L01", 1.0), ("L02", 2.0)) for t, a in ((4.0, 10.0), (24.0, 8.0))]
    table = mrml.table_node_from_rows(rows, "tac")
    chart = mrml.plot_chart(table, "time_h", "activity_mbq", "first", group_column="lesion_id")
    scene = chart.GetScene()
    kept = scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", "added by the user")
    chart.AddAndObservePlotSeriesNodeID(kept.GetID())
    before = counts(scene)
    assert before == {"vtkMRMLTableNode": 3, "vtkMRMLPlotSeriesNode": 3, "vtkMRMLPlotChartNode": 1}

    mrml.update_table_node_from_rows(table, [r | {"activity_mbq": 3 * r["activity_mbq"]} for r in rows]
                                     + [{"lesion_id": "L03", "time_h": 4.0, "activity_mbq": 1.0}])
    again = mrml.plot_chart(table, "time_h", "activity_mbq", "second", group_column="lesion_id",
                            chart_node=chart)
    assert again is chart and chart.GetName() == "first" and chart.GetTitle() == "second"
    names = [chart.GetNthPlotSeriesNode(i).GetName() for i in range(chart.GetNumberOfPlotSeriesNodes())]
    assert names == ["L01", "L02", "L03"]
    # One more group (L03): one more series and group table; the user's series is detached, not deleted.
    assert counts(scene) == {"vtkMRMLTableNode": 4, "vtkMRMLPlotSeriesNode": 4, "vtkMRMLPlotChartNode": 1}
    assert scene.GetNodeByID(kept.GetID()) is kept
    second = chart.GetNthPlotSeriesNode(1).GetTableNode()
    assert [r["activity_mbq"] for r in mrml.rows_from_table_node(second)] == [60.0, 48.0]
    assert scene.GetNodeByID(table.GetID()) is table  # the source table is never removed

    plain = mrml.plot_chart(table, "time_h", "activity_mbq", "plain", chart_node=chart)
    assert plain.GetNumberOfPlotSeriesNodes() == 1
    assert counts(scene) == {"vtkMRMLTableNode": 1, "vtkMRMLPlotSeriesNode": 2, "vtkMRMLPlotChartNode": 1}
    with pytest.raises(ValueError, match="expected a plot chart node to refill, got vtkMRMLTableNode"):
        mrml.plot_chart(table, "time_h", "activity_mbq", "bad", chart_node=table)


# -- markups -----------------------------------------------------------------------------------------
def test_markups_line_and_fiducials_use_lps_mm(host):
    import slicer

    from luprrt import mrml

    line = mrml.markups_line((10.0, -20.0, 30.0), (13.0, -16.0, 30.0), "longest diameter")
    ras = [0.0, 0.0, 0.0]
    line.GetNthControlPointPosition(0, ras)
    assert ras == [-10.0, 20.0, 30.0]
    assert line.GetLineLengthWorld() == pytest.approx(5.0)
    np.testing.assert_allclose(mrml.points_from_fiducials(line), [[10.0, -20.0, 30.0], [13.0, -16.0, 30.0]])

    fiducials = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode")
    assert mrml.points_from_fiducials(fiducials).shape == (0, 3)
    with pytest.raises(ValueError, match="finite 3D point"):
        mrml.markups_line((0.0, 0.0), (1.0, 1.0, 1.0), "bad")


def test_markups_plane_gives_point_and_unit_normal_in_lps(host):
    import slicer

    from luprrt import mrml

    plane = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsPlaneNode", "Cantlie")
    plane.SetOriginWorld([5.0, 6.0, 7.0])  # RAS
    plane.SetNormalWorld([0.0, 3.0, 4.0])
    point, normal = mrml.markups_plane_to_point_normal(plane)
    np.testing.assert_allclose(point, [-5.0, -6.0, 7.0], atol=1e-9)
    np.testing.assert_allclose(normal, [0.0, -0.6, 0.8], atol=1e-9)

    empty = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsPlaneNode", "unplaced")
    with pytest.raises(ValueError, match="plane 'unplaced' is not fully placed"):
        mrml.markups_plane_to_point_normal(empty)
