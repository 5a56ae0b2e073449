"""Red-marrow absorbed dose by the blood-based method of the EANM guideline.

Hindorf C, Glatting G, Chiesa C, Lindén O, Flux G. EANM Dosimetry Committee guidelines for
bone marrow and whole-body dosimetry. Eur J Nucl Med Mol Imaging 2010;37:1238-1250.

For a radiopharmaceutical that does not bind to marrow, blood or bone (peptides), the red
marrow (RM) dose of one administration is

    D_RM = A~_RM S(RM<-RM) + A~_RB S(RM<-RB) + sum_h A~_h S(RM<-h)

* self-dose: ``A~_RM = [A~_blood] x RMBLR x m_RM`` (MBq h), with ``[A~_blood]`` the blood
  time-integrated activity concentration (MBq h/mL, from blood samples, :func:`fit_blood_clearance`),
  RMBLR the red-marrow-to-blood activity concentration ratio (1 for peptides: the guideline, and
  Forrer et al. Eur J Nucl Med Mol Imaging 2009;36:1138 for 177Lu-octreotate; or the
  haematocrit-based ``RMECFF / (1 - HCT)`` with RMECFF = 0.19, Sgouros, J Nucl Med 1993;34:689)
  and ``m_RM`` the red-marrow mass (ICRP Publication 89 reference: 1170 g male, 900 g female); a
  patient mass scales the self S-value by ``m_ref / m_patient`` (the guideline's mass correction),
  so a mass taken into ``A~_RM`` and the S-value cancels for the concentration-based self-dose;
* cross-dose from the remainder of the body (RB), with the remainder S-value from the total-body
  one (the guideline's eq. for S(RM<-RB)):
  ``S(RM<-RB) = S(RM<-TB) m_TB / m_RB - sum_s S(RM<-s) m_s / m_RB`` over the explicit sources s
  (RM and the imaged organs), ``m_RB = m_TB - sum_s m_s``, and ``A~_RB`` = whole-body TIA minus
  ``A~_RM`` minus the organs' TIAs;
* cross-dose from imaged organs h (kidneys, liver with its lesions, spleen).

S-values (mGy/(MBq s)) and reference masses: ``luprrt/data/red_marrow_s_values_lu177.csv``
(OLINDA/EXM 2.0 Lu-177, ICRP-89 adult male ``AM`` and female ``AF`` phantoms; masses ICRP
Publication 89), every row citing its source.

The marrow limit 2 Gy (cumulative) is :data:`luprrt.dosimetry.MARROW_DOSE_LIMIT_GY`.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from ..physics import LU177_DECAY_CONSTANT_PER_H, SECONDS_PER_HOUR

S_VALUE_FILE = "red_marrow_s_values_lu177.csv"
PHANTOMS = ("AM", "AF")
# Organs with an S(RM<-organ) in the table (sources besides RM and total body).
CROSS_DOSE_ORGANS = ("kidneys", "liver", "spleen")
# Red-marrow extracellular fluid fraction for the haematocrit-based RMBLR (Sgouros, J Nucl Med 1993;34:689).
RMECFF = 0.19
# RMBLR for peptides that do not bind to marrow, blood or bone (Hindorf et al. 2010; Forrer et al. 2009).
PEPTIDE_RMBLR = 1.0
BLOOD_MODELS = ("auto", "mono", "bi")
_MGY_PER_GY = 1000.0
_EXACT_RELATIVE_RESIDUAL = 1e-9


@dataclass(frozen=True)
class MarrowSValues:
    """Red-marrow target S-values (mGy/(MBq s)) and source masses (g) of one reference phantom."""

    phantom: str
    s_mgy_per_mbq_s: dict[str, float]
    mass_g: dict[str, float]

    def remainder_s_mgy_per_mbq_s(self, explicit_sources) -> float:
        """S(RM<-RB) of the body minus ``explicit_sources`` (always including RM), Hindorf et al. 2010."""
        sources = {"red_marrow", *explicit_sources}
        m_tb = self.mass_g["total_body"]
        m_rb = m_tb - sum(self.mass_g[s] for s in sources)
        return (self.s_mgy_per_mbq_s["total_body"] * m_tb
                - sum(self.s_mgy_per_mbq_s[s] * self.mass_g[s] for s in sources)) / m_rb


@cache
def marrow_s_values(phantom: str = "AM") -> MarrowSValues:
    """Red-marrow S-values and masses of reference phantom ``phantom`` (``"AM"`` or ``"AF"``).

    Raises
    ------
    ValueError
        Unknown phantom.
    """
    if phantom not in PHANTOMS:
        raise ValueError(f"unknown red-marrow S-value phantom {phantom!r}; expected one of {PHANTOMS}")
    text = resources.files("luprrt").joinpath("data", S_VALUE_FILE).read_text(encoding="utf-8")
    rows = [row for row in csv.DictReader(text.splitlines()) if row["phantom"] == phantom]
    return MarrowSValues(phantom, {r["source"]: float(r["s_value_mgy_per_mbq_s"]) for r in rows},
                         {r["source"]: float(r["source_mass_g"]) for r in rows})


def red_marrow_to_blood_ratio(hematocrit: float | None = None) -> float:
    """RMBLR: 1 for peptides (no marrow binding), or ``RMECFF / (1 - HCT)`` with a haematocrit HCT (0-1).

    Raises
    ------
    ValueError
        Haematocrit outside (0, 1), naming it.
    """
    if hematocrit is None:
        return PEPTIDE_RMBLR
    if not (math.isfinite(hematocrit) and 0.0 < hematocrit < 1.0):
        raise ValueError(f"haematocrit must be a fraction between 0 and 1 (e.g. 0.42), got {hematocrit}")
    return RMECFF / (1.0 - hematocrit)


@dataclass
class BloodClearanceFit:
    """Blood activity concentration C(t) = sum_j c_j exp(-lambda_j t) fitted to samples, integrated to infinity.

    ``model``: ``"mono"`` or ``"bi"`` (sum of two clearing exponentials); ``coefficients_kbq_per_ml``
    and ``rates_per_h`` its terms; ``tiac_kbq_h_per_ml`` and ``tiac_sd_kbq_h_per_ml`` the time
    integral from injection to infinity and its SD (delta method, fit covariance scaled by the
    residual variance); ``aicc_by_model`` the AICc of each candidate (NaN when undefined).
    """

    model: str
    coefficients_kbq_per_ml: tuple[float, ...]
    rates_per_h: tuple[float, ...]
    tiac_kbq_h_per_ml: float
    tiac_sd_kbq_h_per_ml: float
    times_h: np.ndarray
    concentration_kbq_per_ml: np.ndarray
    aicc_by_model: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    @property
    def tiac_mbq_h_per_ml(self) -> float:
        """Blood time-integrated activity concentration, MBq h/mL."""
        return self.tiac_kbq_h_per_ml / 1000.0

    def curve(self, t_h) -> np.ndarray:
        """Fitted concentration (kBq/mL) at ``t_h`` (h)."""
        t = np.asarray(t_h, dtype=float)[..., None]
        return np.sum(np.asarray(self.coefficients_kbq_per_ml) * np.exp(-np.asarray(self.rates_per_h) * t), axis=-1)


def fit_blood_clearance(times_h, concentration_kbq_per_ml, model: str = "auto") -> BloodClearanceFit:
    """Fit blood samples with a mono- or bi-exponential clearance and integrate from 0 to infinity.

    ``model="auto"`` chooses by the corrected Akaike criterion (Glatting et al. Med Phys
    2007;34:4285) among the models it can evaluate (the bi-exponential needs 6 or more samples
    for a defined AICc). Every rate is bounded below by physical decay (activity in blood cannot
    clear slower than Lu-177 decays). Residuals are relative (weights 1 / concentration): sample
    errors (pipetting, counting) are proportional to the concentration, which spans two to three
    decades from the first minutes to a week, and unweighted residuals would leave the slow
    phase, most of the integral, to the early samples' noise.

    Parameters
    ----------
    times_h : array_like
        Sample times after injection (h).
    concentration_kbq_per_ml : array_like
        Blood activity concentration at those times (kBq/mL).
    model : str
        ``"auto"``, ``"mono"`` or ``"bi"`` (:data:`BLOOD_MODELS`).

    Returns
    -------
    BloodClearanceFit
        The chosen fit with its time-integrated concentration (kBq h/mL) and its SD.

    Raises
    ------
    ValueError
        Fewer than 2 samples, unknown model, or no convergent fit (the message names them).
    """
    if model not in BLOOD_MODELS:
        raise ValueError(f"unknown blood clearance model {model!r}; expected one of {BLOOD_MODELS}")
    t = np.asarray(times_h, dtype=float)
    c = np.asarray(concentration_kbq_per_ml, dtype=float)
    if t.size < 2:
        raise ValueError(f"blood clearance needs at least 2 samples, got {t.size}")
    candidates = {}
    names = ("mono", "bi") if model == "auto" else (model,)
    flags = []
    for name in names:
        k = 2 if name == "mono" else 4
        if t.size < k:
            flags.append(f"{name} not fitted: needs {k} samples, have {t.size}")
            continue
        try:
            candidates[name] = _fit_clearance(t, c, k // 2)
        except RuntimeError as error:
            flags.append(f"{name} fit failed: {error}")
    if not candidates:
        raise ValueError(f"no blood clearance fit for samples {c.tolist()} kBq/mL at {t.tolist()} h "
                         f"({'; '.join(flags)}); give more samples or model='auto'")
    aicc = {name: _aicc(candidates[name][2], t.size, 2 if name == "mono" else 4) for name in candidates}
    defined = {name: value for name, value in aicc.items() if math.isfinite(value)}
    # Two candidates need 4 samples, where the mono-exponential's AICc is defined: an undefined
    # AICc leaves the mono-exponential alone (2 or 3 samples).
    chosen = min(defined, key=defined.get) if defined else next(iter(candidates))
    coefficients, rates, _, covariance = candidates[chosen]
    tiac = float(np.sum(coefficients / rates))
    gradient = np.concatenate([1.0 / rates, -coefficients / rates**2])
    variance = float(gradient @ covariance @ gradient)
    sd = math.sqrt(variance) if math.isfinite(variance) and variance >= 0 else math.nan
    return BloodClearanceFit(chosen, tuple(float(v) for v in coefficients), tuple(float(v) for v in rates), tiac, sd,
                             t, c, aicc, flags)


def _fit_clearance(t, c, terms: int):
    """Relative least squares of ``terms`` clearing exponentials; returns (coefficients, rates, rss, covariance)."""
    lam_phys = LU177_DECAY_CONSTANT_PER_H

    def function(t, *p):
        a, r = np.asarray(p[:terms]), np.asarray(p[terms:])
        return np.exp(-np.outer(t, r)) @ a

    def jacobian(t, *p):
        a, r = np.asarray(p[:terms]), np.asarray(p[terms:])
        e = np.exp(-np.outer(t, r))
        return np.hstack([e, -t[:, None] * e * a])

    # Start: terminal slope from the last half of the samples, fast rate from the early residual.
    half = max(2, t.size // 2)
    slope, intercept = np.polyfit(t[-half:], np.log(np.maximum(c[-half:], 1e-12)), 1)
    slow = max(-slope, lam_phys * 1.01)
    if terms == 1:
        p0 = [float(np.exp(intercept)), slow]
    else:
        early = np.maximum(c[:half] - np.exp(intercept - slow * t[:half]), 1e-12 * c.max())
        fast = max(-np.polyfit(t[:half], np.log(early), 1)[0], 5.0 * slow)
        p0 = [float(early[0] * np.exp(fast * t[0])), float(np.exp(intercept)), fast, slow]
    bounds = ([0.0] * terms + [lam_phys] * terms, [np.inf] * terms + [50.0] * terms)
    p0 = np.clip(p0, bounds[0], np.asarray(bounds[1]) * 0.999)
    sigma = np.maximum(c, 1e-9 * c.max())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        popt, pcov = curve_fit(function, t, c, p0=p0, jac=jacobian, bounds=bounds, method="trf", max_nfev=2000,
                               sigma=sigma, ftol=1e-12, xtol=1e-12, gtol=1e-12)
    residual = (c - function(t, *popt)) / sigma
    return popt[:terms], popt[terms:], float(residual @ residual), pcov


def _aicc(rss: float, n: int, k: int) -> float:
    """AICc (dimensionless) of a relative-residual fit with ``n`` points and ``k`` parameters.

    Residuals below 1e-9 count as exact, so that noise-free data choose the model with fewer
    parameters.
    """
    if n <= k + 1:
        return math.nan
    rss = max(rss, n * _EXACT_RELATIVE_RESIDUAL**2)
    return n * math.log(rss / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


@dataclass(frozen=True)
class MarrowDose:
    """Blood-based red-marrow dose of one administration and its parts (Gy), with what they came from."""

    self_dose_gy: float
    remainder_dose_gy: float
    organ_dose_gy: dict[str, float]
    blood_tiac_mbq_h_per_ml: float
    red_marrow_tia_mbq_h: float
    remainder_tia_mbq_h: float
    rmblr: float
    red_marrow_mass_g: float
    phantom: str
    self_dose_sd_gy: float = math.nan
    flags: tuple[str, ...] = ()

    @property
    def dose_gy(self) -> float:
        """Total red-marrow dose: self + remainder-of-body + organ cross-doses (Gy)."""
        return self.self_dose_gy + self.remainder_dose_gy + sum(self.organ_dose_gy.values())


def blood_based_marrow_dose(blood_tiac_mbq_h_per_ml: float, whole_body_tia_mbq_h: float,
                            organ_tia_mbq_h: dict[str, float] | None = None, *, phantom: str = "AM",
                            rmblr: float = PEPTIDE_RMBLR, red_marrow_mass_g: float | None = None,
                            blood_tiac_sd_mbq_h_per_ml: float = math.nan) -> MarrowDose:
    """Red-marrow dose (Gy) by the EANM blood-based method (module docstring).

    Parameters
    ----------
    blood_tiac_mbq_h_per_ml : float
        Blood time-integrated activity concentration (MBq h/mL).
    whole_body_tia_mbq_h : float
        Whole-body TIA (MBq h): from whole-body imaging, or injected activity minus excretion.
    organ_tia_mbq_h : dict, optional
        TIAs (MBq h) of imaged organs among :data:`CROSS_DOSE_ORGANS` (liver including its lesions).
    phantom : ``"AM"`` or ``"AF"``
        Reference phantom of the S-values and masses.
    rmblr : float
        Red-marrow-to-blood concentration ratio (:func:`red_marrow_to_blood_ratio`).
    red_marrow_mass_g : float, optional
        Patient red-marrow mass (g); default the phantom's reference mass.
    blood_tiac_sd_mbq_h_per_ml : float
        SD of the blood TIAC, propagated to the self-dose SD.

    The remainder TIA (whole body minus RM minus organs) is a difference of estimates: when
    negative it is set to 0 and flagged.

    Raises
    ------
    ValueError
        Non-finite or negative TIAs, unknown organs, or a non-positive RMBLR or mass (named).
    """
    organs = dict(organ_tia_mbq_h or {})
    unknown = sorted(set(organs) - set(CROSS_DOSE_ORGANS))
    if unknown:
        raise ValueError(f"no red-marrow cross-dose S-value for {unknown}; organs with one: {CROSS_DOSE_ORGANS}")
    for name, value in {"blood TIAC": blood_tiac_mbq_h_per_ml, "whole-body TIA": whole_body_tia_mbq_h,
                        **{f"{k} TIA": v for k, v in organs.items()}}.items():
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be finite and >= 0, got {value}")
    if not (math.isfinite(rmblr) and rmblr > 0):
        raise ValueError(f"RMBLR must be positive, got {rmblr}")
    table = marrow_s_values(phantom)
    reference_mass = table.mass_g["red_marrow"]
    mass = reference_mass if red_marrow_mass_g is None else float(red_marrow_mass_g)
    if not (math.isfinite(mass) and mass > 0):
        raise ValueError(f"red-marrow mass must be positive, got {red_marrow_mass_g} g")
    s_self = table.s_mgy_per_mbq_s["red_marrow"] * reference_mass / mass
    red_marrow_tia = blood_tiac_mbq_h_per_ml * rmblr * mass
    to_gy = SECONDS_PER_HOUR / _MGY_PER_GY  # MBq h x mGy/(MBq s) -> Gy
    self_dose = red_marrow_tia * s_self * to_gy
    remainder_tia = whole_body_tia_mbq_h - red_marrow_tia - sum(organs.values())
    flags = []
    if remainder_tia < 0:
        # A difference of estimates: a whole body covering little more than the organs can go below zero.
        flags.append(f"remainder-of-body TIA set to 0: the whole-body TIA {whole_body_tia_mbq_h:.6g} MBq h is below "
                     f"red marrow ({red_marrow_tia:.6g}) plus organs ({sum(organs.values()):.6g} MBq h)")
        remainder_tia = 0.0
    s_remainder = table.remainder_s_mgy_per_mbq_s(organs)
    organ_dose = {name: tia * table.s_mgy_per_mbq_s[name] * to_gy for name, tia in organs.items()}
    self_sd = self_dose * blood_tiac_sd_mbq_h_per_ml / blood_tiac_mbq_h_per_ml if blood_tiac_mbq_h_per_ml > 0 \
        else math.nan
    return MarrowDose(float(self_dose), float(remainder_tia * s_remainder * to_gy), organ_dose,
                      float(blood_tiac_mbq_h_per_ml), float(red_marrow_tia), float(remainder_tia), float(rmblr),
                      mass, phantom, float(self_sd), tuple(flags))


def whole_body_tia_from_excretion_mbq_h(injected_mbq: float, times_h, cumulative_excreted_fraction) -> float:
    """Whole-body TIA (MBq h) from the injected activity and the cumulative urinary excretion.

    Whole-body activity ``A(t) = A0 (1 - f(t)) exp(-lambda_phys t)`` with ``f(t)`` the cumulative
    excreted fraction of the injected activity (decay-corrected to injection) at the sample times;
    trapezoid from injection (f = 0) to the last sample, then physical decay only (no further
    excretion assumed: conservative).

    Parameters
    ----------
    injected_mbq : float
        Injected activity (MBq).
    times_h : array_like
        Urine sample times after injection (h), positive and increasing.
    cumulative_excreted_fraction : array_like
        Cumulative excreted fraction (0-1) of the injected activity at those times, decay-corrected.

    Returns
    -------
    float
        Whole-body time-integrated activity (MBq h).

    Raises
    ------
    ValueError
        Fractions outside [0, 1] or decreasing, or times not increasing (named).
    """
    t = np.asarray(times_h, dtype=float)
    f = np.asarray(cumulative_excreted_fraction, dtype=float)
    if t.shape != f.shape or t.size == 0 or np.any(np.diff(t) <= 0) or t[0] <= 0:
        raise ValueError(f"urine sample times must be positive and increase, got {t.tolist()} h")
    if np.any((f < 0) | (f > 1)) or np.any(np.diff(f) < 0):
        raise ValueError(f"cumulative excreted fractions must rise within [0, 1], got {f.tolist()}")
    knots_t = np.concatenate([[0.0], t])
    activity = injected_mbq * (1.0 - np.concatenate([[0.0], f])) * np.exp(-LU177_DECAY_CONSTANT_PER_H * knots_t)
    head = float(np.sum(np.diff(knots_t) * (activity[1:] + activity[:-1]) / 2.0))
    return head + float(activity[-1] / LU177_DECAY_CONSTANT_PER_H)
