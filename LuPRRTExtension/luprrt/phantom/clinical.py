"""Synthetic clinical data of the phantom patient: baseline characteristics and laboratory values.

The laboratory values follow the patient's TRUE organ doses by the relations of
:data:`TOXICITY_MODEL`, so a dose-toxicity analysis can be checked against them:

* kidney: the eGFR falls linearly in time at a rate proportional to the patient's
  cumulative kidney BED over all cycles, eGFR(t) = eGFR0 - kappa BED_total t (t in years
  after the first cycle) + noise; creatinine follows from the eGFR by inverting the
  CKD-EPI 2021 equation (Inker et al., N Engl J Med 2021;385:1737-1749);
* bone marrow: 4 weeks after each cycle (the usual nadir) platelets and lymphocytes are
  their baseline x exp(-a D_marrow) with D_marrow that cycle's red-marrow dose, and recover
  by the next cycle to baseline x exp(-a_residual x cumulative marrow dose);
* liver: ALT and AST at the nadir visit are baseline x exp(b D_liver) with D_liver the
  non-tumour liver dose of the intra-arterially treated lobe in that cycle.

Kidney and liver doses and the kidney BED are the closed-form truth of the phantom's kinetics
(local deposition of the electron energy in unit-density tissue; kidney BED with alpha/beta
2.6 Gy and repair half-time 2.8 h, Bodei et al., Eur J Nucl Med Mol Imaging 2008;35:1847).
The marrow dose is the blood-based red-marrow dose of the phantom's blood kinetics (EANM
guideline, Hindorf et al., Eur J Nucl Med Mol Imaging 2010;37:1238), the quantity clinical
marrow dosimetry measures and relates to haematological toxicity. Random draws use their own seeded streams, so adding clinical data moves no
image or truth of the patient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from ..physics import LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G

# Relations of the synthetic toxicity (illustrative magnitudes of the kind reported after
# 177Lu-DOTATATE: eGFR loss of a few mL/min/1.73 m2 per year, transient grade 1-2 lymphopenia
# and thrombocytopenia, small transaminase rises).
TOXICITY_MODEL = {
    "egfr_slope_per_year_per_gy_bed": -0.4,  # kappa: d eGFR / dt per Gy of cumulative kidney BED
    "egfr_noise_sd": 2.0,  # mL/min/1.73 m2
    "platelet_nadir_log_per_gy": -1.0,  # a: ln(nadir / baseline) per Gy of marrow dose in the cycle
    "lymphocyte_nadir_log_per_gy": -2.0,
    "haemoglobin_nadir_log_per_gy": -0.2,
    "neutrophil_nadir_log_per_gy": -0.6,
    "residual_log_per_gy_cumulative": -0.15,  # incomplete recovery by the next cycle
    "count_noise_sd_log": 0.05,
    "alt_log_per_gy_ia_lobe": 0.12,  # b: ln(ALT / baseline) per Gy to the IA lobe's non-tumour liver
    "ast_log_per_gy_ia_lobe": 0.08,
    "chemistry_noise_sd_log": 0.06,
    "nadir_days_after_cycle": 28,
    "kidney_alpha_beta_gy": 2.6,
    "kidney_repair_half_time_h": 2.8,
}
# Population of baseline characteristics (metastatic well-differentiated NET treated with PRRT).
PRIMARY_SITES = {"small intestine": 0.5, "pancreas": 0.3, "unknown primary": 0.1, "lung": 0.05, "rectum": 0.05}
WHO_GRADES = {"G1": 0.4, "G2": 0.55, "G3": 0.05}
KI67_RANGE_PCT = {"G1": (1.0, 2.9), "G2": (3.0, 20.0), "G3": (21.0, 40.0)}
PRIOR_THERAPIES = {"somatostatin analogue": 0.9, "surgery": 0.4, "everolimus": 0.15,
                   "capecitabine-temozolomide": 0.1, "liver-directed therapy": 0.1}


@dataclass(frozen=True)
class OrganDoseTruth:
    """True organ doses of one cycle (Gy): kidneys, red marrow, IA-lobe non-tumour liver; kidney BED."""

    cycle: int
    kidney_dose_gy: float
    kidney_effective_half_life_h: float
    kidney_bed_gy: float
    marrow_dose_gy: float
    ia_lobe_liver_dose_gy: float


def curve_dose_gy(curve) -> float:
    """Mean absorbed dose (Gy) of a concentration curve, local deposition in unit-density tissue."""
    return curve.time_integral_bq_h_per_ml() * 1e-6 * LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G


def kidney_bed_gy(dose_gy: float, effective_half_life_h: float) -> float:
    """Kidney BED of one cycle, D (1 + D T_rep / ((T_rep + T_eff) alpha/beta)) (Bodei et al. 2008)."""
    m = TOXICITY_MODEL
    t_rep, alpha_beta = m["kidney_repair_half_time_h"], m["kidney_alpha_beta_gy"]
    return dose_gy * (1.0 + dose_gy * t_rep / ((t_rep + effective_half_life_h) * alpha_beta))


def organ_dose_truth(cycle: int, kinetics: dict, ia_side: str, marrow_dose_gy: float) -> OrganDoseTruth:
    """True organ doses of a cycle from its kinetic curves (kidney clearance is mono-exponential).

    ``marrow_dose_gy`` is the cycle's true blood-based red-marrow dose (Gy,
    :func:`.blood_sampling.marrow_dose_truth`): the marrow dose as clinical dosimetry defines it.
    """
    kidney = kinetics["kidney_right"]
    t_eff = math.log(2.0) / min(kidney.rates_per_h)
    dose = curve_dose_gy(kidney)
    return OrganDoseTruth(cycle, dose, float(t_eff), float(kidney_bed_gy(dose, t_eff)), float(marrow_dose_gy),
                          curve_dose_gy(kinetics[f"nontumour_{ia_side}"]))


def draw_characteristics(rng: np.random.Generator, patient_id: str) -> dict:
    """Age, sex, weight, primary site, WHO grade, Ki-67 and prior therapies of a synthetic NET patient."""
    sex = "F" if rng.random() < 0.5 else "M"
    grade = str(rng.choice(list(WHO_GRADES), p=list(WHO_GRADES.values())))
    therapies = [t for t, share in PRIOR_THERAPIES.items() if rng.random() < share]
    return {"patient_id": patient_id, "age_years": int(np.clip(round(rng.normal(62.0, 9.0)), 35, 85)),
            "sex": sex, "weight_kg": round(float(np.clip(rng.normal(80.0 if sex == "M" else 68.0, 12.0),
                                                         45.0, 140.0)), 1),
            "primary_site": str(rng.choice(list(PRIMARY_SITES), p=list(PRIMARY_SITES.values()))),
            "grade": grade, "ki67_pct": round(float(rng.uniform(*KI67_RANGE_PCT[grade])), 1),
            "prior_therapies": ";".join(therapies), "kidney_risk_factors": "yes" if rng.random() < 0.25 else "no"}


def creatinine_umol_per_l(egfr: float, age_years: float, sex: str) -> float:
    """Serum creatinine (µmol/L) giving ``egfr`` (mL/min/1.73 m2) by the CKD-EPI 2021 equation.

    eGFR = 142 min(S/k, 1)^alpha max(S/k, 1)^-1.200 0.9938^age (x 1.012 female), S in mg/dL,
    k 0.7 (F) / 0.9 (M), alpha -0.241 (F) / -0.302 (M); 1 mg/dL = 88.4 µmol/L.
    """
    k, alpha, factor = (0.7, -0.241, 1.012) if sex == "F" else (0.9, -0.302, 1.0)
    at_k = 142.0 * 0.9938**age_years * factor  # eGFR when S = k
    exponent = alpha if egfr > at_k else -1.200
    return 88.4 * k * (egfr / at_k) ** (1.0 / exponent)


def synthetic_labs(rng: np.random.Generator, patient_id: str, characteristics: dict, doses: list[OrganDoseTruth],
                   cycle_dates: list[date], followup_dates: list[date]) -> list[dict]:
    """Laboratory rows (one per sampling date) following :data:`TOXICITY_MODEL` from the true doses.

    Sampling: a week before the first cycle (baseline), the day before every later cycle, at
    the nadir (28 days after every cycle) and at every follow-up visit.
    """
    m = TOXICITY_MODEL
    sex, age = characteristics["sex"], characteristics["age_years"]
    base = {"egfr": float(np.clip(rng.normal(85.0, 12.0), 62.0, 118.0)),
            "haemoglobin": float(rng.normal(138.0 if sex == "M" else 128.0, 8.0)),
            "platelets": float(np.clip(rng.normal(250.0, 45.0), 170.0, 380.0)),
            "neutrophils": float(np.clip(rng.normal(4.0, 0.9), 2.0, 7.0)),
            "lymphocytes": float(np.clip(rng.normal(1.7, 0.35), 1.1, 3.0)),
            "alt": float(25.0 * math.exp(rng.normal(0.0, 0.25))), "ast": float(27.0 * math.exp(rng.normal(0.0, 0.2))),
            "bilirubin": float(9.0 * math.exp(rng.normal(0.0, 0.25))), "albumin": float(rng.normal(41.0, 2.5))}
    bed_total = sum(d.kidney_bed_gy for d in doses)
    start = cycle_dates[0]
    visits = [(start - timedelta(days=7), None, 0)]
    for k, day in enumerate(cycle_dates):
        if k > 0:
            visits.append((day - timedelta(days=1), None, k))
        visits.append((day + timedelta(days=m["nadir_days_after_cycle"]), k, k + 1))
    visits += [(day, None, len(cycle_dates)) for day in followup_dates]
    rows = []
    for day, nadir_cycle, cycles_given in sorted(visits, key=lambda v: v[0]):
        years = max((day - start).days, 0) / 365.25
        egfr = base["egfr"] + m["egfr_slope_per_year_per_gy_bed"] * bed_total * years + rng.normal(0.0, m["egfr_noise_sd"])
        marrow_cumulative = sum(d.marrow_dose_gy for d in doses[:cycles_given])
        log_counts = m["residual_log_per_gy_cumulative"] * marrow_cumulative
        liver = 0.0
        if nadir_cycle is not None:
            marrow = doses[nadir_cycle].marrow_dose_gy
            log_counts = m["residual_log_per_gy_cumulative"] * (marrow_cumulative - marrow)
            liver = doses[nadir_cycle].ia_lobe_liver_dose_gy
        else:
            marrow = 0.0

        def count(name, per_gy, dose=marrow, shift=log_counts):
            return base[name] * math.exp(per_gy * dose + shift + rng.normal(0.0, m["count_noise_sd_log"]))

        def chemistry(name, per_gy=0.0, dose=liver):
            return base[name] * math.exp(per_gy * dose + rng.normal(0.0, m["chemistry_noise_sd_log"]))

        rows.append({
            "patient_id": patient_id, "date": day.isoformat(),
            "creatinine_umol_per_l": round(float(creatinine_umol_per_l(egfr, age, sex)), 1),
            "egfr_ml_per_min_1_73m2": round(float(egfr), 1),
            "haemoglobin_g_per_l": round(count("haemoglobin", m["haemoglobin_nadir_log_per_gy"]), 0),
            "platelets_1e9_per_l": round(count("platelets", m["platelet_nadir_log_per_gy"]), 0),
            "neutrophils_1e9_per_l": round(count("neutrophils", m["neutrophil_nadir_log_per_gy"]), 2),
            "lymphocytes_1e9_per_l": round(count("lymphocytes", m["lymphocyte_nadir_log_per_gy"]), 2),
            "alt_u_per_l": round(chemistry("alt", m["alt_log_per_gy_ia_lobe"]), 0),
            "ast_u_per_l": round(chemistry("ast", m["ast_log_per_gy_ia_lobe"]), 0),
            "bilirubin_umol_per_l": round(chemistry("bilirubin"), 1),
            "albumin_g_per_l": round(chemistry("albumin"), 1)})
    return rows
