"""RECIST 1.1 edge cases a reviewer found: nodes, waterfall span, baseline only, NE sums, noise, windows.

Every expectation is worked out by hand from RECIST 1.1 (Eisenhauer et al., Eur J Cancer
2009;45:228-247); section numbers are in the test names' docstrings.
"""

from __future__ import annotations

import csv
import logging
from datetime import date, timedelta

import pytest

from luprrt.response import (
    LesionMeasurement,
    RecistCriteria,
    Response,
    assess_cohort,
    assess_patient,
    best_change_from_baseline_pct,
    best_overall_response,
    group_assessments,
    lesion_outcomes,
    read_measurements_csv,
)
from luprrt.tables import read_rows_csv
from luprrt.workflows.recist import run_recist

BASELINE = date(2024, 1, 8)
COLUMNS = ["patient_id", "lesion_id", "organ", "is_lymph_node", "date", "longest_diameter_mm", "short_axis_mm",
           "lesion_type", "non_target_status"]


def day(n: int) -> date:
    return BASELINE + timedelta(days=n)


def row(lesion_id, days, longest=None, short=None, *, node=False, kind="target", organ="liver", patient="P1",
        status=None) -> LesionMeasurement:
    return LesionMeasurement(patient_id=patient, lesion_id=lesion_id, organ=organ, is_lymph_node=node,
                             date=day(days), lesion_type=kind, longest_diameter_mm=longest, short_axis_mm=short,
                             non_target_status=status)


def write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def test_lesion_outcome_of_a_node_follows_its_short_axis():
    """Section 3.1.1/4.2: a node is measured by its short axis; its long axis may grow while it shrinks."""
    rows = [row("N1", 0, longest=40.0, short=20.0, node=True), row("N1", 84, longest=44.0, short=12.0, node=True)]
    (outcome,) = lesion_outcomes(rows)
    assert (outcome.diameter, outcome.baseline_diameter_mm, outcome.followup_diameter_mm) == ("short_axis", 20.0, 12.0)
    assert outcome.change_pct == -40.0 and outcome.category == "response"  # long axis: +10 %, "stable"


def test_a_node_given_only_by_its_short_axis_is_accepted():
    rows = [row("N1", 0, short=18.0, node=True), row("N1", 84, short=9.0, node=True)]
    (tp,) = assess_patient(rows)
    assert tp.sum_of_diameters_mm == 9.0 and tp.target_response is Response.CR  # node < 10 mm: normal
    (outcome,) = lesion_outcomes(rows)
    assert outcome.change_pct == -50.0


def test_waterfall_takes_the_best_change_up_to_and_including_the_first_pd():
    """Section 4.4: best response is recorded until progression; later shrinkage does not count."""
    sizes = {0: 100.0, 56: 90.0, 112: 110.0, 168: 40.0}  # -10 %, PD (+22 % over the 90 mm nadir), then -60 %
    rows = [row("L1", d, longest=size) for d, size in sizes.items()]
    time_points = assess_patient(rows)
    assert [tp.overall_response for tp in time_points] == [Response.SD, Response.PD, Response.PR]
    assert best_change_from_baseline_pct(time_points) == -10.0
    assert best_overall_response(time_points).best_change_from_baseline_pct == -10.0
    # The first PD itself counts: a PD by a new lesion while the sum is at its smallest.
    rows_new = [row("L1", 0, longest=100.0), row("L1", 56, longest=50.0), row("X", 56, longest=12.0, kind="new"),
                row("L1", 112, longest=30.0)]
    assert best_change_from_baseline_pct(assess_patient(rows_new)) == -50.0


def test_a_patient_with_a_baseline_only_is_ne_in_the_best_response_table(tmp_path):
    path = write_csv(tmp_path / "m.csv", [
        ["P1", "L1", "liver", "false", "2024-01-08", 30, "", "target", ""],
        ["P1", "L1", "liver", "false", "2024-03-04", 20, "", "target", ""],
        ["P2", "L1", "liver", "false", "2024-01-10", 25, "", "target", ""]])
    run = run_recist(path, tmp_path / "out", figures=False)
    best = {r["patient_id"]: r for r in read_rows_csv(tmp_path / "out" / "recist_best_response.csv")}
    assert best["P2"]["response"] == "NE" and best["P2"]["date"] == ""
    assert best["P1"]["response"] == "SD"  # -33 % once, unconfirmed: SD (56 d >= 42 d)
    assert len(run.best_response_rows) == 2


def test_ne_time_point_without_any_target_measured_has_no_sum():
    rows = [row("L1", 0, longest=30.0), row("L2", 0, longest=20.0), row("L1", 56), row("L2", 56)]
    (tp,) = assess_patient(rows)
    assert tp.overall_response is Response.NE
    assert tp.sum_of_diameters_mm is None and tp.change_from_baseline_pct is None
    partial = assess_patient([*rows[:2], row("L1", 56, longest=25.0), row("L2", 56)])[0]
    assert partial.sum_of_diameters_mm == 25.0 and partial.overall_response is Response.NE


def test_sums_and_changes_carry_the_measurements_precision_not_binary_noise(tmp_path):
    # 10.1 + 18.2 = 28.299999999999997 in binary floating point.
    rows = [row("L1", 0, longest=20.1), row("L2", 0, longest=15.2), row("L1", 56, longest=10.1),
            row("L2", 56, longest=18.2)]
    (tp,) = assess_patient(rows)
    assert repr(tp.sum_of_diameters_mm) == "28.3" and repr(tp.baseline_sum_mm) == "35.3"
    assert tp.change_from_baseline_pct == -19.83  # 100 (28.3 - 35.3) / 35.3 = -19.830...
    path = write_csv(tmp_path / "m.csv", [[r.patient_id, r.lesion_id, r.organ, "false", r.date.isoformat(),
                                          r.longest_diameter_mm, "", "target", ""] for r in rows])
    run_recist(path, tmp_path / "out", figures=False)
    text = (tmp_path / "out" / "recist_time_points.csv").read_text()
    assert ",28.3," in text and "28.29999" not in text


def test_scans_within_the_window_form_one_assessment():
    """A chest CT and an abdominal MRI two days apart are one follow-up, not two NE time points."""
    rows = [row("L1", 0, longest=30.0), row("T1", 1, longest=20.0, organ="lung"),
            row("L1", 84, longest=18.0), row("T1", 86, longest=12.0, organ="lung")]
    (tp,) = assess_patient(rows)
    assert tp.date == day(84) and tp.all_targets_assessed and tp.sum_of_diameters_mm == 30.0
    assert tp.overall_response is Response.PR
    # Without a window, day 1 is a follow-up of its own, where the lung target would be a new lesion.
    with pytest.raises(ValueError, match="lesion 'T1' on 2024-01-09 is 'target' but was absent at baseline"):
        assess_patient(rows, RecistCriteria(assessment_window_days=0))
    with pytest.raises(ValueError, match=r"lesion 'L1' of patient 'P1' is measured on 2024-04-01 and "
                                         r"2024-04-05, within one assessment \(14-day window"):
        group_assessments([*rows, row("L1", 88, longest=17.0)])


def test_validation_errors_name_the_patient_and_every_problem_is_reported(tmp_path):
    path = write_csv(tmp_path / "m.csv", [
        ["P1", "L1", "liver", "false", "2024-01-08", 30, "", "target", ""],
        ["P1", "L1", "liver", "false", "2024-03-04", 20, "", "target", ""],
        ["P2", "L1", "liver", "false", "2024-01-08", 6, "", "target", ""],  # not measurable (< 10 mm)
        ["P2", "L1", "liver", "false", "2024-03-04", 5, "", "target", ""],
        ["P3", "L1", "liver", "false", "2024-13-08", 30, "", "target", ""],  # no month 13
        ["P4", "L1", "liver", "false", "2024-01-08", 30, "", "target", ""],
        ["P4", "L1", "liver", "false", "2024-03-04", 12, "", "target", ""]])
    with pytest.raises(ValueError, match=r"patient 'P2': target lesion 'L1' is not measurable"):
        assess_cohort(read_measurements_csv(tmp_path / "m.csv", problems={}))
    with pytest.raises(ValueError) as error:
        run_recist(path, tmp_path / "out", figures=False)
    message = str(error.value)
    assert message.startswith("2 of 4 patients not assessed (P2: patient 'P2': target lesion 'L1' is not "
                              "measurable")
    assert "P3: " in message and "line 6 (patient 'P3'), column 'date'" in message
    best = {r["patient_id"]: r["response"] for r in read_rows_csv(tmp_path / "out" / "recist_best_response.csv")}
    assert best == {"P1": "SD", "P4": "SD"}  # the valid patients are still assessed (-60 % unconfirmed: SD)
    problems = read_rows_csv(tmp_path / "out" / "recist_problems.csv")
    assert [p["patient_id"] for p in problems] == ["P2", "P3"]


def test_rows_out_of_date_order_are_flagged(tmp_path, caplog):
    path = write_csv(tmp_path / "m.csv", [
        ["P1", "L1", "liver", "false", "2024-03-04", 20, "", "target", ""],
        ["P1", "L1", "liver", "false", "2024-01-08", 30, "", "target", ""]])
    with caplog.at_level(logging.WARNING):
        read_measurements_csv(path)
    assert "patient 'P1' is listed out of date order (2024-01-08 after 2024-03-04)" in caplog.text
