"""DICOM written by luprrt.io.dicom_write and read back by pydicom: the exact tag values.

The volume is 5 x 4 x 3 voxels with different x and y spacing (so swapped PixelSpacing
shows), tilted 30 deg about the patient's x axis: the row direction is (1, 0, 0), the column
direction (0, cos 30, sin 30), and slices advance along their normal (0, -sin 30, cos 30).
Slice positions, pixel values and rescale factors below are computed by hand from those.
Coded concepts are checked against pydicom's copy of the DICOM code tables (PS3.16); the
round trip through LuPRRT's own reader is tested in ``test_dicom.py``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.sr.codedict import codes

from luprrt.io.dicom_write import DicomPatient, new_uid, write_ct_series, write_nm_spect, write_pet_series

SIZE_XYZ = (5, 4, 3)
SPACING_MM = (0.7, 0.9, 2.5)
ORIGIN_MM = np.array([-50.25, 20.5, -100.0])
COS, SIN = math.cos(math.radians(30.0)), math.sin(math.radians(30.0))
ROW, COLUMN, NORMAL = np.array([1.0, 0, 0]), np.array([0, COS, SIN]), np.array([0, -SIN, COS])
ACQUISITION = datetime(2024, 3, 5, 10, 30, 15)
INJECTION = datetime(2024, 3, 4, 9, 0, 0)
PATIENT = DicomPatient(patient_id="LUPRRT-W01", weight_kg=68.5)
STUDY_UID, FRAME_UID = new_uid(), new_uid()
DS_TOL = 1e-12  # a Decimal String keeps 16 characters: "-95.669872981078" is within 5e-13


def volume(values: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(values)
    image.SetSpacing(SPACING_MM)
    image.SetOrigin(tuple(ORIGIN_MM))
    image.SetDirection(tuple(np.column_stack([ROW, COLUMN, NORMAL]).ravel()))
    return image


def ramp(base: float, step: float) -> np.ndarray:
    """base + step * (flat voxel number), shape (z, y, x)."""
    return (base + step * np.arange(60.0)).reshape(SIZE_XYZ[::-1])


def common(**overrides) -> dict:
    return {"patient": PATIENT, "study_uid": STUDY_UID, "frame_of_reference_uid": FRAME_UID,
            "acquisition_datetime": ACQUISITION, **overrides}


def code_of(item) -> tuple[str, str, str]:
    return item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning


def assert_patient_study_and_plane(ds, slice_index: int) -> None:
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"  # Explicit VR Little Endian
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert (ds.PatientID, str(ds.PatientName), ds.PatientSex, ds.PatientBirthDate) == (
        "LUPRRT-W01", "LuPRRT^Synthetic", "O", "19600101")
    assert (float(ds.PatientWeight), float(ds.PatientSize)) == (68.5, 1.75)
    assert (ds.StudyInstanceUID, ds.FrameOfReferenceUID) == (STUDY_UID, FRAME_UID)
    assert (ds.StudyDate, ds.StudyTime, ds.AcquisitionDateTime) == ("20240305", "103015", "20240305103015")
    assert ds.PatientPosition == "HFS"
    np.testing.assert_allclose(np.asarray(ds.ImageOrientationPatient, float), [*ROW, *COLUMN], rtol=0, atol=DS_TOL)
    np.testing.assert_allclose(np.asarray(ds.ImagePositionPatient, float),
                               ORIGIN_MM + slice_index * 2.5 * NORMAL, rtol=0, atol=DS_TOL)
    # PixelSpacing is (row spacing, column spacing): the y step first, then the x step.
    assert [float(v) for v in ds.PixelSpacing] == [0.9, 0.7]
    assert float(ds.SliceThickness) == 2.5
    assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (4, 5, 16, 16, 15)
    assert (ds.SamplesPerPixel, ds.PhotometricInterpretation) == (1, "MONOCHROME2")


def test_ct_series_one_file_per_slice_in_integer_hu(tmp_path):
    hu = ramp(-1000.0, 37.0)  # -1000 .. 1183 HU, integers
    paths = write_ct_series(volume(hu), tmp_path / "ct", **common(series_description="CT abdomen"))
    assert [p.name for p in paths] == ["CT_0000.dcm", "CT_0001.dcm", "CT_0002.dcm"]
    datasets = [pydicom.dcmread(p) for p in paths]
    assert len({ds.SOPInstanceUID for ds in datasets}) == 3 and len({ds.SeriesInstanceUID for ds in datasets}) == 1
    for k, ds in enumerate(datasets):
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
        assert (ds.Modality, ds.SeriesDescription, ds.InstanceNumber) == ("CT", "CT abdomen", k + 1)
        assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "AXIAL"]
        assert_patient_study_and_plane(ds, k)
        assert float(ds.SliceLocation) == pytest.approx(ORIGIN_MM @ NORMAL + 2.5 * k, abs=1e-10)
        assert (float(ds.RescaleIntercept), float(ds.RescaleSlope), ds.RescaleType) == (-1024.0, 1.0, "HU")
        assert ds.PixelRepresentation == 1
        np.testing.assert_array_equal(ds.pixel_array, hu[k] + 1024)
        np.testing.assert_array_equal(ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept), hu[k])


def test_ct_rounds_to_whole_hu_and_refuses_values_outside_int16(tmp_path):
    hu = ramp(0.0, 0.0)
    hu[0, 0, :3] = (10.4, 10.6, -3.5)
    ds = pydicom.dcmread(write_ct_series(volume(hu), tmp_path / "ct", **common())[0])
    assert list(ds.pixel_array[0, :3] - 1024) == [10, 11, -4]  # round half to even, as numpy.rint
    with pytest.raises(ValueError, match=r"image_hu values 0..40000 HU do not fit int16 with RescaleIntercept -1024"):
        write_ct_series(volume(np.where(hu > 5, 40000.0, 0.0)), tmp_path / "big", **common())
    with pytest.raises(FileExistsError, match="not empty"):
        write_ct_series(volume(hu), tmp_path / "ct", **common())
    write_ct_series(volume(hu), tmp_path / "ct", **common(), overwrite=True)


def test_nm_spect_one_multiframe_file_in_bq_per_ml(tmp_path):
    bq_per_ml = ramp(0.0, 1300.0)  # 0 .. 76700 Bq/mL
    path = write_nm_spect(volume(bq_per_ml), tmp_path / "spect.dcm", **common(),
                          injection_datetime=INJECTION, injected_activity_mbq=7400.0)
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.20"  # NM Image Storage
    assert (ds.Modality, ds.NumberOfFrames, ds.NumberOfSlices) == ("NM", 3, 3)
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    assert list(ds.SliceVector) == [1, 2, 3] and ds.FrameIncrementPointer == 0x00540080
    assert_patient_study_and_plane(ds, 0)
    assert float(ds.SpacingBetweenSlices) == 2.5
    detector = ds.DetectorInformationSequence[0]
    assert detector.ImagePositionPatient == ds.ImagePositionPatient
    assert detector.ImageOrientationPatient == ds.ImageOrientationPatient
    # uint16 with Bq/mL = stored * slope, slope = max / 65000 and no intercept (zero stays zero).
    assert ds.Units == "BQML" and ds.PixelRepresentation == 0
    slope = float(ds.RescaleSlope)
    assert slope == pytest.approx(76700.0 / 65000.0, rel=1e-14) and float(ds.RescaleIntercept) == 0.0
    np.testing.assert_array_equal(ds.pixel_array, np.rint(bq_per_ml / slope))
    assert np.abs(ds.pixel_array * slope - bq_per_ml).max() <= 0.5 * slope

    item = ds.RadiopharmaceuticalInformationSequence[0]
    assert float(item.RadionuclideTotalDose) == 7400.0  # MBq: the NM Isotope module's unit (PS3.3 C.8.4.10)
    assert float(item.RadionuclideHalfLife) == pytest.approx(6.647 * 24 * 3600, rel=1e-12)  # 6.647 d, ICRP-107
    assert (item.RadiopharmaceuticalStartDateTime, item.RadiopharmaceuticalStartTime) == ("20240304090000",
                                                                                          "090000")
    assert code_of(item.RadionuclideCodeSequence[0]) == (
        codes.SCT._177Lutetium.value, "SCT", codes.SCT._177Lutetium.meaning)
    assert code_of(item.RadiopharmaceuticalCodeSequence[0]) == (
        codes.SCT.Lutetium177DOTATATE.value, "SCT", codes.SCT.Lutetium177DOTATATE.meaning)
    assert code_of(item.AdministrationRouteCodeSequence[0]) == (
        codes.SCT.IntravenousRoute.value, "SCT", codes.SCT.IntravenousRoute.meaning)
    # Lu-177 photopeak window: 208 keV +- 10 %.
    window = ds.EnergyWindowInformationSequence[0].EnergyWindowRangeSequence[0]
    assert float(window.EnergyWindowLowerLimit) == pytest.approx(0.9 * 208.366, abs=0.05)
    assert float(window.EnergyWindowUpperLimit) == pytest.approx(1.1 * 208.366, abs=0.05)
    rotation = ds.RotationInformationSequence[0]
    assert (float(rotation.AngularStep), rotation.NumberOfFramesInRotation, rotation.ActualFrameDuration) == (
        3.0, 60, 30000)  # 2 heads x 60 views of 3 deg, 30 s each


@pytest.mark.parametrize(("route", "code"), [("IV", codes.SCT.IntravenousRoute),
                                             ("IA", codes.SCT.IntraArterialRoute)])
def test_nm_records_the_administration_route(tmp_path, route, code):
    path = write_nm_spect(volume(ramp(1.0, 1.0)), tmp_path / "spect.dcm", **common(),
                          injection_datetime=INJECTION, injected_activity_mbq=7400.0, route=route)
    item = pydicom.dcmread(path).RadiopharmaceuticalInformationSequence[0]
    assert code_of(item.AdministrationRouteCodeSequence[0]) == (code.value, "SCT", code.meaning)


def test_nm_refuses_bad_input_and_never_overwrites(tmp_path):
    image = volume(ramp(1.0, 1.0))
    nm = {"injection_datetime": INJECTION, "injected_activity_mbq": 7400.0}
    path = write_nm_spect(image, tmp_path / "spect.dcm", **common(), **nm)
    written = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"output file exists: .*spect\.dcm; pass overwrite=True"):
        write_nm_spect(image, path, **common(), **nm)
    assert path.read_bytes() == written
    with pytest.raises(ValueError, match="unknown NM trap 'vendor_x'"):
        write_nm_spect(image, tmp_path / "a.dcm", **common(), **nm, trap="vendor_x")
    with pytest.raises(ValueError, match="unknown administration route 'oral'"):
        write_nm_spect(image, tmp_path / "a.dcm", **common(), **nm, route="oral")
    with pytest.raises(ValueError, match="injection_datetime 2024-03-06T00:00:00 is after acquisition_datetime"):
        write_nm_spect(image, tmp_path / "a.dcm", **common(), injection_datetime=datetime(2024, 3, 6),
                       injected_activity_mbq=7400.0)
    with pytest.raises(ValueError, match="injected_activity_mbq must be positive, got 0"):
        write_nm_spect(image, tmp_path / "a.dcm", **common(), injection_datetime=INJECTION,
                       injected_activity_mbq=0)
    with pytest.raises(ValueError, match="acquisition_datetime must be a naive wall-clock datetime"):
        write_nm_spect(image, tmp_path / "a.dcm", **common(acquisition_datetime=ACQUISITION.replace(
            tzinfo=timezone.utc)), **nm)
    nan = ramp(1.0, 1.0)
    nan[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="image_bq_per_ml contains 1 non-finite voxels"):
        write_nm_spect(volume(nan), tmp_path / "a.dcm", **common(), **nm)
    sheared = volume(ramp(1.0, 1.0))
    sheared.SetDirection(tuple(np.column_stack([ROW, COLUMN, (0.0, 0.0, 1.0)]).ravel()))
    with pytest.raises(ValueError, match="slice axis that is not perpendicular"):
        write_nm_spect(sheared, tmp_path / "a.dcm", **common(), **nm)
    assert not (tmp_path / "a.dcm").exists()


def test_pet_series_rescales_each_slice_and_decay_corrects_to_the_start(tmp_path):
    bq_per_ml = ramp(-200.0, 250.0)  # -200 .. 14550 Bq/mL: slice 0 holds negative values
    paths = write_pet_series(volume(bq_per_ml), tmp_path / "pet", **common(series_description="FDG"),
                             injection_datetime=ACQUISITION - timedelta(minutes=62), injected_activity_mbq=250.0,
                             radionuclide="F-18")
    assert [p.name for p in paths] == ["PT_0000.dcm", "PT_0001.dcm", "PT_0002.dcm"]
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.128"  # PET Image Storage
        assert (ds.Modality, ds.InstanceNumber, ds.ImageIndex, ds.NumberOfSlices) == ("PT", k + 1, k + 1, 3)
        assert_patient_study_and_plane(ds, k)
        assert (ds.Units, ds.DecayCorrection, list(ds.SeriesType)) == ("BQML", "START", ["STATIC", "IMAGE"])
        # int16 per slice: slope = largest magnitude of the slice / 32000, no intercept.
        slope = float(ds.RescaleSlope)
        assert slope == pytest.approx(np.abs(bq_per_ml[k]).max() / 32000.0, rel=1e-14)
        assert float(ds.RescaleIntercept) == 0.0 and ds.PixelRepresentation == 1
        np.testing.assert_array_equal(ds.pixel_array, np.rint(bq_per_ml[k] / slope))
        item = ds.RadiopharmaceuticalInformationSequence[0]
        assert float(item.RadionuclideHalfLife) == pytest.approx(109.77 * 60, rel=1e-12)  # 109.77 min, NIST
        assert float(item.RadionuclideTotalDose) == 2.5e8
        assert item.RadiopharmaceuticalStartDateTime == "20240305092815"
        assert code_of(item.RadionuclideCodeSequence[0]) == (
            codes.SCT._18Fluorine.value, "SCT", codes.SCT._18Fluorine.meaning)
        assert code_of(item.RadiopharmaceuticalCodeSequence[0]) == (
            codes.SCT.FluorodeoxyglucoseF18.value, "SCT", codes.SCT.FluorodeoxyglucoseF18.meaning)


def test_pet_ga68_and_bad_radionuclides(tmp_path):
    paths = write_pet_series(volume(ramp(0.0, 10.0)), tmp_path / "ga", **common(),
                             injection_datetime=ACQUISITION - timedelta(hours=1), injected_activity_mbq=150.0,
                             radionuclide="Ga-68")
    item = pydicom.dcmread(paths[0]).RadiopharmaceuticalInformationSequence[0]
    assert float(item.RadionuclideHalfLife) == pytest.approx(67.71 * 60, rel=1e-12)  # 67.71 min, ENSDF
    assert code_of(item.RadionuclideCodeSequence[0]) == (
        codes.SCT._68Gallium.value, "SCT", codes.SCT._68Gallium.meaning)
    assert code_of(item.RadiopharmaceuticalCodeSequence[0]) == (  # PS3.16 CID 4021
        codes.SCT.DotatateGa68.value, "SCT", codes.SCT.DotatateGa68.meaning)
    with pytest.raises(ValueError, match=r"unknown PET radionuclide 'Tc-99m'; choose one of \['F-18', 'Ga-68'\]"):
        write_pet_series(volume(ramp(0.0, 1.0)), tmp_path / "tc", **common(), injection_datetime=INJECTION,
                         injected_activity_mbq=150.0, radionuclide="Tc-99m")
    assert not (tmp_path / "tc").exists()


def test_uids_are_unique_dicom_uids():
    uids = {new_uid() for _ in range(50)}
    assert len(uids) == 50
    for uid in uids:  # PS3.5 9.1: digits and dots, at most 64 characters, no leading zero in a component
        assert len(uid) <= 64 and all(part.isdigit() and (part == "0" or part[0] != "0") for part in uid.split("."))
