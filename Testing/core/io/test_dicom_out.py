"""Shared DICOM output helpers: output paths, atomic writes, and the reference series a derived object sits on."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from luprrt.io._dicom_out import atomic_dicom_write, checked_output_file, load_series, new_file_dataset

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def _slice(z_mm: float, series_uid: str = "1.2.3", frame_uid: str = "1.2.4") -> pydicom.Dataset:
    ds = pydicom.Dataset()
    ds.SeriesInstanceUID, ds.FrameOfReferenceUID = series_uid, frame_uid
    ds.ImagePositionPatient = [-10.0, -20.0, z_mm]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.PixelSpacing = [0.8, 0.6]  # row spacing (y), column spacing (x)
    ds.Rows, ds.Columns = 4, 5
    return ds


def test_slices_are_ordered_along_the_normal_on_their_grid():
    datasets, grid = load_series([_slice(z) for z in (5.0, -1.0, 2.0)], "CT")
    assert [float(ds.ImagePositionPatient[2]) for ds in datasets] == [-1.0, 2.0, 5.0]
    assert grid.GetSize() == (5, 4, 3)
    assert grid.GetSpacing() == pytest.approx((0.6, 0.8, 3.0), rel=1e-12)
    assert grid.GetOrigin() == pytest.approx((-10.0, -20.0, -1.0), rel=1e-12)
    np.testing.assert_array_equal(np.reshape(grid.GetDirection(), (3, 3)), np.eye(3))


def test_unusable_series_are_named(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_series(tmp_path / "absent", "CT")
    assert str(error.value) == f"CT series folder not found: {tmp_path / 'absent'}"
    (tmp_path / "notes.txt").write_text("not DICOM", encoding="utf-8")
    with pytest.raises(ValueError) as error:
        load_series(tmp_path, "CT")  # the text file is skipped, leaving nothing
    assert str(error.value) == f"no DICOM images in the CT series {tmp_path}"
    with pytest.raises(ValueError) as error:
        load_series([_slice(0.0), _slice(2.0, series_uid="9.9")], "SPECT")
    assert str(error.value) == "the SPECT images belong to 2 series; give one series"
    flat = _slice(0.0)
    del flat.PixelSpacing, flat.FrameOfReferenceUID
    with pytest.raises(ValueError) as error:
        load_series([flat], "CT")
    assert str(error.value) == ("the CT series is not a stack of single-frame images with geometry "
                                "(missing PixelSpacing, FrameOfReferenceUID)")
    with pytest.raises(ValueError) as error:
        load_series([_slice(0.0), _slice(2.0), _slice(5.0)], "CT")
    assert str(error.value) == "the CT slices are not evenly spaced (gaps 2..3 mm)"
    with pytest.raises(ValueError) as error:
        load_series([_slice(0.0), _slice(0.0)], "CT")
    assert str(error.value) == "the CT slices are not evenly spaced (gaps 0..0 mm)"


def test_output_paths_and_atomic_writes(tmp_path):
    target = checked_output_file(tmp_path / "sub" / "ct.dcm", overwrite=False)
    assert target == tmp_path / "sub" / "ct.dcm" and target.parent.is_dir()
    dataset = new_file_dataset(CT_IMAGE_STORAGE)
    dataset.PatientID = "P1"
    atomic_dicom_write(dataset, target)
    assert pydicom.dcmread(target).PatientID == "P1"
    with pytest.raises(FileExistsError) as error:
        checked_output_file(target, overwrite=False)
    assert str(error.value) == f"{target} exists; pass overwrite (--overwrite) to replace it"
    assert checked_output_file(target, overwrite=True) == target
    with pytest.raises(IsADirectoryError) as error:
        checked_output_file(tmp_path / "sub", overwrite=True)
    assert str(error.value) == f"{tmp_path / 'sub'} is a folder; give a file name"
    # A write that cannot be renamed into place (a folder is in the way) leaves no partial file.
    (tmp_path / "sub" / "blocked.dcm").mkdir()
    with pytest.raises(OSError):
        atomic_dicom_write(dataset, tmp_path / "sub" / "blocked.dcm")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["blocked.dcm", "ct.dcm"]
