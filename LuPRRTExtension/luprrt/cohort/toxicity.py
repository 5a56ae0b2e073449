"""Dose-toxicity analyses: CTCAE grades per patient and cycle, kidney BED vs eGFR, marrow and liver doses.

Inputs are tidy tables: laboratory values (one row per patient and sampling date, the columns
of :mod:`luprrt.clinical.labs`), the graded long table from :func:`luprrt.clinical.grade_labs`,
per-cycle administration dates and per-cycle organ doses (Gy) from the dosimetry. Patients'
repeated measurements are correlated, so every model has patient random effects
(statsmodels MixedLM, REML, Wald intervals).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._mixed import fit_patient_model
from ._tables import require_columns

HAEMATOLOGICAL_TESTS = ("platelets_1e9_per_l", "neutrophils_1e9_per_l", "haemoglobin_g_per_l",
                        "lymphocytes_1e9_per_l")
RENAL_TESTS = ("creatinine_umol_per_l", "egfr_ml_per_min_1_73m2")
# Withholding rules for the next cycle (protocol parameters, adjustable): a haematological
# adverse event of grade >= 3 (lymphopenia excluded: it is expected and rarely dose-limiting) or a
# renal one of grade >= 2 since the previous cycle, or a cumulative organ dose over its limit
# (kidney BED 40 Gy, 28 Gy with risk factors; red marrow 2 Gy: Bodei et al., Eur J Nucl Med Mol
# Imaging 2008;35:1847).
STOP_RULES = {"haematological_grade": 3, "renal_grade": 2,
              "haematological_tests": ("platelets_1e9_per_l", "neutrophils_1e9_per_l", "haemoglobin_g_per_l")}


@dataclass(frozen=True)
class SlopeEstimate:
    """A fixed-effect slope from a mixed model with its Wald interval and p-value."""

    quantity: str
    slope: float
    ci_low: float
    ci_high: float
    p_value: float
    unit: str
    n_patients: int
    n_observations: int
    method: str
    truth: float | None = None

    def to_frame(self) -> pd.DataFrame:
        """One-row table (units in the column names via ``unit``)."""
        return pd.DataFrame({"quantity": [self.quantity], "slope": [self.slope], "ci_low": [self.ci_low],
                             "ci_high": [self.ci_high], "p_value": [self.p_value], "unit": [self.unit],
                             "n_patients": [self.n_patients], "n_observations": [self.n_observations]})


def cycle_of_date(dates: pd.Series, patient_ids: pd.Series, administrations: pd.DataFrame) -> np.ndarray:
    """Cycle each sampling date belongs to: the last cycle given on or before it (0 = before treatment).

    ``administrations`` has ``patient_id``, ``cycle`` and ``date`` (of the administration).
    """
    require_columns(administrations, ("patient_id", "cycle", "date"), "administration table")
    left = pd.DataFrame({"patient_id": np.asarray(patient_ids, dtype=object),
                         "date": pd.to_datetime(np.asarray(dates)).astype("datetime64[ns]"),
                         "order": np.arange(len(dates))}).sort_values("date", kind="stable")
    right = pd.DataFrame({"patient_id": administrations["patient_id"].to_numpy(dtype=object),
                          "date": pd.to_datetime(administrations["date"]).astype("datetime64[ns]"),
                          "cycle": administrations["cycle"].to_numpy(dtype=float)}).sort_values("date")
    # the last administration on or before each date, per patient (one sorted pass)
    merged = pd.merge_asof(left, right, on="date", by="patient_id", direction="backward")
    return merged.sort_values("order")["cycle"].fillna(0).to_numpy(dtype=int)


def worst_grades(graded: pd.DataFrame, administrations: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Worst CTCAE grade per patient and test over treatment, and per patient, cycle and test.

    Parameters
    ----------
    graded : table of :class:`luprrt.clinical.LabValue` rows (``patient_id``, ``date``, ``test``, ``grade``)
    administrations : ``patient_id``, ``cycle``, ``date``

    Returns
    -------
    (per_patient, per_cycle)
        ``per_patient``: patient_id, test, worst_grade (values from the first cycle on);
        ``per_cycle``: patient_id, cycle, test, worst_grade.
    """
    require_columns(graded, ("patient_id", "date", "test", "grade"), "graded labs")
    work = graded.assign(cycle=cycle_of_date(graded["date"], graded["patient_id"], administrations))
    on_treatment = work[work["cycle"] >= 1]
    per_cycle = (on_treatment.groupby(["patient_id", "cycle", "test"])["grade"].max()
                 .rename("worst_grade").reset_index())
    per_patient = on_treatment.groupby(["patient_id", "test"])["grade"].max().rename("worst_grade").reset_index()
    return per_patient, per_cycle


def grade_counts(per_patient: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Patients by worst grade (0-4) per test: one row per test, columns ``grade_0`` .. ``grade_4`` (count)."""
    table = pd.crosstab(per_patient["test"], per_patient["worst_grade"]).reindex(columns=range(5), fill_value=0)
    table.columns = [f"n_grade_{g}" for g in table.columns]
    table = table.reset_index()
    table.insert(1, "adverse_event", table["test"].map(names).fillna(table["test"]))
    return table.drop(columns="test")


def _mixed(formula: str, data: pd.DataFrame, groups: str, re_formula: str | None, term: str, confidence: float):
    """Slope, CI and p of ``term`` from :func:`luprrt.cohort._mixed.fit_patient_model`."""
    model = fit_patient_model(formula, data, groups, re_formula)
    return (*model.wald(term, confidence), model)


def egfr_slope_vs_kidney_bed(labs: pd.DataFrame, kidney_bed: pd.DataFrame, administrations: pd.DataFrame,
                             confidence: float = 0.95) -> SlopeEstimate:
    """Change of the eGFR slope over time per Gy of cumulative kidney BED (mixed model).

    Fits ``eGFR ~ years + years:BED_total`` with a random intercept and a random time slope
    per patient, where ``years`` is the time since the patient's first cycle and
    ``BED_total`` the patient's cumulative kidney BED over all cycles (Gy). The
    ``years:BED_total`` coefficient is the eGFR slope change per Gy (mL/min/1.73 m² per year per Gy).

    Parameters
    ----------
    labs : ``patient_id``, ``date``, ``egfr_ml_per_min_1_73m2``
    kidney_bed : ``patient_id``, ``cumulative_kidney_bed_gy`` (one row per patient)
    administrations : ``patient_id``, ``cycle``, ``date``
    """
    require_columns(labs, ("patient_id", "date", "egfr_ml_per_min_1_73m2"), "labs")
    require_columns(kidney_bed, ("patient_id", "cumulative_kidney_bed_gy"), "kidney BED table")
    first = administrations.groupby("patient_id")["date"].min().map(pd.Timestamp)
    data = labs.dropna(subset=["egfr_ml_per_min_1_73m2"]).merge(kidney_bed, on="patient_id")
    data = data.assign(years=(pd.to_datetime(data["date"]) - data["patient_id"].map(first)).dt.days / 365.25,
                       egfr=data["egfr_ml_per_min_1_73m2"], bed=data["cumulative_kidney_bed_gy"])
    data = data.dropna(subset=["years", "bed"])
    if data["patient_id"].nunique() < 3:
        raise ValueError(f"eGFR vs kidney BED needs >= 3 patients with eGFR and BED, got {data['patient_id'].nunique()}")
    slope, low, high, p, _ = _mixed("egfr ~ years + years:bed", data, "patient_id", "~years", "years:bed",
                                    confidence)
    return SlopeEstimate("eGFR slope per Gy of cumulative kidney BED", slope, low, high, p,
                         "mL/min/1.73 m² per year per Gy", int(data["patient_id"].nunique()), len(data),
                         "MixedLM eGFR ~ years + years:BED, random intercept and time slope per patient, REML")


def cycle_nadirs(labs: pd.DataFrame, administrations: pd.DataFrame, test: str, lowest: bool = True) -> pd.DataFrame:
    """Per patient and cycle: the pre-cycle value, the nadir (or peak) before the next cycle, their log ratio.

    The pre-cycle value is the last sample on or before the administration; the nadir the
    lowest (``lowest``) or highest value after it and before the next administration.
    """
    require_columns(labs, ("patient_id", "date", test), "labs")
    data = labs.dropna(subset=[test])[["patient_id", "date", test]].copy()
    data["date"] = pd.to_datetime(data["date"])
    rows = []
    for (patient, cycle), given in administrations.groupby(["patient_id", "cycle"]):
        start = pd.Timestamp(given["date"].iloc[0])
        later = administrations[(administrations["patient_id"] == patient) & (administrations["cycle"] > cycle)]
        end = pd.to_datetime(later["date"]).min() if len(later) else pd.Timestamp.max
        own = data[data["patient_id"] == patient]
        before = own[own["date"] <= start]
        after = own[(own["date"] > start) & (own["date"] < end)]
        if before.empty or after.empty:
            continue
        pre = float(before.sort_values("date")[test].iloc[-1])
        extreme = float(after[test].min() if lowest else after[test].max())
        rows.append({"patient_id": patient, "cycle": int(cycle), f"pre_cycle_{test}": pre,
                     f"{'nadir' if lowest else 'peak'}_{test}": extreme, "log_ratio": float(np.log(extreme / pre))})
    return pd.DataFrame(rows)


def log_change_vs_dose(changes: pd.DataFrame, doses: pd.DataFrame, dose: str, quantity: str,
                       confidence: float = 0.95) -> SlopeEstimate:
    """Slope of ln(nadir / pre-cycle value) on the cycle's organ dose (per Gy), patient random intercept.

    ``changes`` from :func:`cycle_nadirs`; ``doses`` with ``patient_id``, ``cycle`` and ``dose`` (Gy).
    """
    require_columns(doses, ("patient_id", "cycle", dose), "dose table")
    data = changes.merge(doses[["patient_id", "cycle", dose]], on=["patient_id", "cycle"]).dropna(
        subset=["log_ratio", dose]).rename(columns={dose: "dose"})
    if data["patient_id"].nunique() < 3:
        raise ValueError(f"{quantity} needs >= 3 patients with labs and {dose}, got {data['patient_id'].nunique()}")
    slope, low, high, p, _ = _mixed("log_ratio ~ dose", data, "patient_id", None, "dose", confidence)
    return SlopeEstimate(quantity, slope, low, high, p, "ln(ratio) per Gy", int(data["patient_id"].nunique()),
                         len(data), f"MixedLM ln(value / pre-cycle value) ~ {dose}, patient random intercept, REML")


def stopped_cycles(graded: pd.DataFrame, administrations: pd.DataFrame, limits: pd.DataFrame,
                   risk_factors: dict[str, bool] | None = None, rules: dict | None = None) -> pd.DataFrame:
    """Per patient: the first cycle the toxicity and organ-dose thresholds would have withheld.

    A cycle k >= 2 is withheld when, since cycle k-1, a haematological adverse event reached
    ``haematological_grade`` or a renal one ``renal_grade`` (CTCAE v5.0), or when the cumulative
    kidney BED or marrow dose after cycle k-1 exceeds its limit (the ``limits`` table of the
    dosimetry: ``patient_id``, ``after_cycle``, ``quantity``, ``value_gy``, ``limit_gy``;
    kidney BED 28 Gy for patients with risk factors).

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``n_cycles_given``, ``n_cycles_allowed``, ``withheld_cycle`` (NaN when none),
        ``reason``.
    """
    rules = {**STOP_RULES, **(rules or {})}
    risk_factors = risk_factors or {}
    work = graded.assign(cycle=cycle_of_date(graded["date"], graded["patient_id"], administrations))
    rows = []
    for patient, given in administrations.groupby("patient_id"):
        n_given = int(given["cycle"].max())
        withheld, reason = None, ""
        for k in range(2, n_given + 1):
            since = work[(work["patient_id"] == patient) & (work["cycle"] == k - 1)]
            haem = since[since["test"].isin(rules["haematological_tests"])
                         & (since["grade"] >= rules["haematological_grade"])]
            renal = since[since["test"].isin(RENAL_TESTS) & (since["grade"] >= rules["renal_grade"])]
            doses = limits[(limits["patient_id"] == patient) & (limits["after_cycle"] == k - 1)]
            over = []
            for _, row in doses.iterrows():
                limit = row["limit_gy"]
                if row["quantity"] == "kidney_bed_gy" and risk_factors.get(patient):
                    limit = 28.0
                if row["quantity"] in ("kidney_bed_gy", "marrow_dose_gy") and row["value_gy"] > limit:
                    over.append(f"{row['quantity']} {row['value_gy']:.1f} > {limit:g} Gy")
            causes = ([f"{t} grade {g}" for t, g in zip(haem["test"], haem["grade"], strict=True)]
                      + [f"{t} grade {g}" for t, g in zip(renal["test"], renal["grade"], strict=True)] + over)
            if causes:
                withheld, reason = k, "; ".join(sorted(set(causes)))
                break
        rows.append({"patient_id": patient, "n_cycles_given": n_given,
                     "n_cycles_allowed": (withheld - 1) if withheld else n_given,
                     "withheld_cycle": withheld, "reason": reason or "none"})
    return pd.DataFrame(rows)
