"""Reading the clinical CSVs (the shipped example and bad files) and grading them against a baseline."""

from __future__ import annotations

from datetime import date
from importlib import resources

import pytest

from luprrt.clinical import grade_labs, read_characteristics, read_labs

HEADER = "patient_id,date,platelets_1e9_per_l,alt_u_per_l\n"


def _example(name):
    return resources.files("luprrt").joinpath("data", name)


def test_shipped_example_reads_and_grades_with_the_baseline_rule():
    labs = read_labs(_example("example_labs.csv"))
    people = read_characteristics(_example("example_characteristics.csv"))
    assert len(labs) == 7 and [p["patient_id"] for p in people] == ["EX-001", "EX-002"]
    assert people[1]["prior_therapies"] == ["somatostatin analogue", "everolimus"]
    assert people[1]["kidney_risk_factors"] is True
    graded = grade_labs(labs, {p["patient_id"]: p["sex"] for p in people},
                        {"EX-001": date(2024, 3, 5), "EX-002": date(2024, 1, 30)})
    by_key = {(g.patient_id, g.date.isoformat(), g.test): g for g in graded}
    # EX-001 lymphocytes 0.62 on 2024-07-01: 0.5 <= 0.62 < 0.8 -> grade 2 by hand.
    assert by_key[("EX-001", "2024-07-01", "lymphocytes_1e9_per_l")].grade == 2
    # EX-002 (male, ULN 70) has a normal ALT baseline 52: 83 > ULN and <= 3 x ULN -> grade 1.
    alt = by_key[("EX-002", "2024-03-11", "alt_u_per_l")]
    assert (alt.baseline, alt.uln, alt.grade) == (52.0, 70.0, 1)
    # EX-001's own ULN column (45) overrides the default female ULN (45 too) and its baseline is 28.
    assert by_key[("EX-001", "2024-04-15", "alt_u_per_l")].baseline == 28.0
    # EX-002 creatinine 104 from a 96 baseline: below the male ULN 105 and under 1.5 x baseline -> 0.
    assert by_key[("EX-002", "2024-04-15", "creatinine_umol_per_l")].grade == 0


@pytest.mark.parametrize(("body", "message"), [
    ("patient_id,platelets_1e9_per_l\nP1,200\n", r"missing column\(s\) \['date'\]"),
    ("patient_id,date,glucose_mmol_per_l\nP1,2024-01-01,5\n", r"unknown column\(s\) \['glucose_mmol_per_l'\]"),
    (HEADER + "P1,01/02/2024,200,30\n", r"line 2: date '01/02/2024' must be YYYY-MM-DD"),
    (HEADER + "P1,2024-01-01,two hundred,30\n", r"line 2: platelets_1e9_per_l = 'two hundred' is not a number"),
    (HEADER + "P1,2024-01-01,200000,30\n", r"platelets_1e9_per_l = 200000 is outside 1-2000 10⁹/L; check the unit"),
    (HEADER + "P1,2024-01-01,200,30\nP1,2024-01-01,210,31\n", r"line 3: patient P1 has two rows for 2024-01-01"),
    (HEADER + ",2024-01-01,200,30\n", r"line 2: empty patient_id"),
    (HEADER, r"no data rows"),
])
def test_bad_labs_are_named_in_one_line(tmp_path, body, message):
    path = tmp_path / "labs.csv"
    path.write_text(body, encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(ValueError, match=message):
        read_labs(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize(("row", "message"), [
    ("P1,63,X,70,pancreas,G2,5,", r"sex 'X' must be F or M"),
    ("P1,63,F,70,pancreas,G4,5,", r"grade 'G4' must be one of"),
    ("P1,12,F,70,pancreas,G2,5,", r"age_years = '12' must be a number in 18-110"),
    ("P1,63,F,70,pancreas,G2,150,", r"ki67_pct = '150' must be a number in 0-100"),
])
def test_bad_characteristics_are_named(tmp_path, row, message):
    path = tmp_path / "characteristics.csv"
    path.write_text("patient_id,age_years,sex,weight_kg,primary_site,grade,ki67_pct,prior_therapies\n" + row + "\n")
    with pytest.raises(ValueError, match=message):
        read_characteristics(path)


def test_missing_file_and_missing_sex_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="clinical table not found"):
        read_labs(tmp_path / "labs.csv")
    path = tmp_path / "labs.csv"
    path.write_text(HEADER + "P1,2024-01-01,200,30\n")
    with pytest.raises(ValueError, match=r"patients \['P1'\] have labs but no sex"):
        grade_labs(read_labs(path), {}, {})
