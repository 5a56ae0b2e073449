"""Dose-toxicity models on simulated tables with a known relation, worst grades and withheld cycles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from luprrt.cohort.toxicity import (
    cycle_nadirs,
    egfr_slope_vs_kidney_bed,
    log_change_vs_dose,
    stopped_cycles,
    worst_grades,
)

N_PATIENTS, CYCLES = 24, 4


def _study(seed=3, kappa=-0.5, a=-1.2):
    """Administrations every 11 weeks; eGFR falling at kappa x BED per year; platelet nadirs exp(a D)."""
    rng = np.random.default_rng(seed)
    admin, labs, doses, bed = [], [], [], []
    for p in range(N_PATIENTS):
        pid = f"P{p:02d}"
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 200)))
        total_bed = rng.uniform(8.0, 30.0)
        bed.append({"patient_id": pid, "cumulative_kidney_bed_gy": total_bed})
        egfr0, plt0 = rng.normal(85, 10), rng.normal(250, 40)
        for c in range(1, CYCLES + 1):
            day = start + pd.Timedelta(weeks=11 * (c - 1))
            admin.append({"patient_id": pid, "cycle": c, "date": day})
            marrow = rng.uniform(0.2, 0.7)
            doses.append({"patient_id": pid, "cycle": c, "marrow_dose_gy": marrow})
            for offset, nadir in ((-1, False), (28, True)):
                when = day + pd.Timedelta(days=offset)
                years = (when - start).days / 365.25
                labs.append({"patient_id": pid, "date": when,
                             "egfr_ml_per_min_1_73m2": egfr0 + kappa * total_bed * years + rng.normal(0, 1.5),
                             "platelets_1e9_per_l": plt0 * np.exp((a * marrow if nadir else 0.0)
                                                                  + rng.normal(0, 0.03))})
    return pd.DataFrame(admin), pd.DataFrame(labs), pd.DataFrame(doses), pd.DataFrame(bed)


def test_egfr_slope_per_gy_bed_recovers_the_simulated_relation():
    admin, labs, _, bed = _study(kappa=-0.5)
    estimate = egfr_slope_vs_kidney_bed(labs, bed, admin)
    assert estimate.ci_low <= -0.5 <= estimate.ci_high
    assert estimate.ci_high - estimate.ci_low < 0.5  # informative, not a CI that always covers
    assert estimate.n_patients == N_PATIENTS and estimate.p_value < 0.01


def test_platelet_nadir_per_gy_marrow_recovers_the_simulated_relation():
    admin, labs, doses, _ = _study(a=-1.2)
    nadirs = cycle_nadirs(labs, admin, "platelets_1e9_per_l")
    assert len(nadirs) == N_PATIENTS * CYCLES
    estimate = log_change_vs_dose(nadirs, doses, "marrow_dose_gy", "platelets")
    assert estimate.ci_low <= -1.2 <= estimate.ci_high
    assert estimate.ci_high - estimate.ci_low < 0.3


def test_worst_grade_per_cycle_and_withheld_cycle():
    admin = pd.DataFrame({"patient_id": ["A", "A", "A", "B", "B"], "cycle": [1, 2, 3, 1, 2],
                          "date": pd.to_datetime(["2024-01-01", "2024-03-18", "2024-06-03", "2024-01-01",
                                                  "2024-03-18"])})
    graded = pd.DataFrame({
        "patient_id": ["A", "A", "A", "A", "B", "B"],
        "date": pd.to_datetime(["2023-12-25", "2024-01-29", "2024-04-15", "2024-06-02", "2024-01-29",
                                "2024-04-15"]),
        "test": ["platelets_1e9_per_l"] * 3 + ["creatinine_umol_per_l", "platelets_1e9_per_l",
                                               "lymphocytes_1e9_per_l"],
        "grade": [1, 2, 3, 0, 1, 4]})
    per_patient, per_cycle = worst_grades(graded, admin)
    # The pre-treatment grade 1 (2023-12-25) does not count; cycle 2's platelets reached grade 3.
    assert per_cycle.set_index(["patient_id", "cycle", "test"])["worst_grade"].to_dict() == {
        ("A", 1, "platelets_1e9_per_l"): 2, ("A", 2, "platelets_1e9_per_l"): 3,
        ("A", 2, "creatinine_umol_per_l"): 0, ("B", 1, "platelets_1e9_per_l"): 1,
        ("B", 2, "lymphocytes_1e9_per_l"): 4}
    assert per_patient.set_index(["patient_id", "test"]).loc[("A", "platelets_1e9_per_l"), "worst_grade"] == 3
    limits = pd.DataFrame({"patient_id": ["B"], "after_cycle": [1], "quantity": ["kidney_bed_gy"],
                           "value_gy": [30.0], "limit_gy": [40.0]})
    stops = stopped_cycles(graded, admin, limits, risk_factors={"B": True}).set_index("patient_id")
    # A: grade 3 thrombocytopenia after cycle 2 withholds cycle 3; B: BED 30 Gy over the 28 Gy risk limit.
    assert stops.loc["A", "withheld_cycle"] == 3 and "platelets_1e9_per_l grade 3" in stops.loc["A", "reason"]
    assert stops.loc["B", "withheld_cycle"] == 2 and "kidney_bed_gy 30.0 > 28 Gy" in stops.loc["B", "reason"]
    assert stops.loc["A", "n_cycles_allowed"] == 2


def test_too_few_patients_is_named():
    admin, labs, _, bed = _study()
    keep = ["P00", "P01"]
    with pytest.raises(ValueError, match="needs >= 3 patients"):
        egfr_slope_vs_kidney_bed(labs[labs["patient_id"].isin(keep)], bed, admin)
