"""NRRD / NIfTI round trips with explicit voxel units (luprrt.io.volumes)."""

from __future__ import annotations

from datetime import datetime

import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from luprrt.io import QuantitativeImage, read_volume, write_volume

SIZE_XYZ = (24, 20, 16)
SPACING_MM = (4.42, 4.80, 3.90)
ORIGIN_MM = (-53.17, -41.9, 87.3)


def gradient_image(direction=None) -> sitk.Image:
    """float32 gradient 1000 + 10 i + 100 j + 1000 k on an anisotropic grid, optionally rotated."""
    k, j, i = np.meshgrid(*(np.arange(n) for n in SIZE_XYZ[::-1]), indexing="ij")
    image = sitk.GetImageFromArray((1000.0 + 10 * i + 100 * j + 1000 * k).astype(np.float32))
    image.SetSpacing(SPACING_MM)
    image.SetOrigin(ORIGIN_MM)
    if direction is not None:
        image.SetDirection(direction)
    return image


def oblique_direction() -> tuple[float, ...]:
    return sitk.VersorTransform((0.2, 0.1, 0.97), 0.3).GetMatrix()


def assert_same_image(read: sitk.Image, truth: sitk.Image, factor: float = 1.0) -> None:
    assert read.GetSize() == truth.GetSize()
    np.testing.assert_allclose(read.GetOrigin(), truth.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(read.GetSpacing(), truth.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(read.GetDirection(), truth.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(sitk.GetArrayFromImage(read), sitk.GetArrayFromImage(truth) * factor,
                               rtol=1e-6)


@pytest.mark.parametrize("suffix", [".nrrd", ".nii", ".nii.gz"])
def test_round_trip_keeps_lps_geometry_and_units(tmp_path, suffix):
    truth = gradient_image(oblique_direction())
    path = write_volume(truth, tmp_path / f"spect{suffix}", "Bq/mL")
    result = read_volume(path)
    assert result.units == "Bq/mL" and result.source == str(path)
    assert result.image.GetPixelID() == sitk.sitkFloat32
    assert_same_image(result.image, truth)


def test_nifti_file_is_ras_on_disk(tmp_path):
    """The NIfTI sform (bytes 280..327) holds RAS: x and y of the LPS origin and axes change sign."""
    truth = gradient_image(oblique_direction())
    path = write_volume(truth, tmp_path / "spect.nii", "Bq/mL")
    header = path.read_bytes()[:348]
    srow = np.frombuffer(header[280:328], dtype="<f4").reshape(3, 4)
    lps_axes = np.asarray(truth.GetDirection()).reshape(3, 3) * np.asarray(SPACING_MM)
    ras_flip = np.array([-1.0, -1.0, 1.0])
    np.testing.assert_allclose(srow[:, 3], ras_flip * np.asarray(ORIGIN_MM), atol=1e-3)
    np.testing.assert_allclose(srow[:, :3], ras_flip[:, None] * lps_axes, atol=1e-4)
    assert b"luprrt_units=Bq/mL" in header[148:228]  # the 80-character descrip field


def test_nrrd_header_carries_units_and_timing(tmp_path):
    record = QuantitativeImage(image=gradient_image(), units="Bq/mL", source="x",
                               acquisition_datetime=datetime(2024, 3, 5, 10, 30, 15),
                               injection_datetime=datetime(2024, 3, 4, 9, 0), injected_activity_mbq=7400.0)
    path = write_volume(record, tmp_path / "spect.nrrd", "Bq/mL")
    header = nrrd.read_header(str(path))
    assert header["luprrt_units"] == "Bq/mL"
    assert header["space"] == "left-posterior-superior"
    result = read_volume(path)
    assert result.hours_post_injection == pytest.approx(25.0 + 30.0 / 60.0 + 15.0 / 3600.0, abs=1e-9)
    assert result.injected_activity_mbq == 7400.0


@pytest.mark.parametrize(("units", "factor", "canonical"), [
    ("kBq/mL", 1e3, "Bq/mL"), ("MBq/mL", 1e6, "Bq/mL"), ("bq/ml", 1.0, "Bq/mL"),
    ("HU", 1.0, "HU"), ("SUVbw", 1.0, "SUVbw"), ("mm2/s", 1.0, "mm2/s"), ("counts", 1.0, "counts"),
])
def test_units_are_converted_to_canonical(tmp_path, units, factor, canonical):
    truth = gradient_image()
    path = write_volume(truth, tmp_path / "v.nii.gz", units)
    result = read_volume(path)
    assert result.units == canonical
    assert_same_image(result.image, truth, factor)


def test_missing_units_error_names_file_and_option(tmp_path):
    path = tmp_path / "plain.nrrd"
    sitk.WriteImage(gradient_image(), str(path))
    with pytest.raises(ValueError, match=r"plain\.nrrd: the voxel units are not recorded in the file; "
                                         r"pass units='Bq/mL' \(one of: Bq/mL, "):
        read_volume(path)
    result = read_volume(path, units="kBq/mL")
    assert result.units == "Bq/mL"
    assert_same_image(result.image, gradient_image(), 1e3)


def test_missing_units_error_for_plain_nifti(tmp_path):
    path = tmp_path / "plain.nii.gz"
    sitk.WriteImage(gradient_image(), str(path))
    with pytest.raises(ValueError, match=r"plain\.nii\.gz: the voxel units are not recorded"):
        read_volume(path)


def test_conflicting_and_unknown_units_are_rejected(tmp_path):
    path = write_volume(gradient_image(), tmp_path / "v.nrrd", "HU")
    with pytest.raises(ValueError,
                       match=r"the file says its voxel units are 'HU' but 'Bq/mL' was given"):
        read_volume(path, units="Bq/mL")
    with pytest.raises(ValueError, match=r"unknown units 'rad'; accepted: Bq/mL, kBq/mL"):
        write_volume(gradient_image(), tmp_path / "dose.nrrd", "rad")
    record = QuantitativeImage(image=gradient_image(), units="HU")
    with pytest.raises(ValueError, match="disagrees with the image's own units 'HU'"):
        write_volume(record, tmp_path / "w.nrrd", "Bq/mL")


def test_writer_refuses_overwrite_and_leaves_input_metadata(tmp_path):
    image = gradient_image()
    image.SetMetaData("origin_note", "keep me")
    path = write_volume(image, tmp_path / "v.nrrd", "Bq/mL")
    assert image.GetMetaDataKeys() == ("origin_note",)
    assert "origin_note" not in nrrd.read_header(str(path))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_volume(image, path, "Bq/mL")
    write_volume(image * 2.0, path, "Bq/mL", overwrite=True)
    assert_same_image(read_volume(path).image, image, 2.0)


def test_bad_paths_and_unknown_timing(tmp_path):
    with pytest.raises(ValueError, match=r"not a NRRD or NIfTI file name"):
        write_volume(gradient_image(), tmp_path / "v.mha", "HU")
    with pytest.raises(FileNotFoundError, match=r"absent\.nrrd"):
        read_volume(tmp_path / "absent.nrrd")
    record = read_volume(write_volume(gradient_image(), tmp_path / "v.nrrd", "HU"))
    with pytest.raises(ValueError, match="hours after injection unknown"):
        _ = record.hours_post_injection


@pytest.mark.parametrize(("units", "factor", "stored"), [("Gy", 1.0, "Gy"), ("Bq h/mL", 1.0, "Bq h/mL"),
                                                          ("MBq h/mL", 1e6, "Bq h/mL")])
@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_dose_and_time_integrated_activity_units_round_trip(tmp_path, units, factor, stored, suffix):
    image = sitk.GetImageFromArray(np.arange(24, dtype=np.float32).reshape(2, 3, 4) + 0.5)
    path = write_volume(image, tmp_path / f"map{suffix}", units)
    read = read_volume(path)
    assert read.units == stored
    np.testing.assert_allclose(sitk.GetArrayFromImage(read.image), sitk.GetArrayFromImage(image) * factor,
                               rtol=1e-6)


def test_images_of_two_patients_are_refused_naming_both():
    from luprrt.io import check_one_patient

    check_one_patient([("ct", "P1"), ("spect.nrrd", None), ("spect_24h", "P1")])  # volumes record no id
    with pytest.raises(ValueError, match=r"^spect_96h: DICOM PatientID 'P2' differs from 'P1' of ct; an image of "
                                         r"another patient\? point the inputs at one patient's images$"):
        check_one_patient([("ct", "P1"), ("spect_24h", "P1"), ("spect_96h", "P2")])
