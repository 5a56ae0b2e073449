"""Write SimpleITK images as real DICOM: CT series, NM SPECT (Bq/mL) and PET series.

Used by the synthetic patient generator (:mod:`luprrt.phantom`) and by the tests of
:mod:`luprrt.io.dicom`. The files are the ones scanners and 3D Slicer exchange:

* CT: CT Image Storage, one file per slice, int16 with RescaleSlope/Intercept (HU).
* SPECT: one multi-frame NM Image Storage file, Image Type ``RECON TOMO``, Units
  ``BQML`` with a RescaleSlope so that float Bq/mL is stored in uint16 to 0.1 %;
  geometry (Image Position/Orientation) in the Detector Information Sequence, where
  PS3.3 C.8.4.10 puts it for reconstructed tomography, and at the top level, where
  many readers look for it.
* PET: PET Image Storage, one file per slice with its own RescaleSlope, Units ``BQML``,
  DecayCorrection ``START``.

All date-times are naive wall-clock times of the imaging site (DICOM DA/TM carry no
time zone). ``write_nm_spect(trap=...)`` reproduces header variants seen in vendor
files (see :data:`NM_TRAPS`) so the reader can be tested against each of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import format_number_as_ds

from ..errors import fix, output_exists
from ..physics import F18_HALF_LIFE_H, GA68_HALF_LIFE_H, LU177_HALF_LIFE_H, SECONDS_PER_HOUR
from .dicom import CT_IMAGE_STORAGE, NM_IMAGE_STORAGE, PET_IMAGE_STORAGE

logger = logging.getLogger(__name__)

# Lu-177 half-life in s (159.528 h, ICRP-107 via luprrt.physics) = 574300.8 s.
LU177_HALF_LIFE_S = LU177_HALF_LIFE_H * SECONDS_PER_HOUR

# PET radionuclides: half-life in s and DICOM codes. Codes: DICOM PS3.16 CID 4020 (PET
# radionuclide) and CID 4021 (PET radiopharmaceutical), as listed in pydicom.sr.codedict.
# Half-lives (with their sources) from luprrt.physics.
PET_RADIONUCLIDES: dict[str, dict] = {
    "F-18": {"half_life_s": F18_HALF_LIFE_H * SECONDS_PER_HOUR, "code": ("77004003", "SCT", "^18^Fluorine"),
             "radiopharmaceutical": "Fluorodeoxyglucose",
             "agent_code": ("35321007", "SCT", "Fluorodeoxyglucose F^18^")},
    "Ga-68": {"half_life_s": GA68_HALF_LIFE_H * SECONDS_PER_HOUR, "code": ("35337001", "SCT", "^68^Gallium"),
              "radiopharmaceutical": "Ga-68 DOTATATE", "agent_code": ("724025002", "SCT", "Dotatate Ga^68^")},
}
# Lu-177 codes: PS3.16 CID 18 (isotopes in radiopharmaceuticals) and CID 25
# (radiopharmaceuticals), as listed in pydicom.sr.codedict.
_LU177_CODE = ("447553000", "SCT", "^177^Lutetium")
_LU177_DOTATATE_CODE = ("781259000", "SCT", "Lutetium^177^ DOTATATE")
# Administration route codes (SNOMED CT, DICOM CID 11 "Route of Administration").
ROUTE_CODES = {"IV": ("47625008", "SCT", "Intravenous route"), "IA": ("58100008", "SCT", "Intra-arterial route")}

# Synthetic SPECT acquisition written into the NM header: 2 heads x 60 views of 3 deg (360 deg),
# 30 s per view (a common post-therapy Lu-177 protocol), 20 % window on the 208 keV peak.
SPECT_VIEWS = 120
SPECT_VIEW_DURATION_MS = 30000
LU177_WINDOW_KEV = (187.5, 229.2)

# Camera sensitivity used by the "counts" trap to turn Bq/mL into reconstructed counts,
# in counts per second per MBq (typical of a medium-energy collimator at 208 keV).
COUNTS_TRAP_CALIBRATION_CPS_PER_MBQ = 15.0

# uint16 full scale used for Bq/mL (slope = max / 65000 keeps 0.1 % down to 1 % of max).
_NM_FULL_SCALE = 65000.0
# int16 full scale per PET slice.
_PET_FULL_SCALE = 32000.0
_CT_RESCALE_INTERCEPT_HU = -1024.0


@dataclass
class DicomPatient:
    """Patient module values written into every file of a synthetic patient."""

    patient_id: str
    patient_name: str = "LuPRRT^Synthetic"
    birth_date: str = "19600101"
    sex: str = "O"
    weight_kg: float = 75.0
    height_m: float = 1.75


def new_uid() -> str:
    """A new globally unique DICOM UID (pydicom's UUID-derived root)."""
    return generate_uid()


def write_ct_series(image_hu: sitk.Image, folder: str | Path, *, patient: DicomPatient, study_uid: str,
                    frame_of_reference_uid: str, acquisition_datetime: datetime,
                    series_description: str = "CT", overwrite: bool = False) -> list[Path]:
    """Write a CT volume in Hounsfield units as a CT Image Storage series (one file per slice).

    Parameters
    ----------
    image_hu : SimpleITK.Image
        3D image in HU (any pixel type); values are rounded to integer HU.
    folder : path
        Output folder; must be empty or absent unless ``overwrite`` is True.
    patient, study_uid, frame_of_reference_uid, acquisition_datetime, series_description
        Header values shared with the other series of the study.

    Returns
    -------
    list of Path
        The slice files, in slice order (``CT_0000.dcm`` is the slice at the image origin).
    """
    origin, direction, spacing, array = _checked_volume(image_hu, "image_hu")
    _check_naive(acquisition_datetime, "acquisition_datetime")
    folder = _output_folder(folder, overwrite)
    stored = np.rint(array - _CT_RESCALE_INTERCEPT_HU)
    if stored.min() < -32768 or stored.max() > 32767:
        raise ValueError(f"image_hu values {array.min():.6g}..{array.max():.6g} HU do not fit int16 "
                         f"with RescaleIntercept {_CT_RESCALE_INTERCEPT_HU:g}")
    stored = stored.astype("<i2")
    series_uid = new_uid()
    slice_dir = direction[:, 2]
    paths = []
    for k in range(stored.shape[0]):
        path = folder / f"CT_{k:04d}.dcm"
        ds = _new_file_dataset(CT_IMAGE_STORAGE)
        _common_modules(ds, patient=patient, study_uid=study_uid, series_uid=series_uid,
                        frame_of_reference_uid=frame_of_reference_uid, modality="CT", series_number=2,
                        series_description=series_description, acquisition_datetime=acquisition_datetime)
        position = origin + k * spacing[2] * slice_dir
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber = 1
        ds.KVP = "120"
        ds.ImagePositionPatient = _ds_list(position)
        ds.ImageOrientationPatient = _ds_list(np.concatenate([direction[:, 0], direction[:, 1]]))
        ds.SliceThickness = _ds(spacing[2])
        ds.SliceLocation = _ds(float(position @ np.cross(direction[:, 0], direction[:, 1])))
        ds.PixelSpacing = _ds_list([spacing[1], spacing[0]])
        ds.RescaleIntercept = _ds(_CT_RESCALE_INTERCEPT_HU)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        _pixel_module(ds, stored[k], signed=True)
        _save(ds, path)
        paths.append(path)
    logger.info("wrote CT series %s (%d slices) to %s", series_uid, len(paths), folder)
    return paths


def write_nm_spect(image_bq_per_ml: sitk.Image, path: str | Path, *, patient: DicomPatient, study_uid: str,
                   frame_of_reference_uid: str, acquisition_datetime: datetime, injection_datetime: datetime,
                   injected_activity_mbq: float, series_description: str = "SPECT Lu-177",
                   overwrite: bool = False, trap: str | None = None, route: str = "IV") -> Path:
    """Write a reconstructed Lu-177 SPECT in Bq/mL as one multi-frame NM Image Storage file.

    Parameters
    ----------
    image_bq_per_ml : SimpleITK.Image
        3D activity concentration at ``acquisition_datetime`` in Bq/mL. Its slice axis
        (third direction column) must be parallel to the normal of the first two.
    path : path
        Output file; refused if it exists unless ``overwrite`` is True.
    acquisition_datetime, injection_datetime : datetime
        Naive wall-clock times; the injection must not be after the acquisition.
    injected_activity_mbq : float
        Administered Lu-177 activity in MBq (RadionuclideTotalDose, in MBq as the NM Isotope module
        defines it, DICOM PS3.3 C.8.4.10).
    trap : str, optional
        Name of a vendor header variant from :data:`NM_TRAPS` to write instead of the
        standard encoding (for reader tests).
    route : {"IV", "IA"}
        Administration route written in the radiopharmaceutical information.

    Returns
    -------
    Path
        The written file.
    """
    if trap is not None and trap not in NM_TRAPS:
        raise ValueError(f"unknown NM trap {trap!r}; choose one of {sorted(NM_TRAPS)}")
    if route not in ROUTE_CODES:
        raise ValueError(f"unknown administration route {route!r}; choose one of {sorted(ROUTE_CODES)}")
    origin, direction, spacing, array = _checked_volume(image_bq_per_ml, "image_bq_per_ml")
    _check_times(acquisition_datetime, injection_datetime)
    if not injected_activity_mbq > 0:
        raise ValueError(f"injected_activity_mbq must be positive, got {injected_activity_mbq}")
    path = _output_file(path, overwrite)
    normal = np.cross(direction[:, 0], direction[:, 1])
    alignment = float(direction[:, 2] @ normal)
    if abs(alignment) < 1.0 - 1e-6:
        raise ValueError("image_bq_per_ml has a slice axis that is not perpendicular to its rows and columns "
                         f"(direction {image_bq_per_ml.GetDirection()}); NM frames cannot encode it")
    slope, intercept, stored = _quantize(array, np.uint16, _NM_FULL_SCALE)

    ds = _new_file_dataset(NM_IMAGE_STORAGE)
    _common_modules(ds, patient=patient, study_uid=study_uid, series_uid=new_uid(),
                    frame_of_reference_uid=frame_of_reference_uid, modality="NM", series_number=3,
                    series_description=series_description, acquisition_datetime=acquisition_datetime)
    n_frames = stored.shape[0]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "RECON TOMO", "EMISSION"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = n_frames
    ds.FrameIncrementPointer = [pydicom.tag.Tag("SliceVector")]
    ds.SliceVector = list(range(1, n_frames + 1))
    ds.NumberOfSlices = n_frames
    ds.PixelSpacing = _ds_list([spacing[1], spacing[0]])
    ds.SliceThickness = _ds(spacing[2])
    ds.SpacingBetweenSlices = _ds(np.sign(alignment) * spacing[2])
    ds.ImagePositionPatient = _ds_list(origin)
    ds.ImageOrientationPatient = _ds_list(np.concatenate([direction[:, 0], direction[:, 1]]))
    ds.Units = "BQML"
    ds.CorrectedImage = ["ATTN", "SCAT"]
    ds.RescaleSlope = _ds(slope)
    ds.RescaleIntercept = _ds(intercept)
    ds.PatientOrientationCodeSequence = Sequence()
    ds.PatientGantryRelationshipCodeSequence = Sequence()
    detector = Dataset()
    detector.ImagePositionPatient = ds.ImagePositionPatient
    detector.ImageOrientationPatient = ds.ImageOrientationPatient
    ds.DetectorInformationSequence = Sequence([detector])
    ds.NumberOfDetectors = 1
    rotation = Dataset()
    rotation.StartAngle = "0"
    rotation.AngularStep = _ds(360.0 / SPECT_VIEWS)
    rotation.RotationDirection = "CW"
    rotation.ScanArc = "180"
    rotation.ActualFrameDuration = SPECT_VIEW_DURATION_MS
    rotation.NumberOfFramesInRotation = SPECT_VIEWS // 2
    ds.RotationInformationSequence = Sequence([rotation])
    ds.NumberOfRotations = 1
    window = Dataset()
    window_range = Dataset()
    window_range.EnergyWindowLowerLimit = _ds(LU177_WINDOW_KEV[0])
    window_range.EnergyWindowUpperLimit = _ds(LU177_WINDOW_KEV[1])
    window.EnergyWindowRangeSequence = Sequence([window_range])
    window.EnergyWindowName = "Lu177 208keV"
    ds.EnergyWindowInformationSequence = Sequence([window])
    ds.NumberOfEnergyWindows = 1
    ds.RadiopharmaceuticalInformationSequence = Sequence([_radiopharmaceutical_item(
        name="Lu-177 DOTATATE", nuclide_code=_LU177_CODE, agent_code=_LU177_DOTATATE_CODE,
        half_life_s=LU177_HALF_LIFE_S, injection_datetime=injection_datetime,
        total_dose=injected_activity_mbq, route=route)])
    _pixel_module(ds, stored, signed=False)
    if trap is not None:
        NM_TRAPS[trap](ds)
    _save(ds, path)
    logger.info("wrote NM SPECT %s (%d frames%s) to %s", ds.SeriesInstanceUID, n_frames,
                f", trap {trap}" if trap else "", path)
    return path


def write_pet_series(image_bq_per_ml: sitk.Image, folder: str | Path, *, patient: DicomPatient,
                     study_uid: str, frame_of_reference_uid: str, acquisition_datetime: datetime,
                     injection_datetime: datetime, injected_activity_mbq: float, radionuclide: str,
                     series_description: str = "PET", overwrite: bool = False) -> list[Path]:
    """Write a PET volume in Bq/mL as a PET Image Storage series (one file per slice).

    The values are taken as decay corrected to the series start (``DecayCorrection``
    ``START``, SeriesDate/Time = ``acquisition_datetime``), as scanners export them.
    Each slice gets its own RescaleSlope (int16 full scale = slice maximum).

    Parameters
    ----------
    radionuclide : {"F-18", "Ga-68"}
        Selects half-life, codes and radiopharmaceutical name (FDG or Ga-68 DOTATATE).
    injected_activity_mbq : float
        Administered activity in MBq (RadionuclideTotalDose is written in Bq, as the PET Isotope module
        defines it, DICOM PS3.3 C.8.9.2).
    """
    if radionuclide not in PET_RADIONUCLIDES:
        raise ValueError(f"unknown PET radionuclide {radionuclide!r}; choose one of "
                         f"{sorted(PET_RADIONUCLIDES)}")
    nuclide = PET_RADIONUCLIDES[radionuclide]
    origin, direction, spacing, array = _checked_volume(image_bq_per_ml, "image_bq_per_ml")
    _check_times(acquisition_datetime, injection_datetime)
    if not injected_activity_mbq > 0:
        raise ValueError(f"injected_activity_mbq must be positive, got {injected_activity_mbq}")
    folder = _output_folder(folder, overwrite)
    series_uid = new_uid()
    radiopharmaceutical = _radiopharmaceutical_item(
        name=nuclide["radiopharmaceutical"], nuclide_code=nuclide["code"], agent_code=nuclide["agent_code"],
        half_life_s=nuclide["half_life_s"], injection_datetime=injection_datetime,
        total_dose=injected_activity_mbq * 1e6)
    paths = []
    for k in range(array.shape[0]):
        slope, intercept, stored = _quantize(array[k], np.int16, _PET_FULL_SCALE)
        path = folder / f"PT_{k:04d}.dcm"
        ds = _new_file_dataset(PET_IMAGE_STORAGE)
        _common_modules(ds, patient=patient, study_uid=study_uid, series_uid=series_uid,
                        frame_of_reference_uid=frame_of_reference_uid, modality="PT", series_number=4,
                        series_description=series_description, acquisition_datetime=acquisition_datetime)
        position = origin + k * spacing[2] * direction[:, 2]
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.InstanceNumber = k + 1
        ds.ImageIndex = k + 1
        ds.NumberOfSlices = array.shape[0]
        ds.SeriesType = ["STATIC", "IMAGE"]
        ds.Units = "BQML"
        ds.CountsSource = "EMISSION"
        ds.DecayCorrection = "START"
        ds.CorrectedImage = ["DECY", "ATTN", "SCAT", "DTIM", "RAN", "NORM"]
        ds.ReconstructionMethod = "OSEM"
        ds.RandomsCorrectionMethod = "DLYD"
        ds.AttenuationCorrectionMethod = "CT"
        ds.DecayFactor = "1"
        ds.FrameReferenceTime = "0"
        ds.ActualFrameDuration = 180000
        ds.ImagePositionPatient = _ds_list(position)
        ds.ImageOrientationPatient = _ds_list(np.concatenate([direction[:, 0], direction[:, 1]]))
        ds.SliceThickness = _ds(spacing[2])
        ds.PixelSpacing = _ds_list([spacing[1], spacing[0]])
        ds.RescaleSlope = _ds(slope)
        ds.RescaleIntercept = _ds(intercept)
        ds.RescaleType = "BQML"
        ds.PatientOrientationCodeSequence = Sequence()
        ds.PatientGantryRelationshipCodeSequence = Sequence()
        ds.RadiopharmaceuticalInformationSequence = Sequence([radiopharmaceutical])
        _pixel_module(ds, stored, signed=True)
        _save(ds, path)
        paths.append(path)
    logger.info("wrote PET series %s (%s, %d slices) to %s", series_uid, radionuclide, len(paths), folder)
    return paths


# --- NM vendor variants ("traps"), each a mutation of the standard encoding ------------------------

def _nm_frame_positions(ds: Dataset) -> np.ndarray:
    """Image Position of every frame (file order) of a standard-encoded NM dataset, mm (n, 3)."""
    orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
    normal = np.cross(orientation[:3], orientation[3:])
    steps = np.arange(int(ds.NumberOfFrames))[:, None] * float(ds.SpacingBetweenSlices) * normal
    return np.asarray(ds.ImagePositionPatient, dtype=float) + steps


def _reverse_frames(ds: Dataset) -> None:
    frames = np.frombuffer(ds.PixelData, dtype="<u2").reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    ds.PixelData = np.ascontiguousarray(frames[::-1]).tobytes()


def _set_first_position(ds: Dataset, position: np.ndarray) -> None:
    ds.ImagePositionPatient = _ds_list(position)
    ds.DetectorInformationSequence[0].ImagePositionPatient = ds.ImagePositionPatient


def _trap_geometry_only_in_detector_sequence(ds: Dataset) -> None:
    """Image Position/Orientation and Pixel Spacing only inside DetectorInformationSequence[0]."""
    ds.DetectorInformationSequence[0].PixelSpacing = ds.PixelSpacing
    del ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing


def _trap_negative_spacing(ds: Dataset) -> None:
    """Frames run against the slice normal, told by a negative SpacingBetweenSlices."""
    spacing = float(ds.SpacingBetweenSlices)
    if spacing > 0:
        positions = _nm_frame_positions(ds)
        _reverse_frames(ds)
        _set_first_position(ds, positions[-1])
        ds.SpacingBetweenSlices = _ds(-spacing)


def _trap_head_to_feet_positive_spacing(ds: Dataset) -> None:
    """Frames run against the normal, SpacingBetweenSlices positive anyway; per-frame positions tell."""
    positions = _nm_frame_positions(ds)
    if float(ds.SpacingBetweenSlices) > 0:
        _reverse_frames(ds)
        positions = positions[::-1]
    _set_first_position(ds, positions[0])
    ds.SpacingBetweenSlices = _ds(abs(float(ds.SpacingBetweenSlices)))
    items = []
    for position in positions:
        plane = Dataset()
        plane.ImagePositionPatient = _ds_list(position)
        item = Dataset()
        item.PlanePositionSequence = Sequence([plane])
        items.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(items)


def _trap_missing_spacing(ds: Dataset) -> None:
    """No SpacingBetweenSlices; only SliceThickness (contiguous slices)."""
    del ds.SpacingBetweenSlices


def _trap_rwv_only(ds: Dataset) -> None:
    """Bq/mL only through a Real World Value Mapping; no Rescale, no Units."""
    mapping = Dataset()
    mapping.add_new(0x00409216, "US", 0)  # RealWorldValueFirstValueMapped
    mapping.add_new(0x00409211, "US", 65535)  # RealWorldValueLastValueMapped
    mapping.RealWorldValueIntercept = float(ds.RescaleIntercept)
    mapping.RealWorldValueSlope = float(ds.RescaleSlope)
    mapping.LUTExplanation = "Bq/ml"
    mapping.LUTLabel = "BQML"
    mapping.MeasurementUnitsCodeSequence = Sequence([_code_item(("Bq/ml", "UCUM", "becquerels/milliliter"))])
    ds.RealWorldValueMappingSequence = Sequence([mapping])
    del ds.RescaleSlope, ds.RescaleIntercept, ds.Units


def _trap_counts(ds: Dataset) -> None:
    """Reconstructed counts (Units CNTS): Bq/mL x voxel mL x view duration x sensitivity."""
    voxel_ml = float(np.prod(np.asarray(ds.PixelSpacing, dtype=float))) * float(ds.SliceThickness) / 1000.0
    duration_s = ds.RotationInformationSequence[0].ActualFrameDuration / 1000.0
    counts_per_bq_per_ml = voxel_ml * duration_s * COUNTS_TRAP_CALIBRATION_CPS_PER_MBQ / 1e6
    ds.RescaleSlope = _ds(float(ds.RescaleSlope) * counts_per_bq_per_ml)
    ds.RescaleIntercept = _ds(float(ds.RescaleIntercept) * counts_per_bq_per_ml)
    ds.Units = "CNTS"


def _trap_missing_injection_datetime(ds: Dataset) -> None:
    """No RadiopharmaceuticalStartDateTime nor RadiopharmaceuticalStartTime."""
    item = ds.RadiopharmaceuticalInformationSequence[0]
    del item.RadiopharmaceuticalStartDateTime, item.RadiopharmaceuticalStartTime


def _trap_injection_start_time_only(ds: Dataset) -> None:
    """Only RadiopharmaceuticalStartTime (no date), as older headers have it."""
    del ds.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime


def _trap_missing_acquisition_datetime(ds: Dataset) -> None:
    """No AcquisitionDate/AcquisitionTime/AcquisitionDateTime."""
    del ds.AcquisitionDate, ds.AcquisitionTime, ds.AcquisitionDateTime


def _trap_injection_after_acquisition(ds: Dataset) -> None:
    """Injection one hour after the acquisition start (a clock or data-entry error)."""
    acquisition = datetime.strptime(ds.AcquisitionDateTime[:14], "%Y%m%d%H%M%S")
    item = ds.RadiopharmaceuticalInformationSequence[0]
    injection = acquisition + timedelta(hours=1)
    item.RadiopharmaceuticalStartDateTime = _dt(injection)
    item.RadiopharmaceuticalStartTime = _tm(injection)


def _trap_missing_injected_activity(ds: Dataset) -> None:
    """No RadionuclideTotalDose."""
    del ds.RadiopharmaceuticalInformationSequence[0].RadionuclideTotalDose


def _trap_injected_activity_in_bq(ds: Dataset) -> None:
    """RadionuclideTotalDose in Bq, as the PET module has it, although NM defines MBq (seen in real files)."""
    item = ds.RadiopharmaceuticalInformationSequence[0]
    item.RadionuclideTotalDose = _ds(float(item.RadionuclideTotalDose) * 1e6)


def _trap_per_frame_rescale(ds: Dataset) -> None:
    """Every frame with its own RescaleSlope/Intercept (functional groups); the top level says 1 and 0.

    The slopes sit in PerFrameFunctionalGroupsSequence -> PixelValueTransformationSequence.
    """
    n_frames = int(ds.NumberOfFrames)
    stored = np.frombuffer(ds.PixelData, dtype="<u2").reshape(n_frames, ds.Rows, ds.Columns)
    values = stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    frames, items = [], []
    for frame in values:
        slope, intercept, quantised = _quantize(frame, np.uint16, _NM_FULL_SCALE)
        frames.append(quantised)
        transformation = Dataset()
        transformation.RescaleSlope = _ds(slope)
        transformation.RescaleIntercept = _ds(intercept)
        transformation.RescaleType = "BQML"
        item = Dataset()
        item.PixelValueTransformationSequence = Sequence([transformation])
        items.append(item)
    ds.PixelData = np.ascontiguousarray(np.stack(frames)).astype("<u2").tobytes()
    ds.PerFrameFunctionalGroupsSequence = Sequence(items)
    ds.RescaleSlope = _ds(1.0)
    ds.RescaleIntercept = _ds(0.0)


def _trap_conflicting_acquisition_datetime(ds: Dataset) -> None:
    """AcquisitionDate/AcquisitionTime two hours before AcquisitionDateTime (a disagreeing header)."""
    acquisition = datetime.strptime(ds.AcquisitionDateTime[:14], "%Y%m%d%H%M%S") - timedelta(hours=2)
    ds.AcquisitionDate, ds.AcquisitionTime = _da(acquisition), _tm(acquisition)


def _trap_conflicting_injection_time(ds: Dataset) -> None:
    """RadiopharmaceuticalStartTime one hour after the time in RadiopharmaceuticalStartDateTime."""
    item = ds.RadiopharmaceuticalInformationSequence[0]
    injection = datetime.strptime(item.RadiopharmaceuticalStartDateTime[:14], "%Y%m%d%H%M%S")
    item.RadiopharmaceuticalStartTime = _tm(injection + timedelta(hours=1))


NM_TRAPS: dict[str, Callable[[Dataset], None]] = {
    "geometry_only_in_detector_sequence": _trap_geometry_only_in_detector_sequence,
    "negative_spacing": _trap_negative_spacing,
    "head_to_feet_positive_spacing": _trap_head_to_feet_positive_spacing,
    "missing_spacing": _trap_missing_spacing,
    "rwv_only": _trap_rwv_only,
    "counts": _trap_counts,
    "missing_injection_datetime": _trap_missing_injection_datetime,
    "injection_start_time_only": _trap_injection_start_time_only,
    "missing_acquisition_datetime": _trap_missing_acquisition_datetime,
    "injection_after_acquisition": _trap_injection_after_acquisition,
    "missing_injected_activity": _trap_missing_injected_activity,
    "injected_activity_in_bq": _trap_injected_activity_in_bq,
    "per_frame_rescale": _trap_per_frame_rescale,
    "conflicting_acquisition_datetime": _trap_conflicting_acquisition_datetime,
    "conflicting_injection_time": _trap_conflicting_injection_time,
}
"""Vendor NM header variants by name: each mutates a standard-encoded dataset in place."""


# --- shared helpers ------------------------------------------------------------------------------

def _checked_volume(image: sitk.Image, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Origin (3,), direction (3, 3; columns = axes), spacing (x, y, z) and float64 array (z, y, x)."""
    if (not isinstance(image, sitk.Image) or image.GetDimension() != 3
            or image.GetNumberOfComponentsPerPixel() != 1):
        raise ValueError(f"{name} must be a 3D scalar SimpleITK image")
    array = sitk.GetArrayFromImage(image).astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains {np.count_nonzero(~np.isfinite(array))} non-finite voxels")
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    origin = np.asarray(image.GetOrigin(), dtype=float)
    return origin, direction, np.asarray(image.GetSpacing(), dtype=float), array


def _quantize(values: np.ndarray, dtype: type, full_scale: float) -> tuple[float, float, np.ndarray]:
    """Slope, intercept and integer array with ``values ~= stored * slope + intercept``.

    Non-negative data keep intercept 0 so that zero stays exactly zero; slope = max / full_scale.
    """
    low = min(float(values.min()), 0.0) if np.issubdtype(dtype, np.unsignedinteger) else 0.0
    high = float(np.abs(values).max()) if low == 0.0 else float(values.max()) - low
    slope = float(_ds(high / full_scale)) if high > 0 else 1.0
    intercept = float(_ds(low))
    stored = np.rint((values - intercept) / slope).astype(np.dtype(dtype).newbyteorder("<"))
    return slope, intercept, stored


def _check_naive(value: datetime, name: str) -> None:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime.datetime, got {value!r}")
    if value.tzinfo is not None:
        raise ValueError(f"{name} must be a naive wall-clock datetime (DICOM DA/TM carry no time zone), "
                         f"got {value.isoformat()}")


def _check_times(acquisition_datetime: datetime, injection_datetime: datetime) -> None:
    _check_naive(acquisition_datetime, "acquisition_datetime")
    _check_naive(injection_datetime, "injection_datetime")
    if injection_datetime > acquisition_datetime:
        raise ValueError(f"injection_datetime {injection_datetime.isoformat()} is after acquisition_datetime "
                         f"{acquisition_datetime.isoformat()}")


def _output_folder(folder: str | Path, overwrite: bool) -> Path:
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise FileExistsError(f"{folder} is not empty; {fix('overwrite', 'True') or 'choose an empty folder'} to write "
                              "into it")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _output_file(path: str | Path, overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise output_exists(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _ds(value: float) -> str:
    """A Decimal String (at most 16 characters) for ``value``."""
    return format_number_as_ds(float(value))


def _ds_list(values) -> list[str]:
    return [_ds(v) for v in values]


def _da(value: datetime) -> str:
    return f"{value:%Y%m%d}"


def _tm(value: datetime) -> str:
    return f"{value:%H%M%S}" + (f".{value.microsecond:06d}" if value.microsecond else "")


def _dt(value: datetime) -> str:
    return _da(value) + _tm(value)


def _code_item(code: tuple[str, str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code
    return item


def _radiopharmaceutical_item(*, name: str, nuclide_code: tuple[str, str, str],
                              agent_code: tuple[str, str, str] | None, half_life_s: float,
                              injection_datetime: datetime, total_dose: float,
                              route: str = "IV") -> Dataset:
    """A RadiopharmaceuticalInformationSequence item; ``total_dose`` in the module's unit (NM MBq, PET Bq)."""
    item = Dataset()
    item.Radiopharmaceutical = name
    item.RadionuclideCodeSequence = Sequence([_code_item(nuclide_code)])
    if agent_code is not None:
        item.RadiopharmaceuticalCodeSequence = Sequence([_code_item(agent_code)])
    item.AdministrationRouteCodeSequence = Sequence([_code_item(ROUTE_CODES[route])])
    item.RadiopharmaceuticalStartTime = _tm(injection_datetime)
    item.RadiopharmaceuticalStartDateTime = _dt(injection_datetime)
    item.RadionuclideTotalDose = _ds(total_dose)
    item.RadionuclideHalfLife = _ds(half_life_s)
    return item


def _new_file_dataset(sop_class_uid: str) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = new_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = pydicom.uid.PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset("", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    if int(pydicom.__version__.split(".")[0]) < 3:  # pydicom 2.4 (Slicer 5.10) encodes from these flags
        ds.is_little_endian, ds.is_implicit_VR = True, False
    return ds


def _common_modules(ds: Dataset, *, patient: DicomPatient, study_uid: str, series_uid: str,
                    frame_of_reference_uid: str, modality: str, series_number: int, series_description: str,
                    acquisition_datetime: datetime) -> None:
    """Patient, study, series, frame of reference, equipment and acquisition/content times."""
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = patient.patient_name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.PatientWeight = _ds(patient.weight_kg)
    ds.PatientSize = _ds(patient.height_m)
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = _da(acquisition_datetime)
    ds.StudyTime = _tm(acquisition_datetime)
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.Modality = modality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.SeriesDate = _da(acquisition_datetime)
    ds.SeriesTime = _tm(acquisition_datetime)
    ds.FrameOfReferenceUID = frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "LuPRRT synthetic"
    ds.AcquisitionDate = _da(acquisition_datetime)
    ds.AcquisitionTime = _tm(acquisition_datetime)
    ds.AcquisitionDateTime = _dt(acquisition_datetime)
    ds.ContentDate = _da(acquisition_datetime)
    ds.ContentTime = _tm(acquisition_datetime)
    ds.PatientPosition = "HFS"


def _pixel_module(ds: Dataset, stored: np.ndarray, *, signed: bool) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = np.ascontiguousarray(stored, dtype="<i2" if signed else "<u2").tobytes()


def _save(ds: FileDataset, path: Path) -> None:
    if int(pydicom.__version__.split(".")[0]) >= 3:
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.save_as(path, write_like_original=False)
