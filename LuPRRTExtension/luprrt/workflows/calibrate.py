"""``luprrt calibrate``: a site calibration from phantom scans, and calibrated SPECT reading for the other runs.

:func:`run_calibration` reads a uniform-cylinder SPECT (counts or Bq/mL; DICOM NM or NRRD/NIfTI) with
its dose-calibrator activity and time, and one IEC body phantom SPECT per sphere-to-background
ratio with the sphere and background concentrations, and/or a recovery table (CSV). It writes:

* ``site_calibration.json``: the versioned site calibration (:mod:`luprrt.calibration.site`) with
  camera, collimator, reconstruction protocol, date, who, and the input files' SHA-256;
* ``calibration_spheres.csv``: every sphere's position, measured concentrations and recoveries;
* ``calibration_recovery_curves.csv``: the fitted curves sampled from 0.1 to 100 mL.

:func:`quantitative_spect` reads a patient SPECT with a calibration: counts converted with the
calibration factor (cps/MBq), vendor Bq/mL values multiplied by the cylinder's Bq/mL scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..calibration import (
    DEFAULT_ACTIVITY_SD_PERCENT,
    IecMeasurement,
    SiteCalibration,
    SiteInfo,
    build_site_calibration,
    calibrate_from_cylinder,
    measure_iec_phantom,
    read_recovery_table,
    read_site_calibration,
    write_site_calibration,
)
from ..io import QuantitativeImage, read_image, spect_activity_at_acquisition
from ..physics import decay_factor, hours_between
from ..provenance import ProgressCallback, inputs_sha256, no_progress
from ..tables import write_rows_csv

CALIBRATION_FILE = "site_calibration.json"
SPHERES_FILE = "calibration_spheres.csv"
CURVES_FILE = "calibration_recovery_curves.csv"
_CURVE_VOLUMES_ML = np.geomspace(0.1, 100.0, 31)


@dataclass(frozen=True)
class CylinderScan:
    """A uniform-cylinder SPECT and what was put in it.

    ``activity_datetime``: when the dose calibrator measured ``activity_mbq`` (None: at the scan);
    ``frame_duration_s``: seconds per projection view for counts images (DICOM: from the header).
    """

    path: Path
    activity_mbq: float
    activity_datetime: datetime | None = None
    units: str | None = None
    frame_duration_s: float | None = None
    activity_sd_percent: float = DEFAULT_ACTIVITY_SD_PERCENT


@dataclass(frozen=True)
class IecScan:
    """An IEC body phantom SPECT with its true concentrations (Bq/mL) at ``reference_datetime`` (None: at the scan)."""

    path: Path
    sphere_bq_per_ml: float
    background_bq_per_ml: float
    reference_datetime: datetime | None = None
    units: str | None = None


def load_calibration(calibration: SiteCalibration | str | Path | None) -> SiteCalibration | None:
    """A :class:`SiteCalibration` from a file (JSON or recovery-table CSV), or the one given."""
    if calibration is None or isinstance(calibration, SiteCalibration):
        return calibration
    return read_site_calibration(calibration)


def quantitative_spect(path: str | Path, units: str | None, calibration: SiteCalibration | None,
                       **options) -> QuantitativeImage:
    """Read a SPECT in Bq/mL at its acquisition time.

    Counts go through the calibration factor, Bq/mL is scaled by the cylinder's scale, and a
    PET-stored export decay corrected to the injection is decayed back to the acquisition.

    Images in other units (a counts NRRD, which does not record the time per view) are returned as
    read, for the caller's own unit check.
    """
    image, counts = _read_nm(path, units, calibration.cps_per_mbq if calibration is not None else None, **options)
    image = spect_activity_at_acquisition(image)  # a PET-stored export may be decay corrected to injection
    scale = calibration.bq_per_ml_scale if calibration is not None else None
    if image.units == "Bq/mL" and scale is not None and not counts:
        image.image = sitk.Cast(image.image * float(scale), sitk.sitkFloat32)
        image.warnings.append(f"Bq/mL values multiplied by the site calibration's scale {scale:.5g} "
                              f"({calibration.label})")
    return image


def _read_nm(path, units, cps_per_mbq: float | None, **options) -> tuple[QuantitativeImage, bool]:
    """(image, whether it was counts converted with ``cps_per_mbq``); a counts DICOM without a factor raises."""
    if _is_volume_file(path) or not _dicom_counts(Path(path)):
        return read_image(path, units, **options), False
    if cps_per_mbq is None:
        raise ValueError(f"{path}: the SPECT is in counts; give a site calibration with a calibration factor "
                         "(--calibration; luprrt calibrate measures it on a uniform cylinder)")
    return read_image(path, units, calibration_cps_per_mbq=cps_per_mbq, **options), True


def _dicom_counts(path: Path) -> bool:
    """Whether a DICOM NM image holds counts: Units (0054,1001) CNTS, or none and no Bq/ml value mapping.

    A CT given where the SPECT belongs is refused here, before any option meant for the SPECT
    reaches the CT reader.
    """
    import pydicom

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    classes = set()
    for file in files:
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except (OSError, ValueError, pydicom.errors.InvalidDicomError):  # not DICOM: try the next file
            continue
        classes.add(ds.get("SOPClassUID"))
        if ds.get("SOPClassUID") != pydicom.uid.NuclearMedicineImageStorage:
            continue
        if "Units" not in ds and "RealWorldValueMappingSequence" not in ds and "SharedFunctionalGroupsSequence" in ds:
            return False  # an enhanced image: its mapping lives in the functional groups
        units = str(ds.get("Units", "") or "").strip().upper()
        return units == "CNTS" or (units == "" and "RealWorldValueMappingSequence" not in ds)
    if classes == {pydicom.uid.CTImageStorage}:
        raise ValueError(f"{path}: a CT series, not a SPECT; point at the reconstructed quantitative SPECT "
                         "(NM, or a PET-stored Bq/mL export)")
    return False


def _is_volume_file(path) -> bool:
    return str(path).lower().endswith((".nrrd", ".nii", ".nii.gz"))


def run_calibration(out_dir: str | Path, *, info: SiteInfo, cylinder: CylinderScan | None = None,
                    iec: Sequence[IecScan] = (), recovery_table: str | Path | None = None,
                    acquisition_datetime: datetime | None = None, overwrite: bool = False,
                    progress: ProgressCallback | None = None) -> tuple[SiteCalibration, list[Path]]:
    """Measure the phantoms, assemble and write the site calibration; returns it and the files written.

    Raises
    ------
    ValueError, FileNotFoundError, FileExistsError
        Bad phantom images (no phantom, spheres not found, wrong units, missing activity), or
        outputs that exist (without ``overwrite``); nothing is written then.
    """
    progress = progress or no_progress
    out_dir = Path(out_dir)
    targets = [out_dir / name for name in (CALIBRATION_FILE, SPHERES_FILE, CURVES_FILE)]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"output files exist: {', '.join(existing)}; pass overwrite (--overwrite) to replace them")
    if cylinder is None and not iec and recovery_table is None:
        raise ValueError("nothing to calibrate from: give a cylinder scan, IEC phantom scans or a recovery table")
    inputs = [p for p in [cylinder.path if cylinder else None, *(s.path for s in iec), recovery_table]
              if p is not None]
    for path in inputs:
        if not Path(path).exists():
            raise FileNotFoundError(f"calibration input not found: {path}")
    cylinder_result = None
    if cylinder is not None:
        progress(0.05, "uniform cylinder")
        cylinder_result = _calibrate_cylinder(cylinder, acquisition_datetime)
    phantoms: list[IecMeasurement] = []
    for k, scan in enumerate(iec):
        progress(0.1 + 0.75 * k / max(len(iec), 1), f"IEC phantom {Path(scan.path).name}")
        phantoms.append(_measure_iec(scan, cylinder_result, acquisition_datetime))
    tables = read_recovery_table(recovery_table) if recovery_table is not None else ()
    progress(0.9, "recovery curves and effective resolution")
    calibration = build_site_calibration(info, cylinder=cylinder_result, phantoms=phantoms, recovery_tables=tables,
                                         inputs=inputs_sha256(inputs))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_site_calibration(calibration, targets[0], overwrite=overwrite)]
    sphere_rows = [row for phantom in phantoms for row in phantom.rows()]
    if sphere_rows:
        written.append(write_rows_csv(sphere_rows, targets[1], overwrite=overwrite))
    if calibration.curves:
        written.append(write_rows_csv(_curve_rows(calibration), targets[2], overwrite=overwrite))
    progress(1.0, "site calibration written")
    return read_site_calibration(targets[0]), written


def _curve_rows(calibration: SiteCalibration) -> list[dict]:
    rows = []
    for curve in calibration.curves:
        values, sds = curve(_CURVE_VOLUMES_ML), curve.standard_uncertainty(_CURVE_VOLUMES_ML)
        for volume, value, sd in zip(_CURVE_VOLUMES_ML, values, sds, strict=True):
            rows.append({"quantity": curve.quantity, "sphere_to_background": curve.sphere_to_background,
                         "volume_ml": float(volume), "recovery": float(value), "recovery_sd": float(sd),
                         "extrapolated": bool(volume < curve.smallest_volume_ml or volume > curve.largest_volume_ml)})
    return rows


def _scan_hours_after(image: QuantitativeImage, reference: datetime | None,
                      acquisition_datetime: datetime | None) -> float:
    """Hours from ``reference`` to the scan start (0 without a reference)."""
    if reference is None:
        return 0.0
    scan = acquisition_datetime or image.acquisition_datetime
    if scan is None:
        raise ValueError(f"{image.source}: the scan's acquisition time is not in the file; give it (--acquisition-time) "
                         "to decay-correct the phantom's activity")
    hours = hours_between(reference, scan)
    if hours < 0:
        raise ValueError(f"{image.source}: the activity was measured {-hours:.2f} h after the scan started; check the times")
    return hours


def _calibrate_cylinder(scan: CylinderScan, acquisition_datetime: datetime | None):
    path = Path(scan.path)
    options = {"frame_duration_s": scan.frame_duration_s} if scan.frame_duration_s and not _is_volume_file(path) else {}
    # DICOM counts are read at a factor of 1 cps/MBq: values = counts / (t_view x 1) x 1e6 / V_voxel.
    image, counts = _read_nm(path, scan.units, 1.0, **options)
    values, duration = image.image, scan.frame_duration_s
    if counts:
        duration = scan.frame_duration_s or _dicom_view_duration_s(path)
        voxel_ml = float(np.prod(image.image.GetSpacing())) / 1000.0
        values = sitk.Cast(image.image * (duration * voxel_ml / 1e6), sitk.sitkFloat32)
        image.units = "counts"
    hours = _scan_hours_after(image, scan.activity_datetime, acquisition_datetime)
    return calibrate_from_cylinder(values, image.units, scan.activity_mbq, duration_s=duration,
                                   activity_hours_before_scan=hours, activity_sd_percent=scan.activity_sd_percent,
                                   source=str(path))


def _dicom_view_duration_s(path: Path) -> float:
    """Seconds per projection view of a DICOM NM file (ActualFrameDuration, ms; top level or rotation)."""
    import pydicom

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        try:
            ds = pydicom.dcmread(file, stop_before_pixels=True)
        except (OSError, ValueError, pydicom.errors.InvalidDicomError):  # not DICOM: try the next file
            continue
        if ds.get("SOPClassUID") != pydicom.uid.NuclearMedicineImageStorage:
            continue  # a CT or PET given as the SPECT: read_image names what it is
        for item in [ds, *(ds.get("RotationInformationSequence") or [])]:
            value = item.get("ActualFrameDuration")
            if value is not None and float(value) > 0:
                return float(value) / 1000.0
    raise ValueError(f"{path}: ActualFrameDuration (0018,1242) is missing; give the time per view (--frame-duration-s)")


def _measure_iec(scan: IecScan, cylinder, acquisition_datetime: datetime | None) -> IecMeasurement:
    path = Path(scan.path)
    image, counts = _read_nm(path, scan.units, cylinder.cps_per_mbq if cylinder is not None else None)
    if image.units != "Bq/mL":
        raise ValueError(f"{path}: the IEC phantom image is in {image.units!r}; recovery needs Bq/mL (a counts DICOM "
                         "image is converted with the cylinder's calibration factor: give the cylinder too)")
    values = image.image
    if cylinder is not None and cylinder.bq_per_ml_scale is not None and not counts:
        values = sitk.Cast(values * float(cylinder.bq_per_ml_scale), sitk.sitkFloat32)
    hours = _scan_hours_after(image, scan.reference_datetime, acquisition_datetime)
    decay = float(decay_factor(hours))
    for name, value in (("sphere", scan.sphere_bq_per_ml), ("background", scan.background_bq_per_ml)):
        if value is None or not (math.isfinite(value) and value > 0):
            raise ValueError(f"{path}: the IEC {name} concentration is missing or not positive ({value} Bq/mL)")
    try:
        return measure_iec_phantom(values, scan.sphere_bq_per_ml * decay, scan.background_bq_per_ml * decay,
                                   source=path.name)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
