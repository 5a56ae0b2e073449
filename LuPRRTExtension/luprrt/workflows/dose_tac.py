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
``model`` (``"mono"``, ``"bi"``, ``"trapezoid"``, ``"trapezoid_mono"``) is used as asked.

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
    fit_time_activity,
    activity_scaled_tia_mbq_h,
    haenscheid_tia_mbq_h,
    hybrid_tia_mbq_h,
    trapezoid_weights_h,
)
from ..dosimetry.tac import MODELS as CORE_MODELS

TAC_MODELS = ("auto", "aicc", "trapezoid_mono", *(m for m in CORE_MODELS if m != "auto"))
# Largest relative deviation of a reference fit from its own measured curve at the scan time.
HYBRID_FIT_TOLERANCE = 0.2


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
        return f"trapezoid_{self.tail.model}"

    @property
    def head_tia_mbq_h(self) -> float:
        """Trapezoid integral from 0 (A = 0) to the maximum (MBq h)."""
        k = self.peak_index
        return float(trapezoid_weights_h(self.times_h[:k + 1], head="linear") @ self.activities_mbq[:k + 1])

    @property
    def tia_mbq_h(self) -> float:
        return self.head_tia_mbq_h + self.tail.tia_mbq_h

    @property
    def tia_sd_mbq_h(self) -> float:
        return self.tail.tia_sd_mbq_h

    @property
    def flags(self) -> list[str]:
        return self.tail.flags

    @property
    def effective_half_life_h(self) -> float:
        return self.tail.effective_half_life_h

    @property
    def half_life_h(self) -> float:
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

    ``primary`` marks the estimate cumulative doses and limits use.
    """

    model: str
    tia_mbq_h: float
    tia_sd_mbq_h: float
    effective_half_life_h: float
    flags: tuple[str, ...]
    primary: bool = True

    def flagged(self, flag: str) -> TiaEstimate:
        return TiaEstimate(self.model, self.tia_mbq_h, self.tia_sd_mbq_h, self.effective_half_life_h,
                           (*self.flags, flag), self.primary)


def fit_region_tac(times_h, activities_mbq, model: str = "auto") -> TimeActivityFit | PeakTailFit:
    """Fit one region's time-activity curve by the rule of the module docstring.

    Raises
    ------
    ValueError
        Unknown model, or data the core rejects (the message names them).
    """
    if model not in TAC_MODELS:
        raise ValueError(f"unknown time-activity model {model!r}; expected one of {TAC_MODELS}")
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


def fitted_estimate(fit: TimeActivityFit | PeakTailFit) -> TiaEstimate:
    """The TIA estimate of a fit."""
    return TiaEstimate(fit.model, float(fit.tia_mbq_h), float(fit.tia_sd_mbq_h),
                       float(fit.effective_half_life_h), tuple(fit.flags))


def single_scan_estimates(time_h: float, activity_mbq: float,
                          reference: TimeActivityFit | PeakTailFit | None) -> list[TiaEstimate]:
    """Single-scan TIAs: the hybrid by activity scaling (primary, when ``reference`` is trustworthy at
    ``time_h``), the terminal-T_eff hybrid (only for a mono-exponential ``reference``) and Haenscheid.

    Haenscheid's TIA is exact for T_eff equal to the scan time: that is its implied effective
    half-life (for the BED). The hybrids carry the reference's terminal effective half-life.
    """
    activity_mbq = max(float(activity_mbq), 0.0)
    haenscheid = float(haenscheid_tia_mbq_h(activity_mbq, time_h))
    problem = _hybrid_problem(time_h, reference)
    if problem is not None:
        return [TiaEstimate("haenscheid", haenscheid, math.nan, time_h, (f"single scan; {problem}",))]
    try:
        scaled = float(activity_scaled_tia_mbq_h(activity_mbq, time_h, reference))
    except ValueError as error:
        return [TiaEstimate("haenscheid", haenscheid, math.nan, time_h, (f"single scan; hybrid: {error}",))]
    teff = reference.effective_half_life_h
    reference_activity = float(reference.curve(time_h))
    note = (f"single scan; earlier cycle's {reference.model} TIA {reference.tia_mbq_h:.6g} MBq h x "
            f"{activity_mbq:.6g} / {reference_activity:.6g} MBq at {time_h:g} h (exact for any curve shape)")
    estimates = [TiaEstimate("hybrid_activity_scaling", scaled, math.nan, teff, (note,))]
    if reference.model == "mono":
        try:
            madsen = float(hybrid_tia_mbq_h(activity_mbq, time_h, reference))
            estimates.append(TiaEstimate(
                "hybrid_teff_madsen", madsen, math.nan, teff,
                (f"single scan; terminal effective half-life {teff:.4g} h of the earlier cycle's mono-exponential "
                 f"fit",), primary=False))
        except ValueError as error:
            estimates[0] = estimates[0].flagged(f"terminal-T_eff hybrid not computed: {error}")
    else:
        estimates[0] = estimates[0].flagged(
            f"terminal-T_eff hybrid not offered: the earlier cycle's fit is {reference.model}, not mono-exponential "
            f"(the T_eff route is exact only for a mono-exponential)")
    estimates.append(TiaEstimate("haenscheid", haenscheid, math.nan, time_h, ("single scan",), primary=False))
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
