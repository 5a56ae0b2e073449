"""RECIST 1.1 response assessment: measurability, target selection, time-point and best response.

Every rule cites Eisenhauer EA et al., "New response evaluation criteria in solid tumours:
revised RECIST guideline (version 1.1)", Eur J Cancer 2009;45:228-247 (below: "RECIST 1.1")
and, where the paper leaves a choice open, the EORTC RECIST working group's published
clarifications (recist.eortc.org, "Questions and clarifications").

Input is a tidy measurement table: one :class:`LesionMeasurement` per lesion per imaging
date. The earliest date of a patient is the baseline. Target lesions carry diameters (a
missing diameter = not assessed), non-target lesions carry a qualitative status, and new
lesions are rows with ``lesion_type="new"`` (each one is unequivocal).

Choices made where the paper is not mechanical (documented so results can be audited):

* Target CR is tested before PD: a target set in which every non-nodal lesion has gone
  (0 mm) and every nodal lesion is < 10 mm short axis is CR, even if normal-sized nodes
  grew by >= 5 mm (RECIST 1.1 section 4.3.1 defines CR by those sizes).
* The nadir for PD is the smallest complete sum of diameters at baseline or any earlier
  follow-up (section 4.3.1: "this includes the baseline sum if that is the smallest").
* A partial assessment is NE, unless the assessed lesions alone already meet PD against the
  nadir (section 4.3.4, "Missing assessments and inevaluable designation").
* Time-point PR/SD use the paper's definitions (PR against baseline, PD against nadir).
* Best overall response follows section 4.4 and Table 3 with confirmation: CR/PR need a
  repeat CR/PR at least ``confirmation_interval_days`` later with no PD in between; a CR
  followed by a PR counts as PR (Table 3 footnote a: the first "CR" was a PR); SD needs
  an SD-or-better time point at least ``min_sd_duration_days`` after baseline. Time points
  after the first PD are ignored (best response is recorded until progression).
* Absence of non-target disease counts as non-target CR in Table 1.
* Tumour-marker normalisation (needed for non-target CR) is not modelled.
* One assessment may span several scan dates (a chest CT and an abdominal MRI days apart):
  scans within ``assessment_window_days`` of an assessment's first scan form one assessment,
  dated by that first scan (trial protocols set such windows, typically +/- 7-14 days). A
  lesion measured twice within one assessment is an error.
* A patient with a baseline and no follow-up has best overall response NE (section 4.4: not
  evaluable). The best change of the sum of diameters (waterfall plots) is the most negative
  change up to and including the first PD, the span over which best response is recorded.
* Sums of diameters are rounded to the precision of the measurements that enter them (the
  most decimals of any of the patient's diameters), and % changes to 0.01 %, so that binary
  rounding noise (28.299999999999997) does not reach the tables.
"""

from __future__ import annotations

import csv
import enum
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from ..errors import or_fix

logger = logging.getLogger(__name__)


class Response(str, enum.Enum):
    """Response categories of RECIST 1.1 (section 4.3 and Tables 1-3)."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    PD = "PD"
    NE = "NE"
    NON_CR_NON_PD = "non-CR/non-PD"


class Measurability(str, enum.Enum):
    """Baseline lesion category, RECIST 1.1 section 3.1."""

    MEASURABLE = "measurable"
    NON_MEASURABLE = "non-measurable"
    PATHOLOGICAL_NODE_NON_TARGET = "pathological node, non-measurable"
    NORMAL_NODE = "normal node"


LESION_TYPES = ("target", "non_target", "new")
# Qualitative non-target status per time point (RECIST 1.1 section 4.3.2):
# present = non-CR/non-PD, absent = disappeared (a node < 10 mm short axis counts as absent),
# progression = unequivocal progression, not_evaluated = not assessed.
NON_TARGET_STATUSES = ("present", "absent", "progression", "not_evaluated")
# Organ key under which all lymph nodes count as one organ for the two-per-organ rule
# (EORTC RECIST FAQ, "Paired organs": lymph nodes are one organ).
LYMPH_NODE_ORGAN = "lymph node"


@dataclass(frozen=True)
class RecistCriteria:
    """Thresholds of RECIST 1.1; defaults are the paper's values.

    Attributes
    ----------
    slice_thickness_mm : CT slice thickness; above 5 mm the measurable minimum is twice it (3.1.1)
    min_measurable_mm : minimum longest diameter of a measurable non-nodal lesion (3.1.1), mm
    node_measurable_short_axis_mm : minimum short axis of a measurable (target) node (3.1.1), mm
    node_pathological_short_axis_mm : nodes >= this and below the measurable size are
        pathological non-target lesions; below it they are normal (3.1.1), mm
    max_targets, max_targets_per_organ : 5 and 2 (3.3.2)
    pr_decrease_pct : decrease of the sum against baseline for PR, % (4.3.1)
    pd_increase_pct, pd_min_increase_mm : increase over the nadir sum for PD, % and mm (4.3.1)
    node_normal_short_axis_mm : target nodes below this count as normal for CR (4.3.1), mm
    too_small_to_measure_mm : value of a lesion "too small to measure" (4.3.3 Appendix note), mm
    require_confirmation : confirm CR/PR for best response (non-randomised trials, 4.4)
    confirmation_interval_days : minimum interval of the confirming assessment (4.4: 4 weeks)
    min_sd_duration_days : minimum time from baseline for SD (4.4: protocol-set, 6-8 weeks)
    assessment_window_days : scans within this many days of an assessment's first scan belong to
        that assessment (protocol-set; 0 = every date is its own assessment)
    """

    slice_thickness_mm: float = 5.0
    min_measurable_mm: float = 10.0
    node_measurable_short_axis_mm: float = 15.0
    node_pathological_short_axis_mm: float = 10.0
    max_targets: int = 5
    max_targets_per_organ: int = 2
    pr_decrease_pct: float = 30.0
    pd_increase_pct: float = 20.0
    pd_min_increase_mm: float = 5.0
    node_normal_short_axis_mm: float = 10.0
    too_small_to_measure_mm: float = 5.0
    require_confirmation: bool = True
    confirmation_interval_days: int = 28
    min_sd_duration_days: int = 42
    assessment_window_days: int = 14

    def __post_init__(self):
        for name in ("slice_thickness_mm", "min_measurable_mm", "node_measurable_short_axis_mm",
                     "node_pathological_short_axis_mm", "pd_min_increase_mm", "node_normal_short_axis_mm",
                     "confirmation_interval_days", "min_sd_duration_days", "assessment_window_days"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RECIST criterion {name} must be a finite number >= 0, got {value}")
        if not (math.isfinite(self.too_small_to_measure_mm) and self.too_small_to_measure_mm > 0):
            raise ValueError(f"the size of a lesion too small to measure must be > 0 mm, got "
                             f"{self.too_small_to_measure_mm}{or_fix('too_small_to_measure_mm', '5.0')}")
        if not (0 < self.pr_decrease_pct < 100 and self.pd_increase_pct > 0):
            raise ValueError(f"RECIST thresholds need 0 < pr_decrease_pct < 100 and pd_increase_pct > 0; got "
                             f"{self.pr_decrease_pct}, {self.pd_increase_pct}")
        if self.max_targets < 1 or self.max_targets_per_organ < 1:
            raise ValueError("RECIST needs at least one target lesion in total and per organ")

    @property
    def min_measurable_diameter_mm(self) -> float:
        """10 mm, or twice the slice thickness when slices are thicker than 5 mm (3.1.1)."""
        return max(self.min_measurable_mm, 2.0 * self.slice_thickness_mm)


@dataclass(frozen=True)
class LesionMeasurement:
    """One lesion at one imaging date (one row of the tidy measurement table).

    A diameter of None = not assessed; 0 mm = disappeared; ``too_small_to_measure`` = present
    but too small (counted as ``RecistCriteria.too_small_to_measure_mm``).
    """

    patient_id: str
    lesion_id: str
    organ: str
    is_lymph_node: bool
    date: date
    lesion_type: str
    longest_diameter_mm: float | None = None
    short_axis_mm: float | None = None
    non_target_status: str | None = None
    too_small_to_measure: bool = False

    def __post_init__(self):
        where = f"lesion {self.lesion_id!r} of patient {self.patient_id!r} on {self.date}"
        if self.lesion_type not in LESION_TYPES:
            raise ValueError(f"{where}: unknown lesion_type {self.lesion_type!r}; "
                             f"expected one of {LESION_TYPES}")
        if self.non_target_status is not None and self.non_target_status not in NON_TARGET_STATUSES:
            raise ValueError(f"{where}: unknown non_target_status {self.non_target_status!r}; "
                             f"expected one of {NON_TARGET_STATUSES}")
        for name in ("longest_diameter_mm", "short_axis_mm"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"{where}: {name} must be a finite value >= 0 mm; got {value}")

    @classmethod
    def from_mapping(cls, row: Mapping) -> LesionMeasurement:
        """Build from a dict with the table's column names (dates as ``date`` or ISO text)."""
        missing = [name for name in REQUIRED_COLUMNS if name not in row]
        if missing:
            raise ValueError(f"measurement row is missing {missing}: {dict(row)}")
        values = {name: row.get(name) for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if name in row}
        if isinstance(values["date"], str):
            values["date"] = date.fromisoformat(values["date"])
        if isinstance(values["is_lymph_node"], str):
            values["is_lymph_node"] = _parse_bool(values["is_lymph_node"], "measurement row", "is_lymph_node")
        values["patient_id"], values["lesion_id"] = str(values["patient_id"]), str(values["lesion_id"])
        return cls(**values)

    def diameter_mm(self, criteria: RecistCriteria) -> float | None:
        """The diameter that enters the sum: short axis for nodes, longest diameter otherwise."""
        if self.too_small_to_measure:
            return criteria.too_small_to_measure_mm
        return self.short_axis_mm if self.is_lymph_node else self.longest_diameter_mm


REQUIRED_COLUMNS = ("patient_id", "lesion_id", "organ", "is_lymph_node", "date", "lesion_type")
OPTIONAL_COLUMNS = ("longest_diameter_mm", "short_axis_mm", "non_target_status", "too_small_to_measure")
# CSV token for a lesion that is present but too small to measure (RECIST 1.1 Appendix I).
TOO_SMALL_TOKEN = "TSTM"
# Slack on the "at least" comparisons so that a sum exactly on a threshold (e.g. 70.0 mm of
# 100.0 mm) is not lost to binary rounding of the percentage; far below any measurement, mm.
_SLACK_MM = 1e-9


@dataclass(frozen=True)
class TimePointResponse:
    """Response at one follow-up date (RECIST 1.1 section 4.3, Tables 1 and 2).

    ``sum_of_diameters_mm`` sums the assessed target lesions (short axis for nodes);
    ``all_targets_assessed`` says whether it is complete. Changes are in % of the baseline
    sum and of the nadir (smallest complete sum before this date, baseline included).
    """

    patient_id: str
    date: date
    days_from_baseline: int
    sum_of_diameters_mm: float | None
    all_targets_assessed: bool
    baseline_sum_mm: float | None
    nadir_sum_mm: float | None
    change_from_baseline_pct: float | None
    change_from_nadir_pct: float | None
    target_response: Response | None
    non_target_response: Response | None
    new_lesions: bool
    overall_response: Response


@dataclass(frozen=True)
class BestOverallResponse:
    """Best overall response (RECIST 1.1 section 4.4, Table 3).

    ``date`` is the time point that set it (the first of a confirmed pair); ``confirmed_on``
    is the confirming time point for CR/PR with confirmation. ``best_change_from_baseline_pct``
    is the most negative change of the sum of diameters up to and including the first PD
    (the waterfall plot's bar), None without a complete follow-up sum.
    """

    patient_id: str
    response: Response
    date: date | None
    confirmed_on: date | None
    best_change_from_baseline_pct: float | None = None


def measurability(longest_diameter_mm: float | None, short_axis_mm: float | None, is_lymph_node: bool,
                  criteria: RecistCriteria = RecistCriteria()) -> Measurability:
    """Baseline category of a lesion (RECIST 1.1 section 3.1.1).

    Non-nodal: measurable when the longest diameter >= 10 mm (>= 2 x slice thickness for
    slices thicker than 5 mm). Nodes: measurable when short axis >= 15 mm, pathological
    non-target for 10-15 mm, normal below 10 mm.
    """
    if is_lymph_node:
        if short_axis_mm is None:
            raise ValueError("a lymph node needs its short axis (mm) to be categorised")
        if short_axis_mm >= criteria.node_measurable_short_axis_mm:
            return Measurability.MEASURABLE
        if short_axis_mm >= criteria.node_pathological_short_axis_mm:
            return Measurability.PATHOLOGICAL_NODE_NON_TARGET
        return Measurability.NORMAL_NODE
    if longest_diameter_mm is None:
        raise ValueError("a non-nodal lesion needs its longest diameter (mm) to be categorised")
    if longest_diameter_mm >= criteria.min_measurable_diameter_mm:
        return Measurability.MEASURABLE
    return Measurability.NON_MEASURABLE


def select_target_lesions(baseline: Iterable[LesionMeasurement | Mapping],
                          criteria: RecistCriteria = RecistCriteria()) -> list[str]:
    """Lesion ids of the target lesions, largest first (RECIST 1.1 section 3.3.2).

    Measurable lesions are taken in decreasing size (short axis for nodes, longest diameter
    otherwise; ties by lesion id), at most ``max_targets_per_organ`` per organ (all lymph
    nodes are one organ) and ``max_targets`` in total. The paper also asks that targets be
    representative and reproducibly measurable: a reader may override this choice.
    """
    rows = [as_measurement(row) for row in baseline]
    measurable = [row for row in rows if row.lesion_type != "new" and not row.too_small_to_measure
                  and measurability(row.longest_diameter_mm, row.short_axis_mm, row.is_lymph_node, criteria)
                  is Measurability.MEASURABLE]
    measurable.sort(key=lambda row: (-row.diameter_mm(criteria), row.lesion_id))
    chosen: list[str] = []
    per_organ: dict[str, int] = {}
    for row in measurable:
        organ = _organ_key(row)
        if len(chosen) < criteria.max_targets and per_organ.get(organ, 0) < criteria.max_targets_per_organ:
            chosen.append(row.lesion_id)
            per_organ[organ] = per_organ.get(organ, 0) + 1
    return chosen


def apply_target_selection(measurements: Iterable[LesionMeasurement | Mapping], target_ids: Iterable[str],
                           criteria: RecistCriteria = RecistCriteria()) -> list[LesionMeasurement]:
    """Relabel lesions: ``target_ids`` become targets, other pre-existing lesions non-targets.

    A lesion turned non-target without a status gets one from its diameters: ``absent`` for
    0 mm (nodes: short axis below the pathological size), ``present`` otherwise, and
    ``not_evaluated`` when not measured. Unequivocal progression is a reader's call and is
    never derived. Returns new rows; the input is not modified.
    """
    target_ids = set(target_ids)
    result = []
    for row in map(as_measurement, measurements):
        if row.lesion_type == "new":
            result.append(row)
        elif row.lesion_id in target_ids:
            result.append(replace(row, lesion_type="target"))
        else:
            status = row.non_target_status or _status_from_size(row, criteria)
            result.append(replace(row, lesion_type="non_target", non_target_status=status))
    return result


def sum_of_diameters_mm(targets: Iterable[LesionMeasurement],
                        criteria: RecistCriteria = RecistCriteria()) -> float:
    """Sum of diameters of target lesions: short axis for nodes, longest diameter otherwise (4.2)."""
    total = 0.0
    for row in targets:
        value = row.diameter_mm(criteria)
        if value is None:
            raise ValueError(f"target lesion {row.lesion_id!r} on {row.date} was not measured")
        total += value
    return total


def target_response(targets: Sequence[LesionMeasurement], baseline_sum_mm: float, nadir_sum_mm: float,
                    n_targets: int, criteria: RecistCriteria = RecistCriteria()) -> Response:
    """Target-lesion response at one time point (RECIST 1.1 section 4.3.1 and 4.3.4).

    Parameters
    ----------
    targets : the target lesions measured at this date (unassessed ones may be absent or
        have no diameter)
    baseline_sum_mm : sum of diameters at baseline, mm
    nadir_sum_mm : smallest complete sum on study before this date (baseline included), mm
    n_targets : number of target lesions chosen at baseline
    """
    assessed = [row for row in targets if row.diameter_mm(criteria) is not None]
    current = sum_of_diameters_mm(assessed, criteria)
    progression = (current >= nadir_sum_mm * (1.0 + criteria.pd_increase_pct / 100.0) - _SLACK_MM
                   and current - nadir_sum_mm >= criteria.pd_min_increase_mm - _SLACK_MM)
    if len(assessed) < n_targets:
        # Missing lesions can only add to the sum: PD from the others stands (4.3.4).
        return Response.PD if progression else Response.NE
    if all(_normalised(row, criteria) for row in assessed):
        return Response.CR
    if progression:
        return Response.PD
    if current <= baseline_sum_mm * (1.0 - criteria.pr_decrease_pct / 100.0) + _SLACK_MM:
        return Response.PR
    return Response.SD


def non_target_response(statuses: Iterable[str]) -> Response:
    """Non-target response from per-lesion statuses (RECIST 1.1 section 4.3.2).

    Any unequivocal progression -> PD; else any lesion not evaluated -> NE; all absent -> CR;
    otherwise non-CR/non-PD.
    """
    statuses = list(statuses)
    unknown = sorted(set(statuses) - set(NON_TARGET_STATUSES))
    if unknown:
        raise ValueError(f"unknown non-target status {unknown}; expected one of {NON_TARGET_STATUSES}")
    if not statuses:
        raise ValueError("no non-target lesions to assess")
    if "progression" in statuses:
        return Response.PD
    if "not_evaluated" in statuses:
        return Response.NE
    if all(status == "absent" for status in statuses):
        return Response.CR
    return Response.NON_CR_NON_PD


_NON_TARGET_RESPONSES = (Response.CR, Response.NON_CR_NON_PD, Response.NE, Response.PD)


def overall_response(target: Response | None, non_target: Response | None, new_lesions: bool) -> Response:
    """Overall time-point response: RECIST 1.1 Table 1 (target disease) and Table 2 (non-target only).

    ``target=None``: the patient has no target lesions (Table 2). ``non_target=None``: no
    non-target disease at baseline (counts as non-target CR in Table 1).
    """
    if target is None:
        if non_target is None:
            raise ValueError("a patient needs target or non-target disease to be assessed")
        if non_target not in _NON_TARGET_RESPONSES:
            raise ValueError(f"non-target response must be CR, non-CR/non-PD, NE or PD; got {non_target}")
        # Table 2 rows 4-5: unequivocal PD or any new lesion; rows 1-3 keep the non-target response.
        return Response.PD if new_lesions or non_target is Response.PD else non_target
    if target not in (Response.CR, Response.PR, Response.SD, Response.PD, Response.NE):
        raise ValueError(f"target response must be CR, PR, SD, PD or NE; got {target}")
    if non_target is not None and non_target not in _NON_TARGET_RESPONSES:
        raise ValueError(f"non-target response must be CR, non-CR/non-PD, NE or PD; got {non_target}")
    # Table 1 rows 7-9: target PD, non-target PD or new lesions.
    if new_lesions or target is Response.PD or non_target is Response.PD:
        return Response.PD
    # Row 6: targets not all evaluated, non-target non-PD.
    if target is Response.NE:
        return Response.NE
    # Rows 1-3: target CR with non-target CR -> CR; non-CR/non-PD or not evaluated -> PR.
    if target is Response.CR:
        return Response.CR if non_target in (None, Response.CR) else Response.PR
    # Rows 4-5: PR or SD with non-target non-PD or not all evaluated.
    return target


def assess_patient(measurements: Iterable[LesionMeasurement | Mapping],
                   criteria: RecistCriteria = RecistCriteria()) -> list[TimePointResponse]:
    """Time-point responses of one patient at every follow-up date (RECIST 1.1 section 4.3).

    The earliest date is the baseline; target lesions are those with ``lesion_type="target"``
    at baseline and must satisfy measurability and the 5-total / 2-per-organ rule.
    """
    rows = [as_measurement(row) for row in measurements]
    if not rows:
        raise ValueError("no measurements given")
    patients = sorted({row.patient_id for row in rows})
    if len(patients) != 1:
        raise ValueError(f"assess_patient needs one patient; got {patients} (use assess_cohort)")
    try:
        return _assess_patient(group_assessments(rows, criteria.assessment_window_days), criteria)
    except ValueError as error:
        raise ValueError(f"patient {patients[0]!r}: {error}") from None


def _assess_patient(rows: list[LesionMeasurement], criteria: RecistCriteria) -> list[TimePointResponse]:
    by_date = _rows_by_date(rows)
    baseline_date, *followup_dates = sorted(by_date)
    baseline = by_date[baseline_date]
    targets, non_targets = _validate_baseline(baseline, criteria)
    _validate_followups(by_date, baseline_date, targets, non_targets, criteria)
    places = _decimal_places([row.diameter_mm(criteria) for row in rows if row.lesion_type == "target"])

    baseline_sum = sum_of_diameters_mm(targets.values(), criteria) if targets else None
    nadir = baseline_sum
    responses = []
    for when in followup_dates:
        at_date = by_date[when]
        new_lesions = any(row.lesion_type == "new" for row in at_date.values())
        target_rows = [at_date[lesion_id] for lesion_id in targets if lesion_id in at_date]
        assessed = [row for row in target_rows if row.diameter_mm(criteria) is not None]
        complete = len(assessed) == len(targets)
        # No target measured at all: no sum (an empty cell, not 0 mm, which would read as complete response).
        current = sum_of_diameters_mm(assessed, criteria) if targets and assessed else None
        t_response = None
        if targets:
            t_response = target_response(target_rows, baseline_sum, nadir, len(targets), criteria)
        nt_response = None
        if non_targets:
            nt_response = non_target_response(
                at_date[lesion_id].non_target_status if lesion_id in at_date else "not_evaluated"
                for lesion_id in non_targets)
        responses.append(TimePointResponse(
            patient_id=rows[0].patient_id, date=when, days_from_baseline=(when - baseline_date).days,
            sum_of_diameters_mm=_rounded(current, places), all_targets_assessed=complete,
            baseline_sum_mm=_rounded(baseline_sum, places), nadir_sum_mm=_rounded(nadir, places),
            change_from_baseline_pct=_rounded(_percent_change(current, baseline_sum), 2) if complete else None,
            change_from_nadir_pct=_rounded(_percent_change(current, nadir), 2) if complete else None,
            target_response=t_response, non_target_response=nt_response, new_lesions=new_lesions,
            overall_response=overall_response(t_response, nt_response, new_lesions)))
        if targets and complete:
            nadir = min(nadir, current)
    return responses


def group_assessments(measurements: Iterable[LesionMeasurement | Mapping],
                      window_days: int = RecistCriteria().assessment_window_days) -> list[LesionMeasurement]:
    """Rows dated by their assessment: scans within ``window_days`` of an assessment's first scan join it.

    Per patient, scan dates are taken in order; a date more than ``window_days`` after the
    first date of the current assessment starts the next one. Rows keep everything but their
    date, which becomes the assessment's first scan date. A lesion measured twice within one
    assessment raises ValueError naming both dates.
    """
    if not (window_days >= 0):
        raise ValueError(f"assessment window must be >= 0 days, got {window_days}")
    rows = [as_measurement(row) for row in measurements]
    assessment: dict[tuple[str, date], date] = {}
    for patient in sorted({row.patient_id for row in rows}):
        start = None
        for when in sorted({row.date for row in rows if row.patient_id == patient}):
            if start is None or (when - start).days > window_days:
                start = when
            assessment[(patient, when)] = start
    seen: dict[tuple[str, str, date], date] = {}
    grouped = []
    for row in rows:
        when = assessment[(row.patient_id, row.date)]
        key = (row.patient_id, row.lesion_id, when)
        if key in seen and seen[key] != row.date:
            raise ValueError(f"lesion {row.lesion_id!r} of patient {row.patient_id!r} is measured on {seen[key]} "
                             f"and {row.date}, within one assessment ({window_days}-day window from {when}); "
                             "keep one measurement per assessment or narrow the window")
        seen.setdefault(key, row.date)
        grouped.append(row if when == row.date else replace(row, date=when))
    return grouped


def best_change_from_baseline_pct(time_points: Sequence[TimePointResponse]) -> float | None:
    """Most negative % change of the sum of diameters up to and including the first PD (None if none).

    The bar of a waterfall plot: later time points are past progression, where best response
    is no longer recorded (RECIST 1.1 section 4.4).
    """
    ordered = sorted(time_points, key=lambda tp: tp.date)
    first_pd = next((k for k, tp in enumerate(ordered) if tp.overall_response is Response.PD), None)
    span = ordered if first_pd is None else ordered[:first_pd + 1]
    changes = [tp.change_from_baseline_pct for tp in span if tp.change_from_baseline_pct is not None]
    return min(changes) if changes else None


def assess_cohort(measurements: Iterable[LesionMeasurement | Mapping],
                  criteria: RecistCriteria = RecistCriteria(), *,
                  problems: dict[str, str] | None = None) -> dict[str, list[TimePointResponse]]:
    """:func:`assess_patient` for every patient of a table, keyed by patient id.

    Without ``problems`` the first patient whose data break a rule raises ValueError (naming
    the patient). With a ``problems`` dict, every such patient is left out of the result and
    its message stored under its id, so that the valid patients are still assessed; patients
    already in ``problems`` (e.g. rows that could not be read) are left out too.
    """
    per_patient: dict[str, list[LesionMeasurement]] = {}
    for row in map(as_measurement, measurements):
        per_patient.setdefault(row.patient_id, []).append(row)
    results = {}
    for patient, rows in sorted(per_patient.items()):
        if problems is not None and patient in problems:
            continue
        try:
            results[patient] = assess_patient(rows, criteria)
        except ValueError as error:
            if problems is None:
                raise
            problems[patient] = str(error)
    return results


def best_overall_responses(by_patient: Mapping[str, Sequence[TimePointResponse]],
                           criteria: RecistCriteria = RecistCriteria()) -> list[BestOverallResponse]:
    """:func:`best_overall_response` of every patient; a patient without follow-up is NE (section 4.4)."""
    return [best_overall_response(responses, criteria) if responses
            else BestOverallResponse(patient, Response.NE, None, None)
            for patient, responses in by_patient.items()]


def best_overall_response(time_points: Sequence[TimePointResponse],
                          criteria: RecistCriteria = RecistCriteria()) -> BestOverallResponse:
    """Best overall response of one patient (RECIST 1.1 section 4.4 and Table 3).

    With confirmation, CR (PR) needs a later CR (CR or PR) at least
    ``confirmation_interval_days`` after it, with no PD in between; a CR confirmed by a PR is
    a PR (Table 3, footnote a). An unconfirmed response, SD and non-CR/non-PD count as SD
    (non-CR/non-PD for non-target-only disease) when a time point at least
    ``min_sd_duration_days`` after baseline met them; otherwise the best response is PD if
    progression followed (also when disease reappeared as SD after a CR: Table 3 row "CR, SD"),
    else NE.
    """
    if not time_points:
        raise ValueError("no follow-up time points: best overall response needs at least one")
    patients = sorted({tp.patient_id for tp in time_points})
    if len(patients) != 1:
        raise ValueError(f"best_overall_response needs one patient; got {patients}")
    ordered = sorted(time_points, key=lambda tp: tp.date)
    first_pd = next((k for k, tp in enumerate(ordered) if tp.overall_response is Response.PD), None)
    before_pd = ordered if first_pd is None else ordered[:first_pd]

    best_change = best_change_from_baseline_pct(ordered)

    def result(response, at=None, confirmed=None):
        return BestOverallResponse(patients[0], response, at.date if at else None,
                                   confirmed.date if confirmed else None, best_change)

    if criteria.require_confirmation:
        for wanted, allowed in ((Response.CR, {Response.CR}), (Response.PR, {Response.CR, Response.PR})):
            pair = _confirmed_pair(before_pd, allowed, criteria.confirmation_interval_days)
            if pair:
                return result(wanted, *pair)
    else:
        for wanted in (Response.CR, Response.PR):
            first = next((tp for tp in before_pd if tp.overall_response is wanted), None)
            if first:
                return result(wanted, first)
    stable = {Response.CR, Response.PR, Response.SD, Response.NON_CR_NON_PD}
    lasting = next((tp for tp in before_pd if tp.overall_response in stable
                    and tp.days_from_baseline >= criteria.min_sd_duration_days), None)
    if lasting:
        non_target_only = all(tp.target_response is None for tp in ordered)
        return result(Response.NON_CR_NON_PD if non_target_only else Response.SD, lasting)
    if first_pd is not None:
        return result(Response.PD, ordered[first_pd])
    after_cr = [tp for k, tp in enumerate(before_pd)
                if any(prev.overall_response is Response.CR for prev in before_pd[:k])]
    reappeared = next((tp for tp in after_cr if tp.overall_response is Response.SD), None)
    if reappeared:
        return result(Response.PD, reappeared)
    return result(Response.NE)


def read_measurements_csv(path: str | Path, *, problems: dict[str, str] | None = None) -> list[LesionMeasurement]:
    """Read the tidy measurement table from CSV.

    Columns: ``patient_id, lesion_id, organ, is_lymph_node, date, lesion_type`` (required) and
    ``longest_diameter_mm, short_axis_mm, non_target_status, too_small_to_measure``
    (optional). Dates are ISO (YYYY-MM-DD); booleans true/false, yes/no or 1/0; an empty
    diameter is "not assessed" and ``TSTM`` means too small to measure. Errors name the file,
    the line, the column and the patient.

    Without ``problems`` the first bad row raises ValueError. With a ``problems`` dict, every
    bad row is recorded under its patient id (``"line N"`` when the id itself is missing) and
    that patient's rows are left out, so that the other patients can still be assessed.
    Rows of a patient listed against date order (a later line dated before an earlier one)
    are logged as a warning: a date typo is the usual cause.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"measurement table not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [name for name in REQUIRED_COLUMNS if name not in header]
            if missing:
                raise ValueError(f"{path}: missing column(s) {missing}; the header has {header}")
            rows = []
            for row in reader:
                where = f"{path}: line {reader.line_num}"
                patient = (row.get("patient_id") or "").strip() if isinstance(row.get("patient_id"), str) else ""
                try:
                    if None in row:
                        raise ValueError(f"{where}: more cells than the {len(header)} columns of the header")
                    rows.append(_parse_csv_row(row, where))
                except ValueError as error:
                    if problems is None:
                        raise
                    key = patient or f"line {reader.line_num}"
                    problems.setdefault(key, str(error))
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a UTF-8 text (CSV) file ({error.reason} at byte {error.start})") from None
    except csv.Error as error:
        raise ValueError(f"{path}: not a readable CSV file ({error})") from None
    if problems:
        rows = [row for row in rows if row.patient_id not in problems]
    if not rows and not problems:
        raise ValueError(f"{path}: no measurement rows")
    _warn_on_date_order(rows, path)
    return rows


def _warn_on_date_order(rows: Sequence[LesionMeasurement], path: Path) -> None:
    """Warn once per patient listed against date order by more than an assessment window (a date typo?)."""
    window = RecistCriteria().assessment_window_days
    latest: dict[str, date] = {}
    warned: set[str] = set()
    for row in rows:
        last = latest.get(row.patient_id)
        if last is not None and (last - row.date).days > window and row.patient_id not in warned:
            logger.warning("%s: patient %r is listed out of date order (%s after %s); check the dates",
                           path, row.patient_id, row.date, last)
            warned.add(row.patient_id)
        latest[row.patient_id] = max(last or row.date, row.date)


def as_measurement(row: LesionMeasurement | Mapping) -> LesionMeasurement:
    """A :class:`LesionMeasurement` from itself or from a dict with the table's column names."""
    return row if isinstance(row, LesionMeasurement) else LesionMeasurement.from_mapping(row)


def _parse_csv_row(row: Mapping[str, str], where: str) -> LesionMeasurement:
    def text(name: str) -> str:
        return (row.get(name) or "").strip()

    patient = text("patient_id")
    if patient:
        where = f"{where} (patient {patient!r})"
    for name in REQUIRED_COLUMNS:
        if not text(name):
            raise ValueError(f"{where}, column '{name}': empty value")
    try:
        when = date.fromisoformat(text("date"))
    except ValueError:
        raise ValueError(f"{where}, column 'date': cannot read {text('date')!r} as an ISO date "
                         "(YYYY-MM-DD)") from None
    too_small = _parse_bool(text("too_small_to_measure") or "false", where, "too_small_to_measure")
    diameters = {}
    for name in ("longest_diameter_mm", "short_axis_mm"):
        value = text(name)
        if value.upper() == TOO_SMALL_TOKEN:
            too_small, value = True, ""
        try:
            number = float(value) if value else None
        except ValueError:
            raise ValueError(f"{where}, column '{name}': cannot read {value!r} as a number in mm") from None
        if number is not None and (not math.isfinite(number) or number < 0):
            raise ValueError(f"{where}, column '{name}': diameter must be finite and >= 0 mm; got {value}")
        diameters[name] = number
    try:
        return LesionMeasurement(
            patient_id=text("patient_id"), lesion_id=text("lesion_id"), organ=text("organ"),
            is_lymph_node=_parse_bool(text("is_lymph_node"), where, "is_lymph_node"), date=when,
            lesion_type=text("lesion_type"), non_target_status=text("non_target_status") or None,
            too_small_to_measure=too_small, **diameters)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _parse_bool(value: str, where: str, column: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "yes", "1", "y", "t"):
        return True
    if lowered in ("false", "no", "0", "n", "f"):
        return False
    raise ValueError(f"{where}, column '{column}': cannot read {value!r} as true/false")


def _organ_key(row: LesionMeasurement) -> str:
    return LYMPH_NODE_ORGAN if row.is_lymph_node else row.organ.strip().lower()


def _normalised(row: LesionMeasurement, criteria: RecistCriteria) -> bool:
    """Target lesion counted as gone for CR: non-nodal 0 mm, nodal short axis < 10 mm (4.3.1)."""
    if row.too_small_to_measure and not row.is_lymph_node:
        return False
    if row.is_lymph_node:
        return row.diameter_mm(criteria) < criteria.node_normal_short_axis_mm
    return row.longest_diameter_mm == 0.0


def _status_from_size(row: LesionMeasurement, criteria: RecistCriteria) -> str:
    size = row.diameter_mm(criteria)
    if size is None:
        return "not_evaluated"
    gone = size < criteria.node_pathological_short_axis_mm if row.is_lymph_node else size == 0.0
    return "absent" if gone else "present"


def _decimal_places(values: Iterable[float | None], most: int = 6) -> int:
    """Most decimals written in any of ``values`` (shortest repr), at most ``most``."""
    places = 0
    for value in values:
        if value is None or not math.isfinite(value):
            continue
        text = repr(float(value))
        if "e" in text or "E" in text:
            return most
        places = max(places, len(text.partition(".")[2].rstrip("0")))
    return min(places, most)


def _rounded(value: float | None, places: int) -> float | None:
    return None if value is None else round(value, places)


def _percent_change(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0.0:
        return None
    return 100.0 * (value - reference) / reference


def _rows_by_date(rows: list[LesionMeasurement]) -> dict[date, dict[str, LesionMeasurement]]:
    by_date: dict[date, dict[str, LesionMeasurement]] = {}
    for row in rows:
        at_date = by_date.setdefault(row.date, {})
        if row.lesion_id in at_date:
            raise ValueError(f"lesion {row.lesion_id!r} of patient {row.patient_id!r} has two rows "
                             f"on {row.date}")
        at_date[row.lesion_id] = row
    return by_date


def _validate_baseline(baseline: dict[str, LesionMeasurement], criteria: RecistCriteria):
    """Targets and non-targets at baseline, checked against RECIST 1.1 section 3.3."""
    new = [lesion_id for lesion_id, row in baseline.items() if row.lesion_type == "new"]
    if new:
        raise ValueError(f"baseline cannot have new lesions; got {new}")
    targets = {k: row for k, row in sorted(baseline.items()) if row.lesion_type == "target"}
    non_targets = {k: row for k, row in sorted(baseline.items()) if row.lesion_type == "non_target"}
    if not targets and not non_targets:
        raise ValueError("baseline has neither target nor non-target lesions")
    for lesion_id, row in targets.items():
        if row.too_small_to_measure or row.diameter_mm(criteria) is None:
            raise ValueError(f"target lesion {lesion_id!r} has no baseline measurement "
                             f"({'short axis' if row.is_lymph_node else 'longest diameter'})")
        category = measurability(row.longest_diameter_mm, row.short_axis_mm, row.is_lymph_node, criteria)
        if category is not Measurability.MEASURABLE:
            size = row.diameter_mm(criteria)
            raise ValueError(f"target lesion {lesion_id!r} is not measurable at baseline ({category.value}, "
                             f"{size} mm); it can only be a non-target lesion")
    if len(targets) > criteria.max_targets:
        raise ValueError(f"{len(targets)} target lesions {list(targets)}; RECIST 1.1 allows at most "
                         f"{criteria.max_targets}")
    per_organ: dict[str, list[str]] = {}
    for lesion_id, row in targets.items():
        per_organ.setdefault(_organ_key(row), []).append(lesion_id)
    for organ, ids in per_organ.items():
        if len(ids) > criteria.max_targets_per_organ:
            raise ValueError(f"{len(ids)} target lesions in organ {organ!r} ({ids}); "
                             f"RECIST 1.1 allows at most {criteria.max_targets_per_organ} per organ")
    return targets, non_targets


def _validate_followups(by_date, baseline_date, targets, non_targets, criteria: RecistCriteria) -> None:
    for when, at_date in sorted(by_date.items()):
        if when == baseline_date:
            continue
        for lesion_id, row in at_date.items():
            if lesion_id in targets or lesion_id in non_targets:
                expected = "target" if lesion_id in targets else "non_target"
                was = f"{expected} at baseline"
            else:
                expected, was = "new", "absent at baseline, so it must be new"
            if row.lesion_type != expected:
                raise ValueError(f"lesion {lesion_id!r} on {when} is {row.lesion_type!r} but was {was}")
            if row.lesion_type != "non_target":
                continue
            if row.non_target_status is None:
                raise ValueError(f"non-target lesion {lesion_id!r} on {when} has no non_target_status "
                                 f"(one of {NON_TARGET_STATUSES})")
            # A node is only "absent" (normal) below the pathological size (RECIST 1.1 section 4.3.2).
            if (row.is_lymph_node and row.non_target_status == "absent" and row.short_axis_mm is not None
                    and row.short_axis_mm >= criteria.node_pathological_short_axis_mm):
                raise ValueError(f"non-target node {lesion_id!r} on {when} is marked absent but its short "
                                 f"axis is {row.short_axis_mm} mm "
                                 f"(>= {criteria.node_pathological_short_axis_mm} mm)")


def _confirmed_pair(time_points: Sequence[TimePointResponse], allowed: set[Response], interval_days: int):
    """First time point with a response in ``allowed`` confirmed by a later one >= interval later.

    Time points in between must be in ``allowed`` or NE (no PD: the list stops before PD).
    """
    for i, first in enumerate(time_points):
        if first.overall_response not in allowed:
            continue
        for later in time_points[i + 1:]:
            if later.overall_response not in allowed and later.overall_response is not Response.NE:
                break
            if later.overall_response in allowed and (later.date - first.date).days >= interval_days:
                return first, later
    return None
