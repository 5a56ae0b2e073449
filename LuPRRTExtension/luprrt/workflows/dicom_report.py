"""The measurement groups of one visit's TID 1500 report, built from LuPRRT's result tables.

Inputs are the rows LuPRRT writes (``lobequant_tn.csv``, ``lobequant_ia_iv_ratio.csv``,
``lobequant_uptake.csv``, ``dose.csv``, ``limits.csv``, ``measurements.csv``; values may be
strings as read from CSV) and the visit's segmentation as exported to DICOM SEG (segment k
of the list is SEG segment number k + 1). Groups, per segment:

* morphology: volume of the segment (voxels x voxel volume on the CT grid), and for lesions
  the longest axial diameter and short axis (RECIST 1.1) and the RECIST lesion role;
* one group per SPECT (time point "<h> h after administration"): mean and maximum activity
  concentration; T/N of lesions, and of lobes (their lesions pooled); organ activity (MBq);
  recovery-corrected values (method RCCORR) when the tables carry ``<column>_corrected``;
* one group per dose method (group method): TIA, mean absorbed dose, BED and the dose summed
  over the cycles so far.

Per patient (no region): the IA/IV lobe T/N ratio per SPECT, and cumulative kidney dose and
BED and red-marrow dose after this cycle (``limits.csv``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pydicom

from ..io import (
    DOSE_METHODS,
    RECIST_1_1,
    RECOVERY_CORRECTED,
    SrGroup,
    SrMeasurement,
    tracking_id,
    tracking_uid,
)
from ..segments import TYPE_CODES, Segmentation

_CONCENTRATION_KEYS = ("mean_bq_per_ml", "max_bq_per_ml")
_TN_KEYS = ("tn_mean", "tn_max")
_LIMIT_GROUPS = {"kidney_dose_gy": ("kidneys, cumulative", "kidney", "cumulative_dose_gy"),
                 "kidney_bed_gy": ("kidneys, cumulative", "kidney", "bed_gy"),
                 "marrow_dose_gy": ("red marrow, cumulative", "marrow", "cumulative_dose_gy")}


def number(value) -> float:
    """A table cell as float (empty and missing cells are NaN)."""
    if value is None or value == "":
        return math.nan
    return float(value)


def time_point(hours: float) -> str:
    """The time point text of a SPECT (TID 1502)."""
    return f"{hours:g} h after administration"


def _segment_key(role: str, side: str | None, lesion_id: str | None) -> tuple:
    return (role, lesion_id) if role == "lesion" else (role, side or None)


def visit_groups(patient_id: str, segmentation: Segmentation, *, cycle: int | None, visit: str,
                 spects: Mapping[float, pydicom.Dataset], tn_rows: Iterable[Mapping] = (),
                 ratio_rows: Iterable[Mapping] = (), uptake_rows: Iterable[Mapping] = (),
                 dose_rows: Iterable[Mapping] = (), limit_rows: Iterable[Mapping] = (),
                 measurement_rows: Iterable[Mapping] = ()) -> list[SrGroup]:
    """Measurement groups of one visit (see the module notes); ``spects`` maps hours -> SPECT dataset."""
    numbers = {_segment_key(s.tags.role, s.tags.side, s.tags.lesion_id): k + 1
               for k, s in enumerate(segmentation.segments)}
    voxel_ml = float(np.prod(segmentation.reference.GetSpacing())) / 1000.0
    groups: dict[tuple, SrGroup] = {}

    def group(segment_number: int, extra: tuple = (), **fields) -> SrGroup:
        segment = segmentation.segments[segment_number - 1]
        key = (segment_number, *extra)
        if key not in groups:
            ident = tracking_id(segment.tags, segment.segment_id)
            groups[key] = SrGroup(ident, tracking_uid(patient_id, ident), segment_number=segment_number,
                                  finding_type=segment.tags.type_code(),
                                  finding_site=segment.tags.anatomic_region(), **fields)
        return groups[key]

    for k, segment in enumerate(segmentation.segments, start=1):
        volume = float(np.count_nonzero(segmentation.mask_array(segment.segment_id))) * voxel_ml
        group(k).measurements.append(SrMeasurement("volume_ml", volume))
    for row in measurement_rows:
        k = numbers.get(("lesion", row["lesion_id"]))
        if row.get("visit") != visit or k is None:
            continue
        morphology = group(k)
        morphology.lesion_role = row.get("lesion_type") or None
        for key in ("longest_diameter_mm", "short_axis_mm"):
            morphology.measurements.append(SrMeasurement(key, number(row.get(key)), method=RECIST_1_1))

    for row in tn_rows:
        if cycle is None or int(row["cycle"]) != cycle:
            continue
        hours = float(row["hours_post_injection"])
        role = row["role"]
        target = "lobe" if role == "tumour" else role
        k = numbers.get(_segment_key(target, row.get("side") or None, row.get("lesion_id") or None))
        if k is None:
            continue
        keys = _TN_KEYS if role == "tumour" else _CONCENTRATION_KEYS + (_TN_KEYS if role == "lesion" else ())
        _add(group(k, ("spect", hours), time_point=time_point(hours)), row, keys, spects.get(hours))
    for row in uptake_rows:
        if cycle is None or int(row["cycle"]) != cycle or row["role"] not in ("kidney", "liver", "spleen"):
            continue
        k = numbers.get(_segment_key(row["role"], row.get("side") or None, None))
        if k is not None:
            hours = float(row["hours_post_injection"])
            _add(group(k, ("spect", hours), time_point=time_point(hours)), row, ("mean_bq_per_ml", "activity_mbq"),
                 spects.get(hours))
    for row in dose_rows:
        if cycle is None or int(row["cycle"]) != cycle or row["method"] not in DOSE_METHODS:
            continue
        k = numbers.get(_segment_key(row["role"], row.get("side") or None, row.get("lesion_id") or None))
        if k is not None:
            dose = group(k, ("dose", row["method"]), method=DOSE_METHODS[row["method"]])
            _add(dose, row, ("tia_mbq_h", "dose_gy", "bed_gy", "cumulative_dose_gy"), None)

    patient_groups = _patient_groups(patient_id, cycle, spects, ratio_rows, limit_rows)
    return [groups[key] for key in sorted(groups, key=_order)] + patient_groups


def _order(key: tuple):
    """Segment number, then morphology, SPECTs by time, dose methods by name."""
    kind = key[1] if len(key) > 1 else ""
    return (key[0], ("", "spect", "dose").index(kind), key[2] if kind == "spect" else 0.0,
            key[2] if kind == "dose" else "")


def _add(group: SrGroup, row: Mapping, keys: Sequence[str], source: pydicom.Dataset | None) -> None:
    for key in keys:
        value = number(row.get(key))
        if math.isfinite(value):
            group.measurements.append(SrMeasurement(key, value, source_image=source))
        corrected = number(row.get(f"{key}_corrected"))
        if math.isfinite(corrected):
            group.measurements.append(SrMeasurement(key, corrected, method=RECOVERY_CORRECTED, source_image=source))


def _patient_groups(patient_id: str, cycle: int | None, spects, ratio_rows, limit_rows) -> list[SrGroup]:
    groups = []
    for row in ratio_rows:
        if cycle is None or int(row["cycle"]) != cycle:
            continue
        hours = float(row["hours_post_injection"])
        ratio = SrGroup("IA/IV lobe T/N", tracking_uid(patient_id, "IA/IV lobe T/N"), finding_type=TYPE_CODES["lobe"],
                        time_point=time_point(hours))
        _add(ratio, row, ("tn_mean_ia_over_iv", "tn_max_ia_over_iv"), spects.get(hours))
        groups.append(ratio)
    by_name: dict[str, SrGroup] = {}
    for row in limit_rows:
        if cycle is None or int(row["after_cycle"]) != cycle or row["quantity"] not in _LIMIT_GROUPS:
            continue
        name, role, key = _LIMIT_GROUPS[row["quantity"]]
        if name not in by_name:
            by_name[name] = SrGroup(name, tracking_uid(patient_id, name), finding_type=TYPE_CODES[role],
                                    method=DOSE_METHODS.get(row.get("method", "")))
        value = number(row.get("value_gy"))
        if math.isfinite(value):
            by_name[name].measurements.append(SrMeasurement(key, value))
    return groups + list(by_name.values())
