"""Tidy rows of the ResponseAssess tables; every quantity's column name carries its unit.

Rows are plain dicts (one per lesion, event, time point or patient) that
``luprrt.mrml.table_node_from_rows`` turns into table nodes. No Slicer import here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from luprrt.response.diameters import LesionDiameters
from luprrt.response.matching import MatchResult
from luprrt.response.recist import (
    OPTIONAL_COLUMNS,
    BestOverallResponse,
    LesionMeasurement,
    RecistCriteria,
    apply_target_selection,
    as_measurement,
    select_target_lesions,
)
from luprrt.segments import Segmentation
from luprrt.tables import as_rows

DIAMETER_COLUMNS = ("lesion_id", "segment_id", "segment_name", "longest_diameter_mm", "short_axis_mm",
                    "slice_index", "source", "long_axis_line_node_id")
EVENT_COLUMNS = ("event", "reference_lesion_ids", "followup_segment_ids", "tracking_ids", "dice",
                 "centroid_distance_mm", "matched_by")
# Several ids in one cell (split and merged lesions).
ID_SEPARATOR = ";"
# Column units that the name's suffix does not give (luprrt.mrml.COLUMN_UNITS has no "days").
UNITS = {"days_from_baseline": "d", "dice": "1"}
_TRUE = {"true", "yes", "y", "t", "1"}
_FALSE = {"false", "no", "n", "f", "0"}


def natural_key(text: str) -> tuple:
    """Sort key that orders ``L2`` before ``L10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(text)))


def diameter_rows(segmentation: Segmentation, diameters: Mapping[str, LesionDiameters],
                  line_node_ids: Mapping[str, str]) -> list[dict]:
    """One row per lesion segment (ordered by tracking id): diameters, source and the line shown."""
    rows = []
    for seg in sorted(segmentation.find(role="lesion"), key=lambda s: natural_key(s.tags.lesion_id)):
        lesion_id = seg.tags.lesion_id
        found = diameters[lesion_id]
        rows.append({
            "lesion_id": lesion_id,
            "segment_id": seg.segment_id,
            "segment_name": seg.name,
            "longest_diameter_mm": found.longest_diameter_mm,
            "short_axis_mm": math.nan if found.short_axis_mm is None else found.short_axis_mm,
            "slice_index": -1 if found.slice_index is None else found.slice_index,
            "source": found.source,
            "long_axis_line_node_id": line_node_ids.get(lesion_id, ""),
        })
    return rows


def event_rows(result: MatchResult) -> list[dict]:
    """One row per tracking event; matched pairs carry their Dice (0-1) and centroid distance (mm)."""
    pairs = {pair.followup_segment_id: pair for pair in result.pairs}
    rows = []
    for event in result.events:
        pair = pairs.get(event.followup_segment_ids[0]) if event.kind == "matched" else None
        rows.append({
            "event": event.kind,
            "reference_lesion_ids": ID_SEPARATOR.join(event.reference_lesion_ids),
            "followup_segment_ids": ID_SEPARATOR.join(event.followup_segment_ids),
            "tracking_ids": ID_SEPARATOR.join(event.tracking_ids),
            "dice": pair.dice if pair else math.nan,
            "centroid_distance_mm": pair.centroid_distance_mm if pair else math.nan,
            "matched_by": pair.by if pair else "",
        })
    return rows


def measurement_rows(patient_id: str, diameters_by_date: Mapping[date, Sequence[Mapping]],
                     organ: str = "liver", target_lesion_ids: Iterable[str] | None = None,
                     criteria: RecistCriteria | None = None) -> list[dict]:
    """The tidy RECIST measurement table of one patient from per-date diameter rows.

    Parameters
    ----------
    patient_id : patient identifier
    diameters_by_date : ``{imaging date: diameter rows}`` (rows as :func:`diameter_rows`, lesions
        named by tracking id); the earliest date is the baseline
    organ : organ of every lesion (all lesions of one segmentation are in one organ here)
    target_lesion_ids : the reader's target lesions; default RECIST 1.1 selection (largest
        measurable lesions, at most 2 per organ and 5 in total, section 3.3.2)
    criteria : RECIST thresholds (measurability); default the paper's

    Rules: a lesion seen at baseline and missing from a later segmentation has gone (0 mm;
    the segmentation is the reader's statement); a lesion absent at baseline is new; baseline
    lesions that are not targets are non-targets whose status follows from their size.
    """
    criteria = criteria or RecistCriteria()
    if not diameters_by_date:
        raise ValueError(f"patient {patient_id!r}: no diameter tables given")
    dates = sorted(diameters_by_date)
    if len(set(dates)) != len(dates):
        raise ValueError(f"patient {patient_id!r}: two diameter tables share a date: {dates}")
    baseline_ids = [str(row["lesion_id"]) for row in diameters_by_date[dates[0]]]
    raw = []
    for when in dates:
        present = {str(row["lesion_id"]): row for row in diameters_by_date[when]}
        for lesion_id in dict.fromkeys([*baseline_ids, *sorted(present, key=natural_key)]):
            row = present.get(lesion_id)
            longest = 0.0 if row is None else _number(row.get("longest_diameter_mm"))
            raw.append(LesionMeasurement(
                patient_id=str(patient_id), lesion_id=lesion_id, organ=organ, is_lymph_node=False, date=when,
                lesion_type="target" if lesion_id in baseline_ids else "new", longest_diameter_mm=longest,
                short_axis_mm=None if row is None else _number(row.get("short_axis_mm"))))
    baseline = [row for row in raw if row.date == dates[0]]
    if target_lesion_ids is None:
        targets = select_target_lesions(baseline, criteria)
    else:
        targets = [str(t) for t in target_lesion_ids]
        unknown = sorted(set(targets) - set(baseline_ids), key=natural_key)
        if unknown:
            raise ValueError(f"patient {patient_id!r}: target lesions {unknown} are not in the baseline "
                             f"table (baseline lesions: {baseline_ids})")
    return as_rows(apply_target_selection(raw, targets, criteria))


def measurements_from_rows(rows: Iterable[Mapping | LesionMeasurement]) -> list[LesionMeasurement]:
    """RECIST measurements from table rows: NaN and empty cells of optional columns are "not given"."""
    measurements = []
    for index, row in enumerate(rows):
        if isinstance(row, LesionMeasurement):
            measurements.append(row)
            continue
        clean = dict(row)
        for name in OPTIONAL_COLUMNS:
            if name in clean and (clean[name] is None or clean[name] == "" or _is_nan(clean[name])):
                del clean[name]
        if "too_small_to_measure" in clean:
            clean["too_small_to_measure"] = _flag(clean["too_small_to_measure"], index)
        if "is_lymph_node" in clean:
            clean["is_lymph_node"] = _flag(clean["is_lymph_node"], index)
        try:
            measurements.append(as_measurement(clean))
        except ValueError as error:
            raise ValueError(f"measurement table row {index}: {error}") from None
    if not measurements:
        raise ValueError("the measurement table has no rows")
    return measurements


def best_response_rows(best: Sequence[BestOverallResponse]) -> list[dict]:
    """Best overall response per patient with the best % change of the sum (NaN when not measured)."""
    rows = []
    for row in as_rows(best):
        if row["best_change_from_baseline_pct"] is None:
            row["best_change_from_baseline_pct"] = math.nan
        rows.append(row)
    return rows


def spider_rows(outcome_rows: Iterable[Mapping]) -> list[dict]:
    """Per lesion: its baseline (0 d, 0 %) and each assessed follow-up (days, % change of the diameter)."""
    rows: list[dict] = []
    seen = set()
    for row in outcome_rows:
        if row["change_pct"] is None or _is_nan(row["change_pct"]):
            continue
        lesion = f"{row['patient_id']} {row['lesion_id']}"
        if lesion not in seen:
            seen.add(lesion)
            rows.append({"lesion": lesion, "days_from_baseline": 0, "change_pct": 0.0})
        rows.append({"lesion": lesion, "days_from_baseline": int(row["days_from_baseline"]),
                     "change_pct": float(row["change_pct"])})
    return rows


def waterfall_rows(best_rows: Iterable[Mapping]) -> list[dict]:
    """Patients ordered from largest increase to largest decrease of the sum of diameters (bar rank 1..n)."""
    ranked = sorted((row for row in best_rows if not _is_nan(row["best_change_from_baseline_pct"])),
                    key=lambda row: -row["best_change_from_baseline_pct"])
    return [{"rank": rank, "patient_id": row["patient_id"],
             "best_change_from_baseline_pct": row["best_change_from_baseline_pct"]}
            for rank, row in enumerate(ranked, start=1)]


def _number(value) -> float | None:
    return None if value is None or value == "" or _is_nan(value) else float(value)


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _flag(value, index: int) -> bool:
    """A yes/no cell: bool, 0/1 or text (true/false, yes/no, 1/0)."""
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if not isinstance(value, str) and value in (0, 1):
        return bool(value)
    raise ValueError(f"measurement table row {index}: a yes/no column holds {value!r}; use true/false or 1/0")
