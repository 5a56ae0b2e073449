"""Lu-177 kinetics and lesion biology of the synthetic patient, all in closed form.

Every region's activity concentration after an administration is a sum of
exponentials, C(t) = sum_j a_j exp(-lambda_j t) (t in h after the administration,
every lambda_j >= the physical decay constant of Lu-177), so its time-integrated
activity concentration is sum_j a_j / lambda_j exactly. Organs follow a mono- or
bi-exponential clearance scaled to typical absorbed doses of 177Lu-DOTATATE; lesions
follow uptake and washout, scaled to a tumour-to-non-tumour ratio (T/N) at 24 h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..physics import (
    LU177_DECAY_CONSTANT_PER_H,
    LU177_HALF_LIFE_H,
    LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G,
)
from . import anatomy as pa

LN2 = math.log(2.0)

# Share of the remainder's time course per tissue (less extracellular water in fat, lung, bone).
TISSUE_ACTIVITY_SCALE = np.ones(len(pa.TISSUE_NAMES), dtype=np.float32)
TISSUE_ACTIVITY_SCALE[[pa.AIR, pa.FAT, pa.LUNG, pa.BONE, pa.DISC, pa.RENAL_SINUS]] = (
    0.0, 0.3, 0.2, 0.4, 0.5, 0.3)


@dataclass(frozen=True)
class ExponentialSum:
    """Activity concentration C(t) = sum_j a_j exp(-lambda_j t), Bq/mL, t in h after administration."""

    coefficients_bq_per_ml: tuple[float, ...]
    rates_per_h: tuple[float, ...]

    def __post_init__(self):
        if len(self.coefficients_bq_per_ml) != len(self.rates_per_h) or not self.rates_per_h:
            raise ValueError(f"need one rate per coefficient, got {self.coefficients_bq_per_ml} and "
                             f"{self.rates_per_h}")
        slowest = min(self.rates_per_h)
        if slowest < LU177_DECAY_CONSTANT_PER_H * (1 - 1e-12):
            raise ValueError(f"clearance rate {slowest} 1/h is slower than Lu-177 physical decay "
                             f"({LU177_DECAY_CONSTANT_PER_H:.6g} 1/h)")

    def concentration_bq_per_ml(self, hours):
        """C(t) in Bq/mL at ``hours`` after the administration (float or array)."""
        t = np.asarray(hours, dtype=float)[..., None]
        return np.sum(np.asarray(self.coefficients_bq_per_ml) * np.exp(-np.asarray(self.rates_per_h) * t),
                      axis=-1)

    def time_integral_bq_h_per_ml(self) -> float:
        """Integral of C(t) from the administration to infinity, Bq h/mL (closed form sum a_j/lambda_j)."""
        return float(sum(a / k for a, k in zip(self.coefficients_bq_per_ml, self.rates_per_h, strict=True)))

    def scaled(self, factor: float) -> ExponentialSum:
        """The same curve with every coefficient multiplied by ``factor`` (rates unchanged)."""
        return ExponentialSum(tuple(factor * a for a in self.coefficients_bq_per_ml), self.rates_per_h)

    def as_dict(self) -> dict:
        """Coefficients (Bq/mL) and rates (1/h) as JSON-ready lists."""
        return {"coefficients_bq_per_ml": list(self.coefficients_bq_per_ml),
                "rates_per_h": list(self.rates_per_h)}


@dataclass(frozen=True)
class OrganModel:
    """Population kinetics of an organ, per unit administered activity.

    ``dose_gy_per_gbq``: mean absorbed dose per administered activity if all electron
    energy were deposited locally in unit-density tissue (fixes the time integral);
    ``fast_fraction``: share of the time integral in the fast component.
    """

    dose_gy_per_gbq: float
    slow_half_life_h: float
    fast_fraction: float = 0.0
    fast_half_life_h: float = 1.0


# Typical 177Lu-DOTATATE values: kidney 0.46 Gy/GBq (Staanum et al., EJNMMI Phys 2021;8:78),
# liver 0.27 and spleen 1.17 Gy/GBq (dosimetric analyses of 61 patients, Clin Nucl Med
# 2013;38(3)); effective half-lives 50-80 h. Blood: ~5 L distribution volume at t = 0
# (0.6 of the integral in a ~1 h component); red marrow concentration equals blood
# (Forrer et al., Eur J Nucl Med Mol Imaging 2009;36:1138). Remainder soft tissue: a fast
# extracellular washout and a small slow component.
ORGAN_MODELS: dict[str, OrganModel] = {
    "nontumour": OrganModel(0.27, 80.0),
    "kidney": OrganModel(0.46, 50.0),
    "spleen": OrganModel(1.17, 75.0),
    "blood": OrganModel(0.05, 60.0, fast_fraction=0.6, fast_half_life_h=1.2),
    "remainder": OrganModel(0.016, 60.0, fast_fraction=0.45, fast_half_life_h=2.0),
}


def organ_kinetics(model: OrganModel, activity_mbq: float, dose_factor: float = 1.0,
                   half_life_factor: float = 1.0) -> ExponentialSum:
    """Concentration curve of an organ after ``activity_mbq`` (optionally scaled per patient/cycle).

    The slow effective half-life is capped at 95 % of the physical one.
    """
    # Time integral per mL: dose / (local-deposition constant), unit density (1 g/mL).
    integral_bq_h_per_ml = (model.dose_gy_per_gbq * dose_factor * activity_mbq / 1000.0
                            / LU177_LOCAL_DEPOSITION_GY_PER_MBQ_H_PER_G * 1e6)
    slow_t = min(model.slow_half_life_h * half_life_factor, 0.95 * LU177_HALF_LIFE_H)
    rates = [LN2 / slow_t]
    shares = [1.0 - model.fast_fraction]
    if model.fast_fraction > 0:
        rates.append(LN2 / model.fast_half_life_h)
        shares.append(model.fast_fraction)
    return ExponentialSum(tuple(s * integral_bq_h_per_ml * k for s, k in zip(shares, rates, strict=True)),
                          tuple(rates))


def lesion_kinetics(tn_at_24h: float, nontumour: ExponentialSum, uptake_half_life_h: float,
                    effective_half_life_h: float) -> ExponentialSum:
    """Uptake-washout curve K (exp(-l_out t) - exp(-l_in t)) with C(24 h) = T/N x non-tumour C(24 h).

    l_out = ln2 / effective half-life; l_in = l_out + ln2 / uptake half-life.
    """
    out = LN2 / effective_half_life_h
    up = out + LN2 / uptake_half_life_h
    shape_at_24h = math.exp(-out * 24.0) - math.exp(-up * 24.0)
    k = tn_at_24h * float(nontumour.concentration_bq_per_ml(24.0)) / shape_at_24h
    return ExponentialSum((k, -k), (out, up))


@dataclass(frozen=True)
class LesionBiology:
    """Seeded per-lesion truth: T/N draw, kinetics shape, baseline imaging and growth rate."""

    tn_variation: float  # multiplicative per-lesion variation of T/N (lognormal draw)
    ia_factor: float  # ia_tn_factor for lesions in the IA lobe, 1 otherwise
    tn_per_cycle_factor: float  # T/N of cycle k = T/N of cycle 1 x factor^(k-1)
    uptake_half_life_h: float
    effective_half_life_h: float
    fdg_suv: float
    ga68_suv: float
    adc_mm2_per_s: float
    growth_rate_per_week: float

    def tn_at_24h(self, cycle: int, median_tn: float) -> float:
        """True lesion T/N at 24 h after the administration of ``cycle`` (1-based)."""
        return median_tn * self.tn_variation * self.ia_factor * self.tn_per_cycle_factor ** (cycle - 1)


# Rule linking baseline biology and uptake to size change (see growth_rate_per_week).
RESPONSE_MODEL = {
    "intrinsic_rate_per_week": 0.001,
    "fdg_coefficient_per_week": 0.004,
    "fdg_reference_suv": 3.5,
    "tn_coefficient_per_week": 0.012,
    "tn_reference": 12.0,
    "adc_coefficient_per_week_per_1e3_mm2_per_s": 0.01,
    "adc_reference_mm2_per_s": 1.1e-3,
    "noise_sd_per_week": 0.002,
    "rate_min_per_week": -0.02,
    "rate_max_per_week": 0.005,
}


def growth_rate_per_week(fdg_suv: float, tn: float, adc_mm2_per_s: float, noise: float) -> float:
    """Log-diameter rate r (1/week): diameter(t) = diameter(0) exp(r t), t in weeks after cycle 1.

    r_lin = r0 + c_fdg ln(FDG/3.5) - c_tn ln(T/N/12) + c_adc (ADC - 1.1e-3)/1e-3 + noise: FDG-avid
    lesions grow, high-uptake lesions (high absorbed dose) shrink. Growth saturates smoothly,
    r = r_max tanh(r_lin / r_max) for r_lin > 0 (r_max 0.005/week, +34 % in 59 weeks), and
    shrinkage is clipped at r_min = -0.02/week.
    """
    m = RESPONSE_MODEL
    adc_excess = (adc_mm2_per_s - m["adc_reference_mm2_per_s"]) / 1e-3
    r = (m["intrinsic_rate_per_week"]
         + m["fdg_coefficient_per_week"] * math.log(fdg_suv / m["fdg_reference_suv"])
         - m["tn_coefficient_per_week"] * math.log(tn / m["tn_reference"])
         + m["adc_coefficient_per_week_per_1e3_mm2_per_s"] * adc_excess
         + noise)
    if r > 0:
        return float(m["rate_max_per_week"] * math.tanh(r / m["rate_max_per_week"]))
    return float(max(r, m["rate_min_per_week"]))


def tn_variation_draws(rng: np.random.Generator, n: int, sigma: float = 0.4) -> np.ndarray:
    """Per-lesion multiplicative T/N variation exp(sigma z), z ~ N(0, 1) (median 1)."""
    return np.exp(sigma * rng.standard_normal(n))


def draw_lesion_biology(rng: np.random.Generator, routes: list[str], ia_tn_factor: float,
                        median_tn: float) -> list[LesionBiology]:
    """Draw every lesion's biology; the IA-route lesions get T/N x ``ia_tn_factor``.

    The T/N variation has the same distribution on both routes, so the expected T/N of
    IA lesions is exactly ``ia_tn_factor`` times that of IV lesions.
    FDG SUV lognormal (median 3.5; well-differentiated NET are mostly FDG-poor),
    68Ga-DOTATATE SUV proportional to the intravenous-route T/N (median ~24), ADC around
    1.1e-3 mm2/s (NET liver metastases), all with seeded noise.
    """
    n = len(routes)
    variation = tn_variation_draws(rng, n)
    per_cycle = rng.uniform(0.85, 1.05, n)
    uptake_t = rng.uniform(1.5, 6.0, n)
    eff_t = rng.uniform(70.0, 130.0, n)
    fdg = 3.5 * np.exp(0.5 * rng.standard_normal(n))
    ga = 2.0 * median_tn * variation * np.exp(0.25 * rng.standard_normal(n))
    adc = np.clip(rng.normal(1.1e-3, 0.15e-3, n), 0.6e-3, 1.8e-3)
    noise = rng.normal(0.0, RESPONSE_MODEL["noise_sd_per_week"], n)
    lesions = []
    for i, route in enumerate(routes):
        factor = ia_tn_factor if route == "IA" else 1.0
        tn = median_tn * variation[i] * factor
        lesions.append(LesionBiology(
            tn_variation=float(variation[i]), ia_factor=float(factor),
            tn_per_cycle_factor=float(per_cycle[i]),
            uptake_half_life_h=float(uptake_t[i]), effective_half_life_h=float(eff_t[i]),
            fdg_suv=float(fdg[i]), ga68_suv=float(ga[i]), adc_mm2_per_s=float(adc[i]),
            growth_rate_per_week=growth_rate_per_week(float(fdg[i]), tn, float(adc[i]), float(noise[i]))))
    return lesions


# Rule of the "dose" response model: the lesion's log-diameter rate follows its cumulative
# absorbed dose over all cycles (true mean dose, local deposition) instead of its T/N, so
# ln(diameter(t) / diameter(0)) = r t with r linear in ln(D_cum) unless clipped.
DOSE_RESPONSE_MODEL = {
    "intrinsic_rate_per_week": -0.003,
    "dose_coefficient_per_week": 0.0085,  # r falls by this per unit of ln(cumulative dose)
    "dose_reference_gy": 120.0,
    "fdg_coefficient_per_week": 0.002,
    "fdg_reference_suv": 3.5,
    "noise_sd_per_week": 0.0015,
    "rate_min_per_week": -0.04,
    "rate_max_per_week": 0.005,
}

# Lesion imaging after each cycle: FDG and 68Ga SUV fall and ADC rises with the cumulative
# absorbed dose so far (D in Gy): value = baseline x exp(coefficient x D / 100 Gy + noise).
AFTER_CYCLE_IMAGING_MODEL = {
    "fdg_log_per_100_gy": -0.45,
    "ga68_log_per_100_gy": -0.30,
    "adc_log_per_100_gy": 0.12,
    "noise_sd_log": 0.06,
}


def growth_rate_from_dose_per_week(fdg_suv: float, cumulative_dose_gy: float, noise: float) -> float:
    """Log-diameter rate r (1/week) of the "dose" response model.

    r = r0 + c_fdg ln(FDG/3.5) - c_D ln(D_cum / 120 Gy) + noise, clipped to [-0.04, 0.005]/week
    (see :data:`DOSE_RESPONSE_MODEL`); D_cum is the lesion's cumulative mean absorbed dose (Gy).
    """
    m = DOSE_RESPONSE_MODEL
    r = (m["intrinsic_rate_per_week"] + m["fdg_coefficient_per_week"] * math.log(fdg_suv / m["fdg_reference_suv"])
         - m["dose_coefficient_per_week"] * math.log(cumulative_dose_gy / m["dose_reference_gy"]) + noise)
    return float(min(max(r, m["rate_min_per_week"]), m["rate_max_per_week"]))
