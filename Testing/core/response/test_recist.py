"""RECIST 1.1 rules (Eisenhauer et al., Eur J Cancer 2009;45:228-247): one test per rule and table row."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from luprrt.response.recist import (
    LesionMeasurement,
    Measurability,
    RecistCriteria,
    Response,
    TimePointResponse,
    apply_target_selection,
    assess_cohort,
    assess_patient,
    best_overall_response,
    measurability,
    non_target_response,
    overall_response,
    read_measurements_csv,
    select_target_lesions,
    sum_of_diameters_mm,
    target_response,
)

BASELINE = date(2024, 1, 8)
R = Response


def on_day(days: int) -> date:
    return BASELINE + timedelta(days=days)


def lesion(lesion_id: str, days: int, size_mm: float | None = None, *, kind: str = "target",
           organ: str = "liver", node: bool = False, status: str | None = None, tstm: bool = False,
           patient: str = "P1") -> LesionMeasurement:
    """One row; ``size_mm`` is the short axis for nodes and the longest diameter otherwise."""
    return LesionMeasurement(patient_id=patient, lesion_id=lesion_id, organ=organ, is_lymph_node=node,
                             date=on_day(days), lesion_type=kind,
                             longest_diameter_mm=None if node else size_mm,
                             short_axis_mm=size_mm if node else None,
                             non_target_status=status, too_small_to_measure=tstm)


def series(sizes: dict[str, list[float | None]], days=(0, 56, 112, 168), **kwargs) -> list[LesionMeasurement]:
    """Target lesions with one size per time point (None = not assessed, row omitted)."""
    return [lesion(lesion_id, day, size, **kwargs) for lesion_id, values in sizes.items()
            for day, size in zip(days, values, strict=False) if size is not None]


def overall(rows) -> list[Response]:
    return [tp.overall_response for tp in assess_patient(rows)]


def target(rows) -> list[Response]:
    return [tp.target_response for tp in assess_patient(rows)]


# --- measurability and target selection (section 3) -------------------------------------------

@pytest.mark.parametrize(("ld", "slice_mm", "expected"), [
    (10.0, 5.0, Measurability.MEASURABLE),
    (9.9, 5.0, Measurability.NON_MEASURABLE),
    (13.9, 7.0, Measurability.NON_MEASURABLE),  # > 5 mm slices: 2 x slice thickness = 14 mm
    (14.0, 7.0, Measurability.MEASURABLE),
])
def test_measurable_non_nodal_lesion_needs_10_mm_or_twice_the_slice(ld, slice_mm, expected):
    assert measurability(ld, None, False, RecistCriteria(slice_thickness_mm=slice_mm)) is expected


@pytest.mark.parametrize(("short_axis", "expected"), [
    (15.0, Measurability.MEASURABLE),
    (14.9, Measurability.PATHOLOGICAL_NODE_NON_TARGET),
    (10.0, Measurability.PATHOLOGICAL_NODE_NON_TARGET),
    (9.9, Measurability.NORMAL_NODE),
])
def test_lymph_node_categories_by_short_axis(short_axis, expected):
    assert measurability(30.0, short_axis, True) is expected


def test_target_selection_takes_the_largest_with_two_per_organ_and_five_in_all():
    baseline = [
        lesion("liver-a", 0, 50.0), lesion("liver-b", 0, 40.0), lesion("liver-c", 0, 30.0),
        lesion("lung-a", 0, 25.0, organ="lung"), lesion("lung-b", 0, 12.0, organ="lung"),
        lesion("node-a", 0, 20.0, node=True, organ="mediastinum"),
        lesion("node-b", 0, 17.0, node=True, organ="abdomen"),   # nodes are one organ (EORTC FAQ)
        lesion("node-c", 0, 16.0, node=True, organ="pelvis"),    # third node: over the per-organ limit
        lesion("node-d", 0, 12.0, node=True, organ="neck"),      # pathological, not measurable
        lesion("bone-a", 0, 8.0, organ="bone"),                  # not measurable
    ]
    assert select_target_lesions(baseline) == ["liver-a", "liver-b", "lung-a", "node-a", "node-b"]
    assert select_target_lesions(baseline, RecistCriteria(max_targets=3)) == ["liver-a", "liver-b", "lung-a"]


def test_apply_target_selection_derives_non_target_status_from_size():
    rows = [lesion("a", 0, 30.0), lesion("b", 0, 20.0), lesion("b", 56, 0.0), lesion("n", 56, 8.0, node=True),
            lesion("c", 56, None), lesion("x", 56, 5.0, kind="new")]
    relabelled = {(r.lesion_id, r.date): r for r in apply_target_selection(rows, ["a"])}
    assert relabelled[("a", on_day(0))].lesion_type == "target"
    assert relabelled[("b", on_day(56))].non_target_status == "absent"
    assert relabelled[("n", on_day(56))].non_target_status == "absent"   # node < 10 mm is normal
    assert relabelled[("b", on_day(0))].non_target_status == "present"
    assert relabelled[("c", on_day(56))].non_target_status == "not_evaluated"
    assert relabelled[("x", on_day(56))].lesion_type == "new"
    assert rows[1].lesion_type == "target"  # input untouched


# --- sum of diameters (section 4.2, Appendix I) ----------------------------------------------

def test_sum_uses_short_axis_for_nodes_and_5_mm_for_too_small_to_measure():
    rows = [lesion("a", 0, 42.0), lesion("n", 0, 17.0, node=True), lesion("t", 0, None, tstm=True),
            lesion("gone", 0, 0.0)]
    rows[1] = LesionMeasurement(**{**rows[1].__dict__, "longest_diameter_mm": 31.0})
    assert sum_of_diameters_mm(rows) == pytest.approx(42.0 + 17.0 + 5.0 + 0.0)
    assert sum_of_diameters_mm(rows, RecistCriteria(too_small_to_measure_mm=3.0)) == pytest.approx(62.0)


# --- target response (section 4.3.1) ----------------------------------------------------------

def test_partial_response_is_a_30_percent_decrease_from_baseline():
    rows = series({"a": [60.0, 42.0, 42.1], "b": [40.0, 28.0, 28.0]}, days=(0, 56, 112))
    responses = assess_patient(rows)
    assert [tp.target_response for tp in responses] == [R.PR, R.SD]  # 70.0 mm = -30 %; 70.1 mm = -29.9 %
    assert responses[0].change_from_baseline_pct == pytest.approx(-30.0)


def test_progression_is_measured_from_the_nadir_not_the_baseline():
    rows = series({"a": [60.0, 40.0, 45.0], "b": [40.0, 20.0, 27.0]}, days=(0, 56, 112))
    first, second = assess_patient(rows)
    assert first.target_response is R.PR and first.sum_of_diameters_mm == pytest.approx(60.0)
    # 72 mm is still 28 % below baseline, but 20 % and 12 mm above the nadir of 60 mm.
    assert second.nadir_sum_mm == pytest.approx(60.0)
    assert second.change_from_nadir_pct == pytest.approx(20.0)
    assert second.target_response is R.PD


def test_nadir_includes_the_baseline_sum():
    rows = series({"a": [30.0, 33.0, 36.0]}, days=(0, 56, 112))
    assert target(rows) == [R.SD, R.PD]  # 36 mm = baseline + 20 % and + 6 mm


def test_progression_also_needs_5_mm_absolute_increase():
    rows = series({"a": [12.0, 11.0, 13.25, 13.5], "b": [12.0, 11.0, 13.25, 13.5]})
    responses = assess_patient(rows)
    # nadir 22 mm; 26.5 mm = +20.5 % but +4.5 mm (SD); 27 mm = +22.7 % and +5.0 mm (PD).
    assert [tp.target_response for tp in responses] == [R.SD, R.SD, R.PD]
    assert responses[2].nadir_sum_mm == pytest.approx(22.0)


def test_complete_response_requires_every_target_node_below_10_mm():
    criteria = RecistCriteria()
    base = [lesion("a", 0, 20.0), lesion("n", 0, 16.0, node=True)]
    cr = [lesion("a", 56, 0.0), lesion("n", 56, 9.9, node=True)]
    not_cr = [lesion("a", 56, 0.0), lesion("n", 56, 10.0, node=True)]
    assert target_response(cr, 36.0, 36.0, 2, criteria) is R.CR
    assert target_response(not_cr, 36.0, 36.0, 2, criteria) is R.PR
    # A lesion too small to measure is still present: no CR.
    assert target_response([lesion("a", 56, None, tstm=True), lesion("n", 56, 5.0, node=True)],
                           36.0, 36.0, 2, criteria) is R.PR
    assert overall(base + cr) == [R.CR]


def test_unassessed_target_makes_the_time_point_not_evaluable():
    rows = series({"a": [20.0, 10.0], "b": [20.0, 10.0]}) + series({"c": [10.0, None]}, organ="lung")
    tp = assess_patient(rows)[0]
    assert tp.target_response is R.NE and tp.overall_response is R.NE
    assert not tp.all_targets_assessed and tp.change_from_baseline_pct is None


def test_unassessed_target_does_not_hide_progression_of_the_others():
    # The paper's example (section 4.3.4): baseline 50 mm with three lesions; two lesions at 80 mm.
    rows = series({"a": [20.0, 45.0], "b": [20.0, 35.0]}) + series({"c": [10.0, None]}, organ="lung")
    assert target(rows) == [R.PD]


# --- non-target response (section 4.3.2) ------------------------------------------------------

@pytest.mark.parametrize(("statuses", "expected"), [
    (["absent", "absent"], R.CR),
    (["absent", "present"], R.NON_CR_NON_PD),
    (["present", "progression"], R.PD),
    (["present", "not_evaluated"], R.NE),
    (["not_evaluated", "progression"], R.PD),
])
def test_non_target_response(statuses, expected):
    assert non_target_response(statuses) is expected


def test_non_target_node_marked_absent_must_be_below_10_mm():
    rows = [lesion("a", 0, 30.0), lesion("n", 0, 14.0, node=True, kind="non_target", status="present"),
            lesion("a", 56, 20.0), lesion("n", 56, 11.0, node=True, kind="non_target", status="absent")]
    with pytest.raises(ValueError, match=r"node 'n' .* marked absent but its short axis is 11.0 mm"):
        assess_patient(rows)


# --- new lesions and overall response (section 4.3.3-4.3.5, Tables 1 and 2) ------------------

def test_a_new_lesion_alone_is_progression():
    rows = [*series({"a": [40.0, 20.0]}), lesion("new-1", 56, 6.0, kind="new")]
    tp = assess_patient(rows)[0]
    assert tp.target_response is R.PR and tp.new_lesions
    assert tp.overall_response is R.PD


def test_new_lesion_only_rows_at_a_date_still_give_progression():
    rows = [*series({"a": [40.0]}), lesion("new-1", 30, 6.0, kind="new")]
    tp = assess_patient(rows)[0]
    assert tp.target_response is R.NE and tp.overall_response is R.PD


NON_TARGET = (R.CR, R.NON_CR_NON_PD, R.NE, R.PD)
TARGET = (R.CR, R.PR, R.SD, R.PD, R.NE)

# RECIST 1.1 Table 1, one entry per row: (target values, non-target values, new lesions, overall).
TABLE_1 = [
    ((R.CR,), (R.CR,), (False,), R.CR),
    ((R.CR,), (R.NON_CR_NON_PD,), (False,), R.PR),
    ((R.CR,), (R.NE,), (False,), R.PR),
    ((R.PR,), (R.CR, R.NON_CR_NON_PD, R.NE), (False,), R.PR),
    ((R.SD,), (R.CR, R.NON_CR_NON_PD, R.NE), (False,), R.SD),
    ((R.NE,), (R.CR, R.NON_CR_NON_PD, R.NE), (False,), R.NE),
    ((R.PD,), NON_TARGET, (True, False), R.PD),
    (TARGET, (R.PD,), (True, False), R.PD),
    (TARGET, NON_TARGET, (True,), R.PD),
]


@pytest.mark.parametrize(("targets", "non_targets", "news", "expected"), TABLE_1,
                         ids=[f"table1-row{k + 1}" for k in range(len(TABLE_1))])
def test_overall_response_table_1(targets, non_targets, news, expected):
    for t, nt, new in itertools.product(targets, non_targets, news):
        assert overall_response(t, nt, new) is expected, (t, nt, new)


# RECIST 1.1 Table 2 (non-target disease only).
TABLE_2 = [
    ((R.CR,), (False,), R.CR),
    ((R.NON_CR_NON_PD,), (False,), R.NON_CR_NON_PD),
    ((R.NE,), (False,), R.NE),
    ((R.PD,), (True, False), R.PD),
    (NON_TARGET, (True,), R.PD),
]


@pytest.mark.parametrize(("non_targets", "news", "expected"), TABLE_2,
                         ids=[f"table2-row{k + 1}" for k in range(len(TABLE_2))])
def test_overall_response_table_2(non_targets, news, expected):
    for nt, new in itertools.product(non_targets, news):
        assert overall_response(None, nt, new) is expected, (nt, new)


def test_no_non_target_disease_counts_as_non_target_cr():
    assert overall_response(R.CR, None, False) is R.CR
    assert overall_response(R.SD, None, False) is R.SD
    with pytest.raises(ValueError, match="target or non-target disease"):
        overall_response(None, None, False)


def test_assess_patient_combines_targets_non_targets_and_new_lesions():
    rows = [
        lesion("a", 0, 30.0), lesion("b", 0, 20.0, organ="lung"),
        lesion("nt", 0, None, kind="non_target", status="present", organ="peritoneum"),
        lesion("a", 56, 0.0), lesion("b", 56, 0.0),
        lesion("nt", 56, None, kind="non_target", status="present"),
        lesion("a", 112, 0.0), lesion("b", 112, 0.0),
        lesion("nt", 112, None, kind="non_target", status="absent"),
        lesion("a", 168, 0.0), lesion("b", 168, 0.0),  # non-target not assessed
    ]
    responses = assess_patient(rows)
    assert [tp.non_target_response for tp in responses] == [R.NON_CR_NON_PD, R.CR, R.NE]
    assert [tp.overall_response for tp in responses] == [R.PR, R.CR, R.PR]
    assert [tp.days_from_baseline for tp in responses] == [56, 112, 168]


def test_non_target_only_patient_follows_table_2():
    rows = [lesion("nt", d, None, kind="non_target", status=s) for d, s in
            [(0, "present"), (56, "present"), (112, "absent"), (168, "progression")]]
    assert overall(rows) == [R.NON_CR_NON_PD, R.CR, R.PD]


def test_assess_cohort_splits_patients():
    rows = series({"a": [20.0, 10.0]}, patient="P1") + series({"a": [20.0, 30.0]}, patient="P2")
    results = assess_cohort(rows)
    assert [tp.overall_response for tp in results["P1"]] == [R.PR]
    assert [tp.overall_response for tp in results["P2"]] == [R.PD]
    with pytest.raises(ValueError, match=r"one patient; got \['P1', 'P2'\]"):
        assess_patient(rows)


# --- baseline rules enforced by assess_patient ------------------------------------------------

def test_too_many_targets_are_refused():
    rows = [lesion(f"t{k}", 0, 20.0, organ=f"organ{k}") for k in range(6)]
    with pytest.raises(ValueError, match=r"6 target lesions .* at most 5"):
        assess_patient(rows)
    rows = [lesion(f"t{k}", 0, 20.0) for k in range(3)]
    with pytest.raises(ValueError, match=r"3 target lesions in organ 'liver' .* at most 2 per organ"):
        assess_patient(rows)


def test_non_measurable_target_is_refused():
    with pytest.raises(ValueError, match="target lesion 'small' is not measurable at baseline"):
        assess_patient([lesion("small", 0, 9.0), lesion("small", 56, 9.0)])
    with pytest.raises(ValueError, match=r"target lesion 'node' is not measurable .*pathological node"):
        assess_patient([lesion("node", 0, 12.0, node=True), lesion("node", 56, 9.0, node=True)])


def test_follow_up_lesion_missing_at_baseline_must_be_new():
    rows = [lesion("a", 0, 20.0), lesion("a", 56, 20.0), lesion("b", 56, 12.0)]
    with pytest.raises(ValueError, match=r"lesion 'b' .* absent at baseline, so it must be new"):
        assess_patient(rows)


# --- best overall response (section 4.4, Table 3) ---------------------------------------------

def time_points(*responses: tuple[int, Response], non_target_only: bool = False) -> list[TimePointResponse]:
    return [TimePointResponse("P1", on_day(d), d, None, True, None, None, None, None,
                              None if non_target_only else r, None, False, r) for d, r in responses]


@pytest.mark.parametrize(("sequence", "expected"), [
    ([(56, R.CR), (84, R.CR)], R.CR),                      # Table 3: CR, CR -> CR
    ([(56, R.CR), (84, R.PR)], R.PR),                      # CR, PR -> PR (footnote a)
    ([(56, R.CR), (84, R.SD)], R.SD),                      # CR, SD -> SD (duration met)
    ([(28, R.CR), (35, R.SD)], R.PD),                      # CR, SD -> PD (duration not met)
    ([(56, R.CR), (84, R.PD)], R.SD),                      # CR, PD -> SD (duration met)
    ([(28, R.CR), (35, R.PD)], R.PD),                      # CR, PD -> PD
    ([(56, R.CR), (84, R.NE)], R.SD),                      # CR, NE -> SD
    ([(28, R.CR), (35, R.NE)], R.NE),                      # CR, NE -> NE
    ([(56, R.PR), (84, R.CR)], R.PR),                      # PR, CR -> PR
    ([(56, R.PR), (84, R.PR)], R.PR),                      # PR, PR -> PR
    ([(56, R.PR), (84, R.SD)], R.SD),                      # PR, SD -> SD
    ([(56, R.PR), (84, R.PD)], R.SD),                      # PR, PD -> SD (duration met)
    ([(28, R.PR), (35, R.PD)], R.PD),                      # PR, PD -> PD
    ([(56, R.PR), (84, R.NE)], R.SD),                      # PR, NE -> SD
    ([(28, R.PR), (35, R.NE)], R.NE),                      # PR, NE -> NE
    ([(56, R.NE), (84, R.NE)], R.NE),                      # NE, NE -> NE
])
def test_best_overall_response_table_3(sequence, expected):
    assert best_overall_response(time_points(*sequence)).response is expected


def test_confirmation_needs_the_minimum_interval():
    too_soon = time_points((56, R.PR), (77, R.PR))  # 21 days apart
    assert best_overall_response(too_soon).response is R.SD
    confirmed = best_overall_response(time_points((56, R.PR), (77, R.NE), (84, R.PR)))
    assert confirmed.response is R.PR
    assert (confirmed.date, confirmed.confirmed_on) == (on_day(56), on_day(84))
    strict = RecistCriteria(confirmation_interval_days=35)
    assert best_overall_response(time_points((56, R.PR), (84, R.PR)), strict).response is R.SD
    assert best_overall_response(time_points((56, R.PR), (84, R.PR)),
                                 RecistCriteria(require_confirmation=False)).response is R.PR
    assert best_overall_response(time_points((56, R.PR)),
                                 RecistCriteria(require_confirmation=False)).response is R.PR


def test_confirmation_is_the_next_response_not_one_after_a_stable_disease():
    """PR, PR 8 weeks later, then SD: the second PR confirms the first (a later SD does not undo it)."""
    confirmed = best_overall_response(time_points((56, R.PR), (112, R.PR), (168, R.SD)))
    assert (confirmed.response, confirmed.date, confirmed.confirmed_on) == (R.PR, on_day(56), on_day(112))
    with pytest.raises(ValueError, match=r"^no follow-up time points: best overall response needs at least one$"):
        best_overall_response([])


def test_disease_back_as_stable_after_a_complete_response_is_progression_on_that_date():
    """RECIST 1.1 Table 3, row "CR, SD" before the minimum SD duration: best response PD, dated by the
    time point the disease reappeared (an unconfirmed CR at 3 weeks is not yet a stable disease)."""
    best = best_overall_response(time_points((21, R.CR), (35, R.SD)))
    assert (best.response, best.date) == (R.PD, on_day(35))


def test_stable_disease_needs_the_minimum_duration_from_baseline():
    assert best_overall_response(time_points((35, R.SD))).response is R.NE
    shorter = RecistCriteria(min_sd_duration_days=35)
    assert best_overall_response(time_points((35, R.SD)), shorter).response is R.SD
    assert best_overall_response(time_points((35, R.SD), (49, R.PD))).response is R.PD


def test_best_response_stops_at_the_first_progression():
    result = best_overall_response(time_points((35, R.SD), (49, R.PD), (84, R.PR), (112, R.PR)))
    assert result.response is R.PD and result.date == on_day(49)


def test_best_response_of_non_target_only_disease():
    assert best_overall_response(time_points((56, R.NON_CR_NON_PD), non_target_only=True)).response \
        is R.NON_CR_NON_PD
    assert best_overall_response(time_points((56, R.CR), (84, R.CR), non_target_only=True)).response is R.CR


def test_best_response_from_assessed_measurements():
    rows = series({"a": [40.0, 24.0, 20.0, 30.0]}, days=(0, 56, 84, 140))
    result = best_overall_response(assess_patient(rows))
    assert result.response is R.PR
    assert (result.date, result.confirmed_on) == (on_day(56), on_day(84))


# --- the measurement table --------------------------------------------------------------------

HEADER = ("patient_id,lesion_id,organ,is_lymph_node,date,lesion_type,"
          "longest_diameter_mm,short_axis_mm,non_target_status")


def write_table(tmp_path, *lines: str, header: str = HEADER):
    path = tmp_path / "measurements.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_read_measurements_csv_round_trip(tmp_path):
    path = write_table(
        tmp_path,
        "P7,L1,liver,false,2024-01-08,target,42.5,,",
        "P7,N1,lymph node,yes,2024-01-08,target,25,16,",
        "P7,X,peritoneum,no,2024-01-08,non_target,,,present",
        "P7,L1,liver,false,2024-03-04,target,TSTM,,",
        "P7,N1,lymph node,1,2024-03-04,target,20,9.5,",
        "P7,X,peritoneum,0,2024-03-04,non_target,,,absent",
    )
    rows = read_measurements_csv(path)
    assert rows[0] == LesionMeasurement("P7", "L1", "liver", False, date(2024, 1, 8), "target",
                                        42.5, None, None)
    assert rows[1].is_lymph_node and rows[1].short_axis_mm == 16.0
    assert rows[3].too_small_to_measure and rows[3].longest_diameter_mm is None
    tp = assess_patient(rows)[0]
    assert tp.sum_of_diameters_mm == pytest.approx(5.0 + 9.5)
    assert tp.target_response is R.PR      # TSTM lesion is present: not CR
    assert tp.overall_response is R.PR


def test_csv_errors_name_line_and_column(tmp_path):
    with pytest.raises(ValueError, match=r"missing column\(s\) \['lesion_type'\]"):
        read_measurements_csv(write_table(tmp_path, "P1,L1,liver,false,2024-01-08",
                                          header="patient_id,lesion_id,organ,is_lymph_node,date"))
    with pytest.raises(ValueError, match=r"line 3 \(patient 'P1'\), column 'date': cannot read '2024-13-01'"):
        read_measurements_csv(write_table(tmp_path, "P1,L1,liver,false,2024-01-08,target,20,,",
                                          "P1,L1,liver,false,2024-13-01,target,20,,"))
    with pytest.raises(ValueError, match=r"line 2 \(patient 'P1'\), column 'longest_diameter_mm': diameter must be .* got -3"):
        read_measurements_csv(write_table(tmp_path, "P1,L1,liver,false,2024-01-08,target,-3,,"))
    with pytest.raises(ValueError, match=r"line 2 \(patient 'P1'\), column 'is_lymph_node': cannot read 'maybe'"):
        read_measurements_csv(write_table(tmp_path, "P1,L1,liver,maybe,2024-01-08,target,20,,"))
    with pytest.raises(ValueError, match=r"line 2 \(patient 'P1'\): .*unknown lesion_type 'tgt'"):
        read_measurements_csv(write_table(tmp_path, "P1,L1,liver,no,2024-01-08,tgt,20,,"))
    with pytest.raises(FileNotFoundError, match="measurement table not found"):
        read_measurements_csv(tmp_path / "absent.csv")


def test_measurement_rows_from_dicts():
    rows = [{"patient_id": 3, "lesion_id": 1, "organ": "liver", "is_lymph_node": "no", "date": "2024-01-08",
             "lesion_type": "target", "longest_diameter_mm": 30.0},
            {"patient_id": 3, "lesion_id": 1, "organ": "liver", "is_lymph_node": "no", "date": "2024-03-04",
             "lesion_type": "target", "longest_diameter_mm": 15.0}]
    tp = assess_patient(rows)[0]
    assert tp.patient_id == "3" and tp.target_response is R.PR
    with pytest.raises(ValueError, match=r"missing \['date'\]"):
        assess_patient([{"patient_id": 3, "lesion_id": 1, "organ": "liver", "is_lymph_node": False,
                         "lesion_type": "target"}])


def test_sums_keep_the_precision_of_the_measurements():
    """Sums at the measurements' 0.1 mm: 28.3 + 10.1 = 38.4 mm, not 38.400000000000006 nor 38."""
    rows = series({"a": [28.3, 20.2, 20.1], "b": [10.1, 6.1, 6.6]}, days=(0, 56, 112))
    first, second = assess_patient(rows)
    assert (first.baseline_sum_mm, first.sum_of_diameters_mm, first.nadir_sum_mm) == (38.4, 26.3, 38.4)
    assert (second.sum_of_diameters_mm, second.nadir_sum_mm) == (26.7, 26.3)
