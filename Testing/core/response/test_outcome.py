"""Lesion-level outcome: % change of the longest diameter, its category, and joins with other tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from luprrt.response.outcome import OutcomeThresholds, join_by_lesion, lesion_outcomes
from luprrt.response.recist import LesionMeasurement

BASELINE = date(2024, 2, 5)


def row(patient: str, lesion_id: str, days: int, ld_mm: float | None, *, kind: str = "target",
        tstm: bool = False) -> LesionMeasurement:
    return LesionMeasurement(patient, lesion_id, "liver", False, BASELINE + timedelta(days=days), kind,
                             longest_diameter_mm=ld_mm, too_small_to_measure=tstm,
                             non_target_status="present" if kind == "non_target" else None)


def table() -> list[LesionMeasurement]:
    return [
        row("P1", "L1", 0, 40.0), row("P1", "L1", 90, 28.0), row("P1", "L1", 180, 20.0),   # -30 %, -50 %
        row("P1", "L2", 0, 25.0), row("P1", "L2", 90, 30.0), row("P1", "L2", 180, 29.0),   # +20 %, +16 %
        row("P1", "L3", 0, 50.0, kind="non_target"), row("P1", "L3", 90, None, kind="non_target"),
        row("P1", "N9", 90, 12.0, kind="new"),                                            # no baseline
        row("P2", "L1", 7, 20.0), row("P2", "L1", 97, None, tstm=True),                   # 5 mm: -75 %
    ]


def test_percent_change_and_category_at_every_follow_up():
    outcomes = {(o.patient_id, o.lesion_id, o.days_from_baseline): o for o in lesion_outcomes(table())}
    assert set(outcomes) == {("P1", "L1", 90), ("P1", "L1", 180), ("P1", "L2", 90), ("P1", "L2", 180),
                             ("P1", "L3", 90), ("P2", "L1", 90)}
    expected = {("P1", "L1", 90): (-30.0, "response"), ("P1", "L1", 180): (-50.0, "response"),
                ("P1", "L2", 90): (20.0, "progression"), ("P1", "L2", 180): (16.0, "stable"),
                ("P2", "L1", 90): (-75.0, "response")}
    for key, (change, category) in expected.items():
        assert outcomes[key].change_pct == pytest.approx(change), key
        assert outcomes[key].category == category, key
    not_measured = outcomes[("P1", "L3", 90)]
    assert not_measured.change_pct is None and not_measured.category == "not_evaluated"
    assert outcomes[("P2", "L1", 90)].baseline_date == date(2024, 2, 12)
    assert outcomes[("P2", "L1", 90)].followup_diameter_mm == 5.0


def test_thresholds_are_configurable():
    strict = OutcomeThresholds(response_pct=-50.0, progression_pct=25.0)
    outcomes = {(o.lesion_id, o.days_from_baseline): o.category
                for o in lesion_outcomes(table(), thresholds=strict) if o.patient_id == "P1"}
    assert outcomes[("L1", 90)] == "stable" and outcomes[("L1", 180)] == "response"
    assert outcomes[("L2", 90)] == "stable"
    with pytest.raises(ValueError, match="response_pct < 0 < progression_pct"):
        OutcomeThresholds(response_pct=10.0)


def test_last_only_keeps_each_lesions_last_follow_up():
    last = lesion_outcomes(table(), last_only=True)
    assert [(o.patient_id, o.lesion_id, o.days_from_baseline) for o in last] == [
        ("P1", "L1", 180), ("P1", "L2", 180), ("P1", "L3", 90), ("P2", "L1", 90)]


def test_missing_baseline_diameter_is_an_error():
    with pytest.raises(ValueError, match="lesion 'L1' of patient 'P1' has no positive baseline longest"):
        lesion_outcomes([row("P1", "L1", 0, None), row("P1", "L1", 30, 10.0)])


@dataclass
class LesionDose:
    patient_id: str
    lesion_id: int
    absorbed_dose_gy: float


def test_join_with_dose_and_tumour_to_normal_tables():
    outcomes = lesion_outcomes(table(), last_only=True)
    doses = [LesionDose("P1", "L1", 42.0), LesionDose("P1", "L2", 11.5), LesionDose("P2", "L1", 30.0)]
    tn = [{"patient_id": "P1", "lesion_id": "L1", "tn_ratio": 17.4}, {"patient_id": "P2", "lesion_id": "L1",
                                                                        "tn_ratio": 9.0}]
    joined = join_by_lesion(outcomes, doses, tn)
    by_key = {(r["patient_id"], r["lesion_id"]): r for r in joined}
    assert by_key[("P1", "L1")]["absorbed_dose_gy"] == 42.0 and by_key[("P1", "L1")]["tn_ratio"] == 17.4
    assert by_key[("P1", "L2")]["tn_ratio"] is None
    assert by_key[("P1", "L3")]["absorbed_dose_gy"] is None
    assert by_key[("P1", "L1")]["category"] == "response"
    inner = join_by_lesion(outcomes, doses, tn, how="inner")
    assert sorted((r["patient_id"], r["lesion_id"]) for r in inner) == [("P1", "L1"), ("P2", "L1")]
    numeric_ids = join_by_lesion([{"patient_id": "P1", "lesion_id": "7"}], [LesionDose("P1", 7, 3.0)])
    assert numeric_ids[0]["absorbed_dose_gy"] == 3.0


def test_join_errors_name_the_table_and_the_lesion():
    outcomes = lesion_outcomes(table())
    twice = [{"patient_id": "P1", "lesion_id": "L1", "dose_gy": 1.0},
             {"patient_id": "P1", "lesion_id": "L1", "dose_gy": 2.0}]
    with pytest.raises(ValueError, match="table 1 has two rows for patient 'P1', lesion 'L1'"):
        join_by_lesion(outcomes, twice)
    with pytest.raises(ValueError, match=r"column\(s\) \['category'\] of table 1 already exist"):
        join_by_lesion(outcomes, [{"patient_id": "P1", "lesion_id": "L1", "category": "x"}])
    with pytest.raises(ValueError, match=r"table 2: a row lacks the join key\(s\) \['lesion_id'\]"):
        join_by_lesion(outcomes, [], [{"patient_id": "P1"}])
    with pytest.raises(ValueError, match="unknown join 'outer'"):
        join_by_lesion(outcomes, how="outer")


def test_non_target_lesions_without_a_diameter_are_left_out_but_targets_are_not():
    rows = [
        {"patient_id": "P", "lesion_id": "T1", "organ": "liver", "is_lymph_node": False, "date": date(2026, 1, 1),
         "lesion_type": "target", "longest_diameter_mm": 40.0},
        {"patient_id": "P", "lesion_id": "N1", "organ": "bone", "is_lymph_node": False, "date": date(2026, 1, 1),
         "lesion_type": "non_target", "non_target_status": "present"},
        {"patient_id": "P", "lesion_id": "T1", "organ": "liver", "is_lymph_node": False, "date": date(2026, 3, 1),
         "lesion_type": "target", "longest_diameter_mm": 26.0},
        {"patient_id": "P", "lesion_id": "N1", "organ": "bone", "is_lymph_node": False, "date": date(2026, 3, 1),
         "lesion_type": "non_target", "non_target_status": "present"},
    ]
    outcomes = lesion_outcomes(rows)
    assert [(o.lesion_id, o.change_pct, o.category) for o in outcomes] == [("T1", -35.0, "response")]
    rows[0] = {**rows[0], "longest_diameter_mm": None}
    with pytest.raises(ValueError, match="'T1' of patient 'P' has no positive baseline longest diameter"):
        lesion_outcomes(rows)
