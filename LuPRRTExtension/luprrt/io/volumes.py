"""Images that know their units: the :class:`QuantitativeImage` record and NRRD / NIfTI I/O.

A voxel value without a unit is not a measurement, so LuPRRT writes the unit into the
file and refuses to read a volume whose unit it cannot find:

* NRRD: a key/value field ``luprrt_units:=Bq/mL`` (plus the acquisition and injection
  date-times and the injected activity when known); Slicer keeps such fields.
* NIfTI: the 80-character ``descrip`` header field holds ``luprrt_units=Bq/mL``.

NIfTI stores RAS coordinates on disk; SimpleITK converts to and from LPS, the frame
used everywhere in LuPRRT (and in DICOM and Slicer's NRRD files).
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import SimpleITK as sitk

from ..errors import fix, output_exists
from ..physics import hours_between

# Accepted voxel units -> (unit stored in memory, factor to multiply the values by).
UNITS: dict[str, tuple[str, float]] = {
    "Bq/mL": ("Bq/mL", 1.0),
    "kBq/mL": ("Bq/mL", 1e3),
    "MBq/mL": ("Bq/mL", 1e6),
    "HU": ("HU", 1.0),
    "SUVbw": ("SUVbw", 1.0),
    "mm2/s": ("mm2/s", 1.0),
    "counts": ("counts", 1.0),
    "Bq h/mL": ("Bq h/mL", 1.0),  # time-integrated activity concentration
    "MBq h/mL": ("Bq h/mL", 1e6),
    "Gy": ("Gy", 1.0),  # absorbed dose
}
UNITS_KEY = "luprrt_units"
_NRRD_DATETIME_KEYS = ("acquisition_datetime", "injection_datetime")
_NRRD_ACTIVITY_KEY = "luprrt_injected_activity_mbq"
_NIFTI_UNITS_PATTERN = re.compile(rf"{UNITS_KEY}=([^;\x00]+)")
VOLUME_SUFFIXES = (".nrrd", ".nii", ".nii.gz")


@dataclass
class PetInfo:
    """PET header values that standardised uptake values (SUV) need later.

    Attributes
    ----------
    patient_weight_kg : float or None
        PatientWeight (0010,1030).
    radiopharmaceutical : str or None
        Radiopharmaceutical (0018,0031), e.g. "Fluorodeoxyglucose".
    radionuclide : str or None
        Code meaning of RadionuclideCodeSequence, e.g. "^18^Fluorine".
    half_life_h : float or None
        RadionuclideHalfLife (0018,1075), converted from s to h.
    decay_correction : str or None
        DecayCorrection (0054,1102): "START" (to the series start), "ADMIN" or "NONE".
    series_datetime : datetime or None
        SeriesDate/SeriesTime, the reference time of "START" decay correction.
    """

    patient_weight_kg: float | None = None
    radiopharmaceutical: str | None = None
    radionuclide: str | None = None
    half_life_h: float | None = None
    decay_correction: str | None = None
    series_datetime: datetime | None = None


@dataclass
class QuantitativeImage:
    """A SimpleITK image (LPS geometry, float32) with its unit and acquisition timing.

    Attributes
    ----------
    image : SimpleITK.Image
        Voxel values in ``units`` (Bq/mL for SPECT and PET).
    units : str
        One of the canonical keys of :data:`UNITS` ("Bq/mL", "HU", "SUVbw", "mm2/s", "counts").
    source : str
        File or folder the image was read from.
    series_uid : str or None
        DICOM SeriesInstanceUID when read from DICOM.
    acquisition_datetime, injection_datetime : datetime or None
        Naive wall-clock times of the imaging site.
    injected_activity_mbq : float or None
        Administered activity, MBq.
    warnings : list of str
        What the reader had to assume (also logged at WARNING level).
    pet : PetInfo or None
        PET-only header values for SUV.
    patient_id : str or None
        DICOM PatientID (0010,0020) when read from DICOM: images of one patient must agree.
    """

    image: sitk.Image
    units: str
    source: str = ""
    series_uid: str | None = None
    acquisition_datetime: datetime | None = None
    injection_datetime: datetime | None = None
    injected_activity_mbq: float | None = None
    warnings: list[str] = field(default_factory=list)
    pet: PetInfo | None = None
    patient_id: str | None = None

    @property
    def hours_post_injection(self) -> float:
        """Time from injection to acquisition start, h (ValueError if either is unknown)."""
        if self.acquisition_datetime is None or self.injection_datetime is None:
            raise ValueError(f"{self.source or 'image'}: hours after injection unknown; acquisition "
                             f"({self.acquisition_datetime}) and injection ({self.injection_datetime}) "
                             "date-times are both needed")
        return hours_between(self.injection_datetime, self.acquisition_datetime)


def canonical_units(units: str, source: str = "") -> tuple[str, float]:
    """(canonical unit, value factor) for an accepted unit name (case-insensitive)."""
    return UNITS[_accepted_name(units, source)]


def _accepted_name(units: str, source: str = "") -> str:
    by_lower = {name.lower(): name for name in UNITS}
    name = by_lower.get(str(units).strip().lower())
    if name is None:
        where = f"{source}: " if source else ""
        raise ValueError(f"{where}unknown units {units!r}; accepted: {', '.join(UNITS)}")
    return name


def read_volume(path: str | Path, units: str | None = None) -> QuantitativeImage:
    """Read a NRRD or NIfTI volume with its unit.

    Parameters
    ----------
    path : path
        ``.nrrd``, ``.nii`` or ``.nii.gz`` file.
    units : str, optional
        Unit of the voxel values when the file does not record one (see :data:`UNITS`);
        kBq/mL and MBq/mL are converted to Bq/mL. If the file records a different unit,
        a ValueError is raised.

    Returns
    -------
    QuantitativeImage
        float32 image in canonical units; NRRD files written by :func:`write_volume`
        also restore acquisition/injection date-times and injected activity.
    """
    path = Path(path)
    _check_suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"volume file not found: {path}")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise ValueError(f"{path}: cannot read it as a {'NRRD' if path.name.endswith('.nrrd') else 'NIfTI'} "
                         f"volume ({_itk_reason(error)}); give an intact file") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{path}: expected a 3D scalar volume, got {image.GetDimension()}D with "
                         f"{image.GetNumberOfComponentsPerPixel()} components per voxel")
    file_units = _file_units(image)
    if file_units is None and units is None:
        raise ValueError(f"{path}: the voxel units are not recorded in the file; "
                         f"{fix('units', repr('Bq/mL')) or 'record them in the file'} (one of: {', '.join(UNITS)})")
    if file_units is not None and units is not None and canonical_units(file_units) != canonical_units(units):
        raise ValueError(f"{path}: the file says its voxel units are {file_units!r} but {units!r} was given")
    unit_name, factor = canonical_units(file_units or units, str(path))
    values = sitk.Cast(image, sitk.sitkFloat32)
    if factor != 1.0:
        values = values * factor
    result = QuantitativeImage(image=values, units=unit_name, source=str(path))
    for key in _NRRD_DATETIME_KEYS:
        if image.HasMetaDataKey(f"luprrt_{key}"):
            setattr(result, key, datetime.fromisoformat(image.GetMetaData(f"luprrt_{key}")))
    if image.HasMetaDataKey(_NRRD_ACTIVITY_KEY):
        result.injected_activity_mbq = float(image.GetMetaData(_NRRD_ACTIVITY_KEY))
    return result


def write_volume(image: sitk.Image | QuantitativeImage, path: str | Path, units: str,
                 overwrite: bool = False) -> Path:
    """Write a volume as NRRD or NIfTI, recording its voxel unit in the header.

    Parameters
    ----------
    image : SimpleITK.Image or QuantitativeImage
        Values already in ``units``. For a QuantitativeImage written to NRRD, its date-times
        and injected activity are stored too.
    path : path
        ``.nrrd``, ``.nii`` or ``.nii.gz``; refused if it exists unless ``overwrite``.
    units : str
        One of :data:`UNITS` (must agree with ``image.units`` for a QuantitativeImage).
    """
    path = Path(path)
    _check_suffix(path)
    unit_name = _accepted_name(units, str(path))
    record = image if isinstance(image, QuantitativeImage) else None
    if record is not None:
        if canonical_units(record.units) != canonical_units(unit_name):
            raise ValueError(f"units={units!r} disagrees with the image's own units {record.units!r}")
        image = record.image
    if (not isinstance(image, sitk.Image) or image.GetDimension() != 3
            or image.GetNumberOfComponentsPerPixel() != 1):
        raise ValueError(f"write_volume needs a 3D scalar SimpleITK image or QuantitativeImage, got "
                         f"{type(image).__name__}")
    if path.exists() and not overwrite:
        raise output_exists(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A new image with only the geometry: a copy made with sitk.Image(image) shares the caller's
    # metadata dictionary (erasing a key there erases it in the caller's image too).
    out = sitk.GetImageFromArray(sitk.GetArrayViewFromImage(image))
    out.CopyInformation(image)
    if path.name.endswith(".nrrd"):
        out.SetMetaData(UNITS_KEY, unit_name)
        if record is not None:
            for key in _NRRD_DATETIME_KEYS:
                value = getattr(record, key)
                if value is not None:
                    out.SetMetaData(f"luprrt_{key}", value.isoformat())
            if record.injected_activity_mbq is not None:
                out.SetMetaData(_NRRD_ACTIVITY_KEY, repr(float(record.injected_activity_mbq)))
    else:
        # NIfTI keeps free text only in `descrip` (80 characters), which ITK fills from ITK_FileNotes.
        out.SetMetaData("ITK_FileNotes", f"{UNITS_KEY}={unit_name}")
    try:
        sitk.WriteImage(out, str(path), useCompression=True)
    except RuntimeError as error:
        # ITK reports a full disk, a file-size limit or a permission problem only as text.
        raise OSError(errno.EIO, f"cannot write the volume ({_itk_reason(error)})", str(path)) from None
    return path


def _itk_reason(error: RuntimeError) -> str:
    """The last, human part of an ITK exception text (which starts with source file and line)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = lines[-1] if lines else type(error).__name__
    return reason.split("ERROR:", 1)[-1].strip()


def _file_units(image: sitk.Image) -> str | None:
    if image.HasMetaDataKey(UNITS_KEY):
        return image.GetMetaData(UNITS_KEY).strip()
    if image.HasMetaDataKey("descrip"):
        match = _NIFTI_UNITS_PATTERN.search(image.GetMetaData("descrip"))
        if match:
            return match.group(1).strip()
    return None


def _check_suffix(path: Path) -> None:
    if not path.name.lower().endswith(VOLUME_SUFFIXES):
        raise ValueError(f"{path}: not a NRRD or NIfTI file name (expected one of "
                         f"{', '.join(VOLUME_SUFFIXES)})")
