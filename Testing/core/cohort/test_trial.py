"""IA-vs-IV trial statistics on synthetic cohorts with a known IA effect."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from luprrt.cohort.trial import (
    cumulative_lesion_dose,
    dose_response_spearman,
    geometric_mean_ratio_ci,
    lobe_dose_summary,
    mixed_model_over_cycles,
    paired_ia_iv,
    size_matched_lesions,
    uptake_summary_by_cycle,
)

N_PATIENTS = 26
LESIONS_PER_LOBE = 3
ROUTE_AXIS = ("IA", "IV")


def simulate_log_tn(rng, cycle_ratios, n_trials=None, n_patients=N_PATIENTS, lesions=LESIONS_PER_LOBE):
    """Log lesion T/N with shape ([trials,] cycles, patients, 2 lobes (IA, IV), lesions).

    log T/N = patient level (SD 0.4 around log 15) + lesion level (SD 0.3) + measurement
    noise per cycle (SD 0.1) + in the IA lobe log(ratio of the cycle) + a patient-specific
    IA gain (SD 0.1, mean 0): the true geometric-mean ratio IA/IV of a cycle is its ratio.
    """
    lead = () if n_trials is None else (n_trials,)
    n_cycles = len(cycle_ratios)
    patient = rng.normal(np.log(15.0), 0.4, (*lead, 1, n_patients, 1, 1))
    gain = rng.normal(0.0, 0.1, (*lead, 1, n_patients, 1, 1))
    lesion = rng.normal(0.0, 0.3, (*lead, 1, n_patients, 2, lesions))
    noise = rng.normal(0.0, 0.1, (*lead, n_cycles, n_patients, 2, lesions))
    is_ia = np.array([1.0, 0.0]).reshape(1, 1, 2, 1)
    log_ratio = np.log(np.asarray(cycle_ratios, dtype=float)).reshape(n_cycles, 1, 1, 1)
    return patient + lesion + noise + is_ia * (log_ratio + gain)


def as_lesion_table(log_tn: np.ndarray) -> pd.DataFrame:
    """Tidy lesion table from a (cycles, patients, 2, lesions) array of log T/N."""
    cycle, patient, route, lesion = np.indices(log_tn.shape).reshape(4, -1)
    return pd.DataFrame(
        {
            "patient_id": [f"P{p:02d}" for p in patient],
            "cycle": cycle + 1,
            "route": np.array(ROUTE_AXIS)[route],
            "lesion_id": [f"{ROUTE_AXIS[r]}-{k}" for r, k in zip(route, lesion, strict=True)],
            "tn_mean": np.exp(log_tn.ravel()),
        }
    )


@pytest.fixture(scope="module")
def cohort_ia_130() -> pd.DataFrame:
    return as_lesion_table(simulate_log_tn(np.random.default_rng(20240611), [1.3]))


def test_paired_analysis_recovers_known_ia_ratio(cohort_ia_130):
    before = cohort_ia_130.copy()
    result = paired_ia_iv(cohort_ia_130, cycle=1)
    pd.testing.assert_frame_equal(cohort_ia_130, before)  # input untouched
    assert result.n_patients == N_PATIENTS
    assert result.n_lesions_ia == result.n_lesions_iv == N_PATIENTS * LESIONS_PER_LOBE
    assert result.ci_low < 1.3 < result.ci_high
    assert result.ci_low < result.ratio < result.ci_high
    assert abs(np.log(result.ratio / 1.3)) < 0.15
    assert result.p_value < 0.01 and result.wilcoxon_p_value < 0.01
    assert result.share_increased > 0.7
    # the ratio is the ratio of the geometric means over patients
    assert result.ratio == pytest.approx(result.ia_gmean / result.iv_gmean, rel=1e-12)
    per = result.per_patient
    assert len(per) == N_PATIENTS
    assert result.share_increased == pytest.approx(np.mean(per["ratio_ia_iv"] > 1.0), abs=1e-12)


def test_paired_analysis_matches_scipy_paired_t_test(cohort_ia_130):
    result = paired_ia_iv(cohort_ia_130)
    keys = [cohort_ia_130["patient_id"], cohort_ia_130["route"]]
    logs = np.log(cohort_ia_130["tn_mean"]).groupby(keys).mean()
    log_ia, log_iv = logs.xs("IA", level="route"), logs.xs("IV", level="route")
    reference = stats.ttest_rel(log_ia, log_iv)
    interval = reference.confidence_interval(0.95)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.ci_low == pytest.approx(np.exp(interval.low), rel=1e-12)
    assert result.ci_high == pytest.approx(np.exp(interval.high), rel=1e-12)
    raw = cohort_ia_130.groupby(["patient_id", "route"])["tn_mean"].mean()
    arithmetic = stats.ttest_rel(raw.xs("IA", level="route"), raw.xs("IV", level="route"))
    assert result.p_value_arithmetic == pytest.approx(arithmetic.pvalue, rel=1e-9)
    assert result.wilcoxon_p_value == pytest.approx(stats.wilcoxon(log_ia - log_iv).pvalue, rel=1e-12)
    assert result.ia_mean == pytest.approx(raw.xs("IA", level="route").mean(), rel=1e-12)


def test_paired_analysis_uses_the_confidence_asked_for(cohort_ia_130):
    result = paired_ia_iv(cohort_ia_130, confidence=0.90)
    keys = [cohort_ia_130["patient_id"], cohort_ia_130["route"]]
    logs = np.log(cohort_ia_130["tn_mean"]).groupby(keys).mean()
    interval = stats.ttest_rel(logs.xs("IA", level="route"), logs.xs("IV", level="route")).confidence_interval(0.90)
    assert (result.ci_low, result.ci_high) == pytest.approx((np.exp(interval.low), np.exp(interval.high)), rel=1e-12)
    with pytest.raises(ValueError, match=r"^confidence must be in \(0, 1\), got 1.0$"):
        geometric_mean_ratio_ci([1.0, 2.0], [1.0, 1.5], confidence=1.0)
    with pytest.raises(ValueError, match=r"^a paired comparison needs at least 2 patients, got 0$"):
        geometric_mean_ratio_ci(1.0, 2.0)


def test_published_lutia_shape_of_summary_table(cohort_ia_130):
    # LUTIA (Ebbers et al. EJNMMI 2024): T/N means per lobe, paired t-test p, ratio with 95 % CI,
    # share of patients with an increase.
    frame = paired_ia_iv(cohort_ia_130).to_frame()
    for column in ("ia_mean_tn_mean", "iv_mean_tn_mean", "ratio_ia_iv", "ci_low_ratio", "ci_high_ratio",
                   "p_value", "p_value_arithmetic_t", "share_increased"):
        assert column in frame.columns
    assert len(frame) == 1
    assert frame.loc[0, "ci_low_ratio"] < frame.loc[0, "ratio_ia_iv"] < frame.loc[0, "ci_high_ratio"]


def test_no_ia_effect_interval_covers_one():
    table = as_lesion_table(simulate_log_tn(np.random.default_rng(7), [1.0]))
    result = paired_ia_iv(table)
    assert result.ci_low < 1.0 < result.ci_high
    assert result.p_value > 0.05


def test_interval_coverage_over_400_simulated_trials():
    rng = np.random.default_rng(12345)
    log_tn = simulate_log_tn(rng, [1.3], n_trials=400)[:, 0]  # (trials, patients, 2, lesions)
    per_patient = log_tn.mean(axis=-1)
    paired = geometric_mean_ratio_ci(per_patient[..., 0], per_patient[..., 1])
    coverage = np.mean((paired.ci_low < 1.3) & (1.3 < paired.ci_high))
    assert abs(coverage - 0.95) <= 0.04
    # the vectorised path and the table path give the same answer for one trial
    single = paired_ia_iv(as_lesion_table(log_tn[:1]))
    assert single.ratio == pytest.approx(paired.ratio[0], rel=1e-12)
    assert single.ci_high == pytest.approx(paired.ci_high[0], rel=1e-12)


def test_lesion_level_mixed_model_recovers_ratio(cohort_ia_130):
    result = paired_ia_iv(cohort_ia_130, level="lesion")
    assert result.ci_low < 1.3 < result.ci_high
    # balanced design: the GLS estimate equals the paired geometric-mean ratio
    assert result.ratio == pytest.approx(paired_ia_iv(cohort_ia_130).ratio, rel=1e-6)
    assert "MixedLM" in result.method


def test_patient_without_iv_lesions_is_excluded(cohort_ia_130):
    table = cohort_ia_130[~((cohort_ia_130["patient_id"] == "P03") & (cohort_ia_130["route"] == "IV"))]
    result = paired_ia_iv(table)
    assert result.excluded_patients == ("P03",)
    assert result.n_patients == N_PATIENTS - 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns="lesion_id"), "lesion_id"),
        (lambda t: t.assign(route=t["route"].replace("IV", "venous")), "venous"),
        (lambda t: t.assign(tn_mean=t["tn_mean"].where(t.index != 5, -1.0)), "tn_mean"),
    ],
)
def test_paired_analysis_rejects_bad_tables(cohort_ia_130, change, message):
    with pytest.raises(ValueError, match=message):
        paired_ia_iv(change(cohort_ia_130))


def test_paired_analysis_rejects_unknown_cycle_and_level(cohort_ia_130):
    with pytest.raises(ValueError, match="no rows for cycle 3"):
        paired_ia_iv(cohort_ia_130, cycle=3)
    with pytest.raises(ValueError, match="level"):
        paired_ia_iv(cohort_ia_130, level="lobe")


def test_mixed_model_over_four_cycles_recovers_each_ratio():
    ratios = [1.3, 1.25, 1.2, 1.15]
    table = as_lesion_table(simulate_log_tn(np.random.default_rng(99), ratios))
    result = mixed_model_over_cycles(table)
    assert result.random_effects == "patient intercept + patient IA slope + lesion(patient) intercept"
    assert result.n_observations == 4 * N_PATIENTS * 2 * LESIONS_PER_LOBE
    assert result.n_lesions == N_PATIENTS * 2 * LESIONS_PER_LOBE
    per_cycle = result.per_cycle
    assert per_cycle["cycle"].tolist() == [1, 2, 3, 4]
    assert ((per_cycle["ci_low_ratio"] < ratios) & (per_cycle["ci_high_ratio"] > ratios)).all()
    # variance components near the simulated ones: lesion 0.3^2, residual 0.1^2 (log scale)
    assert result.variance_lesion_log == pytest.approx(0.09, rel=0.5)
    assert result.variance_residual_log == pytest.approx(0.01, rel=0.25)
    # cycle 1 of the joint model equals the paired analysis of cycle 1 (balanced design)
    assert per_cycle.loc[0, "ratio_ia_iv"] == pytest.approx(paired_ia_iv(table, cycle=1).ratio, rel=1e-6)


def test_mixed_model_rejects_lesion_in_both_lobes(cohort_ia_130):
    table = cohort_ia_130.assign(lesion_id="same")
    with pytest.raises(ValueError, match="both routes"):
        mixed_model_over_cycles(table)


def test_uptake_summary_counts_each_patient_once():
    per_patient = pd.DataFrame(
        {
            "patient_id": ["A", "B", "C", "D"] * 2,
            "cycle": [1] * 4 + [2] * 4,
            "kidney_uptake_pct_ia": [1.0, 2.0, 4.0, 9.0, 1.5, 2.5, 3.5, 4.5],
        }
    )
    # patient A has 3 lesion rows, the others 1: a per-lesion mean would weigh A three times
    rows_of_a = per_patient[per_patient["patient_id"] == "A"]
    table = pd.concat([per_patient, rows_of_a, rows_of_a], ignore_index=True)
    summary = uptake_summary_by_cycle(table, "kidney_uptake_pct_ia").set_index("cycle")
    cycle1 = np.array([1.0, 2.0, 4.0, 9.0])
    assert summary.loc[1, "n_patients_kidney_uptake_pct_ia"] == 4
    assert summary.loc[1, "mean_kidney_uptake_pct_ia"] == pytest.approx(4.0)
    assert summary.loc[1, "sd_kidney_uptake_pct_ia"] == pytest.approx(cycle1.std(ddof=1))
    assert summary.loc[1, "median_kidney_uptake_pct_ia"] == pytest.approx(3.0)
    assert summary.loc[1, "q1_kidney_uptake_pct_ia"] == pytest.approx(1.75)
    assert summary.loc[1, "q3_kidney_uptake_pct_ia"] == pytest.approx(5.25)
    assert summary.loc[2, "mean_kidney_uptake_pct_ia"] == pytest.approx(3.0)


def test_uptake_summary_rejects_lesion_level_values():
    table = pd.DataFrame({"patient_id": ["A", "A"], "cycle": [1, 1],
                          "extrahepatic_uptake_pct_ia": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"extrahepatic_uptake_pct_ia.*differs within patient 'A'"):
        uptake_summary_by_cycle(table, ["extrahepatic_uptake_pct_ia"])


def test_uptake_summary_takes_a_patient_without_the_value_as_missing_not_as_differing():
    """A patient whose kidneys were not segmented has no uptake (NaN on every row): left out, no error."""
    table = pd.DataFrame({"patient_id": ["A", "A", "B", "B", "C"], "cycle": [1] * 5,
                          "kidney_uptake_pct_ia": [2.0, 2.0, np.nan, np.nan, 4.0]})
    summary = uptake_summary_by_cycle(table, "kidney_uptake_pct_ia").set_index("cycle")
    assert summary.loc[1, "n_patients_kidney_uptake_pct_ia"] == 2
    assert summary.loc[1, "mean_kidney_uptake_pct_ia"] == pytest.approx(3.0)
    with pytest.raises(ValueError, match=r"^uptake table lacks column\(s\) \['spleen_uptake_pct_ia'\]"):
        uptake_summary_by_cycle(table, "spleen_uptake_pct_ia")


def test_cumulative_dose_and_lobe_summary():
    table = pd.DataFrame(
        {
            "patient_id": ["A"] * 6,
            "lesion_id": ["L1", "L2"] * 3,
            "route": ["IA", "IV"] * 3,
            "cycle": [3, 3, 1, 1, 2, 2],
            "tumour_dose_gy": [5.0, 1.0, 20.0, 4.0, 10.0, 2.0],
        }
    )
    out = cumulative_lesion_dose(table)
    assert "cumulative_tumour_dose_gy" not in table.columns
    assert out["cumulative_tumour_dose_gy"].tolist() == [35.0, 7.0, 20.0, 4.0, 30.0, 6.0]
    lobes = lobe_dose_summary(table).set_index(["cycle", "route"])
    assert lobes.loc[(1, "IA"), "mean_tumour_dose_gy"] == 20.0
    assert lobes.loc[(2, "IV"), "n_lesions"] == 1
    with pytest.raises(ValueError, match=r"^lesion table lacks column\(s\) \['route'\]"):
        lobe_dose_summary(table.drop(columns="route"))


def test_dose_response_spearman_levels():
    dose = np.array([5.0, 10.0, 20.0, 40.0, 80.0, 160.0])
    table = pd.DataFrame(
        {
            "patient_id": ["A", "A", "B", "B", "C", "C"],
            "tumour_dose_gy": dose,
            "diameter_change_pct": -np.sqrt(dose),  # strictly decreasing with dose
        }
    )
    lesion = dose_response_spearman(table)
    assert lesion.rho == pytest.approx(-1.0) and lesion.n == 6
    patient = dose_response_spearman(table, level="patient")
    assert patient.rho == pytest.approx(-1.0) and patient.n == 3
    with pytest.raises(ValueError, match="needs >= 3"):
        dose_response_spearman(table.iloc[:2])


def test_dose_response_spearman_against_ranks_by_hand_with_unreadable_values_left_out():
    """rho = Pearson correlation of the ranks; p from t = rho sqrt((n - 2) / (1 - rho^2)) on n - 2 df."""
    table = pd.DataFrame({
        "patient_id": ["A", "A", "B", "B", "C", "C", "D", "E"],
        "cum_dose_gy": ["12", "30", "7", "55", "21", "n/a", "80", "41"],  # "n/a" is left out
        "sum_change_pct": [-5.0, -22.0, 8.0, -30.0, -2.0, -40.0, -35.0, -11.0],
    })
    result = dose_response_spearman(table, dose="cum_dose_gy", response="sum_change_pct")
    dose = np.array([12.0, 30.0, 7.0, 55.0, 21.0, 80.0, 41.0])
    change = np.array([-5.0, -22.0, 8.0, -30.0, -2.0, -35.0, -11.0])
    rho = np.corrcoef(dose.argsort().argsort(), change.argsort().argsort())[0, 1]
    t = rho * math.sqrt((dose.size - 2) / (1.0 - rho ** 2))
    p_value = 2.0 * stats.t.sf(abs(t), dose.size - 2)
    assert (result.rho, result.p_value) == pytest.approx((rho, p_value), rel=1e-9)
    assert (result.n, result.level, result.dose, result.response) == (7, "lesion", "cum_dose_gy", "sum_change_pct")
    with pytest.raises(ValueError, match=r"^level must be 'lesion' or 'patient', got 'lobe'$"):
        dose_response_spearman(table, level="lobe")
    with pytest.raises(ValueError, match=r"^lesion table lacks column\(s\) \['tumour_dose_gy'\]"):
        dose_response_spearman(table, response="sum_change_pct")


def test_mixed_model_simplifies_random_effects_that_cannot_be_fitted(cohort_ia_130, monkeypatch, caplog):
    from luprrt.cohort import trial

    fit_route_model = trial._fit_route_mixed_model

    def singular_with_lesion_term(work, cycles, lesion_random_effect, cycle_values, route_random_slope=False):
        if lesion_random_effect:
            raise np.linalg.LinAlgError("Singular matrix")
        return fit_route_model(work, cycles, lesion_random_effect, cycle_values, route_random_slope)

    monkeypatch.setattr(trial, "_fit_route_mixed_model", singular_with_lesion_term)
    result = mixed_model_over_cycles(cohort_ia_130)
    assert result.random_effects == "patient intercept + patient IA slope"
    assert np.isnan(result.variance_lesion_log) and result.variance_ia_slope_log >= 0.0
    assert "Singular matrix" in caplog.text
    assert result.per_cycle.loc[0, "ci_low_ratio"] < 1.3 < result.per_cycle.loc[0, "ci_high_ratio"]


def test_size_matching_pairs_the_nearest_volumes_within_the_ratio():
    table = pd.DataFrame({
        "patient_id": ["A"] * 5 + ["B"] * 2,
        "cycle": [1] * 7,
        "route": ["IA", "IA", "IV", "IV", "IV", "IA", "IA"],
        "lesion_id": ["a1", "a2", "a3", "a4", "a5", "b1", "b2"],
        "volume_ml": [10.0, 2.0, 9.0, 30.0, 3.9, 5.0, 6.0],
    })
    matched = size_matched_lesions(table, cycle=1, max_volume_ratio=2.0)
    # A: 10-9 (ratio 1.11) first, then 2-3.9 (1.95); 30 mL has no partner within 2x. B has no IV lesion.
    assert sorted(zip(matched["lesion_id"], matched["match"], strict=True)) == [
        ("a1", 1), ("a2", 2), ("a3", 1), ("a5", 2)]
    assert len(size_matched_lesions(table, cycle=1, max_volume_ratio=1.5)) == 2
    with pytest.raises(ValueError, match="max_volume_ratio must be >= 1"):
        size_matched_lesions(table, max_volume_ratio=0.5)


def test_size_matching_keeps_a_pair_at_exactly_the_ratio_and_lists_patients_in_order():
    """'At most max_volume_ratio': 4 mL against 2 mL is a pair at ratio 2; patients come out sorted."""
    table = pd.DataFrame({
        "patient_id": ["P2", "P2", "P1", "P1"], "cycle": [1] * 4, "route": ["IA", "IV", "IV", "IA"],
        "lesion_id": ["c", "d", "b", "a"], "volume_ml": [4.0, 2.0, 8.0, 8.5],
    })
    matched = size_matched_lesions(table, cycle=1, max_volume_ratio=2.0)
    assert matched["lesion_id"].tolist() == ["a", "b", "c", "d"]
    assert matched["match"].tolist() == [1, 1, 1, 1]
