"""Tumour response by route (IA lobe vs IV lobe of the same patients), dose-response and T/N variance components.

The IA-vs-IV study's design is within-patient: each patient has lesions in both lobes, so
the lobes are compared within patients. A lesion's response is its log diameter ratio
ln(d_last / d_baseline) (longest axial diameter at the last follow-up over baseline); per
lobe, the sum of target diameters is classified with the RECIST 1.1 thresholds
(Eisenhauer et al., Eur J Cancer 2009;45:228: PR <= -30 %, PD >= +20 % and >= 5 mm, CR all
gone). Models have a random intercept per patient (statsmodels MixedLM, REML, Wald CI).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ._mixed import fit_patient_model
from ._tables import log_of_positive, require_columns

PARTIAL_RESPONSE_PCT = -30.0
PROGRESSION_PCT = 20.0
PROGRESSION_MIN_MM = 5.0
# RECIST 1.1 measurability: longest diameter >= 10 mm on CT with slices <= 5 mm.
MEASURABLE_MM = 10.0


@dataclass(frozen=True)
class Effect:
    """One fixed effect of a mixed model: estimate, Wald interval, p-value, what it means."""

    name: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    scale: str
    n_patients: int
    n_lesions: int
    method: str

    def to_frame(self) -> pd.DataFrame:
        """One-row table."""
        return pd.DataFrame({"effect": [self.name], "estimate": [self.estimate], "ci_low": [self.ci_low],
                             "ci_high": [self.ci_high], "p_value": [self.p_value], "scale": [self.scale],
                             "n_patients": [self.n_patients], "n_lesions": [self.n_lesions]})


def _effect(model, term: str, name: str, scale: str, data: pd.DataFrame, method: str, confidence: float) -> Effect:
    value, low, high, p = model.wald(term, confidence)
    return Effect(name, value, low, high, p, scale, int(data["patient_id"].nunique()), len(data),
                  f"{method}; {model.method}")


def lesion_diameter_ratios(course: pd.DataFrame, routes: pd.DataFrame, min_baseline_mm: float = MEASURABLE_MM,
                           too_small_mm: float = 5.0) -> pd.DataFrame:
    """Per lesion: baseline and last follow-up longest diameter, their log ratio and % change.

    Parameters
    ----------
    course : lesion course (``patient_id``, ``lesion_id``, ``followup_date``,
        ``baseline_longest_diameter_mm``, ``followup_longest_diameter_mm``)
    routes : ``patient_id``, ``lesion_id``, ``route`` (one row per lesion)
    min_baseline_mm : lesions smaller at baseline are not measurable (RECIST 1.1) and left out
    too_small_mm : a lesion that disappeared or fell below this is given this diameter
        (RECIST's default for "too small to measure"), so its log ratio stays finite
    """
    require_columns(course, ("patient_id", "lesion_id", "followup_date", "baseline_longest_diameter_mm",
                             "followup_longest_diameter_mm"), "lesion course")
    last = course.sort_values("followup_date").groupby(["patient_id", "lesion_id"], as_index=False).tail(1)
    data = last.merge(routes.drop_duplicates(["patient_id", "lesion_id"])[["patient_id", "lesion_id", "route"]],
                      on=["patient_id", "lesion_id"])
    data = data[data["baseline_longest_diameter_mm"] >= min_baseline_mm].copy()
    followup = data["followup_longest_diameter_mm"].fillna(0.0).clip(lower=too_small_mm)
    data["last_longest_diameter_mm"] = followup
    data["log_diameter_ratio"] = np.log(followup / data["baseline_longest_diameter_mm"])
    data["diameter_change_pct"] = 100.0 * (followup / data["baseline_longest_diameter_mm"] - 1.0)
    return data[["patient_id", "lesion_id", "route", "baseline_longest_diameter_mm", "last_longest_diameter_mm",
                 "log_diameter_ratio", "diameter_change_pct"]].reset_index(drop=True)


def route_effect_on_diameter(ratios: pd.DataFrame, confidence: float = 0.95) -> Effect:
    """IA vs IV difference of ln(diameter ratio), paired within patients (patient random intercept).

    exp(estimate) is the ratio of the geometric-mean diameter ratios IA/IV: below 1 when the
    IA lobe's lesions shrink more.
    """
    require_columns(ratios, ("patient_id", "route", "log_diameter_ratio"), "diameter ratios")
    both = ratios.groupby("patient_id")["route"].nunique()
    data = ratios[ratios["patient_id"].isin(both[both == 2].index)].assign(
        ia=lambda t: (t["route"] == "IA").astype(float))
    if data["patient_id"].nunique() < 2:
        raise ValueError("the IA-vs-IV response comparison needs >= 2 patients with lesions in both lobes")
    fit = fit_patient_model("log_diameter_ratio ~ ia", data)
    return _effect(fit, "ia", "IA vs IV: difference of ln(last / baseline diameter)", "ln ratio", data,
                   "MixedLM ln(d_last/d_0) ~ route, patient random intercept, REML", confidence)


def dose_response_by_route(ratios: pd.DataFrame, doses: pd.DataFrame, dose: str = "cumulative_tumour_dose_gy",
                           confidence: float = 0.95) -> tuple[Effect, Effect]:
    """Slope of ln(diameter ratio) on ln(cumulative lesion dose), with route and baseline size as covariates.

    ``ln(d_last/d_0) ~ ln(D_cum) + route + ln(d_0)``, patient random intercept. The baseline
    size term absorbs size-dependent bias of the measured dose (partial volume). Returns the
    dose slope (ln ratio per unit ln dose: a doubling of the dose multiplies the diameter by
    2**slope) and the route effect at equal dose.
    """
    require_columns(doses, ("patient_id", "lesion_id", dose), "lesion dose table")
    data = ratios.merge(doses[["patient_id", "lesion_id", dose]].drop_duplicates(["patient_id", "lesion_id"]),
                        on=["patient_id", "lesion_id"]).dropna(subset=[dose])
    data = data.assign(log_dose=log_of_positive(data[dose], dose), ia=(data["route"] == "IA").astype(float),
                       log_size=np.log(data["baseline_longest_diameter_mm"]))
    if data["patient_id"].nunique() < 3:
        raise ValueError("the dose-response needs >= 3 patients with lesion doses and diameters")
    fit = fit_patient_model("log_diameter_ratio ~ log_dose + ia + log_size", data)
    method = "MixedLM ln(d_last/d_0) ~ ln(D_cum) + route + ln(d_0), patient random intercept, REML"
    return (_effect(fit, "log_dose", "ln(diameter ratio) per ln(cumulative dose)", "ln ratio per ln Gy", data,
                    method, confidence),
            _effect(fit, "ia", "IA vs IV at equal dose", "ln ratio", data, method, confidence))


def recist_category(baseline_sum_mm, last_sum_mm, nadir_sum_mm) -> np.ndarray:
    """RECIST 1.1 target response of sums of diameters: CR, PR, PD or SD."""
    base, last, nadir = (np.asarray(v, dtype=float) for v in (baseline_sum_mm, last_sum_mm, nadir_sum_mm))
    change = 100.0 * (last / base - 1.0)
    growth = 100.0 * (last / np.where(nadir > 0, nadir, np.nan) - 1.0)
    return np.select([last <= 0.0, (growth >= PROGRESSION_PCT) & (last - nadir >= PROGRESSION_MIN_MM),
                      change <= PARTIAL_RESPONSE_PCT], ["CR", "PD", "PR"], default="SD").astype(object)


def lobe_response(course: pd.DataFrame, routes: pd.DataFrame, max_targets_per_lobe: int = 2) -> pd.DataFrame:
    """Per patient and lobe: sum of target diameters over time and the lobe's RECIST response.

    Targets are the ``max_targets_per_lobe`` largest measurable lesions of the lobe at baseline
    (RECIST 1.1 allows 2 per organ); the response uses the last visit against baseline and the
    nadir. Returns patient_id, route, n_targets, baseline_sum_mm, last_sum_mm, sum_change_pct, response.
    """
    require_columns(course, ("patient_id", "lesion_id", "followup_date", "baseline_longest_diameter_mm",
                             "followup_longest_diameter_mm"), "lesion course")
    data = course.merge(routes.drop_duplicates(["patient_id", "lesion_id"])[["patient_id", "lesion_id", "route"]],
                        on=["patient_id", "lesion_id"])
    data = data[data["baseline_longest_diameter_mm"] >= MEASURABLE_MM]
    rows = []
    for (patient, route), lobe in data.groupby(["patient_id", "route"]):
        sizes = lobe.drop_duplicates("lesion_id").nlargest(max_targets_per_lobe, "baseline_longest_diameter_mm")
        targets = lobe[lobe["lesion_id"].isin(sizes["lesion_id"])]
        sums = targets.assign(d=targets["followup_longest_diameter_mm"].fillna(0.0)).groupby("followup_date")["d"].sum()
        base = float(sizes["baseline_longest_diameter_mm"].sum())
        last = float(sums.iloc[-1])
        nadir = float(min(base, sums.min()))
        rows.append({"patient_id": patient, "route": route, "n_targets": len(sizes), "baseline_sum_mm": base,
                     "last_sum_mm": last, "sum_change_pct": 100.0 * (last / base - 1.0),
                     "response": str(recist_category(base, last, nadir))})
    return pd.DataFrame(rows)


def paired_lobe_change(lobes: pd.DataFrame) -> dict:
    """IA minus IV per-lobe % change of the sum of target diameters: mean, t CI, paired t and Wilcoxon p."""
    wide = lobes.pivot(index="patient_id", columns="route", values="sum_change_pct").dropna()
    if len(wide) < 2:
        raise ValueError("per-lobe response needs >= 2 patients with targets in both lobes")
    diff = (wide["IA"] - wide["IV"]).to_numpy()
    mean, se = diff.mean(), diff.std(ddof=1) / np.sqrt(len(diff))
    q = stats.t.ppf(0.975, len(diff) - 1)
    return {"n_patients": len(diff), "mean_difference_pct": float(mean), "ci_low_pct": float(mean - q * se),
            "ci_high_pct": float(mean + q * se), "p_value": float(stats.ttest_1samp(diff, 0.0).pvalue),
            "p_value_wilcoxon": float(stats.wilcoxon(diff).pvalue) if np.any(diff != 0) else float("nan")}


def tn_variance_components(tn: pd.DataFrame, value: str = "tn_mean") -> pd.DataFrame:
    """Variance components of log T/N per cycle (patient, lesion, residual) and the intraclass correlations.

    Per cycle, ``log T/N ~ route + C(hours)`` with a random patient intercept and a lesion
    variance component; the SPECT time points of the cycle are the lesion's replicates, so the
    residual is the within-lesion scatter left by the mean time course. ICC(patient) =
    s2_patient / total (two lesions of one patient alike); ICC(lesion) = (s2_patient + s2_lesion)
    / total (one lesion's replicates alike).
    """
    require_columns(tn, ("patient_id", "lesion_id", "cycle", "route", "hours_post_injection", value), "T/N table")
    rows = []
    for cycle, part in tn.groupby("cycle"):
        data = part.assign(log_value=log_of_positive(part[value], value),
                           lesion=part["patient_id"].astype(str) + "/" + part["lesion_id"].astype(str),
                           hours=part["hours_post_injection"].astype(str))
        terms = "route + C(hours)" if data["hours"].nunique() > 1 else "route"
        fit = fit_patient_model(f"log_value ~ {terms}", data, vc_formula={"lesion": "0 + C(lesion)"}).fit
        if not hasattr(fit, "vcomp"):
            raise ValueError(f"cycle {cycle}: the variance components could not be estimated (singular fit)")
        patient, lesion, residual = float(fit.cov_re.iloc[0, 0]), float(np.asarray(fit.vcomp)[0]), float(fit.scale)
        total = patient + lesion + residual
        rows.append({"cycle": int(cycle), "n_patients": int(data["patient_id"].nunique()),
                     "n_lesions": int(data["lesion"].nunique()), "n_observations": len(data),
                     "variance_patient": patient, "variance_lesion": lesion, "variance_residual": residual,
                     "icc_patient": patient / total, "icc_lesion": (patient + lesion) / total})
    return pd.DataFrame(rows)


def trial_primary_endpoint(lesions: pd.DataFrame, min_diameter_mm: float = 30.0, max_lesions_per_lobe: int = 3,
                           value: str = "tn_mean", cycle: int = 1):
    """The IA-vs-IV trial's primary endpoint by its own definition (Ebbers et al., EJNMMI 2024).

    Up to ``max_lesions_per_lobe`` target lesions larger than ``min_diameter_mm`` per lobe (the
    largest at baseline), lesion T/N of the mean uptake on the 24 h SPECT/CT after cycle 1, IA
    lobe vs IV lobe of the same patients: :func:`luprrt.cohort.paired_ia_iv` on those lesions.
    ``lesions`` needs ``baseline_longest_diameter_mm`` besides the lesion-table columns.
    """
    from .trial import paired_ia_iv

    require_columns(lesions, ("patient_id", "lesion_id", "route", "cycle", value, "baseline_longest_diameter_mm"),
                    "lesion table")
    rows = lesions[(lesions["cycle"] == cycle) & (lesions["baseline_longest_diameter_mm"] > min_diameter_mm)]
    rows = (rows.sort_values("baseline_longest_diameter_mm", ascending=False)
            .groupby(["patient_id", "route"]).head(max_lesions_per_lobe))
    if rows.empty:
        raise ValueError(f"no lesion larger than {min_diameter_mm:g} mm at baseline: the trial's primary endpoint "
                         "cannot be computed")
    return paired_ia_iv(rows, cycle=cycle, value=value)
