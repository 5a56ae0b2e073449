"""Time-integrated activity from a single quantitative scan (single-time-point dosimetry).

* Haenscheid et al. (J Nucl Med 2018;59:75-81 — hereafter Haenscheid 2018):
  ``TIA = A(t) 2 t / ln 2``. Exact for a mono-exponential whose effective half-life equals
  the scan time (t = T_eff), and insensitive to T_eff near it; needs no kinetics.
* Madsen et al. (Med Phys 2018;45:2318-2324 — Madsen 2018): ``TIA = A(t) exp(lambda t) / lambda``
  with ``lambda = ln 2 / T_eff``: the exact mono-exponential integral through the one point,
  with a population T_eff or the patient's own T_eff from an earlier cycle.
* Hybrid scheme (full kinetics in cycle 1, one scan in later cycles): Madsen with the
  terminal T_eff of the patient's cycle-1 fit (:class:`.tac.TimeActivityFit`).

Activities in MBq (or any activity/concentration unit: the TIA keeps it, times h); arrays
broadcast, so one call serves every region or every voxel.
"""

from __future__ import annotations

import math

import numpy as np

from ..physics import LU177_HALF_LIFE_H
from .tac import TimeActivityFit


def haenscheid_tia_mbq_h(activity_mbq, time_h):
    """Haenscheid 2018 single-time-point TIA (MBq h): ``A(t) x 2t / ln 2``."""
    t = _validated_time(time_h)
    return np.asarray(activity_mbq, dtype=float) * 2.0 * t / math.log(2.0)


def madsen_tia_mbq_h(activity_mbq, time_h, effective_half_life_h, half_life_h: float = LU177_HALF_LIFE_H):
    """Madsen 2018 single-time-point TIA (MBq h): ``A(t) exp(lambda t) / lambda``, lambda = ln2/T_eff.

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
    """
    return madsen_tia_mbq_h(activity_mbq, time_h, reference_fit.effective_half_life_h,
                            reference_fit.half_life_h)


def _validated_time(time_h):
    t = np.asarray(time_h, dtype=float)
    if np.any(~np.isfinite(t) | (t <= 0)):
        raise ValueError(f"scan time must be positive (h after administration), got {time_h} h")
    return t
