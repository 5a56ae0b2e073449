"""Time-activity curves of one region (lesion, organ) and their time-integrated activity.

Models (times t in h after administration, activity A in MBq, not decay-corrected):

* ``mono``: ``A(t) = A0 exp(-lambda t)``; TIA = A0 / lambda.
* ``bi``: uptake and washout, ``A(t) = A0 (exp(-lambda1 t) - exp(-lambda2 t))`` with
  lambda2 > lambda1 (fitted as lambda1 and lambda2 - lambda1 >= 0);
  TIA = A0 (1/lambda1 - 1/lambda2).
* ``biexp_fixed_uptake``: the ``bi`` curve with the uptake rate constant
  ``k_up = lambda2 - lambda1`` fixed at a population value (``uptake_rate_per_h``); A0 and
  lambda1 fitted. Two free parameters: defined with 2 scans, 2 degrees of freedom with 4.
* ``biexp_prior``: the ``bi`` curve fitted by maximum a posteriori with a Gaussian prior
  N(``uptake_rate_per_h``, ``uptake_rate_sd_per_h``^2) on k_up: least squares of the weighted
  residuals plus ``((k_up - mean) / sd)^2``. Without activity SDs the residual SD is estimated
  from the fixed-uptake fit (RSS / (n - 2), needs 3 or more scans), so the prior's weight
  against the data is set by the data's own scatter. Its covariance (inverse of J^T J of the
  augmented residuals) includes the prior's uncertainty of k_up.

  Both need a population uptake rate constant: the registry :mod:`.tac_models` says why (AICc
  cannot choose ``bi`` from four scans) and :func:`population_uptake_rate_per_h` gives the
  median and SD of k_up over fully sampled patients' ``bi`` fits.
* ``trapezoid``: the measured points joined by straight lines from t = 0 and, after the
  last point, physical decay: TIA = trapezoid + A_last / lambda_phys. Before the first
  point either ``head="linear"`` (A(0) = 0: the activity is taken up from zero, the
  default) or ``head="flat"`` (A(0) = A(t1): constant back to injection).

``mono`` and ``bi`` are fitted by ``scipy.optimize.curve_fit`` (trust-region reflective,
bounds, analytic Jacobian) from log-linear starting values, weighted by the activity SDs
when given (then the covariance is absolute). With ``model="auto"`` the model with the
lowest corrected Akaike information criterion is chosen (Glatting et al. Med Phys
2007;34:4285):

    AICc = n ln(RSS/n) + 2k + 2k(k+1)/(n-k-1)

with n points, k model parameters and RSS the (weighted) residual sum of squares. When
n <= k + 1 AICc is undefined and the model is excluded from the selection (flagged); if no
model has a defined AICc (2-3 points) the mono-exponential is used without selection
(flagged). Residual sums below (1e-9 x the largest activity)^2 per point count as an exact
fit, so noise-free data select the model with fewer parameters.

Non-physical fits are never dropped silently: an effective (terminal) decay constant below
the physical one (a rising or slower-than-physical curve; biological half-life < 0 or
infinite) is flagged and the result falls back to the trapezoid with physical decay after
the last point (``flags`` says why).

The TIA standard deviation is propagated from the fit covariance by the delta method
with the analytic gradient of the TIA; for the trapezoid it is ``sqrt(sum w_i^2 sd_i^2)``
(the TIA is linear in the activities) when SDs are given, else NaN.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit, least_squares

from ..physics import LU177_HALF_LIFE_H
from .tac_models import POPULATION_UPTAKE_MODELS

MODELS = ("auto", "mono", "bi", "trapezoid", *POPULATION_UPTAKE_MODELS)
HEADS = ("linear", "flat")
# Models whose curve is A0 (exp(-lambda1 t) - exp(-lambda2 t)).
BIEXPONENTIAL_MODELS = ("bi", *POPULATION_UPTAKE_MODELS)
# Free parameters (biexp_prior: the data fit 3, the prior adds one residual; 2 scans suffice with SDs).
_PARAMETER_COUNT = {"mono": 2, "bi": 3, "biexp_fixed_uptake": 2, "biexp_prior": 2}
# Bounds of the fitted decay constants (1/h): half-lives from 4 min up, rising curves allowed
# for mono (a negative lambda is detected and flagged, not clipped away).
_MONO_LAMBDA_BOUNDS_PER_H = (-1.0, 10.0)
_BI_LAMBDA_UPPER_PER_H = 10.0
_BI_DELTA_UPPER_PER_H = 50.0
# Relative tolerance of the physical-decay check (noise-free physical decay passes).
_PHYSICAL_RTOL = 1e-6
_EXACT_FIT_RELATIVE_RESIDUAL = 1e-9


@dataclass
class TimeActivityFit:
    """A fitted (or integrated) time-activity curve and its time-integrated activity.

    Attributes
    ----------
    model : ``"mono"``, ``"bi"``, ``"biexp_fixed_uptake"``, ``"biexp_prior"`` or ``"trapezoid"``
    params : dict
        ``a0_mbq`` and ``lambda_per_h`` (mono); ``a0_mbq``, ``lambda1_per_h`` (washout),
        ``lambda2_per_h`` (uptake) (bi and the constrained bi-exponentials); ``a_last_mbq`` and
        ``lambda_tail_per_h`` (trapezoid).
    tia_mbq_h, tia_sd_mbq_h : float
        Time-integrated activity from t = 0 to infinity and its standard deviation (MBq h).
    aicc : float
        AICc of the chosen model (NaN when undefined or for the trapezoid).
    flags : list of str
        Everything the caller should know: non-physical fits, exclusions, fallbacks.
    times_h, activities_mbq : numpy.ndarray
        The data.
    head : str
        Trapezoid rule before the first point (``"linear"`` or ``"flat"``).
    half_life_h : float
        Physical half-life used (h).
    aicc_by_model : dict
        AICc of every fitted candidate (NaN if undefined).
    """

    model: str
    params: dict[str, float]
    tia_mbq_h: float
    tia_sd_mbq_h: float
    aicc: float
    flags: list[str]
    times_h: np.ndarray
    activities_mbq: np.ndarray
    head: str = "linear"
    half_life_h: float = LU177_HALF_LIFE_H
    aicc_by_model: dict[str, float] = field(default_factory=dict)

    @property
    def effective_decay_constant_per_h(self) -> float:
        """Terminal effective decay constant (1/h): lambda, lambda1, or physical (trapezoid tail)."""
        if self.model in BIEXPONENTIAL_MODELS:
            return self.params["lambda1_per_h"]
        key = {"mono": "lambda_per_h", "trapezoid": "lambda_tail_per_h"}[self.model]
        return self.params[key]

    @property
    def effective_half_life_h(self) -> float:
        """Terminal effective half-life ln2 / lambda_eff (h)."""
        return math.log(2.0) / self.effective_decay_constant_per_h

    def curve(self, t_h) -> np.ndarray:
        """Model activity (MBq) at times ``t_h`` (h), e.g. for plotting; 0 before t = 0."""
        t = np.asarray(t_h, dtype=float)
        p = self.params
        if self.model == "mono":
            values = p["a0_mbq"] * np.exp(-p["lambda_per_h"] * t)
        elif self.model in BIEXPONENTIAL_MODELS:
            values = p["a0_mbq"] * (np.exp(-p["lambda1_per_h"] * t) - np.exp(-p["lambda2_per_h"] * t))
        else:
            start = 0.0 if self.head == "linear" else self.activities_mbq[0]
            knots_t = np.concatenate([[0.0], self.times_h])
            knots_a = np.concatenate([[start], self.activities_mbq])
            tail = p["a_last_mbq"] * np.exp(-p["lambda_tail_per_h"] * (t - self.times_h[-1]))
            values = np.where(t <= self.times_h[-1], np.interp(t, knots_t, knots_a), tail)
        return np.where(t < 0, 0.0, values)


@dataclass
class _Candidate:
    model: str
    params: dict[str, float]
    tia_mbq_h: float
    tia_sd_mbq_h: float
    rss: float
    terminal_lambda_per_h: float
    flags: list[str]


def fit_time_activity(times_h, activities_mbq, sd_mbq=None, model: str = "auto", head: str = "linear",
                      half_life_h: float = LU177_HALF_LIFE_H, uptake_rate_per_h: float | None = None,
                      uptake_rate_sd_per_h: float | None = None) -> TimeActivityFit:
    """Fit a time-activity curve and integrate it from injection to infinity.

    Parameters
    ----------
    times_h : array_like
        Acquisition times after administration (h); at least 2, strictly increasing, >= 0.
    activities_mbq : array_like
        Region activities (MBq) at those times, not decay-corrected, >= 0.
    sd_mbq : array_like, optional
        Standard deviations of the activities (MBq), > 0; used as fit weights.
    model : ``"auto"``, ``"mono"``, ``"bi"``, ``"trapezoid"``, ``"biexp_fixed_uptake"`` or ``"biexp_prior"``
    head : ``"linear"`` or ``"flat"``
        Trapezoid rule before the first point (trapezoid model and fallbacks).
    half_life_h : float
        Physical half-life (h); Lu-177 by default.
    uptake_rate_per_h : float, optional
        Population uptake rate constant k_up = lambda2 - lambda1 (1/h) of the constrained
        bi-exponentials (required by them, ignored otherwise).
    uptake_rate_sd_per_h : float, optional
        SD of the Gaussian prior on k_up (1/h), required by ``biexp_prior``.

    Returns
    -------
    TimeActivityFit

    Raises
    ------
    ValueError
        Bad times, activities, SDs, model or head (the message names them).
    """
    t, y, sd = _validated(times_h, activities_mbq, sd_mbq)
    if model not in MODELS:
        raise ValueError(f"unknown time-activity model {model!r}; expected one of {MODELS}")
    if head not in HEADS:
        raise ValueError(f"unknown trapezoid head {head!r}; expected one of {HEADS}")
    if not (np.isfinite(half_life_h) and half_life_h > 0):
        raise ValueError(f"physical half-life must be positive, got {half_life_h} h")
    lambda_phys = math.log(2.0) / half_life_h
    n = t.size
    if model == "trapezoid":
        return _trapezoid_result(t, y, sd, head, half_life_h, [], {})
    if model in POPULATION_UPTAKE_MODELS:
        _check_population_uptake(model, uptake_rate_per_h, uptake_rate_sd_per_h)
        if model == "biexp_prior" and sd is None and n < 3:
            raise ValueError(f"biexp_prior without activity SDs needs at least 3 scans to estimate the residual SD, "
                             f"got {n} (times {t.tolist()} h)")
    names = ["mono", "bi"] if model == "auto" else [model]
    if model != "auto" and n < _PARAMETER_COUNT[model]:
        raise ValueError(f"the {model} model needs at least {_PARAMETER_COUNT[model]} points, got {n} "
                         f"(times {t.tolist()} h)")
    flags: list[str] = []
    fits: dict[str, _Candidate] = {}
    aicc: dict[str, float] = {}
    for name in names:
        k = _PARAMETER_COUNT[name]
        if n < k:
            flags.append(f"{name} not fitted: needs at least {k} points, have {n}")
            continue
        try:
            if name == "mono":
                candidate = _fit_mono(t, y, sd)
            elif name == "bi":
                candidate = _fit_bi(t, y, sd, lambda_phys)
            elif name == "biexp_fixed_uptake":
                candidate = _fit_fixed_uptake(t, y, sd, lambda_phys, uptake_rate_per_h)
            else:
                candidate = _fit_uptake_prior(t, y, sd, lambda_phys, uptake_rate_per_h, uptake_rate_sd_per_h)
        except (RuntimeError, ValueError) as error:
            flags.append(f"{name} fit failed: {error}")
            continue
        aicc[name] = _aicc(candidate.rss, n, k, y, sd)
        if candidate.terminal_lambda_per_h < lambda_phys * (1.0 - _PHYSICAL_RTOL):
            flags.append(f"non-physical {name} fit: effective decay constant "
                         f"{candidate.terminal_lambda_per_h:.4g} /h is below the physical "
                         f"{lambda_phys:.4g} /h "
                         f"(clearance slower than physical decay)")
            continue
        fits[name] = candidate
    if not fits:
        flags.append("fell back to trapezoid with physical decay after the last point")
        return _trapezoid_result(t, y, sd, head, half_life_h, flags, aicc)
    defined = {name: aicc[name] for name in fits if np.isfinite(aicc[name])}
    if model != "auto":
        chosen = names[0]
    elif defined:
        for name in fits:
            if name not in defined and len(fits) > 1:
                flags.append(f"{name} excluded from AICc selection: AICc undefined for n = {n} points and "
                             f"k = {_PARAMETER_COUNT[name]} parameters (needs n > k + 1)")
        chosen = min(defined, key=defined.get)
    else:
        chosen = min(fits, key=_PARAMETER_COUNT.get)
        flags.append(f"AICc undefined for n = {n} points: {chosen} used without model selection")
    best = fits[chosen]
    return TimeActivityFit(best.model, best.params, best.tia_mbq_h, best.tia_sd_mbq_h, aicc[chosen],
                           flags + best.flags, t, y, head, half_life_h, aicc)


def population_uptake_rate_per_h(fits) -> tuple[float, float]:
    """Median and SD (1/h) of the uptake rate constant k_up = lambda2 - lambda1 over ``bi`` fits.

    For the constrained bi-exponentials: pass the unconstrained ``bi`` fits of a site's fully
    sampled patients (same region type, e.g. kidneys or lesions). Other models are ignored.

    Raises
    ------
    ValueError
        Fewer than two ``bi`` fits.
    """
    rates = np.array([f.params["lambda2_per_h"] - f.params["lambda1_per_h"] for f in fits if f.model == "bi"])
    if rates.size < 2:
        raise ValueError(f"a population uptake rate needs at least 2 bi-exponential fits, got {rates.size}")
    return float(np.median(rates)), float(np.std(rates, ddof=1))


def trapezoid_weights_h(times_h, head: str = "linear", tail_lambda_per_h: float | None = None) -> np.ndarray:
    """Weights w (h) with TIA = sum w_i A_i for the trapezoid rule from t = 0.

    ``head="linear"`` adds t1/2 to w_1 (A(0) = 0), ``"flat"`` adds t1 (A(0) = A(t1)); with
    ``tail_lambda_per_h`` the analytic tail A_n / lambda is added to w_n.

    Parameters
    ----------
    times_h : array_like
        Scan times after administration (h), increasing.
    head : str
        ``"linear"`` or ``"flat"``: how the curve is closed between 0 and the first scan.
    tail_lambda_per_h : float, optional
        Rate constant of the mono-exponential tail after the last scan (1/h); None: no tail.

    Returns
    -------
    numpy.ndarray
        Weights (h), one per scan.

    Raises
    ------
    ValueError
        Unknown ``head``.
    """
    t = np.asarray(times_h, dtype=float)
    if head not in HEADS:
        raise ValueError(f"unknown trapezoid head {head!r}; expected one of {HEADS}")
    w = np.zeros(t.size)
    gaps = np.diff(t)
    w[:-1] += gaps / 2.0
    w[1:] += gaps / 2.0
    w[0] += t[0] / 2.0 if head == "linear" else t[0]
    if tail_lambda_per_h is not None:
        w[-1] += 1.0 / tail_lambda_per_h
    return w


def check_scan_times_h(t: np.ndarray) -> None:
    """Scan times (h after administration, 1-D) must be finite, >= 0 and strictly increasing."""
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError(f"times must be finite and >= 0 h after administration, got {t.tolist()} h")
    if np.any(np.diff(t) <= 0):
        raise ValueError(f"times must increase strictly, got {t.tolist()} h")


def _validated(times_h, activities_mbq, sd_mbq):
    t = np.asarray(times_h, dtype=float)
    y = np.asarray(activities_mbq, dtype=float)
    if t.ndim != 1 or t.size < 2:
        raise ValueError(f"need at least 2 time points, got times {np.atleast_1d(t).tolist()} h")
    if y.shape != t.shape:
        raise ValueError(f"{y.size} activities {np.atleast_1d(y).tolist()} MBq for {t.size} times "
                         f"{t.tolist()} h")
    check_scan_times_h(t)
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise ValueError(f"activities must be finite and >= 0 MBq, got {y.tolist()} MBq")
    if not np.any(y > 0):
        raise ValueError(f"all activities are zero: {y.tolist()} MBq")
    if sd_mbq is None:
        return t, y, None
    sd = np.asarray(sd_mbq, dtype=float)
    if sd.shape != t.shape or not np.all(np.isfinite(sd)) or np.any(sd <= 0):
        raise ValueError(f"activity SDs must be {t.size} positive values, got "
                         f"{np.atleast_1d(sd).tolist()} MBq")
    return t, y, sd


def _aicc(rss: float, n: int, k: int, y: np.ndarray, sd: np.ndarray | None) -> float:
    if n <= k + 1:
        return float("nan")
    scale = np.max(np.abs(y) / (1.0 if sd is None else sd))
    rss = max(rss, n * (_EXACT_FIT_RELATIVE_RESIDUAL * scale) ** 2)
    return n * math.log(rss / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def _mono(t, a0, lam):
    return a0 * np.exp(-lam * t)


def _mono_jacobian(t, a0, lam):
    e = np.exp(-lam * t)
    return np.stack([e, -a0 * t * e], axis=1)


def _bi(t, a0, l1, dl):
    return a0 * (np.exp(-l1 * t) - np.exp(-(l1 + dl) * t))


def _bi_jacobian(t, a0, l1, dl):
    e1, e2 = np.exp(-l1 * t), np.exp(-(l1 + dl) * t)
    return np.stack([e1 - e2, a0 * t * (e2 - e1), a0 * t * e2], axis=1)


def _curve_fit(function, jacobian, t, y, sd, p0, bounds):
    """curve_fit with tight tolerances; returns (popt, pcov, rss, flags)."""
    flags = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OptimizeWarning)
        popt, pcov = curve_fit(function, t, y, p0=p0, sigma=sd, absolute_sigma=sd is not None, bounds=bounds,
                               jac=jacobian, method="trf", ftol=1e-13, xtol=1e-13, gtol=1e-13, max_nfev=300)
    if any(issubclass(w.category, OptimizeWarning) for w in caught) or not np.all(np.isfinite(pcov)):
        flags.append(f"{function.__name__.strip('_')} fit covariance undefined (n = {t.size} points): "
                     f"TIA SD is NaN")
        pcov = np.full_like(pcov, np.nan)
    residual = (y - function(t, *popt)) / (1.0 if sd is None else sd)
    return popt, pcov, float(residual @ residual), flags


def _log_linear(t, y, weights=None):
    """Slope and intercept of ln A vs t over the positive points (None if < 2)."""
    positive = y > 0
    if positive.sum() < 2:
        return None
    w = None if weights is None else weights[positive]
    slope, intercept = np.polyfit(t[positive], np.log(y[positive]), 1, w=w)
    return slope, intercept


def _fit_mono(t, y, sd) -> _Candidate:
    start = _log_linear(t, y)
    if start is None:
        raise ValueError(f"fewer than two positive activities: {y.tolist()} MBq")
    lam0 = float(np.clip(-start[0], *(b * 0.999 for b in _MONO_LAMBDA_BOUNDS_PER_H)))
    basis = np.exp(-lam0 * t)
    a0 = float(y @ basis / (basis @ basis))
    bounds = ([0.0, _MONO_LAMBDA_BOUNDS_PER_H[0]], [np.inf, _MONO_LAMBDA_BOUNDS_PER_H[1]])
    popt, pcov, rss, flags = _curve_fit(_mono, _mono_jacobian, t, y, sd, [a0, lam0], bounds)
    a0, lam = (float(v) for v in popt)
    if lam <= 0:
        return _Candidate("mono", {"a0_mbq": a0, "lambda_per_h": lam}, math.inf, math.nan, rss, lam, flags)
    tia = a0 / lam
    gradient = np.array([1.0 / lam, -a0 / lam**2])
    return _Candidate("mono", {"a0_mbq": a0, "lambda_per_h": lam}, tia, _delta_sd(gradient, pcov), rss, lam,
                      flags)


def _fit_bi(t, y, sd, lambda_phys) -> _Candidate:
    peak = int(np.argmax(y))
    tail = _log_linear(t[peak:], y[peak:])
    l1 = max(-tail[0], lambda_phys) if tail is not None else 1.5 * lambda_phys
    l1 = min(l1, 0.5 * _BI_LAMBDA_UPPER_PER_H)
    starts = [l1 * f for f in (2.0, 5.0, 20.0)] + [1.0 / max(t[0], 1e-3), 0.2 / max(t[0], 1e-3)]
    if tail is not None and peak > 0:
        # Method of residuals: the early deficit below the terminal line gives lambda2.
        deficit = np.exp(tail[1] - l1 * t[:peak]) - y[:peak]
        early = _log_linear(t[:peak], np.where(deficit > 0, deficit, 0.0))
        if early is not None and -early[0] > l1:
            starts.insert(0, -early[0])
    shapes = [(l1, float(np.clip(l2 - l1, 1e-6, 0.999 * _BI_DELTA_UPPER_PER_H))) for l2 in starts]
    bounds = ([0.0, 0.0, 0.0], [np.inf, _BI_LAMBDA_UPPER_PER_H, _BI_DELTA_UPPER_PER_H])
    popt, pcov, rss, flags = _best_fit(_bi, _bi_jacobian, t, y, sd, shapes, bounds)
    a0, l1, dl = (float(v) for v in popt)
    l2 = l1 + dl
    params = {"a0_mbq": a0, "lambda1_per_h": l1, "lambda2_per_h": l2}
    if l1 <= 0:
        return _Candidate("bi", params, math.inf, math.nan, rss, l1, flags)
    tia = a0 * (1.0 / l1 - 1.0 / l2)
    gradient = np.array([1.0 / l1 - 1.0 / l2, a0 * (1.0 / l2**2 - 1.0 / l1**2), a0 / l2**2])
    return _Candidate("bi", params, tia, _delta_sd(gradient, pcov), rss, l1, flags)


def _best_fit(curve, jacobian, t, y, sd, shapes, bounds):
    """The least-RSS fit of ``curve(t, a0, *shape)`` over starting shapes; a0 starts at its linear least squares.

    Returns the ``_curve_fit`` result (parameters, covariance, RSS, flags); RuntimeError when no start converges.
    """
    best = None
    for shape in shapes:
        basis = curve(t, 1.0, *shape)
        a0 = float(max(y @ basis / (basis @ basis), 1e-12))
        try:
            result = _curve_fit(curve, jacobian, t, y, sd, [a0, *shape], bounds)
        except RuntimeError:
            continue
        if best is None or result[2] < best[2]:
            best = result
    if best is None:
        raise RuntimeError("no starting value converged")
    return best


def _check_population_uptake(model, rate, rate_sd) -> None:
    if rate is None or not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"the {model} model needs a positive population uptake rate constant uptake_rate_per_h "
                         f"(1/h), got {rate}; use the median of fully sampled patients' bi-exponential fits "
                         f"(population_uptake_rate_per_h)")
    if model == "biexp_prior" and (rate_sd is None or not (math.isfinite(rate_sd) and rate_sd > 0)):
        raise ValueError(f"the biexp_prior model needs a positive prior SD uptake_rate_sd_per_h (1/h), got "
                         f"{rate_sd}")


def _terminal_start_per_h(t, y, lambda_phys) -> list[float]:
    """Starting washout rates: the log-linear slope from the maximum on, and multiples of physical decay."""
    peak = int(np.argmax(y))
    tail = _log_linear(t[peak:], y[peak:])
    starts = [max(-tail[0], lambda_phys)] if tail is not None else []
    return [min(s, 0.5 * _BI_LAMBDA_UPPER_PER_H) for s in [*starts, 1.5 * lambda_phys, 3.0 * lambda_phys]]


def _fit_fixed_uptake(t, y, sd, lambda_phys, k_up) -> _Candidate:
    def curve(t, a0, l1):
        return _bi(t, a0, l1, k_up)

    def jacobian(t, a0, l1):
        return _bi_jacobian(t, a0, l1, k_up)[:, :2]

    curve.__name__ = "_biexp_fixed_uptake"
    shapes = [(l1,) for l1 in _terminal_start_per_h(t, y, lambda_phys)]
    popt, pcov, rss, flags = _best_fit(curve, jacobian, t, y, sd, shapes,
                                       ([0.0, 0.0], [np.inf, _BI_LAMBDA_UPPER_PER_H]))
    a0, l1 = (float(v) for v in popt)
    l2 = l1 + k_up
    params = {"a0_mbq": a0, "lambda1_per_h": l1, "lambda2_per_h": l2}
    flags = [*flags, f"uptake rate constant fixed at the population value {k_up:.4g} /h; TIA SD conditional on it"]
    if l1 <= 0:
        return _Candidate("biexp_fixed_uptake", params, math.inf, math.nan, rss, l1, flags)
    tia = a0 * (1.0 / l1 - 1.0 / l2)
    gradient = np.array([1.0 / l1 - 1.0 / l2, a0 * (1.0 / l2**2 - 1.0 / l1**2)])
    return _Candidate("biexp_fixed_uptake", params, tia, _delta_sd(gradient, pcov), rss, l1, flags)


def _fit_uptake_prior(t, y, sd, lambda_phys, k_mean, k_sd) -> _Candidate:
    fixed = _fit_fixed_uptake(t, y, sd, lambda_phys, k_mean)
    flags = []
    if sd is None:
        scale = max(math.sqrt(fixed.rss / (t.size - 2)), _EXACT_FIT_RELATIVE_RESIDUAL * float(np.max(y)))
        weights = np.full(t.size, scale)
        flags.append(f"residual SD {scale:.4g} MBq estimated from the fixed-uptake fit (no activity SDs given)")
    else:
        weights = sd

    def residuals(p):
        a0, l1, dl = p
        return np.concatenate([(y - _bi(t, a0, l1, dl)) / weights, [(dl - k_mean) / k_sd]])

    def jacobian(p):
        data = -_bi_jacobian(t, *p) / weights[:, None]
        return np.vstack([data, [0.0, 0.0, 1.0 / k_sd]])

    start = [fixed.params["a0_mbq"], max(fixed.params["lambda1_per_h"], 1e-9), k_mean]
    result = least_squares(residuals, start, jac=jacobian, method="trf", ftol=1e-13, xtol=1e-13, gtol=1e-13,
                           bounds=([0.0, 0.0, 0.0], [np.inf, _BI_LAMBDA_UPPER_PER_H, _BI_DELTA_UPPER_PER_H]))
    a0, l1, dl = (float(v) for v in result.x)
    l2 = l1 + dl
    params = {"a0_mbq": a0, "lambda1_per_h": l1, "lambda2_per_h": l2}
    data_residual = result.fun[:-1] * (weights / (1.0 if sd is None else sd))
    rss = float(data_residual @ data_residual)
    flags.append(f"uptake rate constant {dl:.4g} /h, prior {k_mean:.4g} +- {k_sd:.4g} /h")
    try:
        covariance = np.linalg.inv(result.jac.T @ result.jac)
    except np.linalg.LinAlgError:
        covariance = np.full((3, 3), np.nan)
        flags.append("biexp_prior covariance undefined: TIA SD is NaN")
    if l1 <= 0:
        return _Candidate("biexp_prior", params, math.inf, math.nan, rss, l1, flags)
    tia = a0 * (1.0 / l1 - 1.0 / l2)
    gradient = np.array([1.0 / l1 - 1.0 / l2, a0 * (1.0 / l2**2 - 1.0 / l1**2), a0 / l2**2])
    return _Candidate("biexp_prior", params, tia, _delta_sd(gradient, covariance), rss, l1, flags)


def _delta_sd(gradient: np.ndarray, covariance: np.ndarray) -> float:
    variance = float(gradient @ covariance @ gradient)
    return math.sqrt(max(variance, 0.0)) if np.isfinite(variance) else math.nan


def _trapezoid_result(t, y, sd, head, half_life_h, flags, aicc) -> TimeActivityFit:
    lambda_phys = math.log(2.0) / half_life_h
    weights = trapezoid_weights_h(t, head, lambda_phys)
    tia_sd = math.sqrt(float((weights * sd) @ (weights * sd))) if sd is not None else math.nan
    params = {"a_last_mbq": float(y[-1]), "lambda_tail_per_h": lambda_phys}
    return TimeActivityFit("trapezoid", params, float(weights @ y), tia_sd, math.nan, flags, t, y, head,
                           half_life_h, aicc)
