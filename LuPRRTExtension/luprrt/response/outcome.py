"""Lesion-level outcome: relative change of a lesion's diameter and its category.

The predictive-imaging study relates baseline uptake and absorbed dose per lesion to the
lesion's outcome, the change of its longest transversal diameter from baseline. Lymph nodes
are followed by their short axis, as RECIST 1.1 measures them (section 3.1.1; Eisenhauer et
al. 2009), so a node given only with its short axis is valid. The default
category thresholds borrow RECIST 1.1's per-sum limits (-30 % response, +20 % progression;
Eisenhauer et al., Eur J Cancer 2009;45:228-247, section 4.3.1) and apply them per lesion;
they are parameters, not a RECIST verdict (RECIST judges the patient, not the lesion).

Tables are lists of plain dicts (one row per lesion and time point) so that they join with
dose and T/N tables from other modules by ``(patient_id, lesion_id)`` without pandas; a
pandas user can pass ``DataFrame.to_dict("records")`` and wrap the result in a DataFrame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from .recist import LesionMeasurement, RecistCriteria, group_assessments

CATEGORIES = ("response", "stable", "progression", "not_evaluated")
# Slack so that a change exactly on a threshold is not lost to binary rounding, %.
_SLACK_PCT = 1e-9
JOIN_KEYS = ("patient_id", "lesion_id")


@dataclass(frozen=True)
class OutcomeThresholds:
    """Per-lesion category limits on the % change of the longest diameter from baseline.

    ``change_pct <= response_pct`` is a response, ``change_pct >= progression_pct`` a
    progression, anything between is stable.
    """

    response_pct: float = -30.0
    progression_pct: float = 20.0

    def __post_init__(self):
        if not self.response_pct < 0.0 < self.progression_pct:
            raise ValueError(f"thresholds need response_pct < 0 < progression_pct; got {self.response_pct}, "
                             f"{self.progression_pct}")

    def category(self, change_pct: float | None) -> str:
        """``response``, ``stable``, ``progression`` or ``not_evaluated`` (no measurement)."""
        if change_pct is None:
            return "not_evaluated"
        if change_pct <= self.response_pct + _SLACK_PCT:
            return "response"
        if change_pct >= self.progression_pct - _SLACK_PCT:
            return "progression"
        return "stable"


# What a lesion's diameter is: the short axis for lymph nodes, the longest diameter otherwise.
SHORT_AXIS, LONGEST_DIAMETER = "short_axis", "longest_diameter"


@dataclass(frozen=True)
class LesionOutcome:
    """Change of one lesion's diameter (``diameter``: short axis of a node, else longest) from baseline."""

    patient_id: str
    lesion_id: str
    baseline_date: date
    followup_date: date
    days_from_baseline: int
    diameter: str
    baseline_diameter_mm: float
    followup_diameter_mm: float | None
    change_pct: float | None
    category: str


def lesion_outcomes(measurements: Iterable[LesionMeasurement | Mapping], *,
                    thresholds: OutcomeThresholds = OutcomeThresholds(),
                    last_only: bool = False,
                    too_small_to_measure_mm: float = RecistCriteria().too_small_to_measure_mm,
                    assessment_window_days: int = RecistCriteria().assessment_window_days,
                    ) -> list[LesionOutcome]:
    """Per lesion and follow-up date: % change of the diameter from baseline and its category.

    The diameter is the short axis for lymph nodes and the longest diameter otherwise; % changes
    are rounded to 0.01 %.

    Parameters
    ----------
    measurements : the tidy measurement table (see :class:`luprrt.response.recist.LesionMeasurement`);
        each patient's earliest date is its baseline; lesions absent at baseline (new lesions)
        and non-target lesions without a baseline diameter have no % change and are left out
    thresholds : category limits, %
    last_only : keep only each lesion's last follow-up date
    too_small_to_measure_mm : diameter given to a lesion "too small to measure", mm
    assessment_window_days : scans within this many days form one assessment
        (:func:`luprrt.response.recist.group_assessments`)

    Returns
    -------
    list of LesionOutcome, ordered by patient, lesion and date.
    """
    rows = group_assessments(measurements, assessment_window_days)
    baseline_dates: dict[str, date] = {}
    for row in rows:
        baseline_dates[row.patient_id] = min(row.date, baseline_dates.get(row.patient_id, row.date))
    baselines = {(row.patient_id, row.lesion_id): row for row in rows
                 if row.date == baseline_dates[row.patient_id]}
    outcomes = []
    for row in sorted(rows, key=lambda r: (r.patient_id, r.lesion_id, r.date)):
        key = (row.patient_id, row.lesion_id)
        if row.date == baseline_dates[row.patient_id] or key not in baselines:
            continue
        start = baselines[key]
        start_mm = _diameter(start, too_small_to_measure_mm)
        kind = SHORT_AXIS if start.is_lymph_node else LONGEST_DIAMETER
        if start_mm is None or start_mm <= 0.0:
            if start.lesion_type == "non_target":
                continue  # followed qualitatively (present/absent): no diameter, no % change
            raise ValueError(f"lesion {row.lesion_id!r} of patient {row.patient_id!r} has no positive "
                             f"baseline {kind.replace('_', ' ')} on {start.date} (got {start_mm}); "
                             "its change cannot be computed")
        now_mm = _diameter(row, too_small_to_measure_mm)
        change = None if now_mm is None else round(100.0 * (now_mm - start_mm) / start_mm, 2)
        outcomes.append(LesionOutcome(row.patient_id, row.lesion_id, start.date, row.date,
                                      (row.date - start.date).days, kind, start_mm, now_mm, change,
                                      thresholds.category(change)))
    if last_only:
        last = {(o.patient_id, o.lesion_id): o for o in outcomes}  # sorted by date: the last one wins
        outcomes = list(last.values())
    return outcomes


def join_by_lesion(left: Iterable, *others: Iterable, how: str = "left") -> list[dict]:
    """Join tables (lists of dicts or dataclasses) on ``(patient_id, lesion_id)``.

    Ids are compared as text, so ``3`` and ``"3"`` match. Each ``others`` table must have at
    most one row per lesion; columns other than the keys must not repeat across tables.

    Parameters
    ----------
    left : the table whose rows are kept (e.g. :func:`lesion_outcomes`; several rows per lesion allowed)
    others : tables to attach (e.g. lesion dose in Gy, T/N)
    how : ``"left"`` (missing matches give None) or ``"inner"`` (rows without a match in every
        table are dropped)
    """
    if how not in ("left", "inner"):
        raise ValueError(f"unknown join {how!r}; expected 'left' or 'inner'")
    left_rows = [_as_row(row, "table 0") for row in left]
    columns = {name for row in left_rows for name in row}
    lookups = []
    for index, table in enumerate(others, start=1):
        rows = [_as_row(row, f"table {index}") for row in table]
        table_columns = [name for name in dict.fromkeys(n for row in rows for n in row)
                         if name not in JOIN_KEYS]
        clash = sorted(columns.intersection(table_columns))
        if clash:
            raise ValueError(f"column(s) {clash} of table {index} already exist in an earlier table; "
                             "rename them")
        columns.update(table_columns)
        lookup: dict[tuple[str, str], dict] = {}
        for row in rows:
            key = _key(row)
            if key in lookup:
                raise ValueError(f"table {index} has two rows for patient {key[0]!r}, lesion {key[1]!r}")
            lookup[key] = row
        lookups.append((table_columns, lookup))
    joined = []
    for row in left_rows:
        out = dict(row)
        complete = True
        for table_columns, lookup in lookups:
            match = lookup.get(_key(row))
            complete = complete and match is not None
            out.update({name: (match or {}).get(name) for name in table_columns})
        if complete or how == "left":
            joined.append(out)
    return joined


def _diameter(row: LesionMeasurement, too_small_mm: float) -> float | None:
    if row.too_small_to_measure:
        return too_small_mm
    return row.short_axis_mm if row.is_lymph_node else row.longest_diameter_mm


def _as_row(row, table: str) -> dict:
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        row = dataclasses.asdict(row)
    if not isinstance(row, Mapping):
        raise ValueError(f"{table}: rows must be dicts or dataclasses; got {type(row).__name__}")
    missing = [key for key in JOIN_KEYS if key not in row]
    if missing:
        raise ValueError(f"{table}: a row lacks the join key(s) {missing}: {dict(row)}")
    return dict(row)


def _key(row: Mapping) -> tuple[str, str]:
    return str(row["patient_id"]), str(row["lesion_id"])
