"""Tumour response: lesion diameters, lesion tracking, RECIST 1.1 and lesion-level outcome.

Modules
-------
diameters  longest axial diameter and perpendicular short axis of each lesion (any voxel spacing
           and orientation), from segments or drawn contours
matching   lesion correspondence between time points (overlap after registration, Hungarian
           assignment), split/merge/new/disappeared events, persistent tracking ids
recist     RECIST 1.1: measurability, target selection, target/non-target/overall response per time
           point, best overall response with confirmation (Eisenhauer et al., Eur J Cancer 2009)
outcome    per-lesion change of the longest diameter and its category (the predictive study's
           lesion outcome)
"""

from .diameters import LesionDiameters, contour_diameters, lesion_diameters, segment_diameters
from .matching import LesionEvent, LesionPair, MatchResult, apply_tracking_ids, match_lesions
from .outcome import LesionOutcome, OutcomeThresholds, join_by_lesion, lesion_outcomes
from .recist import (
    BestOverallResponse,
    LesionMeasurement,
    Measurability,
    RecistCriteria,
    Response,
    TimePointResponse,
    apply_target_selection,
    as_measurement,
    assess_cohort,
    assess_patient,
    best_change_from_baseline_pct,
    best_overall_response,
    best_overall_responses,
    group_assessments,
    measurability,
    non_target_response,
    overall_response,
    read_measurements_csv,
    select_target_lesions,
    sum_of_diameters_mm,
    target_response,
)

__all__ = [
    "BestOverallResponse",
    "LesionDiameters",
    "LesionEvent",
    "LesionMeasurement",
    "LesionOutcome",
    "LesionPair",
    "MatchResult",
    "Measurability",
    "OutcomeThresholds",
    "RecistCriteria",
    "Response",
    "TimePointResponse",
    "apply_target_selection",
    "apply_tracking_ids",
    "as_measurement",
    "assess_cohort",
    "assess_patient",
    "best_change_from_baseline_pct",
    "best_overall_response",
    "best_overall_responses",
    "contour_diameters",
    "group_assessments",
    "join_by_lesion",
    "lesion_diameters",
    "lesion_outcomes",
    "match_lesions",
    "measurability",
    "non_target_response",
    "overall_response",
    "read_measurements_csv",
    "segment_diameters",
    "select_target_lesions",
    "sum_of_diameters_mm",
    "target_response",
]
