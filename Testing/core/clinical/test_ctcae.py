"""CTCAE v5.0 grades against hand-graded values at every threshold edge (the bound itself and just past it)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from luprrt.clinical import ctcae_grade, ctcae_terms
from luprrt.clinical.ctcae import ctcae_source, default_reference_interval

# (test, value, LLN, ULN, baseline, grade by hand from the CTCAE v5.0 text)
HAND_GRADED = [
    # Platelet count decreased: G1 <LLN-75, G2 <75-50, G3 <50-25, G4 <25 (10^9/L); LLN 150.
    *[("platelets_1e9_per_l", v, 150.0, 400.0, None, g) for v, g in
      ((150.0, 0), (149.9, 1), (75.0, 1), (74.9, 2), (50.0, 2), (49.9, 3), (25.0, 3), (24.9, 4))],
    # Neutrophil count decreased: G1 <LLN-1.5, G2 <1.5-1.0, G3 <1.0-0.5, G4 <0.5; LLN 1.8.
    *[("neutrophils_1e9_per_l", v, 1.8, 7.5, None, g) for v, g in
      ((1.8, 0), (1.79, 1), (1.5, 1), (1.49, 2), (1.0, 2), (0.99, 3), (0.5, 3), (0.49, 4))],
    # Lymphocyte count decreased: G1 <LLN-0.8, G2 <0.8-0.5, G3 <0.5-0.2, G4 <0.2; LLN 1.0.
    *[("lymphocytes_1e9_per_l", v, 1.0, 4.0, None, g) for v, g in
      ((1.0, 0), (0.99, 1), (0.8, 1), (0.79, 2), (0.5, 2), (0.49, 3), (0.2, 3), (0.19, 4))],
    # Anemia: G1 <LLN-100 g/L, G2 <100-80, G3 <80; grade 4 is clinical only; LLN 120.
    *[("haemoglobin_g_per_l", v, 120.0, 160.0, None, g) for v, g in
      ((120.0, 0), (119.9, 1), (100.0, 1), (99.9, 2), (80.0, 2), (79.9, 3), (40.0, 3))],
    # Hypoalbuminemia: G1 <LLN-30 g/L, G2 <30-20, G3 <20; LLN 35.
    *[("albumin_g_per_l", v, 35.0, 50.0, None, g) for v, g in
      ((35.0, 0), (34.9, 1), (30.0, 1), (29.9, 2), (20.0, 2), (19.9, 3))],
    # Chronic kidney disease (eGFR): G1 <LLN-60, G2 59-30, G3 29-15, G4 <15; LLN 90.
    *[("egfr_ml_per_min_1_73m2", v, 90.0, None, None, g) for v, g in
      ((90.0, 0), (89.9, 1), (60.0, 1), (59.9, 2), (30.0, 2), (29.9, 3), (15.0, 3), (14.9, 4))],
    # Creatinine increased, ULN 100 and baseline 80: G1 >ULN; G2 >1.5 x baseline (120) or >1.5 x ULN;
    # G3 >3 x baseline (240) or >3 x ULN; G4 >6 x ULN (600).
    *[("creatinine_umol_per_l", v, 60.0, 100.0, 80.0, g) for v, g in
      ((100.0, 0), (100.5, 1), (120.0, 1), (120.5, 2), (240.0, 2), (240.5, 3), (600.0, 3), (600.5, 4))],
    # ... a creatinine rise from a low baseline is graded 2 even below the ULN (>1.5 x baseline 50).
    ("creatinine_umol_per_l", 75.5, 60.0, 100.0, 50.0, 2),
    # ... without a baseline only the ULN multiples apply: 150 is G1, above it G2, above 300 G3.
    *[("creatinine_umol_per_l", v, 60.0, 100.0, None, g) for v, g in
      ((150.0, 1), (150.5, 2), (300.0, 2), (300.5, 3))],
    # ALT increased, normal baseline (30 <= ULN 40): G1 >ULN-3 x ULN, G2 >3-5 x, G3 >5-20 x, G4 >20 x ULN.
    *[("alt_u_per_l", v, 10.0, 40.0, 30.0, g) for v, g in
      ((40.0, 0), (40.1, 1), (120.0, 1), (120.1, 2), (200.0, 2), (200.1, 3), (800.0, 3), (800.1, 4))],
    # ALT, abnormal baseline 60 (> ULN 40): G1 1.5-3 x baseline, G2 >3-5 x, G3 >5-20 x, G4 >20 x baseline.
    *[("alt_u_per_l", v, 10.0, 40.0, 60.0, g) for v, g in
      ((50.0, 0), (90.0, 0), (90.1, 1), (180.0, 1), (180.1, 2), (300.0, 2), (300.1, 3), (1200.0, 3),
       (1200.1, 4))],
    # AST follows the ALT rule: abnormal baseline 50 (> ULN 35): 75 is 1.5 x baseline.
    *[("ast_u_per_l", v, 15.0, 35.0, 50.0, g) for v, g in ((75.0, 0), (75.1, 1), (1000.1, 4))],
    *[("ast_u_per_l", v, 15.0, 35.0, 20.0, g) for v, g in ((35.0, 0), (35.1, 1), (105.1, 2))],
    # Blood bilirubin increased, normal baseline: G1 >ULN-1.5 x, G2 >1.5-3 x, G3 >3-10 x, G4 >10 x ULN (20).
    *[("bilirubin_umol_per_l", v, 5.0, 20.0, 10.0, g) for v, g in
      ((20.0, 0), (20.1, 1), (30.0, 1), (30.1, 2), (60.0, 2), (60.1, 3), (200.0, 3), (200.1, 4))],
    # ... abnormal baseline 30: G1 >1.0-1.5 x, G2 >1.5-3 x, G3 >3-10 x, G4 >10 x baseline.
    *[("bilirubin_umol_per_l", v, 5.0, 20.0, 30.0, g) for v, g in
      ((30.0, 0), (30.1, 1), (45.0, 1), (45.1, 2), (90.0, 2), (90.1, 3), (300.0, 3), (300.1, 4))],
]


@pytest.mark.parametrize(("test", "value", "lln", "uln", "baseline", "grade"), HAND_GRADED)
def test_grade_at_each_threshold_edge_matches_the_hand_grade(test, value, lln, uln, baseline, grade):
    assert int(ctcae_grade(test, value, lln=lln, uln=uln, baseline=baseline)) == grade


def test_every_graded_term_has_hand_graded_edges():
    assert {case[0] for case in HAND_GRADED} == set(ctcae_terms())


def test_arrays_broadcast_and_missing_values_are_minus_one():
    grades = ctcae_grade("platelets_1e9_per_l", [math.nan, 200.0, 60.0, 10.0], lln=150.0)
    assert grades.tolist() == [-1, 0, 2, 4]
    per_patient = ctcae_grade("alt_u_per_l", np.array([100.0, 100.0]), uln=40.0, baseline=np.array([30.0, 60.0]))
    assert per_patient.tolist() == [1, 1]  # 2.5 x ULN; 1.67 x an abnormal baseline


def test_unknown_test_is_named():
    with pytest.raises(ValueError, match="no CTCAE grading for 'glucose'"):
        ctcae_grade("glucose", 5.0)


def test_source_and_reference_interval_refusals_are_named():
    assert ctcae_source().startswith("Common Terminology Criteria for Adverse Events (CTCAE) Version 5.0")
    with pytest.raises(ValueError) as error:
        default_reference_interval("platelets_1e9_per_l", "X")
    assert str(error.value) == "sex must be one of ('F', 'M') to choose a reference interval, got 'X'"
    with pytest.raises(ValueError) as error:
        default_reference_interval("ferritin_ug_per_l", "F")
    assert str(error.value).startswith("no reference interval for 'ferritin_ug_per_l'; known tests: [")
    assert "'platelets_1e9_per_l'" in str(error.value)
