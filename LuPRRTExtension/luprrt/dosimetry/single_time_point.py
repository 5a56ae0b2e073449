"""Time-integrated activity from a single quantitative scan (single-time-point dosimetry).

* Haenscheid et al. (J Nucl Med 2018;59:75-81 — hereafter Haenscheid 2018):
  ``TIA = A(t) 2 t / ln 2``. Exact for a mono-exponential whose effective half-life equals
  the scan time (t = T_eff), and insensitive to T_eff near it; needs no kinetics.
* Madsen et al. (Med Phys 2018;45:2318-2324 — Madsen 2018): ``TIA = A(t) exp(lambda t) / lambda``
  with ``lambda = ln 2 / T_eff``: the exact mono-exponential integral through the one point,
  with a population T_eff or the patient's own T_eff from an earlier cycle.
* Hybrid scheme (full kinetics in cycle 1, one scan in later cycles), two routes:

  - activity scaling (:func:`activity_scaled_tia_mbq_h`): ``TIA_c = TIA_1 A_c(t) / A_1(t)``
    with ``A_1(t)`` cycle 1's fitted curve at the same post-injection time. Same kinetics,
    different amount: exact for any curve shape (mono, bi-exponential, trapezoid);
  - terminal T_eff (:func:`hybrid_tia_mbq_h`): Madsen with the terminal effective half-life of
    cycle 1's fit. Exact only when cycle 1 is mono-exponential; with an uptake phase it
    extrapolates the washout exponential back to t = 0 and overestimates the TIA (by +5 % to
    +24 % at 96 h for 3-12 h uptake half-lives).

Activities in MBq (or any activity/concentration unit: the TIA keeps it, times h); arrays
broadcast, so one call serves every region or every voxel.
"""

from __future__ import annotations

import math

import numpy as np

from ..physics import LU177_HALF_LIFE_H
from .tac import TimeActivityFit


def haenscheid_tia_mbq_h(activity_mbq, time_h):
    """Haenscheid 2018 single-time-point TIA (MBq h): ``A(t) x 2t / ln 2``.

    Parameters
    ----------
    activity_mbq : float or array_like
        Activity at the scan (MBq).
    time_h : float or array_like
        Scan time after administration (h), positive.

    Returns
    -------
    numpy.ndarray
        Time-integrated activity (MBq h), broadcast over the inputs.

    Raises
    ------
    ValueError
        Scan time not positive, naming the value.
    """
    t = _validated_time(time_h)
    return np.asarray(activity_mbq, dtype=float) * 2.0 * t / math.log(2.0)


def madsen_tia_mbq_h(activity_mbq, time_h, effective_half_life_h, half_life_h: float = LU177_HALF_LIFE_H):
    """Madsen 2018 single-time-point TIA (MBq h): ``A(t) exp(lambda t) / lambda``, lambda = ln2/T_eff.

    Parameters
    ----------
    activity_mbq : float or array_like
        Activity at the scan (MBq).
    time_h : float or array_like
        Scan time after administration (h), positive.
    effective_half_life_h : float or array_like
        Effective half-life T_eff of the region (h).
    half_life_h : float
        Physical half-life (h); Lu-177 by default. T_eff may not exceed it.

    Returns
    -------
    numpy.ndarray
        Time-integrated activity (MBq h), broadcast over the inputs.

    Raises
    ------
    ValueError
        T_eff not positive or longer than the physical half-life (clearance cannot be slower
        than physical decay), naming the value.
    """
    t = _validated_time(time_h)
    t_eff = np.asarray(effective_half_life_h, dtype=float)
    if np.any(~np.isfinite(t_eff) | (t_eff <= 0)):
        raise ValueError(f"effective half-life must be positive, got {effective_half_life_h} h")
    if np.any(t_eff > half_life_h * (1.0 + 1e-9)):
        raise ValueError(f"effective half-life {effective_half_life_h} h exceeds the physical half-life "
                         f"{half_life_h} h")
    lam = math.log(2.0) / t_eff
    return np.asarray(activity_mbq, dtype=float) * np.exp(lam * t) / lam


def hybrid_tia_mbq_h(activity_mbq, time_h, reference_fit: TimeActivityFit):
    """Later-cycle TIA (MBq h) from one scan and the patient's own kinetics of an earlier cycle.

    Madsen 2018 with the terminal effective half-life of ``reference_fit`` (mono: 1/lambda;
    bi: the washout lambda1; a trapezoid fallback carries the physical half-life, i.e. the
    conservative no-biological-clearance assumption, and is flagged in that fit).

    Parameters
    ----------
    activity_mbq : float or array_like
        Activity of the later cycle's scan (MBq).
    time_h : float or array_like
        Scan time after the later cycle's administration (h), positive.
    reference_fit : TimeActivityFit
        The earlier cycle's fit of the same region; its effective and physical half-lives (h) are used.

    Returns
    -------
    numpy.ndarray
        Time-integrated activity (MBq h).
    """
    return madsen_tia_mbq_h(activity_mbq, time_h, reference_fit.effective_half_life_h,
                            reference_fit.half_life_h)


def activity_scaled_tia_mbq_h(activity_mbq, time_h, reference_fit):
    """Later-cycle TIA (MBq h) by scaling an earlier cycle's TIA with the activity ratio at the scan time.

    ``TIA_c = TIA_1 x A_c(t) / A_1(t)``, ``A_1(t)`` = ``reference_fit.curve(t)`` (its fitted curve at
    the same time after administration, h). Exact whatever the curve shape when the kinetics repeat.

    Parameters
    ----------
    activity_mbq : float or array_like
        Activity of the later cycle's scan (MBq, or any unit: the TIA keeps it).
    time_h : float
        Scan time after the later cycle's administration (h).
    reference_fit : object with ``tia_mbq_h`` and ``curve(t_h)``
        The earlier cycle's fit of the same region (:class:`.tac.TimeActivityFit` or any curve).

    Raises
    ------
    ValueError
        Reference curve not positive at ``time_h`` or its TIA not finite (the message names them).
    """
    t = _validated_time(time_h)
    reference_activity = float(np.asarray(reference_fit.curve(t), dtype=float))
    reference_tia = float(reference_fit.tia_mbq_h)
    if not (math.isfinite(reference_activity) and reference_activity > 0):
        raise ValueError(f"the earlier cycle's fitted curve is {reference_activity} MBq at {time_h} h: "
                         f"activity scaling needs a positive reference activity at the scan time")
    if not (math.isfinite(reference_tia) and reference_tia > 0):
        raise ValueError(f"the earlier cycle's TIA is {reference_tia} MBq h: activity scaling needs a "
                         f"positive finite TIA")
    return np.asarray(activity_mbq, dtype=float) * (reference_tia / reference_activity)


def _validated_time(time_h):
    t = np.asarray(time_h, dtype=float)
    if np.any(~np.isfinite(t) | (t <= 0)):
        raise ValueError(f"scan time must be positive (h after administration), got {time_h} h")
    return t
