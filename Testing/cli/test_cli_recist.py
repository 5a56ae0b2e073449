"""`luprrt recist` end to end on a measurement table whose RECIST answers are known by hand."""

from __future__ import annotations

import csv

import pytest

from luprrt.cli import main
from luprrt.tables import read_rows_csv

COLUMNS = ["patient_id", "lesion_id", "organ", "is_lymph_node", "date", "longest_diameter_mm",
           "short_axis_mm", "lesion_type", "non_target_status"]


def _write(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


@pytest.fixture
def measurements(tmp_path):
    # P1: sums 100 -> 60 (-40 %, PR) -> 58 (PR, confirmed 84 d later) -> 72 (+24 % and +14 mm over the
    # nadir 58: PD although still 28 % below baseline).
    # P2: sum 50 -> 50 (SD) and a new lesion on the second follow-up (PD by the new lesion alone).
    rows = []
    for date, a, b in (("2026-01-05", 60, 40), ("2026-03-30", 36, 24), ("2026-06-22", 35, 23),
                       ("2026-09-14", 43, 29)):
        rows.append(["P1", "L01", "liver", "false", date, a, "", "target", ""])
        rows.append(["P1", "L02", "liver", "false", date, b, "", "target", ""])
    for date in ("2026-01-05", "2026-03-30", "2026-06-22"):
        rows.append(["P2", "L01", "liver", "false", date, 50, "", "target", ""])
    rows.append(["P2", "L09", "bone", "false", "2026-06-22", "", "", "new", ""])
    return _write(tmp_path / "m.csv", rows)


def test_recist_cli_writes_known_responses(measurements, tmp_path):
    out = tmp_path / "out"
    assert main(["recist", str(measurements), "--out", str(out)]) == 0
    points = {(r["patient_id"], r["date"]): r for r in read_rows_csv(out / "recist_time_points.csv")}
    assert points[("P1", "2026-03-30")]["overall_response"] == "PR"
    assert float(points[("P1", "2026-03-30")]["change_from_baseline_pct"]) == pytest.approx(-40.0, abs=1e-9)
    assert points[("P1", "2026-09-14")]["overall_response"] == "PD"
    # Written to 0.01 %: 24.137931... % -> 24.14.
    assert points[("P1", "2026-09-14")]["change_from_nadir_pct"] == "24.14"
    assert points[("P1", "2026-09-14")]["sum_of_diameters_mm"] == "72.0"
    assert points[("P2", "2026-03-30")]["overall_response"] == "SD"
    assert points[("P2", "2026-06-22")]["overall_response"] == "PD"
    best = {r["patient_id"]: r["response"] for r in read_rows_csv(out / "recist_best_response.csv")}
    assert best == {"P1": "PR", "P2": "SD"}
    outcomes = read_rows_csv(out / "lesion_outcomes.csv")
    last = next(r for r in outcomes if r["lesion_id"] == "L01" and r["followup_date"] == "2026-09-14")
    assert last["change_pct"] == "-28.33"  # 100 (43 - 60) / 60 = -28.333... %
    assert (out / "spider.png").stat().st_size > 1000
    assert (out / "waterfall.png").stat().st_size > 1000


def test_recist_cli_refuses_to_overwrite(measurements, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["recist", str(measurements), "--out", str(out), "--no-figures"]) == 0
    assert main(["recist", str(measurements), "--out", str(out), "--no-figures"]) == 2
    assert "output files exist" in capsys.readouterr().err
    assert main(["recist", str(measurements), "--out", str(out), "--no-figures", "--overwrite"]) == 0


def test_recist_cli_names_bad_column(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,lesion_id\nP1,L01\n")
    assert main(["recist", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "luprrt recist: error:" in err and "column" in err
