"""Response by route, dose-response, per-lobe RECIST, T/N variance components and the trial's primary endpoint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from luprrt.cohort.reader_report import format_estimate, format_p
from luprrt.cohort.route_response import (
    dose_response_by_route,
    lesion_diameter_ratios,
    lobe_response,
    recist_category,
    route_effect_on_diameter,
    tn_variance_components,
    trial_primary_endpoint,
)


def _course(seed=1, slope=-0.5, n=30):
    """Lesions of n patients, both lobes; ln(d_last/d0) = slope ln(D / 100 Gy) + patient effect + noise."""
    rng = np.random.default_rng(seed)
    rows, doses = [], []
    for p in range(n):
        shift = rng.normal(0, 0.1)
        for k in range(6):
            route = "IA" if k < 3 else "IV"
            dose = 100.0 * np.exp(rng.normal(0.3 if route == "IA" else 0.0, 0.45))
            d0 = rng.uniform(15, 45)
            ratio = np.exp(slope * np.log(dose / 100.0) + shift + rng.normal(0, 0.05))
            rows.append({"patient_id": f"P{p}", "lesion_id": f"L{k}", "route": route,
                         "followup_date": "2025-01-01", "baseline_longest_diameter_mm": d0,
                         "followup_longest_diameter_mm": d0 * ratio})
            doses.append({"patient_id": f"P{p}", "lesion_id": f"L{k}", "cumulative_tumour_dose_gy": dose})
    return pd.DataFrame(rows), pd.DataFrame(doses)


def test_dose_response_and_route_effect_recover_the_simulated_slope():
    course, doses = _course(slope=-0.5)
    ratios = lesion_diameter_ratios(course.drop(columns="route"), course[["patient_id", "lesion_id", "route"]])
    slope, at_equal_dose = dose_response_by_route(ratios, doses)
    assert slope.ci_low <= -0.5 <= slope.ci_high and slope.ci_high - slope.ci_low < 0.1
    assert at_equal_dose.ci_low <= 0.0 <= at_equal_dose.ci_high  # route acts only through dose
    route = route_effect_on_diameter(ratios)
    # IA lesions got exp(0.3) x the dose: expected difference -0.5 x 0.3 = -0.15 on the log scale.
    assert route.ci_low <= -0.15 <= route.ci_high and route.estimate < 0


def test_lesions_below_10_mm_are_left_out_and_vanished_ones_count_as_5_mm():
    course = pd.DataFrame({"patient_id": ["A"] * 3, "lesion_id": ["L1", "L2", "L3"], "followup_date": ["d"] * 3,
                           "baseline_longest_diameter_mm": [20.0, 8.0, 12.0],
                           "followup_longest_diameter_mm": [10.0, 8.0, None]})
    routes = course[["patient_id", "lesion_id"]].assign(route=["IA", "IV", "IV"])
    ratios = lesion_diameter_ratios(course, routes).set_index("lesion_id")
    assert list(ratios.index) == ["L1", "L3"]
    assert ratios.loc["L1", "diameter_change_pct"] == pytest.approx(-50.0)
    assert ratios.loc["L3", "log_diameter_ratio"] == pytest.approx(np.log(5.0 / 12.0))


@pytest.mark.parametrize(("base", "last", "nadir", "category"), [
    (50.0, 35.0, 35.0, "PR"), (50.0, 35.1, 35.1, "SD"), (50.0, 0.0, 0.0, "CR"),
    (50.0, 48.5, 40.0, "PD"),  # +21 % over the nadir 40 and +8.5 mm
    (20.0, 19.2, 16.0, "SD"),  # +20 % over the nadir but only +3.2 mm
])
def test_recist_category_of_a_sum_by_hand(base, last, nadir, category):
    assert recist_category(base, last, nadir) == category


def test_lobe_response_sums_the_two_largest_targets():
    course = pd.DataFrame({"patient_id": ["A"] * 6, "lesion_id": ["L1", "L2", "L3"] * 2,
                           "followup_date": ["2024-05-01"] * 3 + ["2024-09-01"] * 3,
                           "baseline_longest_diameter_mm": [40.0, 30.0, 12.0] * 2,
                           "followup_longest_diameter_mm": [30.0, 20.0, 12.0, 26.0, 20.0, 30.0]})
    lobes = lobe_response(course, course[["patient_id", "lesion_id"]].drop_duplicates().assign(route="IA"))
    row = lobes.iloc[0]
    assert (row["n_targets"], row["baseline_sum_mm"], row["last_sum_mm"]) == (2, 70.0, 46.0)
    assert row["response"] == "PR"  # -34 %


def test_variance_components_recover_simulated_patient_lesion_and_residual_variances():
    rng = np.random.default_rng(5)
    rows = []
    for p in range(40):
        u = rng.normal(0, np.sqrt(0.09))
        for k in range(6):
            v = rng.normal(0, np.sqrt(0.04))
            for h in (4.0, 24.0, 96.0):
                rows.append({"patient_id": f"P{p}", "lesion_id": f"L{k}", "cycle": 1, "route": "IA" if k < 3 else "IV",
                             "hours_post_injection": h,
                             "tn_mean": np.exp(2.5 + 0.2 * (k < 3) + u + v + rng.normal(0, np.sqrt(0.01)))})
    icc = tn_variance_components(pd.DataFrame(rows)).iloc[0]
    assert icc["variance_patient"] == pytest.approx(0.09, rel=0.45)
    assert icc["variance_lesion"] == pytest.approx(0.04, rel=0.3)
    assert icc["variance_residual"] == pytest.approx(0.01, rel=0.15)
    assert icc["icc_patient"] == pytest.approx(icc["variance_patient"] / (icc["variance_patient"]
                                                                          + icc["variance_lesion"] + 0.0
                                                                          + icc["variance_residual"]))


def test_trial_definition_keeps_up_to_three_lesions_over_3_cm_per_lobe():
    rows = []
    for p, (ia, iv) in enumerate(((2.0, 1.0), (3.0, 1.5), (1.0, 0.8))):
        for k, d in enumerate((50.0, 45.0, 40.0, 35.0, 25.0)):
            for route, tn in (("IA", ia), ("IV", iv)):
                # the 4th lesion > 3 cm and the small one carry a T/N that would change the answer
                rows.append({"patient_id": f"P{p}", "lesion_id": f"{route}{k}", "route": route, "cycle": 1,
                             "tn_mean": tn * (1.0 if k < 3 else 50.0), "baseline_longest_diameter_mm": d})
    result = trial_primary_endpoint(pd.DataFrame(rows))
    assert result.n_lesions_ia == result.n_lesions_iv == 9
    assert result.ratio == pytest.approx(np.exp(np.mean(np.log([2.0, 2.0, 1.25]))), rel=1e-12)


def test_estimates_read_as_a_reader_expects():
    assert format_estimate(1.1612, 1.031, 1.309, 0.0219) == "1.16 (95 % CI 1.03-1.31), p = 0.022"
    assert format_estimate(-0.5, -0.71, -0.29, 0.00001) == "−0.50 (95 % CI −0.71 to −0.29), p < 0.001"
    assert format_p(0.3) == "p = 0.30"
