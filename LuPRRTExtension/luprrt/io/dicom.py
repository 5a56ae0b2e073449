"""Read quantitative DICOM: CT in HU, reconstructed NM SPECT and PET in Bq/mL.

All readers use pydicom and build the geometry themselves (ITK's DCMTK path was seen
to swap the x/y spacing). Images are returned in LPS patient coordinates, float32, and
*right-handed*: direction columns are the row cosine, the column cosine and their
cross product (the slice normal), with slices sorted along the normal, as GDCM does
for CT series. Files are never ordered by InstanceNumber or file name.

Where a reconstructed NM SPECT frame lies (the rule implemented by :func:`read_nm_spect`):

1. Image Orientation/Position (Patient) come from ``DetectorInformationSequence[0]``
   (where PS3.3 C.8.4.10 puts them for RECON TOMO), else from the top level; Pixel
   Spacing from the top level, else from the detector item.
2. If every frame has its own position (``PerFrameFunctionalGroupsSequence`` ->
   ``PlanePositionSequence``), those positions are used as they are. Vendors that
   order frames head-to-feet write a positive SpacingBetweenSlices regardless, so
   its sign is then not trusted (a disagreement is reported in ``warnings``).
3. Otherwise frame ``f`` with slice number ``s`` (SliceVector, 1-based) lies at
   ``IPP + (s - 1) * SpacingBetweenSlices * n``, ``n`` = row x column cosine: a
   negative spacing means the slices run against the normal. Without
   SpacingBetweenSlices, SliceThickness is used (contiguous slices) with a warning.
4. The frames are then sorted by position along ``n`` and checked for uniform spacing.

Without per-frame positions, a file whose frames run head-to-feet while declaring a
positive spacing cannot be told from a correct one: the header carries no other
direction information.

Voxel values: a frame's own RescaleSlope/Intercept (``PerFrameFunctionalGroupsSequence`` ->
``PixelValueTransformationSequence``) or Real World Value Mapping (per frame, shared, or top
level) takes precedence over the top-level values, as positions do.

Administered activity: RadionuclideTotalDose (0018,1074) is in MBq in the NM Isotope module
(DICOM PS3.3 C.8.4.10) and in Bq in the PET Isotope module (PS3.3 C.8.9.2). Real NM files
are known to carry Bq there; a value that is only plausible in the other unit (over 1e5
"MBq" in NM, under 1e4 "Bq" in PET) is converted with a warning naming the tag. A missing
value is no error: the activity is then None and must be given where it is needed.

Date-times: when both AcquisitionDateTime and AcquisitionDate/Time, or both
RadiopharmaceuticalStartDateTime and RadiopharmaceuticalStartTime, are present and disagree
by more than a second, the DT value is used and a warning names both tags.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from ..errors import or_fix
from ..physics import LU177_HALF_LIFE_H, SECONDS_PER_HOUR
from .volumes import VOLUME_SUFFIXES, PetInfo, QuantitativeImage, canonical_units, read_volume

__all__ = ["PetInfo", "QuantitativeImage", "read_ct_series", "read_image", "read_nm_spect", "read_patient_id",
           "read_pet_series"]

logger = logging.getLogger(__name__)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
_KIND_BY_SOP_CLASS = {CT_IMAGE_STORAGE: "CT", NM_IMAGE_STORAGE: "NM", PET_IMAGE_STORAGE: "PT"}

# Positions closer than this along the normal are the same slice; spacing may deviate by
# max(_SPACING_TOLERANCE_MM, _SPACING_TOLERANCE_REL * spacing) before a gap is reported.
_SAME_POSITION_MM = 1e-3
_SPACING_TOLERANCE_MM = 0.01
_SPACING_TOLERANCE_REL = 1e-3
# Relative mismatch of RadionuclideHalfLife vs Lu-177 above which the SPECT reader warns.
_HALF_LIFE_TOLERANCE_REL = 0.01
# Concentration units a Real World Value Mapping may carry (UCUM code values), to Bq/mL.
_RWV_BQ_PER_ML_FACTOR = {"bq/ml": 1.0, "kbq/ml": 1e3, "mbq/ml": 1e6}
# RadionuclideTotalDose unit per module: MBq in NM (PS3.3 C.8.4.10), Bq in PET (PS3.3 C.8.9.2), as the
# factor from the header value to MBq.
_TOTAL_DOSE_TO_MBQ = {"NM": 1.0, "PT": 1e-6}
# Header values beyond which the other unit is meant: 1e5 "MBq" (100 GBq) exceeds any Lu-177 therapy
# (7.4 GBq per cycle) by an order of magnitude, so it is Bq (7.4e9 for 7.4 GBq); 1e4 "Bq" (10 kBq) is far
# below any PET injection (100-600 MBq), so it is MBq.
_NM_DOSE_MAX_MBQ = 1e5
_PET_DOSE_MIN_BQ = 1e4
# Date-times that agree within this (s) are the same instant written twice (DT keeps fractions, TM may not).
_DATETIME_AGREEMENT_S = 1.0

_DA_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_TM_RE = re.compile(r"^(\d{2})(\d{2})(\d{2})?(?:\.(\d{1,6}))?$")
_DT_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:\.(\d{1,6}))?(?:[+-]\d{4})?$")


@dataclass
class _Geometry:
    """Where the voxels of a slice stack are: ``order`` maps output slices to input slices."""

    order: np.ndarray
    origin: np.ndarray
    direction: np.ndarray  # 3x3, columns = x, y, z axes
    spacing: tuple[float, float, float]

    def image(self, stacked: np.ndarray) -> sitk.Image:
        """A float32 SimpleITK image from slices (input order, shape (n, rows, columns))."""
        image = sitk.GetImageFromArray(np.ascontiguousarray(stacked[self.order], dtype=np.float32))
        image.SetOrigin(tuple(float(v) for v in self.origin))
        image.SetSpacing(tuple(float(v) for v in self.spacing))
        image.SetDirection(tuple(float(v) for v in self.direction.ravel()))
        return image


@contextmanager
def _header_errors(path: Path) -> Iterator[None]:
    """Turn a damaged header's surprises (a value of the wrong type or size) into one ValueError naming the file."""
    try:
        yield
    except ValueError as error:
        text = " ".join(str(error).split())
        if str(path) in text:
            raise
        raise ValueError(f"{path}: a DICOM header value cannot be used ({text}); check the file") from error
    except (TypeError, AttributeError, IndexError, KeyError, OverflowError, struct.error, EOFError) as error:
        text = " ".join(str(error).split())
        raise ValueError(f"{path}: malformed DICOM header ({type(error).__name__}: {text}); check the file"
                         ) from error


# --- CT ------------------------------------------------------------------------------------------

def read_ct_series(folder: str | Path, series_uid: str | None = None) -> sitk.Image:
    """Read a CT Image Storage series as a float32 image in Hounsfield units.

    Parameters
    ----------
    folder : path
        Folder searched recursively for DICOM files (other files are ignored).
    series_uid : str, optional
        SeriesInstanceUID to read when the folder holds several CT series.

    Returns
    -------
    SimpleITK.Image
        HU (RescaleSlope/Intercept applied per slice), slices sorted by
        ImagePositionPatient along the slice normal.

    Raises
    ------
    ValueError
        No or several CT series (the message lists their UIDs), non-uniform slice
        spacing (the message names the gap and its files), or missing geometry tags.
    """
    return _read_ct(Path(folder), series_uid).image


def _read_ct(source: Path, series_uid: str | None) -> QuantitativeImage:
    series = _select_series(_scan(source), CT_IMAGE_STORAGE, series_uid, source)
    with _header_errors(source):
        geometry = _slice_stack_geometry(series, source)
        pixels = np.stack([_rescaled_pixels(pydicom.dcmread(path), path) for path, _ in series])
        first = series[0][1]
        return QuantitativeImage(image=geometry.image(pixels), units="HU", source=str(source),
                                 series_uid=str(first.SeriesInstanceUID),
                                 acquisition_datetime=_acquisition_from_header(first, series[0][0]),
                                 patient_id=_text(first, "PatientID"))


# --- NM SPECT ------------------------------------------------------------------------------------

def read_nm_spect(path_or_folder: str | Path, *, calibration_cps_per_mbq: float | None = None,
                  injection_datetime: datetime | date | None = None,
                  injected_activity_mbq: float | None = None, acquisition_datetime: datetime | None = None,
                  frame_duration_s: float | None = None, series_uid: str | None = None) -> QuantitativeImage:
    """Read a reconstructed SPECT (NM Image Storage, RECON TOMO) in Bq/mL.

    Voxel values, in order of preference: a Real World Value Mapping whose measurement
    unit is Bq/ml (kBq/ml, MBq/ml) applied to the stored values; Units ``BQML`` with
    RescaleSlope/Intercept; counts (Units ``CNTS`` or none) converted with the camera
    calibration:

        C [Bq/mL] = counts / (t_view [s] * K [cps/MBq]) * 1e6 / V_voxel [mL]

    where ``t_view`` is ActualFrameDuration (top level, else RotationInformationSequence).
    The calibration factor must have been measured with the same reconstruction.
    Geometry: see the module docstring for the slice-position rule.

    Parameters
    ----------
    path_or_folder : path
        The NM file, or a folder holding one NM series: one multi-frame file, or one
        single-frame file per slice (placed by each file's ImagePositionPatient, each
        converted with its own rescale).
    calibration_cps_per_mbq : float, optional
        Camera/reconstruction sensitivity K, counts per second per MBq; required for counts.
    injection_datetime : datetime or date, optional
        Overrides RadiopharmaceuticalStartDateTime; a date alone is combined with the
        header's RadiopharmaceuticalStartTime.
    injected_activity_mbq : float, optional
        Overrides RadionuclideTotalDose (MBq in the NM header, PS3.3 C.8.4.10); needed where the
        header lacks it and the activity is used (uptake in % of the administered activity).
    acquisition_datetime : datetime, optional
        Overrides AcquisitionDateTime / AcquisitionDate + AcquisitionTime.
    frame_duration_s : float, optional
        Overrides ActualFrameDuration (per view) for the counts conversion.
    series_uid : str, optional
        Which NM series to read from a folder holding several.

    Returns
    -------
    QuantitativeImage
        float32 Bq/mL image with acquisition/injection date-times and injected activity (None
        when neither the header nor ``injected_activity_mbq`` gives it). All date-times are
        naive wall-clock times (time-zone offsets in DT values are dropped).
    """
    source = Path(path_or_folder)
    # The caller's numbers are checked before any header is read, so a bad one is not blamed on the file.
    for name, value in (("calibration_cps_per_mbq", calibration_cps_per_mbq), ("frame_duration_s", frame_duration_s)):
        if value is not None and not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    series = _select_series(_scan(source), NM_IMAGE_STORAGE, series_uid, source)
    if len(series) > 1 and any(int(ds.get("NumberOfFrames", 1) or 1) != 1 for _, ds in series):
        raise ValueError(f"{source}: NM series {series[0][1].SeriesInstanceUID} has {len(series)} multi-frame "
                         "files; a reconstructed SPECT is one multi-frame NM file or one single-frame file per "
                         "slice")
    path = series[0][0] if len(series) == 1 else source
    with _header_errors(path):
        return _read_nm_files(series, source, calibration_cps_per_mbq, injection_datetime, injected_activity_mbq,
                              acquisition_datetime, frame_duration_s)


def _read_nm_files(series: list[tuple[Path, Dataset]], source: Path, calibration_cps_per_mbq,
                   injection_datetime, injected_activity_mbq, acquisition_datetime,
                   frame_duration_s) -> QuantitativeImage:
    """One multi-frame NM file, or a stack of single-frame NM files (one per slice, each placed by its position)."""
    path = series[0][0]
    ds = pydicom.dcmread(path)
    warnings: list[str] = []
    _check_reconstructed_tomo(ds, path, warnings)
    geometry = _nm_geometry(ds, path, warnings) if len(series) == 1 else _slice_stack_geometry(series, source)
    voxel_ml = float(np.prod(geometry.spacing)) / 1000.0
    slices = [ds] + [pydicom.dcmread(file) for file, _ in series[1:]]
    # Each file converts its own pixels: vendors give every slice file its own rescale slope.
    values = np.concatenate([
        _nm_bq_per_ml(item, file, _stored_frames(item, file), voxel_ml, calibration_cps_per_mbq, frame_duration_s,
                      warnings if k == 0 else [])
        for k, (item, (file, _)) in enumerate(zip(slices, series, strict=True))])
    acquisition, injection, activity_mbq = _administration(
        ds, path, _acquisition_from_header(ds, path, warnings), acquisition_datetime=acquisition_datetime,
        injection_datetime=injection_datetime, injected_activity_mbq=injected_activity_mbq, warnings=warnings,
        modality="NM")
    _check_lu177(ds, path, warnings)
    return QuantitativeImage(image=geometry.image(values), units="Bq/mL",
                             source=str(path if len(series) == 1 else source),
                             series_uid=str(ds.get("SeriesInstanceUID", "")) or None,
                             acquisition_datetime=acquisition, injection_datetime=injection,
                             injected_activity_mbq=activity_mbq, warnings=warnings,
                             patient_id=_text(ds, "PatientID"))


def _check_reconstructed_tomo(ds: Dataset, path: Path, warnings: list[str]) -> None:
    image_type = [str(v).upper() for v in ds.get("ImageType", [])]
    kind = image_type[2] if len(image_type) > 2 else ""
    if kind == "RECON TOMO":
        return
    if kind in ("STATIC", "DYNAMIC", "GATED", "WHOLE BODY", "TOMO", "GATED TOMO", "RECON GATED TOMO"):
        raise ValueError(f"{path}: ImageType (0008,0008) value 3 is {kind!r}; LuPRRT reads reconstructed, "
                         "non-gated SPECT ('RECON TOMO'), not projections or gated data")
    _warn(warnings, path, f"ImageType (0008,0008) {image_type} does not say 'RECON TOMO'; read as a "
                          "reconstructed SPECT")


def _nm_geometry(ds: Dataset, path: Path, warnings: list[str]) -> _Geometry:
    detectors = ds.get("DetectorInformationSequence") or []
    detector = detectors[0] if len(detectors) else None
    orientation = _top_or_detector(ds, detector, "ImageOrientationPatient", path, warnings, in_detector=True)
    pixel_spacing = _top_or_detector(ds, detector, "PixelSpacing", path, warnings, in_detector=False)
    row, column, normal = _orientation_axes(orientation, path)
    n_frames = int(ds.get("NumberOfFrames", 1))
    labels = [f"frame {f + 1}" for f in range(n_frames)]
    per_frame = _per_frame_positions(ds, n_frames)
    declared = _declared_slice_step(ds, path, warnings if per_frame is None else None)
    if per_frame is not None:
        positions = per_frame
        steps_along = np.diff(positions @ normal)
        header_spacing = _float(ds, "SpacingBetweenSlices", None)
        sense = np.sign(np.median(steps_along)) if steps_along.size else 0.0
        if header_spacing and sense and np.sign(header_spacing) != sense:
            _warn(warnings, path, f"frames run {'against' if sense < 0 else 'along'} the slice normal "
                                  f"although {_label('SpacingBetweenSlices')} = {header_spacing:g} mm says "
                                  "otherwise; the per-frame positions were used")
    else:
        if declared is None:
            raise ValueError(f"{path}: neither {_label('SpacingBetweenSlices')} nor "
                             f"{_label('SliceThickness')} is present; the SPECT slice spacing is unknown")
        slice_numbers = _slice_numbers(ds, n_frames, path)
        position = _top_or_detector(ds, detector, "ImagePositionPatient", path, warnings, in_detector=True)
        positions = position + ((slice_numbers - 1) * declared)[:, None] * normal
    order, origin, spacing_z = _stack_along_normal(positions, normal, labels, path)
    if spacing_z is None:
        spacing_z = abs(declared) if declared else 1.0
    return _Geometry(order=order, origin=origin, direction=np.column_stack([row, column, normal]),
                     spacing=(float(pixel_spacing[1]), float(pixel_spacing[0]), float(spacing_z)))


def _top_or_detector(ds: Dataset, detector: Dataset | None, keyword: str, path: Path, warnings: list[str], *,
                     in_detector: bool) -> np.ndarray:
    """A geometry attribute, top level or DetectorInformationSequence[0] (preferred if in_detector)."""
    top = _floats(ds, keyword)
    inner = _floats(detector, keyword) if detector is not None else None
    if top is None and inner is None:
        raise ValueError(f"{path}: {_label(keyword)} is missing both at the top level and in "
                         f"{_label('DetectorInformationSequence')}[0]; cannot place the SPECT in patient "
                         "space")
    both = top is not None and inner is not None
    if both and (top.shape != inner.shape or not np.allclose(top, inner, atol=1e-3)):
        _warn(warnings, path, f"{_label(keyword)} differs between the top level {top.tolist()} and "
                              f"DetectorInformationSequence[0] {inner.tolist()}; using the "
                              f"{'detector item' if in_detector else 'top level'}")
    if in_detector:
        return inner if inner is not None else top
    return top if top is not None else inner


def _declared_slice_step(ds: Dataset, path: Path, warnings: list[str] | None) -> float | None:
    """SpacingBetweenSlices (signed), else SliceThickness (with a warning if ``warnings``), in mm."""
    spacing = _floats(ds, "SpacingBetweenSlices")
    if spacing is not None:
        if spacing[0] == 0:
            raise ValueError(f"{path}: {_label('SpacingBetweenSlices')} is 0")
        return float(spacing[0])
    thickness = _floats(ds, "SliceThickness")
    if thickness is None or thickness[0] <= 0:
        return None
    if warnings is not None:
        _warn(warnings, path, f"{_label('SpacingBetweenSlices')} missing; using {_label('SliceThickness')} = "
                              f"{thickness[0]:g} mm as the slice spacing (contiguous slices assumed)")
    return float(thickness[0])


def _per_frame_positions(ds: Dataset, n_frames: int) -> np.ndarray | None:
    """ImagePositionPatient of every frame from PerFrameFunctionalGroupsSequence, or None."""
    groups = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(groups) != n_frames:
        return None
    positions = []
    for group in groups:
        planes = group.get("PlanePositionSequence") or []
        position = _floats(planes[0], "ImagePositionPatient") if len(planes) else None
        if position is None or position.size != 3:
            return None
        positions.append(position)
    return np.asarray(positions)


def _slice_numbers(ds: Dataset, n_frames: int, path: Path) -> np.ndarray:
    """1-based slice number of each frame: SliceVector (0054,0080) when valid, else frame order."""
    if "SliceVector" not in ds:
        return np.arange(1, n_frames + 1, dtype=float)
    numbers = np.asarray(ds.SliceVector, dtype=float).ravel()
    if numbers.size != n_frames or set(numbers.astype(int)) != set(range(1, n_frames + 1)):
        raise ValueError(f"{path}: {_label('SliceVector')} does not number the {n_frames} frames "
                         f"1..{n_frames} once each (several energy windows, detectors or gates in one "
                         "reconstruction?)")
    return numbers


def _stored_frames(ds: Dataset, path: Path) -> np.ndarray:
    stored = _decoded(ds, path)
    if stored.ndim == 2:
        stored = stored[np.newaxis]
    expected = (int(ds.get("NumberOfFrames", 1)), int(ds.Rows), int(ds.Columns))
    if stored.shape != expected:
        raise ValueError(f"{path}: pixel data shape {stored.shape} is not NumberOfFrames x Rows x Columns "
                         f"{expected}")
    return stored.astype(np.float64)


def _nm_bq_per_ml(ds: Dataset, path: Path, stored: np.ndarray, voxel_ml: float,
                  calibration_cps_per_mbq: float | None, frame_duration_s: float | None,
                  warnings: list[str]) -> np.ndarray:
    rwv = _rwv_bq_per_ml(ds, path, stored.shape[0])
    units = str(ds.get("Units", "") or "").strip().upper()
    if rwv is not None or units == "BQML":
        if calibration_cps_per_mbq is not None:
            _warn(warnings, path, "calibration_cps_per_mbq ignored: the image is already in Bq/mL")
        if rwv is not None:
            slope, intercept, factor = rwv
            return (stored * slope + intercept) * factor
        slope, intercept = _frame_rescale(ds, path, stored.shape[0])
        return stored * slope + intercept
    if units not in ("CNTS", ""):
        raise ValueError(f"{path}: {_label('Units')} = {units!r} is not supported for SPECT; expected BQML "
                         "(Bq/mL) or CNTS (counts, converted with a camera calibration)")
    unit_text = (f"{_label('Units')} = 'CNTS'" if units
                 else f"no {_label('Units')} and no Bq/ml Real World Value Mapping")
    if calibration_cps_per_mbq is None:
        raise ValueError(f"{path}: the SPECT voxel values are counts ({unit_text}); give the camera "
                         "sensitivity for this reconstruction (counts per second per MBq)"
                         f"{or_fix('calibration_cps_per_mbq')} to convert them to Bq/mL")
    duration_s = _view_duration_s(ds, path, frame_duration_s)
    slope, intercept = _frame_rescale(ds, path, stored.shape[0])
    counts = stored * slope + intercept
    logger.info("%s: counts converted to Bq/mL with %g cps/MBq and %g s per view", path,
                calibration_cps_per_mbq, duration_s)
    return counts / (duration_s * calibration_cps_per_mbq) * 1e6 / voxel_ml


def _frame_items(ds: Dataset, n_frames: int, sequence: str) -> list[list[Dataset]]:
    """Per frame: the items of ``sequence`` in its functional group, else in the shared group ([] if none)."""
    shared_groups = ds.get("SharedFunctionalGroupsSequence") or []
    shared = list(shared_groups[0].get(sequence) or []) if len(shared_groups) else []
    groups = ds.get("PerFrameFunctionalGroupsSequence") or []
    if len(groups) != n_frames:
        return [shared] * n_frames
    return [list(group.get(sequence) or []) or shared for group in groups]


def _frame_rescale(ds: Dataset, path: Path, n_frames: int) -> tuple[np.ndarray | float, np.ndarray | float]:
    """RescaleSlope and Intercept per frame (shape (n, 1, 1)) from functional groups, else the top level."""
    top = (_float(ds, "RescaleSlope", 1.0), _float(ds, "RescaleIntercept", 0.0))
    items = [found[0] if found else None for found in _frame_items(ds, n_frames, "PixelValueTransformationSequence")]
    if all(item is None for item in items):
        return top
    slopes = np.array([top[0] if item is None else _float(item, "RescaleSlope", top[0]) for item in items])
    intercepts = np.array([top[1] if item is None else _float(item, "RescaleIntercept", top[1]) for item in items])
    if not (np.all(np.isfinite(slopes)) and np.all(np.isfinite(intercepts))):
        raise ValueError(f"{path}: a {_label('PixelValueTransformationSequence')} item has a non-finite "
                         "RescaleSlope or RescaleIntercept")
    return slopes[:, None, None], intercepts[:, None, None]


def _rwv_bq_per_ml(ds: Dataset, path: Path,
                   n_frames: int) -> tuple[np.ndarray | float, np.ndarray | float, float] | None:
    """(slope, intercept, factor to Bq/mL) of a Real World Value Mapping in Bq/ml, kBq/ml or MBq/ml.

    A mapping in the functional groups (per frame or shared) gives per-frame slopes and
    intercepts (shape (n, 1, 1)); otherwise the top-level mapping applies to every frame.
    """
    per_frame = [_concentration_mapping(items, path)
                 for items in _frame_items(ds, n_frames, "RealWorldValueMappingSequence")]
    if any(mapping is not None for mapping in per_frame):
        if any(mapping is None for mapping in per_frame):
            raise ValueError(f"{path}: only some frames have a Bq/ml {_label('RealWorldValueMappingSequence')}; "
                             "the others cannot be scaled")
        factors = {mapping[2] for mapping in per_frame}
        if len(factors) > 1:
            raise ValueError(f"{path}: the frames' {_label('RealWorldValueMappingSequence')} items use "
                             "different units")
        return (np.array([m[0] for m in per_frame])[:, None, None],
                np.array([m[1] for m in per_frame])[:, None, None], factors.pop())
    return _concentration_mapping(list(ds.get("RealWorldValueMappingSequence") or []), path)


def _concentration_mapping(items: list[Dataset], path: Path) -> tuple[float, float, float] | None:
    for item in items:
        codes = item.get("MeasurementUnitsCodeSequence") or []
        code = str(codes[0].get("CodeValue", "")).strip().lower() if len(codes) else ""
        if code not in _RWV_BQ_PER_ML_FACTOR:
            continue
        slope = _float(item, "RealWorldValueSlope", None)
        if slope is None:
            raise ValueError(f"{path}: the Bq/ml {_label('RealWorldValueMappingSequence')} item has no "
                             f"{_label('RealWorldValueSlope')} (a lookup-table mapping is not supported)")
        return (slope, _float(item, "RealWorldValueIntercept", 0.0), _RWV_BQ_PER_ML_FACTOR[code])
    return None


def _view_duration_s(ds: Dataset, path: Path, frame_duration_s: float | None) -> float:
    if frame_duration_s is not None:
        return float(frame_duration_s)
    candidates = [ds, *(ds.get("RotationInformationSequence") or [])]
    for item in candidates:
        duration_ms = _float(item, "ActualFrameDuration", None)
        if duration_ms is not None and duration_ms > 0:
            return duration_ms / 1000.0
    raise ValueError(f"{path}: {_label('ActualFrameDuration')} (ms per view) is missing at the top level and "
                     f"in {_label('RotationInformationSequence')}; correct the header{or_fix('frame_duration_s')} to "
                     "convert counts")


def _check_lu177(ds: Dataset, path: Path, warnings: list[str]) -> None:
    items = ds.get("RadiopharmaceuticalInformationSequence") or []
    half_life_s = _float(items[0], "RadionuclideHalfLife", None) if len(items) else None
    lu177_s = LU177_HALF_LIFE_H * SECONDS_PER_HOUR
    if half_life_s is not None and abs(half_life_s / lu177_s - 1.0) > _HALF_LIFE_TOLERANCE_REL:
        _warn(warnings, path, f"{_label('RadionuclideHalfLife')} = {half_life_s:g} s is not Lu-177's "
                              f"{lu177_s:g} s; LuPRRT's decay corrections assume Lu-177")


# --- PET -----------------------------------------------------------------------------------------

def read_pet_series(folder: str | Path, *, series_uid: str | None = None,
                    injection_datetime: datetime | date | None = None,
                    injected_activity_mbq: float | None = None,
                    acquisition_datetime: datetime | None = None) -> QuantitativeImage:
    """Read a PET Image Storage series (Units BQML) as Bq/mL, with what SUV needs.

    RescaleSlope/Intercept are applied per slice. ``acquisition_datetime`` is the
    earliest slice AcquisitionDate/Time (else SeriesDate/Time); ``pet`` holds patient
    weight, radiopharmaceutical, half-life, DecayCorrection and SeriesDate/Time. When
    only RadiopharmaceuticalStartTime is present it is taken on the acquisition day
    (the day before if that would follow the acquisition), as usual for same-day PET.
    """
    source = Path(folder)
    series = _select_series(_scan(source), PET_IMAGE_STORAGE, series_uid, source)
    with _header_errors(source):
        return _read_pet(source, series, injection_datetime, injected_activity_mbq, acquisition_datetime)


def _read_pet(source: Path, series, injection_datetime, injected_activity_mbq,
              acquisition_datetime) -> QuantitativeImage:
    geometry = _slice_stack_geometry(series, source)
    first_path, first = series[0]
    unit_values = {str(ds.get("Units", "")).strip().upper() for _, ds in series}
    if unit_values != {"BQML"}:
        raise ValueError(f"{source}: PET {_label('Units')} is {sorted(unit_values)}; only BQML (Bq/mL) "
                         "is supported")
    pixels = np.stack([_rescaled_pixels(pydicom.dcmread(path), path) for path, _ in series])
    warnings: list[str] = []
    series_datetime = _combine_da_tm(first, "SeriesDate", "SeriesTime", first_path)
    slice_times = [t for t in (_acquisition_from_header(ds, path, warnings if k == 0 else None)
                               for k, (path, ds) in enumerate(series)) if t is not None]
    header_acquisition = min(slice_times) if slice_times else series_datetime
    if not slice_times and series_datetime is not None:
        _warn(warnings, first_path, "no AcquisitionDate/Time; SeriesDate/Time taken as acquisition start")
    acquisition, injection, activity_mbq = _administration(
        first, first_path, header_acquisition, acquisition_datetime=acquisition_datetime,
        injection_datetime=injection_datetime, injected_activity_mbq=injected_activity_mbq, warnings=warnings,
        modality="PT", same_day_injection=True)
    items = first.get("RadiopharmaceuticalInformationSequence") or []
    item = items[0] if len(items) else Dataset()
    nuclide_codes = item.get("RadionuclideCodeSequence") or []
    nuclide = str(nuclide_codes[0].get("CodeMeaning", "")) if len(nuclide_codes) else ""
    weight_kg = _float(first, "PatientWeight", None)
    if not weight_kg:
        weight_kg = None
        _warn(warnings, first_path, f"{_label('PatientWeight')} missing: body-weight SUV will need it")
    half_life_s = _float(item, "RadionuclideHalfLife", None)
    pet = PetInfo(patient_weight_kg=weight_kg,
                  radiopharmaceutical=str(item.get("Radiopharmaceutical", "")) or None,
                  radionuclide=nuclide or None,
                  half_life_h=half_life_s / SECONDS_PER_HOUR if half_life_s else None,
                  decay_correction=str(first.get("DecayCorrection", "")).strip().upper() or None,
                  series_datetime=series_datetime)
    return QuantitativeImage(image=geometry.image(pixels), units="Bq/mL", source=str(source),
                             series_uid=str(first.SeriesInstanceUID), acquisition_datetime=acquisition,
                             injection_datetime=injection, injected_activity_mbq=activity_mbq,
                             warnings=warnings, pet=pet, patient_id=_text(first, "PatientID"))


# --- dispatcher ----------------------------------------------------------------------------------

def read_image(path: str | Path, units: str | None = None, **dicom_options) -> QuantitativeImage:
    """Read any LuPRRT input image: a DICOM folder or file (CT, NM SPECT, PET) or NRRD/NIfTI.

    Parameters
    ----------
    path : path
        ``.nrrd`` / ``.nii`` / ``.nii.gz`` file, a DICOM file, or a folder holding one
        DICOM image series (CT, NM or PET).
    units : str, optional
        For NRRD/NIfTI: the voxel unit when the file does not record it. For DICOM (which
        records its unit) it is only checked: a different unit raises ValueError.
    **dicom_options
        Passed to :func:`read_nm_spect` or :func:`read_pet_series` (e.g.
        ``calibration_cps_per_mbq``, ``injection_datetime``), or ``series_uid``.
    """
    path = Path(path)
    if path.name.lower().endswith(VOLUME_SUFFIXES):
        return read_volume(path, units)
    headers = _scan(path)
    series_uid = dicom_options.pop("series_uid", None)
    with _header_errors(path):
        return _read_scanned(path, headers, series_uid, units, dicom_options)


def _read_scanned(path: Path, headers, series_uid: str | None, units: str | None,
                  dicom_options: dict) -> QuantitativeImage:
    if path.is_file():
        if not headers:
            raise ValueError(f"{path}: not a DICOM, NRRD or NIfTI file")
        series_uid = str(headers[0][1].get("SeriesInstanceUID", "")) or None
        if _KIND_BY_SOP_CLASS.get(headers[0][1].get("SOPClassUID")) in ("CT", "PT"):
            path = path.parent
    kinds = {_KIND_BY_SOP_CLASS[ds.SOPClassUID] for _, ds in headers
             if ds.get("SOPClassUID") in _KIND_BY_SOP_CLASS
             and (series_uid is None or ds.get("SeriesInstanceUID") == series_uid)}
    if len(kinds) != 1:
        found = ", ".join(sorted(kinds)) or "no CT, NM or PET images"
        raise ValueError(f"{path}: found {found}; point at a folder (or file) with one image series"
                         f"{or_fix('series_uid')}")
    kind = kinds.pop()
    if kind == "CT":
        if dicom_options:
            raise ValueError(f"options {sorted(dicom_options)} do not apply to a CT series")
        result = _read_ct(path, series_uid)
    elif kind == "NM":
        result = read_nm_spect(path, series_uid=series_uid, **dicom_options)
    else:
        result = read_pet_series(path, series_uid=series_uid, **dicom_options)
    if units is not None and canonical_units(units) != (result.units, 1.0):
        raise ValueError(f"{path}: the DICOM {kind} image is in {result.units}, not {units!r}")
    return result


def read_patient_id(path: str | Path) -> str | None:
    """PatientID (0010,0020) of the first DICOM file at ``path`` (file or folder); None for other files."""
    path = Path(path)
    if path.name.lower().endswith(VOLUME_SUFFIXES) or not path.exists():
        return None
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=["PatientID"])
        except (InvalidDicomError, EOFError, struct.error, ValueError, TypeError, KeyError, OSError):
            continue
        return _text(ds, "PatientID")
    return None


# --- shared: finding files and series ------------------------------------------------------------

def _scan(path: Path) -> list[tuple[Path, Dataset]]:
    """(file, header without pixels) of every DICOM file at ``path`` (a file or a folder, recursive)."""
    if not path.exists():
        raise FileNotFoundError(f"DICOM input not found: {path}")
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    headers = []
    for file in files:
        try:
            headers.append((file, pydicom.dcmread(file, stop_before_pixels=True)))
        except (InvalidDicomError, EOFError, struct.error, ValueError, TypeError, KeyError, IndexError,
                AttributeError, OverflowError) as error:
            logger.debug("skipping %s: not a readable DICOM file (%s)", file, error)
    return headers


def _select_series(headers: Iterable[tuple[Path, Dataset]], sop_class_uid: str, series_uid: str | None,
                   source: Path) -> list[tuple[Path, Dataset]]:
    kind = _KIND_BY_SOP_CLASS[sop_class_uid]
    groups: dict[str, list[tuple[Path, Dataset]]] = {}
    for path, ds in headers:
        if ds.get("SOPClassUID") == sop_class_uid:
            groups.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((path, ds))
    if not groups:
        raise ValueError(f"{source}: no {kind} image files (SOP Class {sop_class_uid}) found")
    listing = "; ".join(f"{uid} ({str(files[0][1].get('SeriesDescription', ''))!r}, {len(files)} files)"
                        for uid, files in sorted(groups.items()))
    if series_uid is not None:
        if series_uid not in groups:
            raise ValueError(f"{source}: no {kind} series with SeriesInstanceUID {series_uid}; "
                             f"found {listing}")
        return groups[series_uid]
    if len(groups) > 1:
        raise ValueError(f"{source}: {len(groups)} {kind} series found ({listing}); point at a folder with "
                         f"one series{or_fix('series_uid')}")
    return next(iter(groups.values()))


# --- shared: geometry ----------------------------------------------------------------------------

def _slice_stack_geometry(series: list[tuple[Path, Dataset]], source: Path) -> _Geometry:
    """Geometry of a single-frame-per-file series (CT, PET) from every file's position."""
    first_path, first = series[0]
    orientation = _required_floats(first, "ImageOrientationPatient", first_path)
    pixel_spacing = _required_floats(first, "PixelSpacing", first_path)
    for path, ds in series[1:]:
        if not np.allclose(_required_floats(ds, "ImageOrientationPatient", path), orientation, atol=1e-4):
            raise ValueError(f"{path}: {_label('ImageOrientationPatient')} differs from {first_path.name}'s "
                             f"{orientation.tolist()}; the series is not one volume")
        if not np.allclose(_required_floats(ds, "PixelSpacing", path), pixel_spacing, atol=1e-4) or \
                (ds.Rows, ds.Columns) != (first.Rows, first.Columns):
            raise ValueError(f"{path}: {_label('PixelSpacing')} or Rows/Columns differ from "
                             f"{first_path.name}; the series is not one volume")
    row, column, normal = _orientation_axes(orientation, first_path)
    positions = np.asarray([_required_floats(ds, "ImagePositionPatient", path) for path, ds in series])
    order, origin, spacing_z = _stack_along_normal(positions, normal, [p.name for p, _ in series], source)
    if spacing_z is None:
        spacing_z = _float(first, "SliceThickness", 1.0)
    return _Geometry(order=order, origin=origin, direction=np.column_stack([row, column, normal]),
                     spacing=(float(pixel_spacing[1]), float(pixel_spacing[0]), float(spacing_z)))


def _orientation_axes(orientation: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row cosine, column cosine and slice normal (their cross product) from ImageOrientationPatient."""
    if orientation.size != 6:
        raise ValueError(f"{path}: {_label('ImageOrientationPatient')} needs 6 values, "
                         f"got {orientation.tolist()}")
    row, column = orientation[:3], orientation[3:]
    if not (np.isclose(np.linalg.norm(row), 1, atol=1e-3) and np.isclose(np.linalg.norm(column), 1, atol=1e-3)
            and abs(row @ column) < 1e-3):
        raise ValueError(f"{path}: {_label('ImageOrientationPatient')} {orientation.tolist()} is not two "
                         "orthogonal unit vectors")
    row, column = row / np.linalg.norm(row), column / np.linalg.norm(column)
    return row, column, np.cross(row, column)


def _stack_along_normal(positions: np.ndarray, normal: np.ndarray, labels: list[str],
                        source: Path) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Sort slice positions along ``normal``; check they are distinct, uniform and not sheared.

    Returns the order (output slice -> input slice), the origin (first sorted position)
    and the slice spacing in mm (None for a single slice).
    """
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    if len(order) == 1:
        return order, positions[0], None
    sorted_along = along[order]
    gaps = np.diff(sorted_along)
    names = [f"{labels[index]} ({position:.3f} mm)" for index, position in zip(order, sorted_along, strict=True)]
    if (gaps < _SAME_POSITION_MM).any():
        first = int(np.argmin(gaps))
        raise ValueError(f"{source}: two slices at the same position along the slice normal: {names[first]} "
                         f"and {names[first + 1]}; duplicate files or several acquisitions in one series")
    typical = float(np.median(gaps))
    tolerance_mm = max(_SPACING_TOLERANCE_MM, _SPACING_TOLERANCE_REL * typical)
    deviation = np.abs(gaps - typical)
    if deviation.max() > tolerance_mm:
        worst = int(np.argmax(deviation))
        raise ValueError(f"{source}: non-uniform slice spacing: gap of {gaps[worst]:.3f} mm between "
                         f"{names[worst]} and {names[worst + 1]}, other gaps are {typical:.3f} mm (missing "
                         "slice?); LuPRRT needs uniformly spaced slices")
    steps = np.diff(positions[order], axis=0)
    sideways = np.linalg.norm(steps - gaps[:, None] * normal, axis=1)
    if sideways.max() > tolerance_mm:
        raise ValueError(f"{source}: consecutive slices are shifted by up to {sideways.max():.3f} mm "
                         "within the slice plane (gantry tilt or sheared stack); resample to an orthogonal "
                         "grid first")
    spacing = float((sorted_along[-1] - sorted_along[0]) / (len(order) - 1))
    return order, positions[order[0]], spacing


# --- shared: pixels ------------------------------------------------------------------------------

def _decoded(ds: Dataset, path: Path) -> np.ndarray:
    try:
        return ds.pixel_array
    except (AttributeError, NotImplementedError, RuntimeError, ValueError) as error:
        syntax = ds.file_meta.get("TransferSyntaxUID", "unknown") if hasattr(ds, "file_meta") else "unknown"
        raise ValueError(f"{path}: cannot decode the pixel data (Transfer Syntax {syntax}): "
                         f"{error}") from error


def _rescaled_pixels(ds: Dataset, path: Path) -> np.ndarray:
    stored = _decoded(ds, path)
    if stored.ndim != 2:
        raise ValueError(f"{path}: expected one frame per file, got pixel data of shape {stored.shape}")
    return stored.astype(np.float64) * _float(ds, "RescaleSlope", 1.0) + _float(ds, "RescaleIntercept", 0.0)


# --- shared: dates, times, administration ---------------------------------------------------------

def _administration(ds: Dataset, path: Path, header_acquisition: datetime | None, *,
                    acquisition_datetime: datetime | None, injection_datetime: datetime | date | None,
                    injected_activity_mbq: float | None, warnings: list[str], modality: str,
                    same_day_injection: bool = False) -> tuple[datetime, datetime, float | None]:
    """Acquisition start, injection date-time and injected activity (MBq, or None), checked for consistency."""
    acquisition = _override(acquisition_datetime, header_acquisition, "acquisition_datetime", path, warnings)
    if acquisition is None:
        raise ValueError(f"{path}: acquisition date-time missing: neither {_label('AcquisitionDateTime')} "
                         f"nor {_label('AcquisitionDate')} + {_label('AcquisitionTime')} is present; correct the "
                         f"header{or_fix('acquisition_datetime', 'datetime(...)')}")
    items = ds.get("RadiopharmaceuticalInformationSequence") or []
    item = items[0] if len(items) else Dataset()
    injection = _injection(item, path, injection_datetime, acquisition, warnings, same_day_injection)
    if injection > acquisition:
        raise ValueError(f"{path}: injection {injection.isoformat()} "
                         f"({_label('RadiopharmaceuticalStartDateTime')}) is after the acquisition start "
                         f"{acquisition.isoformat()} ({_label('AcquisitionDateTime')} or "
                         "AcquisitionDate/Time); correct the header"
                         f"{or_fix('injection_datetime', 'datetime(...)')}")
    header_mbq = _header_activity_mbq(item, path, modality, warnings)
    activity_mbq = _override(injected_activity_mbq, header_mbq, "injected_activity_mbq", path, warnings)
    if activity_mbq is not None and not (np.isfinite(activity_mbq) and activity_mbq > 0):
        raise ValueError(f"{path}: injected activity must be a positive number of MBq, got {activity_mbq} "
                         f"({'given' if injected_activity_mbq is not None else _label('RadionuclideTotalDose')})")
    return acquisition, injection, None if activity_mbq is None else float(activity_mbq)


def _header_activity_mbq(item: Dataset, path: Path, modality: str, warnings: list[str]) -> float | None:
    """RadionuclideTotalDose in MBq: MBq in NM, Bq in PET (see the module notes), with a magnitude check."""
    value = _float(item, "RadionuclideTotalDose", None)
    if value is None or not np.isfinite(value) or value <= 0:
        return None
    mbq = value * _TOTAL_DOSE_TO_MBQ[modality]
    if modality == "NM" and value > _NM_DOSE_MAX_MBQ:
        _warn(warnings, path, f"{_label('RadionuclideTotalDose')} = {value:g} is not plausible in MBq (the NM "
                              f"unit, PS3.3 C.8.4.10); read as Bq: {value / 1e6:g} MBq")
        mbq = value / 1e6
    elif modality == "PT" and value < _PET_DOSE_MIN_BQ:
        _warn(warnings, path, f"{_label('RadionuclideTotalDose')} = {value:g} is not plausible in Bq (the PET "
                              f"unit, PS3.3 C.8.9.2); read as MBq")
        mbq = value
    return mbq


def _injection(item: Dataset, path: Path, given: datetime | date | None, acquisition: datetime,
               warnings: list[str], same_day_injection: bool) -> datetime:
    header_datetime = _parse_dt(item, "RadiopharmaceuticalStartDateTime", path)
    start_time = _parse_tm(item, "RadiopharmaceuticalStartTime", path)
    if header_datetime is not None and start_time is not None:
        written = datetime.combine(header_datetime.date(), start_time)
        _check_agreement(header_datetime, written, "RadiopharmaceuticalStartDateTime", "RadiopharmaceuticalStartTime",
                         path, warnings)
    header_time = header_datetime.time() if header_datetime else start_time
    if isinstance(given, datetime):
        return _override(given, header_datetime, "injection_datetime", path, warnings)
    if isinstance(given, date):
        if header_time is None:
            raise ValueError(f"{path}: the injection date is given but the header has no "
                             f"{_label('RadiopharmaceuticalStartTime')} to combine it with; give the date and time")
        return datetime.combine(given, header_time)
    if given is not None:
        raise ValueError(f"injection_datetime must be a datetime or a date, got {given!r}")
    if header_datetime is not None:
        return header_datetime
    if header_time is not None and same_day_injection:
        injection = datetime.combine(acquisition.date(), header_time)
        if injection > acquisition:
            injection -= timedelta(days=1)
        _warn(warnings, path, f"{_label('RadiopharmaceuticalStartDateTime')} missing; injection taken as "
                              f"{injection.isoformat()} from {_label('RadiopharmaceuticalStartTime')}")
        return injection
    if header_time is not None:
        raise ValueError(f"{path}: {_label('RadiopharmaceuticalStartDateTime')} missing and "
                         f"{_label('RadiopharmaceuticalStartTime')} = {header_time.isoformat()} has no date "
                         "(Lu-177 imaging is days after injection); give the injection date and time"
                         f"{or_fix('injection_datetime', 'datetime(...)')}"
                         f"{or_fix('hours_post_injection', '...')}")
    raise ValueError(f"{path}: injection date-time missing: {_label('RadiopharmaceuticalStartDateTime')} not "
                     f"found in {_label('RadiopharmaceuticalInformationSequence')}; correct the header"
                     f"{or_fix('injection_datetime', 'datetime(...)')}{or_fix('hours_post_injection', '...')}")


def _check_agreement(preferred: datetime, other: datetime, preferred_keyword: str, other_keywords: str,
                     path: Path, warnings: list[str]) -> None:
    """Warn naming both tags when one instant written twice disagrees; ``preferred`` is the one used."""
    if abs((preferred - other).total_seconds()) > _DATETIME_AGREEMENT_S:
        _warn(warnings, path, f"{_label(preferred_keyword)} = {preferred.isoformat()} disagrees with "
                              f"{other_keywords} = {other.isoformat()}; using {preferred_keyword}")


def _override(given, header, name: str, path: Path, warnings: list[str]):
    """``given`` (checked, with a warning when it differs from the header value) or ``header``."""
    if given is None:
        return header
    if isinstance(given, datetime) and given.tzinfo is not None:
        raise ValueError(f"{name} must be a naive wall-clock datetime (DICOM times carry no time zone), "
                         f"got {given.isoformat()}")
    if header is not None and given != header:
        _warn(warnings, path, f"{name}={given} overrides the header value {header}")
    return given


def _acquisition_from_header(ds: Dataset, path: Path, warnings: list[str] | None = None) -> datetime | None:
    """AcquisitionDateTime, else AcquisitionDate + AcquisitionTime; a disagreement of both is warned about."""
    stamp = _parse_dt(ds, "AcquisitionDateTime", path)
    pair = _combine_da_tm(ds, "AcquisitionDate", "AcquisitionTime", path)
    if stamp is not None and pair is not None:
        _check_agreement(stamp, pair, "AcquisitionDateTime", f"{_label('AcquisitionDate')} + "
                         f"{_label('AcquisitionTime')}", path, [] if warnings is None else warnings)
    return stamp or pair


def _combine_da_tm(ds: Dataset, date_keyword: str, time_keyword: str, path: Path) -> datetime | None:
    day = _parse_da(ds, date_keyword, path)
    clock = _parse_tm(ds, time_keyword, path)
    return datetime.combine(day, clock) if day is not None and clock is not None else None


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    return str(value).strip() or None


def _parse_da(ds: Dataset, keyword: str, path: Path) -> date | None:
    text = _text(ds, keyword)
    if text is None:
        return None
    match = _DA_RE.match(text.replace(".", ""))
    if not match:
        _bad_value(keyword, text, path)
    try:
        return date(*map(int, match.groups()))
    except ValueError as error:
        raise ValueError(f"{path}: {_label(keyword)} = {text!r} is not a valid date: {error}") from error


def _parse_tm(ds: Dataset, keyword: str, path: Path) -> time | None:
    text = _text(ds, keyword)
    if text is None:
        return None
    match = _TM_RE.match(text.replace(":", ""))
    if not match:
        _bad_value(keyword, text, path)
    hour, minute, second, fraction = match.groups()
    try:
        return time(int(hour), int(minute), int(second or 0), int((fraction or "0").ljust(6, "0")))
    except ValueError as error:
        raise ValueError(f"{path}: {_label(keyword)} = {text!r} is not a valid time: {error}") from error


def _parse_dt(ds: Dataset, keyword: str, path: Path) -> datetime | None:
    """A DT value as a naive wall-clock datetime (any UTC offset suffix is dropped)."""
    text = _text(ds, keyword)
    if text is None:
        return None
    match = _DT_RE.match(text)
    if not match:
        _bad_value(keyword, text, path)
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
                        int((fraction or "0").ljust(6, "0")))
    except ValueError as error:
        raise ValueError(f"{path}: {_label(keyword)} = {text!r} is not a valid date-time: {error}") from error


def _bad_value(keyword: str, text: str, path: Path):
    raise ValueError(f"{path}: {_label(keyword)} = {text!r} is not a valid DICOM value (need at least "
                     "hours and minutes for times)")


# --- shared: small header helpers ----------------------------------------------------------------

def _label(keyword: str) -> str:
    """``Keyword (gggg,eeee)`` for messages."""
    tag = tag_for_keyword(keyword)
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _floats(ds: Dataset | None, keyword: str) -> np.ndarray | None:
    value = ds.get(keyword) if ds is not None else None
    if value is None or value == "":
        return None
    values = value if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    return np.asarray([float(v) for v in values], dtype=float)


def _required_floats(ds: Dataset, keyword: str, path: Path) -> np.ndarray:
    values = _floats(ds, keyword)
    if values is None:
        raise ValueError(f"{path}: {_label(keyword)} is missing")
    return values


def _float(ds: Dataset, keyword: str, default: float | None) -> float | None:
    values = _floats(ds, keyword)
    return float(values[0]) if values is not None and values.size else default


def _warn(warnings: list[str], path: Path, message: str) -> None:
    warnings.append(message)
    logger.warning("%s: %s", path, message)
