"""DICOM round trips: write with luprrt.io.dicom_write (or pydicom), read back with luprrt.io.dicom.

The phantom is small (24 x 20 x 16 voxels), anisotropic (4.42 x 4.80 x 3.90 mm), has an
origin off every axis and a linear gradient with a different slope along x, y and z, so a
swapped or flipped axis changes the values; geometry is checked to 0.01 mm and values to
0.1 %.
"""

from __future__ import annotations

import os
import random
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from luprrt.io import read_ct_series, read_image, read_nm_spect, read_pet_series, write_volume
from luprrt.io.dicom_write import (
    COUNTS_TRAP_CALIBRATION_CPS_PER_MBQ,
    DicomPatient,
    new_uid,
    write_ct_series,
    write_nm_spect,
    write_pet_series,
)

ACQUISITION = datetime(2024, 3, 5, 10, 30, 15)
INJECTION = datetime(2024, 3, 4, 9, 0, 0)
HOURS_POST_INJECTION = 25.0 + 30.0 / 60.0 + 15.0 / 3600.0
ACTIVITY_MBQ = 7400.0
PATIENT = DicomPatient(patient_id="LUPRRT-T01", weight_kg=68.5)
SIZE_XYZ = (24, 20, 16)
SPACING_MM = (4.42, 4.80, 3.90)
ORIGIN_MM = (-53.17, -41.9, 87.3)
GEOMETRY_TOL_MM = 0.01
VALUE_TOL_REL = 1e-3


def gradient_image(base: float, slopes_xyz: tuple[float, float, float], spacing=SPACING_MM,
                   direction: tuple | None = None) -> sitk.Image:
    """Linear gradient base + sx*i + sy*j + sz*k on the phantom grid (float32)."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in SIZE_XYZ[::-1]), indexing="ij")
    values = base + slopes_xyz[0] * i + slopes_xyz[1] * j + slopes_xyz[2] * k
    image = sitk.GetImageFromArray(values.astype(np.float32))
    image.SetSpacing(spacing)
    image.SetOrigin(ORIGIN_MM)
    if direction is not None:
        image.SetDirection(direction)
    return image


def oblique_direction() -> tuple[float, ...]:
    """A proper rotation (right-handed) about a skew axis, 0.3 rad."""
    return sitk.VersorTransform((0.2, 0.1, 0.97), 0.3).GetMatrix()


def spect_truth(direction=None) -> sitk.Image:
    return gradient_image(1000.0, (10.0, 100.0, 1000.0), direction=direction)


def write_spect(path, image, trap=None):
    return write_nm_spect(image, path, patient=PATIENT, study_uid=new_uid(), frame_of_reference_uid=new_uid(),
                          acquisition_datetime=ACQUISITION, injection_datetime=INJECTION,
                          injected_activity_mbq=ACTIVITY_MBQ, trap=trap)


def assert_same_geometry(read: sitk.Image, truth: sitk.Image) -> None:
    assert read.GetSize() == truth.GetSize()
    np.testing.assert_allclose(read.GetOrigin(), truth.GetOrigin(), atol=GEOMETRY_TOL_MM)
    np.testing.assert_allclose(read.GetSpacing(), truth.GetSpacing(), atol=GEOMETRY_TOL_MM)
    np.testing.assert_allclose(read.GetDirection(), truth.GetDirection(), atol=1e-6)


def assert_same_values(read: sitk.Image, truth: sitk.Image, rel: float = VALUE_TOL_REL) -> None:
    assert read.GetPixelID() == sitk.sitkFloat32
    np.testing.assert_allclose(sitk.GetArrayFromImage(read), sitk.GetArrayFromImage(truth), rtol=rel)


def edit_dicom(path, mutate) -> None:
    ds = pydicom.dcmread(path)
    mutate(ds)
    ds.save_as(path)


# What each trap must have put into the file (so a round trip cannot pass on a standard file).
def _top_geometry_absent(ds):
    return ("ImagePositionPatient" not in ds and "PixelSpacing" not in ds
            and "PixelSpacing" in ds.DetectorInformationSequence[0])


def _frames_against_normal(ds):
    z_first = float(ds.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0].ImagePositionPatient[2])
    z_last = float(ds.PerFrameFunctionalGroupsSequence[-1].PlanePositionSequence[0].ImagePositionPatient[2])
    return float(ds.SpacingBetweenSlices) > 0 and z_first > z_last


TRAP_SIGNATURES = {
    None: lambda ds: ds.Units == "BQML" and float(ds.SpacingBetweenSlices) > 0,
    "geometry_only_in_detector_sequence": _top_geometry_absent,
    "negative_spacing": lambda ds: float(ds.SpacingBetweenSlices) < 0,
    "head_to_feet_positive_spacing": _frames_against_normal,
    "missing_spacing": lambda ds: "SpacingBetweenSlices" not in ds and float(ds.SliceThickness) > 0,
    "rwv_only": lambda ds: "RescaleSlope" not in ds and "Units" not in ds
    and ds.RealWorldValueMappingSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "Bq/ml",
    "counts": lambda ds: ds.Units == "CNTS",
    # Frames carry their own slopes (the z gradient gives every frame another maximum); the top level says 1.
    "per_frame_rescale": lambda ds: float(ds.RescaleSlope) == 1.0 and len(
        {float(g.PixelValueTransformationSequence[0].RescaleSlope) for g in ds.PerFrameFunctionalGroupsSequence})
    == int(ds.NumberOfFrames),
}


# --- NM SPECT ------------------------------------------------------------------------------------

@pytest.mark.parametrize("oblique", [False, True], ids=["axial", "oblique"])
@pytest.mark.parametrize("trap", list(TRAP_SIGNATURES), ids=lambda t: t or "standard")
def test_nm_round_trip_recovers_geometry_and_bq_per_ml(tmp_path, trap, oblique):
    truth = spect_truth(oblique_direction() if oblique else None)
    path = write_spect(tmp_path / "spect.dcm", truth, trap)
    assert TRAP_SIGNATURES[trap](pydicom.dcmread(path))
    calibration = COUNTS_TRAP_CALIBRATION_CPS_PER_MBQ if trap == "counts" else None
    result = read_nm_spect(path, calibration_cps_per_mbq=calibration)
    assert result.units == "Bq/mL"
    assert_same_geometry(result.image, truth)
    assert_same_values(result.image, truth)
    assert result.hours_post_injection == pytest.approx(HOURS_POST_INJECTION, abs=1e-9)
    assert result.injected_activity_mbq == pytest.approx(ACTIVITY_MBQ, rel=1e-12)
    assert result.acquisition_datetime == ACQUISITION and result.injection_datetime == INJECTION
    assert result.series_uid == pydicom.dcmread(path).SeriesInstanceUID


def test_nm_read_from_folder_with_ct_alongside(tmp_path):
    truth = spect_truth()
    write_spect(tmp_path / "nm" / "spect.dcm", truth)
    write_ct_series(gradient_image(-500, (1, 2, 3)), tmp_path / "ct", patient=PATIENT, study_uid=new_uid(),
                    frame_of_reference_uid=new_uid(), acquisition_datetime=ACQUISITION)
    result = read_nm_spect(tmp_path)
    assert_same_values(result.image, truth)


def test_nm_standard_file_agrees_with_gdcm(tmp_path):
    """SimpleITK's GDCM reader (what Slicer uses for NM) sees the same geometry and values."""
    truth = spect_truth(oblique_direction())
    path = write_spect(tmp_path / "spect.dcm", truth)
    gdcm = sitk.ReadImage(str(path))
    ours = read_nm_spect(path).image
    assert_same_geometry(gdcm, ours)
    np.testing.assert_allclose(sitk.GetArrayFromImage(gdcm), sitk.GetArrayFromImage(ours), rtol=1e-6)


def _split_into_slice_files(nm_file, folder, truth: sitk.Image) -> list:
    """One single-frame NM file per slice, each with its own position and rescale slope, names reversed."""
    whole = pydicom.dcmread(nm_file)
    frames = whole.pixel_array
    folder.mkdir()
    paths = []
    for k in range(frames.shape[0]):
        ds = pydicom.dcmread(nm_file)
        for keyword in ("PerFrameFunctionalGroupsSequence", "SliceVector", "DetectorInformationSequence"):
            if keyword in ds:
                delattr(ds, keyword)
        ds.NumberOfFrames = 1
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = new_uid()
        ds.ImagePositionPatient = [f"{v:.4f}" for v in truth.TransformIndexToPhysicalPoint((0, 0, k))]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in np.asarray(truth.GetDirection()).reshape(3, 3)[:, :2].T.ravel()]
        ds.PixelSpacing = [f"{truth.GetSpacing()[1]:.4f}", f"{truth.GetSpacing()[0]:.4f}"]
        # Halve the stored values of every other slice and double its slope: only a per-file slope reads it right.
        halve = k % 2 == 1
        ds.PixelData = (frames[k] // 2 if halve else frames[k]).astype(frames.dtype).tobytes()
        ds.RescaleSlope = f"{float(whole.get('RescaleSlope', 1.0)) * (2.0 if halve else 1.0):.10g}"
        path = folder / f"slice_{frames.shape[0] - k:03d}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def test_nm_single_frame_file_per_slice_reads_as_one_volume(tmp_path):
    truth = spect_truth(direction=oblique_direction())
    nm_file = write_spect(tmp_path / "spect.dcm", truth)
    assert "RescaleSlope" in pydicom.dcmread(nm_file, stop_before_pixels=True)
    _split_into_slice_files(nm_file, tmp_path / "slices", truth)

    result = read_nm_spect(tmp_path / "slices")

    assert_same_geometry(result.image, truth)
    assert_same_values(result.image, truth, rel=2e-3)  # halved slices lose one bit of 16
    assert result.hours_post_injection == pytest.approx(HOURS_POST_INJECTION)
    assert result.injected_activity_mbq == pytest.approx(ACTIVITY_MBQ)


def test_nm_series_of_several_multi_frame_files_is_refused(tmp_path):
    nm_file = write_spect(tmp_path / "series" / "a.dcm", spect_truth())
    second = pydicom.dcmread(nm_file)
    second.SOPInstanceUID = second.file_meta.MediaStorageSOPInstanceUID = new_uid()
    second.save_as(tmp_path / "series" / "b.dcm")
    with pytest.raises(ValueError, match=r"has 2 multi-frame files; a reconstructed SPECT is one multi-frame NM "
                                         r"file or one single-frame file per slice"):
        read_nm_spect(tmp_path / "series")


def test_nm_missing_spacing_and_head_to_feet_are_reported(tmp_path):
    truth = spect_truth()
    missing = read_nm_spect(write_spect(tmp_path / "a.dcm", truth, "missing_spacing"))
    assert any("SliceThickness (0018,0050) = 3.9 mm" in w for w in missing.warnings)
    reversed_frames = read_nm_spect(write_spect(tmp_path / "b.dcm", truth, "head_to_feet_positive_spacing"))
    assert any("against the slice normal" in w and "per-frame positions" in w
               for w in reversed_frames.warnings)
    assert read_nm_spect(write_spect(tmp_path / "c.dcm", truth)).warnings == []


def test_nm_head_to_feet_without_per_frame_positions_reads_flipped_as_documented(tmp_path):
    """Rule 3: with no per-frame positions a positive spacing is trusted, so such a file reads flipped."""
    truth = spect_truth()
    path = write_spect(tmp_path / "spect.dcm", truth, "head_to_feet_positive_spacing")
    edit_dicom(path, lambda ds: delattr(ds, "PerFrameFunctionalGroupsSequence"))
    result = read_nm_spect(path)
    truth_array = sitk.GetArrayFromImage(truth)
    np.testing.assert_allclose(sitk.GetArrayFromImage(result.image), truth_array[::-1], rtol=VALUE_TOL_REL)
    top_slice_z = ORIGIN_MM[2] + (SIZE_XYZ[2] - 1) * SPACING_MM[2]
    assert result.image.GetOrigin()[2] == pytest.approx(top_slice_z, abs=GEOMETRY_TOL_MM)


def test_nm_slice_vector_orders_frames(tmp_path):
    truth = spect_truth()
    path = write_spect(tmp_path / "spect.dcm", truth)
    permutation = np.random.default_rng(7).permutation(SIZE_XYZ[2])

    def shuffle_frames(ds):
        frames = ds.pixel_array
        ds.PixelData = np.ascontiguousarray(frames[permutation]).astype("<u2").tobytes()
        ds.SliceVector = [int(s) + 1 for s in permutation]

    edit_dicom(path, shuffle_frames)
    assert_same_values(read_nm_spect(path).image, truth)


def test_nm_rwv_in_kbq_per_ml_is_scaled(tmp_path):
    truth = spect_truth()
    path = write_spect(tmp_path / "spect.dcm", truth, "rwv_only")

    def to_kbq(ds):
        mapping = ds.RealWorldValueMappingSequence[0]
        mapping.RealWorldValueSlope = float(mapping.RealWorldValueSlope) / 1000.0
        mapping.MeasurementUnitsCodeSequence[0].CodeValue = "kBq/ml"

    edit_dicom(path, to_kbq)
    assert_same_values(read_nm_spect(path).image, truth)


@pytest.mark.parametrize(("unit", "factor"), [("Bq/ml", 1.0), ("kBq/ml", 1e3), ("MBq/ml", 1e6)])
def test_nm_rwv_intercept_and_slope_are_both_scaled_by_the_unit(tmp_path, unit, factor):
    """value [Bq/mL] = (stored x slope + intercept) x unit factor; a non-zero intercept shows a missed factor."""
    truth = spect_truth()
    offset_bq_per_ml = 500.0  # 3 % of the largest voxel, 50 % of the smallest: far above the 0.1 % tolerance
    path = write_spect(tmp_path / "spect.dcm", truth, "rwv_only")

    def rescale(ds):
        mapping = ds.RealWorldValueMappingSequence[0]
        mapping.RealWorldValueSlope = float(mapping.RealWorldValueSlope) / factor
        mapping.RealWorldValueIntercept = (float(mapping.RealWorldValueIntercept) + offset_bq_per_ml) / factor
        mapping.MeasurementUnitsCodeSequence[0].CodeValue = unit

    edit_dicom(path, rescale)
    assert_same_values(read_nm_spect(path).image, truth + offset_bq_per_ml)


def test_nm_rwv_mapping_in_the_shared_functional_group_applies_to_every_frame(tmp_path):
    truth = spect_truth()
    path = write_spect(tmp_path / "spect.dcm", truth, "rwv_only")

    def to_shared_group(ds):
        shared = pydicom.Dataset()
        shared.RealWorldValueMappingSequence = ds.RealWorldValueMappingSequence
        ds.SharedFunctionalGroupsSequence = [shared]
        del ds.RealWorldValueMappingSequence

    edit_dicom(path, to_shared_group)
    assert_same_values(read_nm_spect(path).image, truth)


def test_nm_single_frame_and_an_unneeded_calibration_warned(tmp_path):
    """A one-slice reconstruction (2D pixel data) is read; a camera calibration given for a Bq/mL image is ignored."""
    single = spect_truth()[:, :, 5:6]
    path = write_spect(tmp_path / "spect.dcm", single)
    assert int(pydicom.dcmread(path).NumberOfFrames) == 1
    result = read_nm_spect(path, calibration_cps_per_mbq=15.0)
    assert result.image.GetSize() == (SIZE_XYZ[0], SIZE_XYZ[1], 1)
    assert_same_values(result.image, single)
    assert result.warnings == ["calibration_cps_per_mbq ignored: the image is already in Bq/mL"]


def test_nm_rwv_mapping_in_bq_per_ml_is_found_after_one_in_another_unit(tmp_path):
    """Vendors list several mappings (counts first, then Bq/ml): the Bq/ml one is used, wherever it is."""
    truth = spect_truth()
    path = write_spect(tmp_path / "spect.dcm", truth, "rwv_only")

    def counts_mapping_first(ds):
        counts = pydicom.Dataset()
        counts.RealWorldValueSlope, counts.RealWorldValueIntercept = 1.0, 0.0
        unit = pydicom.Dataset()
        unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "{counts}", "UCUM", "counts"
        counts.MeasurementUnitsCodeSequence = [unit]
        ds.RealWorldValueMappingSequence = [counts, *ds.RealWorldValueMappingSequence]

    edit_dicom(path, counts_mapping_first)
    assert_same_values(read_nm_spect(path).image, truth)


def test_nm_per_frame_rwv_mapping_is_applied_per_frame(tmp_path):
    truth = spect_truth()
    path = write_spect(tmp_path / "spect.dcm", truth, "per_frame_rescale")

    def to_rwv(ds):
        for group in ds.PerFrameFunctionalGroupsSequence:
            transformation = group.PixelValueTransformationSequence[0]
            mapping = pydicom.Dataset()
            mapping.RealWorldValueSlope = float(transformation.RescaleSlope) / 1e3
            mapping.RealWorldValueIntercept = float(transformation.RescaleIntercept) / 1e3
            unit = pydicom.Dataset()
            unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "kBq/ml", "UCUM", "kBq/ml"
            mapping.MeasurementUnitsCodeSequence = [unit]
            group.RealWorldValueMappingSequence = [mapping]
            del group.PixelValueTransformationSequence
        del ds.Units

    edit_dicom(path, to_rwv)
    assert_same_values(read_nm_spect(path).image, truth)


def test_nm_without_slice_vector_takes_the_frames_in_file_order(tmp_path):
    truth = spect_truth()
    path = write_spect(tmp_path / "spect.dcm", truth)
    edit_dicom(path, lambda ds: delattr(ds, "SliceVector"))
    assert_same_values(read_nm_spect(path).image, truth)


def test_nm_half_life_of_another_nuclide_is_warned(tmp_path):
    """Tc-99m's 6.0067 h in RadionuclideHalfLife: the decay corrections of LuPRRT assume Lu-177 (159.528 h)."""
    path = write_spect(tmp_path / "spect.dcm", spect_truth())
    edit_dicom(path, lambda ds: setattr(ds.RadiopharmaceuticalInformationSequence[0], "RadionuclideHalfLife",
                                        "21624.12"))
    warnings = read_nm_spect(path).warnings
    assert warnings == ["RadionuclideHalfLife (0018,1075) = 21624.1 s is not Lu-177's 574301 s; LuPRRT's decay "
                        "corrections assume Lu-177"]


def test_nm_per_frame_rwv_mapping_on_some_frames_only_is_refused(tmp_path):
    path = write_spect(tmp_path / "spect.dcm", spect_truth(), "per_frame_rescale")

    def first_frame_only(ds):
        group = ds.PerFrameFunctionalGroupsSequence[0]
        mapping = pydicom.Dataset()
        mapping.RealWorldValueSlope, mapping.RealWorldValueIntercept = 1.0, 0.0
        unit = pydicom.Dataset()
        unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "Bq/ml", "UCUM", "Bq/ml"
        mapping.MeasurementUnitsCodeSequence = [unit]
        group.RealWorldValueMappingSequence = [mapping]

    edit_dicom(path, first_frame_only)
    with pytest.raises(ValueError, match=r"only some frames have a Bq/ml RealWorldValueMappingSequence \(0040,9096\); "
                                         r"the others cannot be scaled$"):
        read_nm_spect(path)


def test_nm_total_dose_is_mbq_and_bq_is_detected_by_magnitude(tmp_path):
    standard = write_spect(tmp_path / "a.dcm", spect_truth())
    # The NM Isotope module (PS3.3 C.8.4.10) defines MBq: 7400 in the header is 7.4 GBq.
    assert float(pydicom.dcmread(standard).RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose) == 7400.0
    assert read_nm_spect(standard).injected_activity_mbq == 7400.0
    in_bq = read_nm_spect(write_spect(tmp_path / "b.dcm", spect_truth(), "injected_activity_in_bq"))
    assert in_bq.injected_activity_mbq == pytest.approx(7400.0, rel=1e-12)
    assert [w for w in in_bq.warnings if "RadionuclideTotalDose (0018,1074) = 7.4e+09 is not plausible in MBq" in w]


def test_nm_missing_total_dose_is_no_error_and_can_be_given(tmp_path):
    path = write_spect(tmp_path / "spect.dcm", spect_truth(), "missing_injected_activity")
    assert read_nm_spect(path).injected_activity_mbq is None
    assert read_nm_spect(path, injected_activity_mbq=ACTIVITY_MBQ).injected_activity_mbq == ACTIVITY_MBQ
    with pytest.raises(ValueError, match="injected activity must be a positive number of MBq, got -1"):
        read_nm_spect(path, injected_activity_mbq=-1.0)


@pytest.mark.parametrize(("trap", "tags", "used"), [
    ("conflicting_acquisition_datetime", ("AcquisitionDateTime (0008,002A) = 2024-03-05T10:30:15",
                                          "AcquisitionDate (0008,0022) + AcquisitionTime (0008,0032) = "
                                          "2024-03-05T08:30:15"), "using AcquisitionDateTime"),
    ("conflicting_injection_time", ("RadiopharmaceuticalStartDateTime (0018,1078) = 2024-03-04T09:00:00",
                                    "RadiopharmaceuticalStartTime = 2024-03-04T10:00:00"),
     "using RadiopharmaceuticalStartDateTime"),
])
def test_nm_conflicting_date_times_warn_naming_both_tags_and_the_one_used(tmp_path, trap, tags, used):
    result = read_nm_spect(write_spect(tmp_path / "spect.dcm", spect_truth(), trap))
    (warning,) = [w for w in result.warnings if "disagrees with" in w]
    assert all(tag in warning for tag in tags) and warning.endswith(used)
    assert result.hours_post_injection == pytest.approx(HOURS_POST_INJECTION, abs=1e-9)  # the DT values


def test_nm_counts_need_a_calibration(tmp_path):
    path = write_spect(tmp_path / "spect.dcm", spect_truth(), "counts")
    with pytest.raises(ValueError,
                       match=r"counts \(Units \(0054,1001\) = 'CNTS'\).*calibration_cps_per_mbq="):
        read_nm_spect(path)


def test_nm_counts_scale_inversely_with_calibration_and_view_duration(tmp_path):
    truth = spect_truth()
    path = write_spect(tmp_path / "spect.dcm", truth, "counts")
    doubled = read_nm_spect(path, calibration_cps_per_mbq=2 * COUNTS_TRAP_CALIBRATION_CPS_PER_MBQ)
    assert_same_values(doubled.image, truth * 0.5)
    edit_dicom(path, lambda ds: delattr(ds.RotationInformationSequence[0], "ActualFrameDuration"))
    with pytest.raises(ValueError, match=r"ActualFrameDuration \(0018,1242\).*frame_duration_s="):
        read_nm_spect(path, calibration_cps_per_mbq=COUNTS_TRAP_CALIBRATION_CPS_PER_MBQ)
    # The file was written with 30 s views; telling the reader 60 s halves the concentration.
    sixty = read_nm_spect(path, calibration_cps_per_mbq=COUNTS_TRAP_CALIBRATION_CPS_PER_MBQ,
                          frame_duration_s=60.0)
    assert_same_values(sixty.image, truth * 0.5)


def test_nm_counts_intercept_is_converted_with_the_counts(tmp_path):
    """Counts = stored x RescaleSlope + RescaleIntercept, then Bq/mL = counts / (view s x cps/MBq) x 1e6 / voxel mL.

    The intercept added to the header is written as a concentration offset of 500 Bq/mL
    (3 % of the largest voxel, 50 % of the smallest), far above the 0.1 % value tolerance:
    a reader that drops the intercept or converts it differently from the counts fails.
    """
    truth = spect_truth()
    path = write_spect(tmp_path / "spect.dcm", truth, "counts")
    offset_bq_per_ml = 500.0
    view_s = 30.0  # the writer's 30 s views (ActualFrameDuration 30000 ms)
    voxel_ml = SPACING_MM[0] * SPACING_MM[1] * SPACING_MM[2] / 1000.0
    offset_counts = offset_bq_per_ml * voxel_ml * view_s * COUNTS_TRAP_CALIBRATION_CPS_PER_MBQ / 1e6
    edit_dicom(path, lambda ds: setattr(ds, "RescaleIntercept", float(ds.RescaleIntercept) + offset_counts))
    read = read_nm_spect(path, calibration_cps_per_mbq=COUNTS_TRAP_CALIBRATION_CPS_PER_MBQ)
    assert_same_values(read.image, truth + offset_bq_per_ml)


@pytest.mark.parametrize(("trap", "message", "fix"), [
    ("missing_injection_datetime", r"RadiopharmaceuticalStartDateTime \(0018,1078\).*injection_datetime=",
     {"injection_datetime": INJECTION}),
    ("injection_start_time_only", r"RadiopharmaceuticalStartTime \(0018,1072\) = 09:00:00 has no date",
     {"injection_datetime": date(2024, 3, 4)}),
    ("missing_acquisition_datetime", r"AcquisitionDate \(0008,0022\) \+ AcquisitionTime \(0008,0032\)",
     {"acquisition_datetime": ACQUISITION}),
    ("injection_after_acquisition", r"injection 2024-03-05T11:30:15 .* is after the acquisition start",
     {"injection_datetime": INJECTION}),
])
def test_nm_timing_traps_name_the_tag_and_the_keyword_fixes_them(tmp_path, trap, message, fix):
    path = write_spect(tmp_path / "spect.dcm", spect_truth(), trap)
    with pytest.raises(ValueError, match=message):
        read_nm_spect(path)
    result = read_nm_spect(path, **fix)
    assert result.hours_post_injection == pytest.approx(HOURS_POST_INJECTION, abs=1e-9)
    assert result.injected_activity_mbq == pytest.approx(ACTIVITY_MBQ)


def test_nm_keyword_overrides_header_with_a_warning(tmp_path):
    path = write_spect(tmp_path / "spect.dcm", spect_truth())
    result = read_nm_spect(path, injection_datetime=INJECTION - timedelta(hours=2),
                           injected_activity_mbq=7000.0)
    assert result.hours_post_injection == pytest.approx(HOURS_POST_INJECTION + 2.0, abs=1e-9)
    assert result.injected_activity_mbq == 7000.0
    assert sum("overrides the header value" in w for w in result.warnings) == 2
    with pytest.raises(ValueError, match="naive wall-clock"):
        read_nm_spect(path, injection_datetime=INJECTION.replace(tzinfo=timezone.utc))


def test_nm_geometry_errors_name_the_tag(tmp_path):
    path = write_spect(tmp_path / "spect.dcm", spect_truth(), "geometry_only_in_detector_sequence")
    edit_dicom(path, lambda ds: delattr(ds.DetectorInformationSequence[0], "ImageOrientationPatient"))
    with pytest.raises(ValueError, match=r"ImageOrientationPatient \(0020,0037\) is missing both at the top "
                                         r"level and in DetectorInformationSequence \(0054,0022\)"):
        read_nm_spect(path)


def test_nm_rejects_projections_and_unknown_units(tmp_path):
    projections = write_spect(tmp_path / "a.dcm", spect_truth())
    for kind in ("TOMO", "DYNAMIC", "GATED TOMO"):
        edit_dicom(projections, lambda ds, kind=kind: setattr(ds, "ImageType", ["ORIGINAL", "PRIMARY", kind,
                                                                                "EMISSION"]))
        with pytest.raises(ValueError, match=rf"ImageType \(0008,0008\) value 3 is '{kind}'"):
            read_nm_spect(projections)
    edit_dicom(projections, lambda ds: setattr(ds, "ImageType", ["DERIVED", "PRIMARY"]))
    assert read_nm_spect(projections).warnings == ["ImageType (0008,0008) ['DERIVED', 'PRIMARY'] does not say "
                                                   "'RECON TOMO'; read as a reconstructed SPECT"]
    suv = write_spect(tmp_path / "b.dcm", spect_truth())
    edit_dicom(suv, lambda ds: setattr(ds, "Units", "GML"))
    with pytest.raises(ValueError, match=r"Units \(0054,1001\) = 'GML' is not supported"):
        read_nm_spect(suv)


def test_nm_negative_values_keep_their_sign(tmp_path):
    """Reconstruction undershoot (negative Bq/mL) is stored with a negative RescaleIntercept."""
    truth = spect_truth() - 3000.0
    path = write_spect(tmp_path / "spect.dcm", truth)
    assert float(pydicom.dcmread(path).RescaleIntercept) == pytest.approx(-2000.0)
    truth_array = sitk.GetArrayFromImage(truth)
    value_range = truth_array.max() - truth_array.min()
    # uint16 quantisation: slope = range / 65000, so the error is at most half a step.
    error = np.abs(sitk.GetArrayFromImage(read_nm_spect(path).image) - truth_array)
    assert error.max() <= 0.5 * value_range / 65000.0 * 1.001


# --- CT ------------------------------------------------------------------------------------------

def ct_truth() -> sitk.Image:
    """Integer HU gradient (exactly representable) on an oblique, anisotropic CT-like grid."""
    return gradient_image(-900.0, (3.0, 20.0, 100.0), spacing=(0.9, 0.75, 2.5), direction=oblique_direction())


def write_ct(folder, image, description="CT"):
    return write_ct_series(image, folder, patient=PATIENT, study_uid=new_uid(),
                           frame_of_reference_uid=new_uid(), acquisition_datetime=ACQUISITION,
                           series_description=description)


def test_ct_round_trip_ignores_file_names_and_instance_numbers(tmp_path):
    truth = ct_truth()
    paths = write_ct(tmp_path / "ct", truth)
    rng = random.Random(3)
    for n, path in enumerate(rng.sample(paths, len(paths))):
        edit_dicom(path, lambda ds, n=n: setattr(ds, "InstanceNumber", n + 1))
        os.rename(path, path.with_name(f"IMG{rng.randrange(10**6):06d}_{n}"))
    (tmp_path / "ct" / "README.txt").write_text("not DICOM")
    image = read_ct_series(tmp_path / "ct")
    assert_same_geometry(image, truth)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(truth))


def test_ct_geometry_agrees_with_gdcm_series_reader(tmp_path):
    truth = ct_truth()
    write_ct(tmp_path / "ct", truth)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "ct")))
    gdcm = reader.Execute()
    ours = read_ct_series(tmp_path / "ct")
    assert_same_geometry(ours, gdcm)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(gdcm))


def test_ct_missing_slice_is_reported_with_the_gap(tmp_path):
    paths = write_ct(tmp_path / "ct", ct_truth())
    paths[7].unlink()
    with pytest.raises(ValueError, match=r"gap of 5\.000 mm between CT_0006\.dcm .* and CT_0008\.dcm "
                                         r".*other gaps are 2\.500 mm"):
        read_ct_series(tmp_path / "ct")


def test_ct_several_series_need_a_series_uid(tmp_path):
    write_ct(tmp_path / "a", ct_truth(), "first")
    second = gradient_image(0.0, (1.0, 1.0, 1.0), spacing=(0.9, 0.75, 2.5))
    write_ct(tmp_path / "b", second, "second")
    uids = [pydicom.dcmread(next((tmp_path / name).iterdir())).SeriesInstanceUID for name in ("a", "b")]
    with pytest.raises(ValueError, match=r"2 CT series found .*; point at a folder with one series, or "
                                         r"pass series_uid=") as error:
        read_ct_series(tmp_path)
    assert all(uid in str(error.value) for uid in uids)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(read_ct_series(tmp_path, series_uid=uids[1])),
                                  sitk.GetArrayFromImage(second))
    with pytest.raises(ValueError, match=r"no CT series with SeriesInstanceUID 1\.2\.3"):
        read_ct_series(tmp_path, series_uid="1.2.3")


# --- PET -----------------------------------------------------------------------------------------

def write_pet(folder, image, radionuclide="F-18"):
    return write_pet_series(image, folder, patient=PATIENT, study_uid=new_uid(),
                            frame_of_reference_uid=new_uid(), acquisition_datetime=ACQUISITION,
                            injection_datetime=ACQUISITION - timedelta(hours=1), injected_activity_mbq=250.0,
                            radionuclide=radionuclide, series_description="FDG")


def test_pet_round_trip_applies_per_slice_rescale(tmp_path):
    truth = gradient_image(2000.0, (10.0, 100.0, 1500.0), direction=oblique_direction())
    paths = write_pet(tmp_path / "pet", truth)
    slopes = {float(pydicom.dcmread(p).RescaleSlope) for p in paths}
    assert len(slopes) == len(paths)  # every slice has its own slope, so a single slope would be wrong
    result = read_pet_series(tmp_path / "pet")
    assert result.units == "Bq/mL"
    assert result.series_uid == str(pydicom.dcmread(paths[0]).SeriesInstanceUID)
    assert result.source == str(tmp_path / "pet")
    assert_same_geometry(result.image, truth)
    assert_same_values(result.image, truth)
    assert result.hours_post_injection == pytest.approx(1.0, abs=1e-9)
    assert result.injected_activity_mbq == pytest.approx(250.0)
    assert result.pet.patient_weight_kg == pytest.approx(68.5)
    assert result.pet.half_life_h == pytest.approx(109.77 / 60.0, rel=1e-9)
    assert result.pet.decay_correction == "START"
    assert result.pet.radionuclide == "^18^Fluorine"
    assert result.pet.radiopharmaceutical == "Fluorodeoxyglucose"
    assert result.pet.series_datetime == ACQUISITION


def test_pet_start_time_only_is_taken_on_the_acquisition_day(tmp_path):
    paths = write_pet(tmp_path / "pet", gradient_image(2000.0, (1.0, 1.0, 1.0)), radionuclide="Ga-68")
    for path in paths:
        edit_dicom(path, lambda ds: delattr(ds.RadiopharmaceuticalInformationSequence[0],
                                            "RadiopharmaceuticalStartDateTime"))
    result = read_pet_series(tmp_path / "pet")
    assert result.injection_datetime == ACQUISITION - timedelta(hours=1)
    assert result.pet.half_life_h == pytest.approx(67.71 / 60.0, rel=1e-9)
    assert any("RadiopharmaceuticalStartTime (0018,1072)" in w for w in result.warnings)


def test_pet_total_dose_is_bq_and_mbq_is_detected_by_magnitude(tmp_path):
    paths = write_pet(tmp_path / "pet", gradient_image(2000.0, (1.0, 1.0, 1.0)))
    # The PET Isotope module (PS3.3 C.8.9.2) defines Bq.
    assert float(pydicom.dcmread(paths[0]).RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose) == 2.5e8
    for path in paths:
        edit_dicom(path, lambda ds: setattr(ds.RadiopharmaceuticalInformationSequence[0],
                                            "RadionuclideTotalDose", "250"))
    result = read_pet_series(tmp_path / "pet")
    assert result.injected_activity_mbq == 250.0
    assert any("RadionuclideTotalDose (0018,1074) = 250 is not plausible in Bq" in w for w in result.warnings)


def test_pet_without_start_times_takes_the_series_time_and_the_injection_given(tmp_path):
    """No acquisition date/time and no injection time in the headers: both come from elsewhere, warned."""
    paths = write_pet(tmp_path / "pet", gradient_image(2000.0, (1.0, 1.0, 1.0)))

    def strip(ds):
        del ds.AcquisitionDate, ds.AcquisitionTime
        ds.SeriesDate, ds.SeriesTime = "20240305", "103015"
        item = ds.RadiopharmaceuticalInformationSequence[0]
        del item.RadiopharmaceuticalStartDateTime, item.RadiopharmaceuticalStartTime, item.Radiopharmaceutical
        del item.RadionuclideCodeSequence, ds.DecayCorrection
        if "AcquisitionDateTime" in ds:
            del ds.AcquisitionDateTime

    for path in paths:
        edit_dicom(path, strip)
    injected = ACQUISITION - timedelta(hours=2, minutes=30)
    result = read_pet_series(tmp_path / "pet", injection_datetime=injected)
    assert result.acquisition_datetime == ACQUISITION and result.injection_datetime == injected
    assert result.hours_post_injection == pytest.approx(2.5, abs=1e-9)
    assert [w for w in result.warnings if "no AcquisitionDate/Time; SeriesDate/Time taken as acquisition start" in w]
    assert (result.pet.radiopharmaceutical, result.pet.radionuclide, result.pet.decay_correction) == (None, None,
                                                                                                      None)
    assert result.pet.half_life_h == pytest.approx(109.77 / 60.0, rel=1e-9)  # RadionuclideHalfLife kept
    with pytest.raises(ValueError, match="RadiopharmaceuticalStartDateTime"):
        read_pet_series(tmp_path / "pet")


@pytest.mark.parametrize(("options", "message"), [
    ({"calibration_cps_per_mbq": 0.0}, "calibration_cps_per_mbq must be positive, got 0.0"),
    ({"calibration_cps_per_mbq": 15.0, "frame_duration_s": -30.0}, "frame_duration_s must be positive, got -30.0"),
])
def test_nm_bad_caller_numbers_are_named_not_blamed_on_the_file(tmp_path, options, message):
    path = write_spect(tmp_path / "spect.dcm", spect_truth(), "counts")
    with pytest.raises(ValueError) as raised:
        read_nm_spect(path, **options)
    assert str(raised.value) == message


def test_pet_injection_time_after_the_acquisition_time_was_the_day_before(tmp_path):
    """Injected at 23:50, scanned at 00:40 the next day: only the start time in the header."""
    acquisition = datetime(2024, 3, 5, 0, 40, 0)
    paths = write_pet_series(gradient_image(2000.0, (1.0, 1.0, 1.0)), tmp_path / "pet", patient=PATIENT,
                             study_uid=new_uid(), frame_of_reference_uid=new_uid(), acquisition_datetime=acquisition,
                             injection_datetime=acquisition - timedelta(minutes=50), injected_activity_mbq=250.0,
                             radionuclide="F-18", series_description="FDG")
    for path in paths:
        edit_dicom(path, lambda ds: delattr(ds.RadiopharmaceuticalInformationSequence[0],
                                            "RadiopharmaceuticalStartDateTime"))
    result = read_pet_series(tmp_path / "pet")
    assert result.injection_datetime == datetime(2024, 3, 4, 23, 50, 0)
    assert result.hours_post_injection == pytest.approx(50.0 / 60.0, abs=1e-9)


def test_pet_rejects_non_bqml_units(tmp_path):
    paths = write_pet(tmp_path / "pet", gradient_image(2000.0, (1.0, 1.0, 1.0)))
    edit_dicom(paths[3], lambda ds: setattr(ds, "Units", "CNTS"))
    with pytest.raises(ValueError, match=r"Units \(0054,1001\) is \['BQML', 'CNTS'\]"):
        read_pet_series(tmp_path / "pet")


# --- dispatcher ----------------------------------------------------------------------------------

def test_read_image_dispatches_on_content(tmp_path):
    spect = spect_truth()
    write_spect(tmp_path / "nm" / "spect.dcm", spect)
    ct_paths = write_ct(tmp_path / "ct", ct_truth())
    nm = read_image(tmp_path / "nm", calibration_cps_per_mbq=None)
    assert nm.units == "Bq/mL" and nm.hours_post_injection == pytest.approx(HOURS_POST_INJECTION)
    ct = read_image(ct_paths[0])  # one file of the series: the whole series is read
    assert ct.units == "HU" and ct.image.GetSize() == ct_truth().GetSize()
    assert ct.acquisition_datetime == ACQUISITION
    write_volume(spect, tmp_path / "spect.nrrd", "kBq/mL")
    volume = read_image(tmp_path / "spect.nrrd")
    assert volume.units == "Bq/mL"
    assert_same_values(volume.image, spect * 1000.0, rel=1e-6)
    with pytest.raises(ValueError, match=r"DICOM NM image is in Bq/mL, not 'HU'"):
        read_image(tmp_path / "nm", units="HU")
    with pytest.raises(ValueError, match="found CT, NM"):
        read_image(tmp_path)
