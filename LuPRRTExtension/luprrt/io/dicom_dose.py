"""Absorbed-dose maps as DICOM RT Dose, time-integrated-activity maps as DICOM Parametric Map.

* :func:`write_rt_dose` writes a dose map in Gy as an RT Dose object (PS3.3 A.18) on the map's
  own grid (the SPECT grid) and the frame of reference of the CT and SPECT it was computed
  from, so treatment-planning and dosimetry systems overlay it on that CT. Values are stored
  as 16-bit unsigned integers times Dose Grid Scaling: a resolution of 1/65000 of the maximum
  (0.6 mGy for a 40 Gy maximum). 32 bits would be finer, but dciodvfy (dicom3tools 2022, the
  validator sites have from Debian) cannot parse 32-bit pixel data. A radiopharmaceutical therapy has no RT Plan to reference: the Dose Summation
  Type is ``RECORD`` (dose of delivered treatment) and the method is named in Dose Comment.
* :func:`write_tia_map` writes a time-integrated activity map in Bq h/mL as a Parametric
  Map (PS3.3 A.75) with highdicom: 32-bit float voxels, a Real World Value Mapping whose unit
  is UCUM ``Bq.h/ml`` and whose quantity is LuPRRT's private code TIA, derived from the
  cycle's SPECTs.
* :func:`read_rt_dose` reads an RT Dose back into a SimpleITK image in Gy.

References
----------
DICOM PS3.3 A.18 (RT Dose IOD), C.8.8.3 (RT Dose Module), A.75 (Parametric Map IOD),
C.7.6.16.2.11 (Real World Value Mapping).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.uid import generate_uid
from pydicom.valuerep import format_number_as_ds

from .. import __version__
from ._dicom_out import (
    PATIENT_STUDY_KEYS,
    atomic_dicom_write,
    checked_output_file,
    new_file_dataset,
    volume_images,
)
from .dicom_codes import PRIVATE_SCHEME, PRIVATE_SCHEME_NAME, PRIVATE_SCHEME_VERSION, QUANTITIES
from .dicom_seg import MANUFACTURER

RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"
_UINT16_FULL_SCALE = 65000.0
def _frames(image: sitk.Image, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frames (z, y, x) ordered along the row x column normal, first position, direction, spacing."""
    if not isinstance(image, sitk.Image) or image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{name} must be a 3D scalar SimpleITK image")
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} has {np.count_nonzero(~np.isfinite(array))} non-finite voxels")
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    origin = np.asarray(image.GetOrigin(), dtype=float)
    normal = np.cross(direction[:, 0], direction[:, 1])
    alignment = float(direction[:, 2] @ normal)
    if abs(abs(alignment) - 1.0) > 1e-6:
        raise ValueError(f"{name}: slices are not perpendicular to rows and columns; DICOM frames cannot encode it")
    if alignment < 0:
        origin = origin + (array.shape[0] - 1) * spacing[2] * direction[:, 2]
        array = array[::-1]
        direction = direction.copy()
        direction[:, 2] = normal
    return array, origin, direction, spacing


def write_rt_dose(dose_gy: sitk.Image, path: str | Path, *, reference: pydicom.Dataset, method: str,
                  series_description: str = "LuPRRT absorbed dose", series_number: int = 302,
                  overwrite: bool = False) -> Path:
    """Write an absorbed-dose map (Gy) as a DICOM RT Dose in the frame of reference of ``reference``.

    Parameters
    ----------
    dose_gy : dose map in Gy (non-negative)
    reference : a dataset of the cycle's CT or SPECT: patient, study and frame of reference
    method : how the dose was computed (written in Dose Comment), e.g. "voxel S-value convolution"
    """
    path = checked_output_file(path, overwrite)
    array, origin, direction, spacing = _frames(dose_gy, "dose map")
    if array.min() < 0:
        raise ValueError(f"dose map has negative values (min {array.min():.4g} Gy); an absorbed dose is >= 0")
    if "FrameOfReferenceUID" not in reference:
        raise ValueError("the reference dataset has no Frame of Reference UID; give the cycle's CT or SPECT")
    scaling = float(format_number_as_ds(float(array.max()) / _UINT16_FULL_SCALE)) if array.max() > 0 else 1.0
    stored = np.rint(array / scaling).astype("<u2")
    ds = new_file_dataset(RT_DOSE_STORAGE)
    for key in PATIENT_STUDY_KEYS:
        setattr(ds, key, reference.get(key, ""))
    now = datetime.now()
    ds.Modality = "RTDOSE"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.OperatorsName = ""
    ds.FrameOfReferenceUID = reference.FrameOfReferenceUID
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = "LuPRRT"
    ds.SoftwareVersions = __version__
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = f"{now:%Y%m%d}", f"{now:%H%M%S}"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.PixelSpacing = [format_number_as_ds(spacing[1]), format_number_as_ds(spacing[0])]
    ds.ImageOrientationPatient = [format_number_as_ds(v) for v in (*direction[:, 0], *direction[:, 1])]
    ds.ImagePositionPatient = [format_number_as_ds(v) for v in origin]
    ds.SliceThickness = format_number_as_ds(spacing[2])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = stored.shape[0]
    ds.FrameIncrementPointer = pydicom.tag.Tag("GridFrameOffsetVector")
    ds.Rows, ds.Columns = stored.shape[1:]
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.DoseUnits = "GY"
    ds.DoseType = "PHYSICAL"
    ds.DoseSummationType = "PLAN_OVERVIEW"
    ds.DoseComment = f"177Lu PRRT; {method}"[:64]
    ds.GridFrameOffsetVector = [format_number_as_ds(k * spacing[2]) for k in range(stored.shape[0])]
    ds.DoseGridScaling = format_number_as_ds(scaling)
    ds.TissueHeterogeneityCorrection = "IMAGE"
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    atomic_dicom_write(ds, path)
    return path


def read_rt_dose(path: str | Path) -> sitk.Image:
    """An RT Dose file as a SimpleITK image in Gy (geometry from its frames)."""
    path = Path(path)
    ds = pydicom.dcmread(path)
    if ds.get("SOPClassUID") != RT_DOSE_STORAGE:
        raise ValueError(f"{path}: not an RT Dose object (SOP class {ds.get('SOPClassUID')})")
    if str(ds.get("DoseUnits", "")).upper() != "GY":
        raise ValueError(f"{path}: dose units {ds.get('DoseUnits')!r}, expected GY")
    values = ds.pixel_array.astype(np.float64) * float(ds.DoseGridScaling)
    if values.ndim == 2:
        values = values[np.newaxis]
    orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
    offsets = np.asarray(ds.GridFrameOffsetVector, dtype=float)
    image = sitk.GetImageFromArray(values)
    image.SetOrigin(tuple(float(v) for v in ds.ImagePositionPatient))
    pixel = np.asarray(ds.PixelSpacing, dtype=float)
    step = float(offsets[1] - offsets[0]) if len(offsets) > 1 else float(ds.get("SliceThickness", 1.0))
    image.SetSpacing((float(pixel[1]), float(pixel[0]), step))
    normal = np.cross(orientation[:3], orientation[3:])
    image.SetDirection(tuple(float(v) for v in np.column_stack([orientation[:3], orientation[3:], normal]).ravel()))
    return image


def write_tia_map(tia_bq_h_per_ml: sitk.Image, path: str | Path, *, ct: Sequence[pydicom.Dataset],
                  spects: Sequence[pydicom.Dataset], series_description: str = "LuPRRT time-integrated activity", series_number: int = 303,
                  overwrite: bool = False) -> Path:
    """Write a time-integrated activity map (Bq h/mL) as a DICOM Parametric Map derived from ``sources``.

    ``spects`` are the SPECT datasets the map was computed from (if known), ``ct`` the series of the same
    frame of reference: highdicom takes patient, study and frame of reference from the CT
    slices (it cannot read the geometry of a multi-frame NM image); the SPECTs are listed in
    the Referenced Series Sequence of the Common Instance Reference Module.
    """
    import highdicom as hd

    path = checked_output_file(path, overwrite)
    if not ct:
        raise ValueError("a Parametric Map needs the CT series of the SPECTs' frame of reference")
    array, origin, direction, spacing = _frames(tia_bq_h_per_ml, "TIA map")
    tia = QUANTITIES["tia_mbq_h"].concept
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="TIA", lut_explanation="time-integrated activity concentration",
        unit=hd.sr.CodedConcept("Bq.h/ml", "UCUM", "becquerel hour per milliliter"),
        value_range=(float(array.min()), float(array.max())), slope=1.0, intercept=0.0,
        quantity_definition=hd.sr.CodedConcept(tia.value, tia.scheme, tia.meaning))
    positions = [hd.PlanePositionSequence(hd.CoordinateSystemNames.PATIENT, origin + k * spacing[2] * direction[:, 2])
                 for k in range(array.shape[0])]
    parametric = hd.pm.ParametricMap(
        source_images=list(ct), pixel_array=array.astype(np.float32), series_instance_uid=hd.UID(),
        series_number=series_number, sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
        manufacturer_model_name="LuPRRT", software_versions=__version__, device_serial_number="none",
        contains_recognizable_visual_features=False, real_world_value_mappings=[mapping],
        pixel_measures=hd.PixelMeasuresSequence(pixel_spacing=(spacing[1], spacing[0]), slice_thickness=spacing[2]),
        plane_orientation=hd.PlaneOrientationSequence(hd.CoordinateSystemNames.PATIENT,
                                                      (*direction[:, 0], *direction[:, 1])),
        plane_positions=positions, content_label="LUPRRT_TIA",
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=float(array.max()) / 2.0,
                                                         window_width=max(float(array.max()), 1e-9))])
    parametric.SeriesDescription = series_description
    parametric.Laterality = ""  # General Series type 2C: the abdomen is not a paired body part
    for spect in spects:
        instance = pydicom.Dataset()
        instance.ReferencedSOPClassUID = spect.SOPClassUID
        instance.ReferencedSOPInstanceUID = spect.SOPInstanceUID
        series = pydicom.Dataset()
        series.SeriesInstanceUID = spect.SeriesInstanceUID
        series.ReferencedInstanceSequence = [instance]
        parametric.ReferencedSeriesSequence.append(series)
    scheme = pydicom.Dataset()
    scheme.CodingSchemeDesignator = PRIVATE_SCHEME
    scheme.CodingSchemeName = PRIVATE_SCHEME_NAME
    scheme.CodingSchemeVersion = PRIVATE_SCHEME_VERSION
    scheme.CodingSchemeResponsibleOrganization = "LuPRRT developers"
    parametric.CodingSchemeIdentificationSequence = [scheme]
    atomic_dicom_write(parametric, path)
    return path


def read_tia_map(path: str | Path) -> sitk.Image:
    """A LuPRRT TIA Parametric Map as a SimpleITK image in Bq h/mL."""
    import highdicom as hd

    path = Path(path)
    parametric = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(path), copy=False)
    image = volume_images(parametric.get_volume())[0]
    return sitk.Cast(image, sitk.sitkFloat64)
