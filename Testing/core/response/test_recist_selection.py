"""RECIST 1.1 target selection and non-target relabelling on cases whose answer is read off the paper.

Each case is built so that a plausible slip changes the answer: the organ limit counted from 1,
a node ranked by its longest diameter instead of its short axis (section 3.3.2), new or
too-small lesions taken as targets, the trial's criteria ignored, a 10.0 mm node called normal
(normal is a short axis below 10 mm, section 4.3.1).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from luprrt.response.recist import (
    LesionMeasurement,
    RecistCriteria,
    apply_target_selection,
    assess_patient,
    non_target_response,
    select_target_lesions,
    target_response,
)

BASELINE = date(2024, 1, 8)


def lesion(lesion_id: str, organ: str, longest_mm: float | None, short_mm: float | None = None, *,
           node: bool = False, kind: str = "target", too_small: bool = False,
           status: str | None = None) -> LesionMeasurement:
    return LesionMeasurement("P1", lesion_id, organ, node, BASELINE, kind, longest_mm, short_mm, status,
                             too_small)


def test_targets_are_the_largest_measurable_two_per_organ_nodes_by_short_axis():
    """With 8 mm slices a non-nodal lesion is measurable from 16 mm (2 x slice thickness, 3.1.1)."""
    criteria = RecistCriteria(slice_thickness_mm=8.0)
    baseline = [
        lesion("L3", "liver", 20.0), lesion("L1", "liver", 40.0), lesion("L2", "Liver", 30.0),  # 3rd liver: out
        lesion("P1", "lung", 25.0),
        lesion("N1", "lymph node", 30.0, 18.0, node=True),  # ranked by its 18 mm short axis, after P1
        lesion("N2", "lymph node", 26.0, 12.0, node=True),  # pathological, not measurable (< 15 mm)
        lesion("X1", "bone", 50.0, kind="new"),  # a new lesion is never a target
        lesion("T1", "spleen", None, too_small=True),  # too small to measure: not a target
        lesion("A1", "adrenal", 12.0),  # measurable with 5 mm slices, not with 8 mm ones
    ]
    assert select_target_lesions(baseline, criteria) == ["L1", "L2", "P1", "N1"]
    assert select_target_lesions(baseline) == ["L1", "L2", "P1", "N1", "A1"]  # default 5 mm slices


def test_relabelling_makes_the_chosen_targets_and_derives_non_target_status_from_size():
    rows = [
        lesion("L1", "liver", 40.0, kind="non_target"),  # chosen: becomes a target
        lesion("L2", "liver", 30.0),  # not chosen: becomes a non-target, present
        lesion("L3", "liver", 0.0),  # gone
        lesion("L4", "liver", None),  # not measured
        lesion("N1", "lymph node", 14.0, 10.0, node=True),  # 10.0 mm short axis: still pathological
        lesion("N2", "lymph node", 12.0, 9.9, node=True),  # below 10 mm: normal, counts as absent
        lesion("L5", "liver", 22.0, status="progression"),  # a reader's status is kept
        lesion("X1", "bone", 15.0, kind="new"),  # new stays new
    ]
    relabelled = {row.lesion_id: row for row in apply_target_selection(rows, ["L1"])}
    assert [(i, relabelled[i].lesion_type, relabelled[i].non_target_status) for i in relabelled] == [
        ("L1", "target", None), ("L2", "non_target", "present"), ("L3", "non_target", "absent"),
        ("L4", "non_target", "not_evaluated"), ("N1", "non_target", "present"),
        ("N2", "non_target", "absent"), ("L5", "non_target", "progression"), ("X1", "new", None)]
    assert rows[0].lesion_type == "non_target"  # the input rows are not modified


def test_measurement_rows_read_lymph_node_flags_and_name_a_bad_one():
    row = {"patient_id": 7, "lesion_id": 3, "organ": "neck", "is_lymph_node": "Yes", "date": "2024-01-08",
           "lesion_type": "target", "short_axis_mm": 16.0}
    read = LesionMeasurement.from_mapping(row)
    assert (read.is_lymph_node, read.patient_id, read.lesion_id, read.date) == (True, "7", "3", BASELINE)
    assert LesionMeasurement.from_mapping(row | {"is_lymph_node": "0"}).is_lymph_node is False
    with pytest.raises(ValueError, match=r"^measurement row, column 'is_lymph_node': cannot read 'maybe' as "
                                         r"true/false$"):
        LesionMeasurement.from_mapping(row | {"is_lymph_node": "maybe"})


def test_non_target_response_refuses_unknown_and_empty_statuses_by_name():
    with pytest.raises(ValueError, match=r"^unknown non-target status \['gone'\]; expected one of \('present', "):
        non_target_response(["absent", "gone"])
    with pytest.raises(ValueError, match=r"^no non-target lesions to assess$"):
        non_target_response([])


@pytest.mark.parametrize(("current_mm", "expected"), [
    (60.0, "PD"),  # exactly +20 % and +10 mm over the 50 mm nadir: PD (at least 20 %, 4.3.1)
    (59.9, "SD"),  # +19.8 %: not PD; above the 49 mm PR limit of the 70 mm baseline
    (56.0, "SD"),  # +12 % and +6 mm: the 5 mm condition alone is not PD
    (49.0, "PR"),  # exactly -30 % of the 70 mm baseline
])
def test_target_response_at_the_pd_and_pr_limits(current_mm, expected):
    """Baseline 70 mm, nadir 50 mm, one 'liver' target measured at ``current_mm``."""
    targets = [lesion("L1", "liver", current_mm)]
    assert target_response(targets, 70.0, 50.0, 1).name == expected


def test_target_response_needs_the_absolute_5_mm_increase_too():
    """Nadir 20 mm -> 24 mm is +20 % but only +4 mm: not PD (4.3.1); 25 mm is."""
    assert target_response([lesion("L1", "liver", 24.0)], 30.0, 20.0, 1).name == "SD"
    assert target_response([lesion("L1", "liver", 25.0)], 30.0, 20.0, 1).name == "PD"


def test_a_follow_up_non_target_without_status_and_bad_thresholds_are_named():
    rows = [lesion("L1", "liver", 40.0), lesion("L2", "liver", 20.0, kind="non_target", status="present"),
            replace(lesion("L1", "liver", 30.0), date=BASELINE + timedelta(days=56)),
            replace(lesion("L2", "liver", 20.0, kind="non_target"), date=BASELINE + timedelta(days=56))]
    with pytest.raises(ValueError, match=r"^patient 'P1': non-target lesion 'L2' on 2024-03-04 has no non_target_status "
                                         r"\(one of \('present', 'absent', 'progression', 'not_evaluated'\)\)$"):
        assess_patient(rows)
    with pytest.raises(ValueError, match=r"^RECIST thresholds need 0 < pr_decrease_pct < 100 and pd_increase_pct "
                                         r"> 0; got 100.0, 20.0$"):
        RecistCriteria(pr_decrease_pct=100.0)


def test_one_target_per_organ_and_no_new_lesion_at_baseline():
    baseline = [lesion("L1", "liver", 40.0), lesion("L2", "liver", 30.0), lesion("P1", "lung", 25.0)]
    assert select_target_lesions(baseline, RecistCriteria(max_targets_per_organ=1)) == ["L1", "P1"]
    with pytest.raises(ValueError, match=r"baseline cannot have new lesions; got \['X1'\]"):
        assess_patient([*baseline, lesion("X1", "bone", 15.0, kind="new")])
