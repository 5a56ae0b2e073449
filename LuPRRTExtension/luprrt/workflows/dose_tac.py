"""Time-integrated activity of a region: which curve model, and single-scan estimates.

Fitted cycles (two or more scans), ``model="auto"``:

* a curve that still rises after the first scan (its maximum is not the first point) with at
  least two points from the maximum on: ``trapezoid_mono`` (:class:`PeakTailFit`), the
  trapezoid from A(0) = 0 up to the maximum plus a mono-exponential fitted to the points
  from the maximum on, integrated to infinity. Uptake-washout curves (lesions) sampled at
  four times leave a bi-exponential no degree of freedom for AICc (n = 4 <= k + 1), and a
  mono-exponential through the uptake phase overestimates the TIA (by ~25 % for a lesion
  with a 4 h uptake half-life scanned at 4, 24, 96, 168 h); the trapezoid-plus-tail rule
  is the usual remedy (e.g. MIRD Pamphlet 26 practice);
* otherwise :func:`luprrt.dosimetry.fit_time_activity` with AICc selection between mono- and
  bi-exponential (Glatting et al. Med Phys 2007;34:4285).

``model="aicc"`` applies that AICc selection to every curve, rising or not; any other
model of the registry :data:`luprrt.dosimetry.tac_models.TAC_MODELS` (``"mono"``, ``"bi"``,
``"trapezoid"``, ``"trapezoid_mono"``, and the constrained bi-exponentials
``"biexp_fixed_uptake"`` and ``"biexp_prior"`` with a :class:`PopulationUptake`) is used as
asked. :func:`fit_reason` says, for the output tables, which model a region used and why (with
four scans AICc is undefined for the bi-exponential and can never choose it).

Single-scan cycles: Haenscheid 2018 always; the hybrid when an earlier cycle's fit of the
region is trustworthy at the scan time (it must reproduce its own cycle's activity there,
interpolated between that cycle's scans, within :data:`HYBRID_FIT_TOLERANCE`):

* ``hybrid_activity_scaling`` (primary): the earlier cycle's TIA scaled by the activity ratio at
  the same post-injection time, ``TIA_1 A_c(t) / A_1(t)``; exact for any curve shape;
* ``hybrid_teff_madsen``: Madsen 2018 with the earlier fit's terminal effective half-life, only
  when that fit is mono-exponential (the one shape for which it is exact; with an uptake phase
  it overestimates the TIA, e.g. +5 % to +24 % at 96 h for 3-12 h uptake half-lives).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..dosimetry import (
    TimeActivityFit,
    activity_scaled_tia_mbq_h,
    fit_time_activity,
    haenscheid_tia_mbq_h,
    hybrid_tia_mbq_h,
    trapezoid_weights_h,
)
from ..dosimetry.tac_models import POPULATION_UPTAKE_MODELS, TAC_MODELS

# Parameters of the bi-exponential (A0, lambda1, lambda2): AICc needs n > k + 1 points.
_BI_PARAMETERS = 3
# Largest relative deviation of a reference fit from its own measured curve at the scan time.
HYBRID_FIT_TOLERANCE = 0.2


@dataclass(frozen=True)
class PopulationUptake:
    """Population uptake rate constant of the constrained bi-exponentials.

    ``uptake_rate_per_h``: k_up = lambda2 - lambda1 (1/h); ``uptake_rate_sd_per_h``: the SD of its
    Gaussian prior (1/h; ``biexp_prior`` only).
    """

    uptake_rate_per_h: float
    uptake_rate_sd_per_h: float | None = None

    def fit_arguments(self) -> dict:
        """Keyword arguments of :func:`luprrt.dosimetry.fit_time_activity`."""
        return {"uptake_rate_per_h": self.uptake_rate_per_h, "uptake_rate_sd_per_h": self.uptake_rate_sd_per_h}


@dataclass(frozen=True)
class PeakTailFit:
    """Trapezoid from A(0) = 0 to the curve's maximum, then a mono-exponential tail from it.

    ``tail`` is the core fit of the points from the maximum on, with time measured from the
    maximum, so its TIA is the integral from the maximum to infinity (and its SD the TIA SD).
    The core's flags and fallbacks (a rising tail falls back to physical decay) carry over.
    """

    times_h: np.ndarray
    activities_mbq: np.ndarray
    peak_index: int
    tail: TimeActivityFit

    @property
    def model(self) -> str:
        """Model name: ``trapezoid_`` and the tail's model."""
        return f"trapezoid_{self.tail.model}"

    @property
    def head_tia_mbq_h(self) -> float:
        """Trapezoid integral from 0 (A = 0) to the maximum (MBq h)."""
        k = self.peak_index
        return float(trapezoid_weights_h(self.times_h[:k + 1], head="linear") @ self.activities_mbq[:k + 1])

    @property
    def tia_mbq_h(self) -> float:
        """Time-integrated activity (MBq h): the trapezoid head plus the tail's integral."""
        return self.head_tia_mbq_h + self.tail.tia_mbq_h

    @property
    def tia_sd_mbq_h(self) -> float:
        """Standard deviation of the TIA (MBq h): the tail's; the trapezoid head adds none."""
        return self.tail.tia_sd_mbq_h

    @property
    def flags(self) -> list[str]:
        """Quality flags of the tail fit."""
        return self.tail.flags

    @property
    def effective_half_life_h(self) -> float:
        """Effective half-life (h) of the tail."""
        return self.tail.effective_half_life_h

    @property
    def half_life_h(self) -> float:
        """Physical half-life (h) the tail fit used."""
        return self.tail.half_life_h

    def curve(self, t_h) -> np.ndarray:
        """Activity (MBq) at ``t_h``: linear up to the maximum, the fitted tail after it."""
        t = np.asarray(t_h, dtype=float)
        k = self.peak_index
        peak_t = self.times_h[k]
        head = np.interp(t, np.concatenate([[0.0], self.times_h[:k + 1]]),
                         np.concatenate([[0.0], self.activities_mbq[:k + 1]]))
        values = np.where(t <= peak_t, head, self.tail.curve(t - peak_t))
        return np.where(t < 0, 0.0, values)


@dataclass(frozen=True)
class TiaEstimate:
    """One TIA estimate of a region: how it was obtained, value, SD and effective half-life.

    ``primary`` marks the estimate cumulative doses and limits use; ``reason`` says why this
    model (the ``fit_reason`` column).
    """

    model: str
    tia_mbq_h: float
    tia_sd_mbq_h: float
    effective_half_life_h: float
    flags: tuple[str, ...]
    primary: bool = True
    reason: str = ""

    def flagged(self, flag: str) -> TiaEstimate:
        """A copy of the estimate with ``flag`` appended to its flags."""
        return TiaEstimate(self.model, self.tia_mbq_h, self.tia_sd_mbq_h, self.effective_half_life_h,
                           (*self.flags, flag), self.primary, self.reason)


def fit_region_tac(times_h, activities_mbq, model: str = "auto",
                   population: PopulationUptake | None = None) -> TimeActivityFit | PeakTailFit:
    """Fit one region's time-activity curve by the rule of the module docstring.

    ``population`` is required by the constrained bi-exponentials (``biexp_fixed_uptake``,
    ``biexp_prior``) and ignored by the other models.

    Parameters
    ----------
    times_h : array_like
        Scan times after administration (h).
    activities_mbq : array_like
        Region activity at those times (MBq).
    model : str
        TAC model (:data:`TAC_MODELS`); ``"auto"`` chooses by AICc.
    population : PopulationUptake, optional
        Population uptake rate (1/h) for the constrained bi-exponentials.

    Returns
    -------
    TimeActivityFit or PeakTailFit
        The fit, with its TIA (MBq h) and effective half-life (h).

    Raises
    ------
    ValueError
        Unknown model, a constrained model without ``population``, or data the core rejects (the
        message names them).
    """
    if model not in TAC_MODELS:
        raise ValueError(f"unknown time-activity model {model!r}; expected one of {TAC_MODELS}")
    if model in POPULATION_UPTAKE_MODELS:
        if population is None:
            raise ValueError(f"the {model} model needs a population uptake rate constant (1/h): set "
                             f"population_uptake_rate_per_h (CLI --uptake-rate-per-h)")
        return fit_time_activity(times_h, activities_mbq, model=model, **population.fit_arguments())
    t = np.asarray(times_h, dtype=float)
    a = np.asarray(activities_mbq, dtype=float)
    peak = int(np.argmax(a)) if a.size else 0
    rising = 0 < peak <= t.size - 2
    if model == "trapezoid_mono" or (model == "auto" and rising):
        if not rising:
            raise ValueError(f"trapezoid_mono needs a maximum after the first scan and two points from it "
                             f"on; activities {a.tolist()} MBq at {t.tolist()} h")
        return PeakTailFit(t, a, peak, fit_time_activity(t[peak:] - t[peak], a[peak:], model="mono"))
    return fit_time_activity(t, a, model="auto" if model == "aicc" else model)


def fitted_estimate(fit: TimeActivityFit | PeakTailFit, reason: str = "") -> TiaEstimate:
    """The TIA estimate of a fit.

    Parameters
    ----------
    fit : TimeActivityFit or PeakTailFit
        A region's fit; its TIA (MBq h), SD and effective half-life (h) are taken over.
    reason : str
        Why this model (:func:`fit_reason`).

    Returns
    -------
    TiaEstimate
        The primary estimate of the fit.
    """
    return TiaEstimate(fit.model, float(fit.tia_mbq_h), float(fit.tia_sd_mbq_h),
                       float(fit.effective_half_life_h), tuple(fit.flags), reason=reason)


def fit_reason(requested: str, fit: TimeActivityFit | PeakTailFit) -> str:
    """Which model a region's curve used and why, in words, for the output tables.

    ``requested`` is the model asked for (:data:`TAC_MODELS`). Says when the bi-exponential could
    not be selected because AICc is undefined (n <= k + 1 = 4 points) and names the constrained
    bi-exponentials that can be chosen instead.
    """
    n = int(np.asarray(fit.times_h).size)
    if requested not in ("auto", "aicc"):
        reason = f"{requested} chosen by name"
        if fit.model != requested:
            reason += f"; {fit.model} used instead (see fit_flags)"
        return reason
    bi_note = ""
    if n <= _BI_PARAMETERS + 1:
        bi_note = (f"; bi-exponential not selectable: AICc undefined for n = {n} points and k = {_BI_PARAMETERS} "
                   f"parameters (needs n > k + 1); choose biexp_fixed_uptake or biexp_prior by name")
    if isinstance(fit, PeakTailFit):
        return (f"auto: curve rises to its maximum at {float(fit.times_h[fit.peak_index]):g} h -> trapezoid to the "
                f"maximum + mono-exponential tail{bi_note}")
    if fit.model == "trapezoid":
        return f"{requested}: no physical exponential fit, trapezoid with physical decay (see fit_flags){bi_note}"
    defined = {name: value for name, value in fit.aicc_by_model.items() if math.isfinite(value)}
    if len(defined) > 1:
        values = ", ".join(f"{name} {value:.4g}" for name, value in sorted(defined.items()))
        return f"{requested}: lowest AICc ({values}){bi_note}"
    return f"{requested}: {fit.model}, the only model with a defined AICc or physical fit{bi_note}"


def single_scan_estimates(time_h: float, activity_mbq: float,
                          reference: TimeActivityFit | PeakTailFit | None) -> list[TiaEstimate]:
    """Single-scan TIAs (MBq h) of a region scanned once at ``time_h`` (h) with ``activity_mbq`` (MBq).

    The estimates: the hybrid by activity scaling (primary, when ``reference`` is trustworthy at
    ``time_h``), the terminal-T_eff hybrid (only for a mono-exponential ``reference``) and Haenscheid.

    Haenscheid's TIA is exact for T_eff equal to the scan time: that is its implied effective
    half-life (for the BED). The hybrids carry the reference's terminal effective half-life.

    Parameters
    ----------
    time_h : float
        Scan time after administration (h).
    activity_mbq : float
        Region activity at the scan (MBq); negative values count as 0.
    reference : TimeActivityFit or PeakTailFit or None
        The same region's fit of an earlier cycle; None (or a fit unusable at ``time_h``): Haenscheid only.

    Returns
    -------
    list of TiaEstimate
        The estimates (TIA in MBq h), the primary one marked.
    """
    activity_mbq = max(float(activity_mbq), 0.0)
    haenscheid = float(haenscheid_tia_mbq_h(activity_mbq, time_h))
    problem = _hybrid_problem(time_h, reference)
    alone = "single scan, no usable earlier-cycle fit: Haenscheid 2018 (needs no kinetics)"
    if problem is not None:
        return [TiaEstimate("haenscheid", haenscheid, math.nan, time_h, (f"single scan; {problem}",), reason=alone)]
    try:
        scaled = float(activity_scaled_tia_mbq_h(activity_mbq, time_h, reference))
    except ValueError as error:
        return [TiaEstimate("haenscheid", haenscheid, math.nan, time_h, (f"single scan; hybrid: {error}",),
                            reason=alone)]
    teff = reference.effective_half_life_h
    reference_activity = float(reference.curve(time_h))
    note = (f"single scan; earlier cycle's {reference.model} TIA {reference.tia_mbq_h:.6g} MBq h x "
            f"{activity_mbq:.6g} / {reference_activity:.6g} MBq at {time_h:g} h (exact for any curve shape)")
    estimates = [TiaEstimate("hybrid_activity_scaling", scaled, math.nan, teff, (note,),
                             reason="single scan: earlier cycle's TIA x activity ratio at the scan time (primary; "
                                    "exact for any curve shape)")]
    if reference.model == "mono":
        try:
            madsen = float(hybrid_tia_mbq_h(activity_mbq, time_h, reference))
            estimates.append(TiaEstimate(
                "hybrid_teff_madsen", madsen, math.nan, teff,
                (f"single scan; terminal effective half-life {teff:.4g} h of the earlier cycle's mono-exponential "
                 f"fit",), primary=False,
                reason="single scan: earlier cycle mono-exponential, Madsen 2018 with its T_eff (exact for a "
                       "mono-exponential)"))
        except ValueError as error:
            estimates[0] = estimates[0].flagged(f"terminal-T_eff hybrid not computed: {error}")
    else:
        estimates[0] = estimates[0].flagged(
            f"terminal-T_eff hybrid not offered: the earlier cycle's fit is {reference.model}, not mono-exponential "
            f"(the T_eff route is exact only for a mono-exponential)")
    estimates.append(TiaEstimate("haenscheid", haenscheid, math.nan, time_h, ("single scan",), primary=False,
                                 reason="single scan: Haenscheid 2018 beside the hybrid, for comparison"))
    return estimates


def _hybrid_problem(time_h: float, reference) -> str | None:
    """Why the hybrid cannot use ``reference`` at ``time_h`` (None when it can)."""
    if reference is None:
        return "no earlier-cycle fit of this region for the hybrid method"
    times, measured = reference.times_h, reference.activities_mbq
    if not times[0] <= time_h <= times[-1]:
        return None
    expected = float(np.interp(time_h, times, measured))
    fitted = float(reference.curve(time_h))
    if expected <= 0 or abs(fitted - expected) > HYBRID_FIT_TOLERANCE * expected:
        return (f"hybrid not used: the earlier cycle's {reference.model} fit gives {fitted:.4g} MBq at "
                f"{time_h:g} h where its scans give {expected:.4g} MBq (more than "
                f"{HYBRID_FIT_TOLERANCE:.0%} apart)")
    return None
