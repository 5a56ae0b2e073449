"""Units of cohort-table columns read from LuPRRT's column names (unit suffix, statistic prefix).

The expected units are the naming convention itself, written out by hand: every unit
suffix LuPRRT uses, with and without a statistic prefix, the precedence of the longer
suffix over the shorter one it ends with, counts, every dimensionless token, and names
that carry no unit.
"""

from __future__ import annotations

import pytest

from luprrt.cohort.units import COUNT, DIMENSIONLESS, column_unit

# (column name, unit): one realistic column of every suffix, and the same with a statistic prefix.
SUFFIXES = [
    ("kidney_concentration_bq_per_ml", "Bq/mL"),
    ("tumour_dose_gy_per_gbq", "Gy/GBq"),
    ("adc_mean_mm2_per_s", "mm²/s"),
    ("kidney_tia_mbq_h", "MBq h"),
    ("kidney_uptake_pct_ia", "%IA"),
    ("fdg_suvmax", "g/mL"),
    ("ga68_suvmean", "g/mL"),
    ("fdg_suvpeak", "g/mL"),
    ("lesion_suv", "g/mL"),
    ("administered_activity_gbq", "GBq"),
    ("injected_activity_mbq", "MBq"),
    ("diameter_change_pct", "%"),
    ("tumour_dose_gy", "Gy"),
    ("longest_diameter_mm", "mm"),
    ("lesion_volume_ml", "mL"),
    ("time_since_baseline_h", "h"),
]


@pytest.mark.parametrize(("name", "unit"), SUFFIXES)
def test_every_unit_suffix_with_and_without_a_statistic_prefix(name, unit):
    assert column_unit(name) == unit
    for statistic in ("mean", "median", "sd", "q1", "q3", "min", "max", "ia_gmean", "iv_gmean"):
        assert column_unit(f"{statistic}_{name}") == unit


@pytest.mark.parametrize(("name", "unit"), [
    # A longer suffix wins over the shorter suffix it ends with.
    ("tia_mbq_h", "MBq h"),  # not "h"
    ("dose_per_activity_gy_per_gbq", "Gy/GBq"),  # not "GBq" nor "Gy"
    ("concentration_bq_per_ml", "Bq/mL"),  # not "mL"
    ("uptake_pct_ia", "%IA"),  # not "%"
    ("max_fdg_suvmax", "g/mL"),
    ("adc_mm2_per_s", "mm²/s"),  # not "s" (no such suffix) nor a dimensionless token
    # A unit suffix wins over a count prefix and a dimensionless token.
    ("n_dose_gy", "Gy"),
    ("ratio_volume_ml", "mL"),
    # Names are read case-insensitively.
    ("Tumour_Dose_GY", "Gy"),
    ("N_Patients", COUNT),
    ("TN_Mean", DIMENSIONLESS),
])
def test_precedence_and_case(name, unit):
    assert column_unit(name) == unit


@pytest.mark.parametrize("name", ["n", "n_patients", "n_lesions", "n_cycles"])
def test_counts(name):
    assert column_unit(name) == "count"


@pytest.mark.parametrize("token", [
    "tn", "ratio", "or", "odds", "auc", "p", "rho", "coef", "se", "statistic", "share", "probability",
    "correlation", "fpr", "tpr", "z", "t", "logit", "variance", "responder",
])
def test_every_dimensionless_token_anywhere_in_the_name(token):
    assert column_unit(token) == "1"
    assert column_unit(f"mean_{token}") == "1"
    assert column_unit(f"{token}_lesion") == "1"
    assert column_unit(f"ia_{token}_cycle") == "1"


@pytest.mark.parametrize(("name", "unit"), [
    ("ratio_ia_iv", "1"), ("p_value", "1"), ("ia_gmean_tn_mean", "1"), ("odds_ratio", "1"),
    ("ci_low_or", "1"), ("coef_log_odds", "1"), ("se_log_odds", "1"), ("auc", "1"),
])
def test_names_of_the_cohort_statistics_tables(name, unit):
    assert column_unit(name) == unit


@pytest.mark.parametrize("name", [
    "patient_id", "lesion_id", "route", "cycle", "predictor", "effect_per", "method",
    # tokens are whole words between underscores, not substrings of them
    "pattern", "top", "score", "node", "nadir", "oral",
    # a suffix must be at the end, after an underscore
    "hmm", "gym", "mlx",
])
def test_names_without_a_unit(name):
    assert column_unit(name) is None
