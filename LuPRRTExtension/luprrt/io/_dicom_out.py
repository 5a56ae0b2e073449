"""Shared plumbing of the DICOM writers: safe output files and the source series they reference."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

# Patient and study attributes a derived object copies from the images it was made from.
PATIENT_STUDY_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                      "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName")


def volume_images(volume) -> list[sitk.Image]:
    """SimpleITK images (LPS) of a highdicom Volume, one per trailing channel (a 3-D volume gives one).

    highdicom's affine maps (slice, row, column) indices to LPS mm; SimpleITK indexes (column, row,
    slice). Slices are put in the order of the normal of rows and columns (as CT series are read),
    so an object read without a reference grid lands on the grid of its source images.
    """
    affine = np.asarray(volume.affine, dtype=float)
    array = np.asarray(volume.array)
    if array.ndim == 3:
        array = array[..., np.newaxis]
    steps = affine[:3, :3][:, ::-1].copy()
    origin = affine[:3, 3].copy()
    if steps[:, 2] @ np.cross(steps[:, 0], steps[:, 1]) < 0:
        origin = origin + (array.shape[0] - 1) * steps[:, 2]
        steps[:, 2] = -steps[:, 2]
        array = array[::-1]
    spacing = np.linalg.norm(steps, axis=0)
    direction = steps / spacing
    images = []
    for k in range(array.shape[-1]):
        image = sitk.GetImageFromArray(np.ascontiguousarray(array[..., k]))
        image.SetOrigin(tuple(float(v) for v in origin))
        image.SetSpacing(tuple(float(v) for v in spacing))
        image.SetDirection(tuple(float(v) for v in direction.ravel()))
        images.append(image)
    return images


def checked_output_file(path: str | Path, overwrite: bool) -> Path:
    """``path`` as a Path, refused when it exists and ``overwrite`` is False; its folder is created."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite (--overwrite) to replace it")
    if path.exists() and path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def atomic_dicom_write(dataset: pydicom.Dataset, path: Path) -> None:
    """Write ``dataset`` next to ``path`` and rename it into place: never a half-written file."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)
    try:
        if int(pydicom.__version__.split(".")[0]) >= 3:
            dataset.save_as(temporary, enforce_file_format=True)
        else:  # pydicom 2.4 (Slicer 5.10)
            dataset.save_as(temporary, write_like_original=False)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual mode
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def new_file_dataset(sop_class_uid: str) -> pydicom.dataset.FileDataset:
    """An empty Explicit VR Little Endian file dataset of ``sop_class_uid`` with new UIDs."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset("", pydicom.Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SpecificCharacterSet = "ISO_IR 192"
    if int(pydicom.__version__.split(".")[0]) < 3:  # pydicom 2.4 (Slicer 5.10) encodes from these flags
        ds.is_little_endian, ds.is_implicit_VR = True, False
    return ds


def load_series(series: str | Path | Sequence[str | Path | pydicom.Dataset], what: str
                ) -> tuple[list[pydicom.Dataset], sitk.Image]:
    """The single-frame images of one series, in slice order, and an empty image on their grid.

    ``series`` is a folder of DICOM files, a list of file paths or the datasets themselves.
    Slices are ordered along the normal of their rows and columns, so index k of the returned
    image is slice k.
    """
    if not isinstance(series, (str, Path)) and all(isinstance(s, (str, Path)) for s in series):
        datasets = [pydicom.dcmread(path) for path in series]
    elif isinstance(series, (str, Path)):
        folder = Path(series)
        if not folder.is_dir():
            raise FileNotFoundError(f"{what} series folder not found: {folder}")
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        datasets = []
        for file in files:
            try:
                datasets.append(pydicom.dcmread(file))
            except pydicom.errors.InvalidDicomError:
                continue
    else:
        datasets = list(series)
    if not datasets:
        raise ValueError(f"no DICOM images in the {what} series {series}")
    uids = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(uids) != 1:
        raise ValueError(f"the {what} images belong to {len(uids)} series; give one series")
    first = datasets[0]
    missing = [k for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "FrameOfReferenceUID")
               if k not in first]
    if missing or int(first.get("NumberOfFrames", 1) or 1) != 1:
        raise ValueError(f"the {what} series is not a stack of single-frame images with geometry "
                         f"(missing {', '.join(missing) or 'single frames'})")
    orientation = np.asarray(first.ImageOrientationPatient, dtype=float)
    row, column = orientation[:3], orientation[3:]
    normal = np.cross(row, column)
    datasets.sort(key=lambda ds: float(np.asarray(ds.ImagePositionPatient, dtype=float) @ normal))
    positions = np.array([np.asarray(ds.ImagePositionPatient, dtype=float) for ds in datasets])
    gaps = np.diff(positions @ normal)
    if len(datasets) > 1 and (gaps.min() <= 0 or not np.allclose(gaps, gaps[0], rtol=1e-3, atol=1e-3)):
        raise ValueError(f"the {what} slices are not evenly spaced (gaps {gaps.min():.4g}..{gaps.max():.4g} mm)")
    pixel = np.asarray(first.PixelSpacing, dtype=float)  # (row spacing, column spacing)
    grid = sitk.Image(int(first.Columns), int(first.Rows), len(datasets), sitk.sitkUInt8)
    grid.SetOrigin(tuple(float(v) for v in positions[0]))
    grid.SetSpacing((float(pixel[1]), float(pixel[0]), float(gaps[0]) if len(gaps) else 1.0))
    grid.SetDirection(tuple(float(v) for v in np.column_stack([row, column, normal]).ravel()))
    return datasets, grid
