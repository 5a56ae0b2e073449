"""Inputs of patient dosimetry: cycles of quantitative SPECT/CT, read from a patient folder or given directly.

A patient folder is the layout of :func:`luprrt.phantom.write_patient` (also what a site's
export script can write): ``manifest.json`` lists the administrations (``cycle``,
``activity_mbq``) and the visits; a treatment visit (``kind`` ``"cycle"``) names its CT
(DICOM folder or NRRD in HU), its tagged segmentation (``.seg.nrrd``) and its SPECT scans
(``spect``: ``file``, ``hours_post_injection`` and optionally the scan's own ``ct``) and
optionally its blood samples (``blood_samples``: a CSV of :mod:`luprrt.dosimetry.blood_samples`). Scan
times come from the images' DICOM injection and acquisition date-times when present (the
manifest's hours are the fallback) and must increase in the order listed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..calibration import SiteCalibration
from ..dosimetry.blood_samples import BloodSamples, read_blood_samples
from ..io import (
    VOLUME_SUFFIXES,
    QuantitativeImage,
    check_activity_image,
    check_one_patient,
    read_image,
    read_seg_nrrd,
)
from ..segments import Segmentation, check_coverage
from .calibrate import quantitative_spect
from .manifest import read_manifest

log = logging.getLogger(__name__)

# Scan times written by hand in a manifest and read from DICOM may differ by rounding.
_HOURS_AGREEMENT_H = 0.1
# Regions whose dose needs the SPECT to cover them (marrow and body extend beyond any SPECT field of view).
_COVERED_ROLES = ("liver", "lobe", "lesion", "kidney", "spleen")


@dataclass
class TimePoint:
    """One quantitative SPECT of a cycle.

    spect : activity concentration in Bq/mL at the scan time (not decay-corrected)
    hours_post_injection : scan time after the administration (h)
    ct : the scan's own CT (HU) when it has one; None = it shares the cycle's CT (same frame)
    source : file the SPECT came from (for messages and provenance)
    """

    spect: QuantitativeImage
    hours_post_injection: float
    ct: sitk.Image | None = None
    source: str = ""


@dataclass
class CycleData:
    """One treatment cycle: administered activity (MBq), CT, scans and blood samples.

    The CT is the one its segmentation is drawn on; blood samples, when taken, give the blood-based
    red-marrow dose.
    """

    cycle: int
    activity_mbq: float
    ct: sitk.Image
    segmentation: Segmentation
    time_points: list[TimePoint]
    blood_samples: BloodSamples | None = None


@dataclass
class PatientData:
    """A patient's cycles in treatment order and the files they were read from."""

    patient_id: str
    cycles: list[CycleData]
    input_files: list[Path] = field(default_factory=list)


def read_patient_folder(folder: str | Path, cycles: Iterable[int] | None = None,
                        time_points_h: Mapping[int, Sequence[float]] | None = None,
                        calibration: SiteCalibration | None = None) -> PatientData:
    """Read the cycles of a patient folder (see the module docstring for the layout).

    Parameters
    ----------
    folder : path
        Folder holding ``manifest.json``.
    cycles : iterable of int, optional
        Cycles to read (default: every treatment cycle of the manifest).
    time_points_h : mapping of cycle to hours, optional
        Use only these scans of a cycle (matched to within 0.5 h), e.g. ``{2: [96.0]}`` for a
        single-time-point cycle 2; cycles not listed keep every scan.
    calibration : SiteCalibration, optional
        Counts SPECTs are converted with its calibration factor, Bq/mL ones scaled by its cylinder
        scale (:func:`.calibrate.quantitative_spect`).

    Raises
    ------
    FileNotFoundError
        Missing folder, manifest or image file.
    ValueError
        Unknown cycle, a cycle without SPECT, a SPECT not in Bq/mL, scan times not increasing,
        or a segmentation without a kidney segment (each message names the file or cycle).
    """
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    manifest = read_manifest(folder)
    try:
        visits = {int(v["cycle"]): v for v in manifest["sessions"] if v.get("kind") == "cycle"}
        activities = {int(a["cycle"]): float(a["activity_mbq"]) for a in manifest.get("administrations", [])}
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{manifest_path}: a cycle visit or administration lacks a valid {error} "
                         "(cycle, activity_mbq)") from None
    wanted = sorted(visits) if cycles is None else list(cycles)
    unknown = [c for c in wanted if c not in visits]
    if unknown or not wanted:
        raise ValueError(f"{manifest_path}: no treatment cycle {unknown or wanted}; the manifest has cycles "
                         f"{sorted(visits)}")
    if sorted(set(wanted)) != wanted:
        raise ValueError(f"cycles must be given once each in increasing order, got {wanted}")
    inputs = [manifest_path]
    identities: list[tuple[str, str | None]] = []  # (file, DICOM PatientID): one patient's images only
    data = []
    for cycle in wanted:
        visit = visits[cycle]
        entries = _selected_scans(visit.get("spect", []), cycle, (time_points_h or {}).get(cycle))
        if not entries:
            raise ValueError(f"{manifest_path}: cycle {cycle} lists no SPECT; dosimetry needs at least one "
                             "quantitative SPECT per cycle")
        absent = [key for key in ("ct", "segmentation") if not visit.get(key)]
        if absent:
            raise ValueError(f"{manifest_path}: cycle {cycle} names no {' and no '.join(absent)} "
                             "(keys 'ct': CT folder, 'segmentation': .seg.nrrd, relative to the patient folder)")
        ct_path = folder / visit["ct"]
        segmentation_path = folder / visit["segmentation"]
        ct = _read_ct(ct_path)
        identities.append((str(ct_path), ct.patient_id))
        segmentation = read_seg_nrrd(segmentation_path)
        time_points = []
        for entry in entries:  # read_manifest checked each entry's file and hours
            spect_path = folder / entry["file"]
            given = {} if cycle not in activities or spect_path.name.lower().endswith(VOLUME_SUFFIXES) else {
                "injected_activity_mbq": activities[cycle]}
            spect = quantitative_spect(spect_path, None, calibration, **given)
            if spect.units == "Bq/mL":
                check_activity_image(spect.image, str(spect_path))
                check_coverage(segmentation, spect.image, _COVERED_ROLES,
                               segmentation_name=f"segmentation {segmentation_path}", image_name=f"SPECT {spect_path}")
            own_ct = None
            if entry.get("ct") and (folder / entry["ct"]).resolve() != ct_path.resolve():
                own = _read_ct(folder / entry["ct"])
                identities.append((str(folder / entry["ct"]), own.patient_id))
                own_ct = own.image
                inputs.append(folder / entry["ct"])
            identities.append((str(spect_path), spect.patient_id))
            hours = _scan_hours(spect, entry, spect_path)
            time_points.append(TimePoint(spect, hours, own_ct, str(spect_path)))
            inputs.append(spect_path)
        activity = activities.get(cycle, time_points[0].spect.injected_activity_mbq)
        if activity is None:
            raise ValueError(f"{manifest_path}: no administered activity for cycle {cycle}; add it to the "
                             "manifest's administrations (cycle, activity_mbq) or the SPECT's "
                             "RadionuclideTotalDose")
        blood = None
        if visit.get("blood_samples"):
            blood_path = folder / visit["blood_samples"]
            if not blood_path.is_file():
                raise FileNotFoundError(f"{manifest_path}: cycle {cycle} names blood samples {blood_path}, which do not "
                                        f"exist; correct the manifest's 'blood_samples' or remove it")
            samples = read_blood_samples(blood_path)
            blood = samples.get(cycle, samples.get(None))
            if blood is None:
                raise ValueError(f"{blood_path}: no samples of cycle {cycle} (cycles {sorted(samples)}); the "
                                 f"manifest lists it for cycle {cycle}")
            inputs.append(blood_path)
        data.append(CycleData(cycle, activity, ct.image, segmentation, time_points, blood))
        inputs += [ct_path, segmentation_path]
        validate_cycle(data[-1])
    check_one_patient(identities)
    return PatientData(str(manifest.get("patient_id", folder.name)), data, inputs)


def validate_cycle(cycle: CycleData) -> None:
    """Check one cycle's inputs before any computation; ValueError naming the problem and the input."""
    if not cycle.time_points:
        raise ValueError(f"cycle {cycle.cycle} has no SPECT")
    if not (np.isfinite(cycle.activity_mbq) and cycle.activity_mbq > 0):
        raise ValueError(f"cycle {cycle.cycle}: administered activity must be positive, got "
                         f"{cycle.activity_mbq} MBq")
    for point in cycle.time_points:
        if point.spect.units != "Bq/mL":
            raise ValueError(f"cycle {cycle.cycle}: SPECT {point.source or point.spect.source} is in "
                             f"{point.spect.units!r}, not Bq/mL; dosimetry needs quantitative SPECT "
                             "(activity concentration)")
    hours = [point.hours_post_injection for point in cycle.time_points]
    if not all(np.isfinite(hours)) or min(hours) <= 0 or np.any(np.diff(hours) <= 0):
        listing = ", ".join(f"{h:g} h ({p.source})" for h, p in zip(hours, cycle.time_points, strict=True))
        raise ValueError(f"cycle {cycle.cycle}: scan times must be positive and increase in the order "
                         f"listed, got {listing}")
    if not cycle.segmentation.find(role="kidney"):
        raise ValueError(f"cycle {cycle.cycle}: the segmentation has no kidney segment (role 'kidney'); the "
                         f"kidney dose and its limits need one (segments: "
                         f"{sorted(s.segment_id for s in cycle.segmentation.segments)})")


def _selected_scans(entries: list[dict], cycle: int, hours: Sequence[float] | None) -> list[dict]:
    if hours is None:
        return list(entries)
    chosen = []
    for wanted in hours:
        match = [e for e in entries if abs(float(e["hours_post_injection"]) - wanted) <= 0.5]
        if not match:
            raise ValueError(f"cycle {cycle} has no SPECT at {wanted:g} h; it has "
                             f"{[e['hours_post_injection'] for e in entries]} h")
        chosen.append(match[0])
    return chosen


def _read_ct(path: Path) -> QuantitativeImage:
    image = read_image(path)
    if image.units != "HU":
        raise ValueError(f"CT {path} is in {image.units!r}, not HU")
    return image


def _scan_hours(spect: QuantitativeImage, entry: dict, path: Path) -> float:
    """Scan time (h): from the image's date-times when it has them, else from the manifest."""
    listed = entry.get("hours_post_injection")
    if spect.acquisition_datetime is None or spect.injection_datetime is None:
        if listed is None:
            raise ValueError(f"{path}: scan time unknown (no injection/acquisition date-times in the image "
                             "and no hours_post_injection in the manifest)")
        return float(listed)
    hours = spect.hours_post_injection
    if listed is not None and abs(hours - float(listed)) > _HOURS_AGREEMENT_H:
        log.warning("%s: the image's date-times give %.2f h after injection, the manifest says %s h; using "
                    "the image's", path, hours, listed)
    return hours
