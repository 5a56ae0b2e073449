"""Lesion tracking and longest diameters over a patient's visits, then RECIST 1.1.

Reads a patient folder (``manifest.json`` with one segmentation per visit, as written by
:func:`luprrt.phantom.write_patient` or a site's own export): every visit's lesions are
matched to the first visit's lesions so each keeps its tracking id, measured (longest axial
diameter, short axis), and turned into the tidy measurement table that
:mod:`luprrt.response.recist` assesses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from ..io import read_seg_nrrd
from ..provenance import ProgressCallback, no_progress
from ..response.diameters import segment_diameters
from ..response.matching import apply_tracking_ids, match_lesions
from ..response.recist import RecistCriteria, apply_target_selection, select_target_lesions
from ..segments import Segmentation
from .manifest import read_manifest

log = logging.getLogger(__name__)

# The liver metastases of both studies; lesions are not lymph nodes unless a site says so.
LESION_ORGAN = "liver"


@dataclass
class PatientMeasurements:
    """Per visit and lesion diameters (the RECIST input) and the tracking events per visit."""

    patient_id: str
    measurements: list[dict]
    tracking_events: list[dict]


def measure_patient(patient_folder: str | Path, *, match_distance_mm: float = 20.0,
                    criteria: RecistCriteria | None = None,
                    progress: ProgressCallback | None = None) -> PatientMeasurements:
    """Track and measure every lesion at every visit of one patient folder (see :func:`measure_segmentations`)."""
    folder = Path(patient_folder)
    manifest = read_manifest(folder)
    try:
        visits = [Visit(str(session["name"]), datetime.fromisoformat(session["datetime"]).date(),
                        folder / session["segmentation"]) for session in manifest["sessions"]]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{folder / 'manifest.json'}: every visit needs name, datetime (ISO) and segmentation "
                         f"({type(error).__name__}: {error})") from None
    return measure_segmentations(str(manifest["patient_id"]), visits, match_distance_mm=match_distance_mm,
                                 criteria=criteria, progress=progress)


@dataclass(frozen=True)
class Visit:
    """One imaging visit: its name, date and the tagged segmentation (``.seg.nrrd``) of its lesions."""

    name: str
    date: date
    segmentation: Path


def measure_segmentations(patient_id: str, visits: Sequence[Visit], *, match_distance_mm: float = 20.0,
                          criteria: RecistCriteria | None = None,
                          progress: ProgressCallback | None = None) -> PatientMeasurements:
    """Track and measure every lesion at every visit of one patient.

    The earliest visit is the baseline: its lesion ids are the reference, target lesions are
    chosen there by RECIST 1.1 rules, all other baseline lesions are non-targets. At each
    later visit the lesion segments are matched to the baseline (all visits share one frame
    of reference after registration, so no transform is applied); a baseline lesion without
    a match has disappeared (0 mm), a follow-up lesion without a match is new.
    """
    criteria = criteria or RecistCriteria()
    progress = progress or no_progress
    if not visits:
        raise ValueError(f"patient {patient_id}: no visit to measure")
    baseline: Segmentation | None = None
    rows: list[dict] = []
    events: list[dict] = []
    taken: set[str] = set()
    ordered = sorted(visits, key=lambda v: v.date)
    if len({v.date for v in ordered}) != len(ordered):
        raise ValueError(f"patient {patient_id}: two visits on one date; give one segmentation per date")
    for index, visit in enumerate(ordered):
        progress(index / len(ordered), f"lesions of {visit.name}")
        if not visit.segmentation.is_file():
            raise FileNotFoundError(f"segmentation of visit {visit.name} not found: {visit.segmentation}")
        segmentation = read_seg_nrrd(visit.segmentation)
        if not segmentation.find(role="lesion"):
            log.warning("%s holds no lesion segment (role=lesion): every lesion counts as gone", visit.segmentation)
        if baseline is None:
            baseline = segmentation
            taken = {s.tags.lesion_id for s in segmentation.find(role="lesion")}
            if not taken:
                raise ValueError(f"{visit.segmentation}: the baseline has no lesion segment (role=lesion); "
                                 "RECIST needs the baseline lesions")
        else:
            match = match_lesions(baseline, segmentation, max_distance_mm=match_distance_mm, taken_ids=taken)
            segmentation = apply_tracking_ids(segmentation, match)
            taken |= set(match.mapping.values())
            events += [{"patient_id": patient_id, "visit": visit.name, **_event_row(event)}
                       for event in match.events]
        diameters = segment_diameters(segmentation)
        rows += [{"patient_id": patient_id, "lesion_id": lesion_id, "organ": LESION_ORGAN,
                  "is_lymph_node": False, "date": visit.date, "visit": visit.name,
                  "longest_diameter_mm": d.longest_diameter_mm, "short_axis_mm": d.short_axis_mm,
                  "diameter_source": d.source}
                 for lesion_id, d in sorted(diameters.items())]
    progress(1.0, "measured")
    return PatientMeasurements(patient_id, _recist_rows(rows, criteria), events)


def _event_row(event) -> dict:
    return {key: (", ".join(value) if isinstance(value, (list, tuple)) else value)
            for key, value in vars(event).items()}


def _recist_rows(rows: list[dict], criteria: RecistCriteria) -> list[dict]:
    """Label rows target / non-target / new and add disappeared baseline lesions as 0 mm."""
    dates = sorted({row["date"] for row in rows})
    baseline_date = dates[0]
    baseline_rows = [row for row in rows if row["date"] == baseline_date]
    baseline_ids = {row["lesion_id"] for row in baseline_rows}
    visits = {row["date"]: row["visit"] for row in rows}
    for visit_date in dates[1:]:
        present = {row["lesion_id"] for row in rows if row["date"] == visit_date}
        rows += [{**row, "date": visit_date, "visit": visits[visit_date], "longest_diameter_mm": 0.0,
                  "short_axis_mm": 0.0, "diameter_source": "disappeared"}
                 for row in baseline_rows if row["lesion_id"] not in present]
    for row in rows:
        row["lesion_type"] = "target" if row["lesion_id"] in baseline_ids else "new"
    targets = select_target_lesions([_recist_fields(r) for r in baseline_rows], criteria)
    labelled = apply_target_selection([_recist_fields(r) for r in rows], targets, criteria)
    extra = {(r["lesion_id"], r["date"]): r for r in rows}
    return [{**vars(m), "visit": extra[(m.lesion_id, m.date)]["visit"],
             "diameter_source": extra[(m.lesion_id, m.date)]["diameter_source"]}
            for m in sorted(labelled, key=lambda m: (m.date, m.lesion_id))]


def _recist_fields(row: dict) -> dict:
    keys = ("patient_id", "lesion_id", "organ", "is_lymph_node", "date", "longest_diameter_mm",
            "short_axis_mm", "lesion_type")
    return {key: row[key] for key in keys}
